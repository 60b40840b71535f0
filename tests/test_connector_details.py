"""Each connector's plug type and maximum power, entered by the operator with the charger's
registration (OCPP 1.6 does not report them): set, shown and removed over the API, refused
with the field's name when wrong, shown on the driver's start page in English and German,
and gone with the charger; `csms chargers add --connector` enters them too."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from csms.app import CentralSystem
from csms.cli import main
from csms.config import load_config
from csms.config_values import open_database
from csms.store.chargers import ChargerStore, connector_details
from tests.conftest import API_HEADERS, MakeConfig
from tests.payflow import TARIFF, Driver, charger


@pytest.fixture
async def system(make_config: MakeConfig) -> AsyncIterator[CentralSystem]:
    config = make_config(tariff=TARIFF, ocpp={"max_connector_id": 4})
    async with CentralSystem(config) as running:
        await running.chargers.register("CP-1", name="Harbour car park")
        yield running


@pytest.fixture
async def driver(system: CentralSystem) -> AsyncIterator[Driver]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield Driver(system, http)


async def _call(driver: Driver, method: str, body: Any = None) -> tuple[int, Any]:
    async with driver.http.request(
        method, f"{driver.base}/api/chargers/CP-1", json=body, headers=API_HEADERS
    ) as response:
        return response.status, await response.json() if response.status != 204 else None


async def _page(driver: Driver, path: str) -> str:
    async with driver.http.get(f"{driver.base}{path}") as page:
        html = await page.text()
        assert page.status == 200, html
        return html


async def test_set_shown_and_removed(driver: Driver) -> None:
    status, shown = await _call(driver, "GET")
    assert status == 200 and shown["connectorDetails"] == {}
    status, changed = await _call(
        driver,
        "PATCH",
        {
            "connectors": {
                "1": {"plugType": "Type2", "maxPowerKw": 22},
                "2": {"plugType": "GB/T", "maxPowerKw": 7.4},
            }
        },
    )
    assert status == 200, changed
    expected = {
        "1": {"plugType": "Type2", "maxPowerKw": 22},
        "2": {"plugType": "GB/T", "maxPowerKw": 7.4},
    }
    assert changed["connectorDetails"] == expected
    status, shown = await _call(driver, "GET")
    assert shown["connectorDetails"] == expected
    # A connector not named keeps its details; one given null loses them.
    status, changed = await _call(
        driver, "PATCH", {"connectors": {"2": None, "3": {"plugType": "CCS2", "maxPowerKw": 150}}}
    )
    assert status == 200, changed
    assert changed["connectorDetails"] == {
        "1": {"plugType": "Type2", "maxPowerKw": 22},
        "3": {"plugType": "CCS2", "maxPowerKw": 150},
    }
    # Other changes leave them alone.
    status, changed = await _call(driver, "PATCH", {"name": "Quay 3"})
    assert status == 200 and set(changed["connectorDetails"]) == {"1", "3"}
    status, changed = await _call(driver, "PATCH", {"connectors": {"1": None, "3": None}})
    assert status == 200 and changed["connectorDetails"] == {}


@pytest.mark.parametrize(
    ("connectors", "field"),
    [
        ({"1": {"plugType": "Type3", "maxPowerKw": 22}}, "connectors.1.plugType"),
        ({"1": {"plugType": "Type2", "maxPowerKw": 0}}, "connectors.1.maxPowerKw"),
        ({"1": {"plugType": "Type2", "maxPowerKw": -7}}, "connectors.1.maxPowerKw"),
        ({"1": {"plugType": "Type2", "maxPowerKw": 1000.5}}, "connectors.1.maxPowerKw"),
        ({"1": {"plugType": "Type2", "maxPowerKw": "fast"}}, "connectors.1.maxPowerKw"),
        ({"1": {"plugType": "Type2"}}, "connectors.1.maxPowerKw"),
        ({"1": {"maxPowerKw": 22}}, "connectors.1.plugType"),
        ({"0": {"plugType": "Type2", "maxPowerKw": 22}}, "connectors.0"),
        ({"5": {"plugType": "Type2", "maxPowerKw": 22}}, "connectors.5"),
        ({"01": {"plugType": "Type2", "maxPowerKw": 22}}, "connectors.01"),
        ({"one": {"plugType": "Type2", "maxPowerKw": 22}}, "connectors.one"),
        (None, "connectors"),
    ],
)
async def test_bad_values_are_refused_naming_the_field(
    driver: Driver, connectors: Any, field: str
) -> None:
    status, before = await _call(
        driver, "PATCH", {"connectors": {"1": {"plugType": "CHAdeMO", "maxPowerKw": 50}}}
    )
    assert status == 200, before
    # The valid parts of a refused request change nothing either.
    body = {"name": "Renamed", "connectors": connectors}
    if isinstance(connectors, dict):
        connectors["2"] = {"plugType": "Type1", "maxPowerKw": 3.7}
    status, refused = await _call(driver, "PATCH", body)
    assert status == 400, refused
    assert refused["error"]["field"] == field, refused
    status, after = await _call(driver, "GET")
    assert after == before


async def test_the_start_page_shows_the_scanned_connector(
    system: CentralSystem, driver: Driver
) -> None:
    status, changed = await _call(
        driver,
        "PATCH",
        {
            "connectors": {
                "1": {"plugType": "Type2", "maxPowerKw": 22},
                "2": {"plugType": "CCS2", "maxPowerKw": 7.4},
            }
        },
    )
    assert status == 200, changed
    sim = charger(system)
    await sim.start()
    try:
        english = await _page(driver, "/c/CP-1/1?lang=en")
        german = await _page(driver, "/c/CP-1/1?lang=de")
        english_2 = await _page(driver, "/c/CP-1/2?lang=en")
        german_2 = await _page(driver, "/c/CP-1/2?lang=de")
        status, _ = await _call(driver, "PATCH", {"connectors": {"1": None}})
        assert status == 200
        unknown = await _page(driver, "/c/CP-1/1?lang=en")
    finally:
        await sim.stop()
    assert 'id="plug">Type 2 · up to 22 kW<' in english, english
    assert 'id="plug">Typ 2 · bis 22 kW<' in german, german
    assert 'id="plug">CCS Combo 2 · up to 7.4 kW<' in english_2, english_2
    assert 'id="plug">CCS Combo 2 · bis 7,4 kW<' in german_2, german_2
    # Not known: nothing is made up.
    assert 'id="plug"' not in unknown and " kW<" not in unknown, unknown


async def test_deleting_the_charger_leaves_nothing_behind(
    system: CentralSystem, driver: Driver
) -> None:
    status, changed = await _call(
        driver, "PATCH", {"connectors": {"1": {"plugType": "Schuko", "maxPowerKw": 3.7}}}
    )
    assert status == 200 and changed["connectorDetails"], changed
    status, _ = await _call(driver, "DELETE")
    assert status == 204
    assert await system.chargers.get("CP-1") is None
    # Registered again under the same id, it starts without the old charger's details.
    await system.chargers.register("CP-1")
    status, shown = await _call(driver, "GET")
    assert status == 200 and shown["connectorDetails"] == {}, shown
    info = await system.payment_service.charger_info("CP-1")
    assert info is not None and info["connectors"] == {}


def test_the_command_line_enters_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str, capsys: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CSMS_DATABASE_PATH", str(tmp_path / "cli.db"))
    monkeypatch.setenv("CSMS_DATABASE_URL", database_url)
    for bad in ("1:Type3:22", "0:Type2:22", "101:Type2:22", "1:Type2:0", "1:Type2", "x:Type2:22"):
        assert main(["chargers", "add", "CP-9", "--connector", bad]) == 2
        assert f"--connector {bad!r}" in capsys.readouterr().err
    # A refused command registered nothing.
    assert main(["chargers", "list"]) == 0 and "CP-9" not in capsys.readouterr().out
    argv = ["chargers", "add", "CP-9", "--connector", "1:Type2:22", "--connector", "2:GB/T:7.4"]
    assert main(argv) == 0
    assert main(["chargers", "add", "CP-9", "--connector", "2:CCS2:150"]) == 0
    assert capsys.readouterr().out == "CP-9: registered\nCP-9: already registered\n"

    async def stored() -> dict[int, dict[str, Any]]:
        db = await open_database(load_config(env=dict(os.environ)))
        try:
            row = await ChargerStore(db).get("CP-9")
        finally:
            await db.close()
        assert row is not None
        return connector_details(row)

    assert asyncio.run(stored()) == {
        1: {"plugType": "Type2", "maxPowerKw": 22},
        2: {"plugType": "CCS2", "maxPowerKw": 150},
    }
