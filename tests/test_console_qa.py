"""What an operator trips over on the console, over HTTP: each test is a defect found by
using the console from outside, kept so that it stays mended."""

from __future__ import annotations

import re

from csms.app import CentralSystem
from simulators.chargepoint import SimulatedCharger
from tests.console_fixtures import console_client
from tests.payflow import Driver, finished_session

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


def words(page: str) -> str:
    """The text a person reads: no tags, no attributes, no scripts."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"<[^>]+>", " ", page)


async def test_a_chargers_page_shows_times_as_words_not_iso_strings(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger
) -> None:
    await finished_session(driver, sim)
    async with console_client(system, "viewer") as viewer:
        page = words(await viewer.text(f"/console/chargers/{sim.charge_point_id}"))
    assert ISO.findall(page) == []  # last boot, last seen, since, started, stopped, received
    assert re.search(r"Last seen\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", page)
