"""Fixtures for end-to-end payment tests, loaded for every test module (conftest's
`pytest_plugins`): a central system with the end-to-end tariff, a driver's HTTP client and a
simulated charger. A module that needs another setup defines its own `system`, which wins.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from csms.app import CentralSystem
from simulators.chargepoint import SimulatedCharger
from tests.conftest import MakeConfig
from tests.payflow import TARIFF, Driver, charger


@pytest.fixture
async def system(make_config: MakeConfig) -> AsyncIterator[CentralSystem]:
    """The end-to-end tariff (0.40/kWh, 0.50 per session, 5 kWh at most) and 100 Wh billed."""
    config = make_config(tariff=TARIFF, payments={"minimum_energy_wh": 100})
    async with CentralSystem(config) as running:
        yield running


@pytest.fixture
async def driver(system: CentralSystem) -> AsyncIterator[Driver]:
    async with aiohttp.ClientSession() as http:
        yield Driver(system, http)


@pytest.fixture
async def sim(system: CentralSystem) -> AsyncIterator[SimulatedCharger]:
    simulated = charger(system, unplug_after_stop=0.1)
    await simulated.start()
    yield simulated
    await simulated.stop()
