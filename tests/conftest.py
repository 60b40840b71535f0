"""Shared fixtures: a real central system on 127.0.0.1 ephemeral ports over a fresh database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from csms.app import CentralSystem
from csms.config import Config, load_config, with_overrides
from csms.logs import configure_logging
from tests.ocpp_client import RawCharger

configure_logging("console", "warning")

# The end-to-end payment fixtures (system, driver, sim), for every test module.
pytest_plugins = ("tests.backends", "tests.paid_fixtures")

MakeConfig = Callable[..., Config]
API_KEY = "test-api-key"
API_HEADERS = {"X-API-Key": API_KEY}


@pytest.fixture
def make_config(tmp_path: Path, database_url: str) -> MakeConfig:
    """A config on loopback ephemeral ports and a fresh database (a file in tmp_path, or a
    PostgreSQL database: tests/backends.py); keyword args override."""

    def make(**sections: dict[str, Any]) -> Config:
        base = with_overrides(
            load_config(env={}),
            server={
                "ocpp_host": "127.0.0.1",
                "ocpp_port": 0,
                "http_host": "127.0.0.1",
                "http_port": 0,
            },
            ocpp={"unknown_chargers": "accept", "call_timeout": 2.0},
            database={
                "path": str(tmp_path / "csms.db"),
                "url": database_url,
                "synchronous": "normal",
            },
            stripe={"sandbox_port": 0},
            api={"keys": API_KEY},
            payments={"tick_interval": 0.1, "retry_base": 0.05, "retry_ceiling": 0.5},
        )
        return with_overrides(base, **sections)

    return make


@pytest.fixture
async def csms(make_config: MakeConfig) -> AsyncIterator[CentralSystem]:
    async with CentralSystem(make_config()) as system:
        yield system


def ocpp_url(system: CentralSystem) -> str:
    return f"ws://127.0.0.1:{system.ocpp.port}/ocpp"


@pytest.fixture
async def charger(csms: CentralSystem) -> AsyncIterator[RawCharger]:
    """A raw OCPP-J client connected as CP-1 and booted."""
    async with RawCharger.connect(ocpp_url(csms), "CP-1") as client:
        await client.call("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
        yield client


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless Chromium per browser-test module (tests/browser.py)."""
    from tests.browser import start_chromium  # selenium only where a browser is wanted

    driver = start_chromium()
    try:
        yield driver
    finally:
        driver.quit()
