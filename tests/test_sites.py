"""Sites: stored (migration 0010), managed over the API (paged, refused naming the field,
kept while chargers belong to them) and from the command line; a charger joins and leaves a
site, and what payments learns of it (ChargerInfo) carries the site and the zone that
applies. On SQLite and PostgreSQL alike (CSMS_TEST_BACKEND)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from csms.api.sites import NewSite, SiteRoutes
from csms.app import CentralSystem
from csms.cli import main
from csms.config import load_config
from csms.config_values import open_database
from csms.ocpp16.control import RemoteControl
from csms.store.chargers import ChargerStore
from csms.store.sites import Site, SiteStore
from httpapi.errors import ApiError
from payments.owners import OwnerStore
from storage.db import Conflict, Database
from tests.conftest import API_HEADERS, MakeConfig

_NOW = datetime(2026, 11, 1, tzinfo=UTC)
HARBOUR = {
    "id": "harbour",
    "name": "Harbour car park",
    "address": ["Kaistraße 7", "20457 Hamburg"],
    "timeZone": "Europe/Berlin",
    "ownerId": "owner-1",
    "split": {"commission_basis_points": 1500, "operator_minimum": 30},
    "supportEmail": "help@harbour.example",
    "supportPhone": "+49 40 555 0100",
    "supportUrl": "https://harbour.example/help",
}


@pytest.fixture
async def system(make_config: MakeConfig) -> AsyncIterator[CentralSystem]:
    async with CentralSystem(make_config()) as running:
        await running.chargers.register("CP-1", name="Bay 1")
        await running.chargers.register("CP-2", name="Bay 2")
        await _add_owner(running.db, "owner-1")
        yield running


async def _add_owner(db: Database, owner_id: str) -> None:
    """An owner registered without its Stripe account (sites only need it to exist)."""
    owners = OwnerStore(db)
    await db.write(
        lambda conn: owners.add(conn, owner_id, "Harbour GmbH", "o@example.com", "DE", _NOW)
    )


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=API_HEADERS) as session:
        yield session


async def _call(
    system: CentralSystem, http: aiohttp.ClientSession, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    url = f"http://127.0.0.1:{system.http.port}{path}"
    async with http.request(method, url, json=body) as response:
        return response.status, await response.json() if response.status != 204 else None


async def test_store_round_trip_and_removal(system: CentralSystem) -> None:
    store = SiteStore(system.db)
    site = Site(
        id="s-1",
        name="Depot",
        time_zone="Asia/Tokyo",
        address="1-1 Chiyoda\nTokyo",
        split={"commission_basis_points": 1000, "fixed_per_kwh": 0, "operator_minimum": 0},
    )
    assert await store.add(site)
    assert not await store.add(Site(id="s-1", name="Other", time_zone="UTC"))
    assert await store.get("s-1") == site
    assert (await store.get("s-1")).address_lines == ["1-1 Chiyoda", "Tokyo"]  # type: ignore[union-attr]
    changed = Site(id="s-1", name="Depot East", time_zone="UTC")
    assert await store.update(changed) and await store.get("s-1") == changed
    assert not await store.update(Site(id="nope", name="x", time_zone="UTC"))

    await system.chargers.set_site("CP-2", "s-1")
    await system.chargers.set_site("CP-1", "s-1")
    assert await store.chargers("s-1") == ["CP-1", "CP-2"]
    kept = await store.delete("s-1")
    assert (kept.found, kept.removed, kept.chargers) == (True, False, ("CP-1", "CP-2"))
    with pytest.raises(Conflict):  # the foreign key: no charger joins a site that is not
        await system.chargers.set_site("CP-1", "nope")
    await system.chargers.set_site("CP-1", None)
    await system.chargers.set_site("CP-2", None)
    assert (await store.delete("s-1")).removed
    assert await store.get("s-1") is None
    assert not (await store.delete("s-1")).found


async def test_api_create_read_change_and_page(
    system: CentralSystem, http: aiohttp.ClientSession
) -> None:
    status, created = await _call(system, http, "POST", "/api/sites", HARBOUR)
    assert status == 201, created
    assert created["address"] == ["Kaistraße 7", "20457 Hamburg"]
    assert created["split"] == {
        "commission_basis_points": 1500,
        "fixed_per_kwh": 0,
        "operator_minimum": 30,
    }
    assert (created["ownerId"], created["chargers"]) == ("owner-1", [])
    status, again = await _call(system, http, "POST", "/api/sites", HARBOUR)
    assert (status, again["error"]["field"]) == (409, "id")

    status, changed = await _call(
        system,
        http,
        "PATCH",
        "/api/sites/harbour",
        {"name": "Harbour P2", "supportPhone": None, "split": None, "address": ["Pier 3"]},
    )
    assert status == 200, changed
    assert (changed["name"], changed["supportPhone"], changed["split"]) == (
        "Harbour P2",
        None,
        None,
    )
    assert changed["address"] == ["Pier 3"]
    assert changed["supportEmail"] == HARBOUR["supportEmail"]  # not named: kept
    assert changed["timeZone"] == "Europe/Berlin"

    for number in range(3):
        body = {"id": f"z-{number}", "name": f"Site {number}", "timeZone": "UTC"}
        assert (await _call(system, http, "POST", "/api/sites", body))[0] == 201
    status, first = await _call(system, http, "GET", "/api/sites?limit=2")
    assert status == 200 and [s["id"] for s in first["items"]] == ["harbour", "z-0"]
    cursor = first["nextCursor"]
    status, rest = await _call(system, http, "GET", f"/api/sites?limit=2&cursor={cursor}")
    assert [s["id"] for s in rest["items"]] == ["z-1", "z-2"] and rest["nextCursor"] is None
    assert (await _call(system, http, "GET", "/api/sites/none"))[0] == 404
    assert (await _call(system, http, "PATCH", "/api/sites/none", {"name": "x"}))[0] == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"timeZone": "Mars/Olympus"}, "timeZone"),
        ({"timeZone": None}, "timeZone"),
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"split": {"commission_basis_points": 12000}}, "split.commission_basis_points"),
        ({"split": {"fixed_per_kwh": -1}}, "split.fixed_per_kwh"),
        ({"split": {"operator_minimum": "30"}}, "split.operator_minimum"),
        ({"split": {"share": 5}}, "split.share"),
        ({"split": {"fixed_per_kwh": 10**30}}, "split.fixed_per_kwh"),
        ({"supportEmail": "not-an-address"}, "supportEmail"),
        ({"supportUrl": "ftp://harbour.example"}, "supportUrl"),
        ({"supportPhone": "call us"}, "supportPhone"),
        ({"ownerId": ""}, "ownerId"),
        ({"timeZone": "localtime"}, "timeZone"),  # the server machine's, not an IANA zone
        ({"address": ["x" * 201]}, "address"),
    ],
)
async def test_bad_values_are_refused_naming_the_field(
    system: CentralSystem, http: aiohttp.ClientSession, change: dict[str, Any], field: str
) -> None:
    assert (await _call(system, http, "POST", "/api/sites", HARBOUR))[0] == 201
    status, refused = await _call(system, http, "PATCH", "/api/sites/harbour", change)
    assert status == 400, refused
    assert refused["error"]["field"] == field
    status, refused = await _call(system, http, "POST", "/api/sites", {**HARBOUR, **change})
    if change.get("name", "") is not None and change.get("timeZone", "") is not None:
        assert (status, refused["error"]["field"]) == (400, field)
    status, kept = await _call(system, http, "GET", "/api/sites/harbour")
    assert kept["name"] == HARBOUR["name"] and kept["split"]["commission_basis_points"] == 1500


async def test_chargers_join_and_leave_and_a_site_with_chargers_stays(
    system: CentralSystem, http: aiohttp.ClientSession
) -> None:
    assert (await _call(system, http, "POST", "/api/sites", HARBOUR))[0] == 201
    status, refused = await _call(
        system, http, "PATCH", "/api/chargers/CP-1", {"siteId": "nope", "name": "Renamed"}
    )
    assert (status, refused["error"]["field"]) == (400, "siteId")
    assert (await _call(system, http, "GET", "/api/chargers/CP-1"))[1]["name"] == "Bay 1"

    for charger_id in ("CP-1", "CP-2"):
        status, joined = await _call(
            system, http, "PATCH", f"/api/chargers/{charger_id}", {"siteId": "harbour"}
        )
        assert (status, joined["siteId"]) == (200, "harbour")
    status, site = await _call(system, http, "GET", "/api/sites/harbour")
    assert site["chargers"] == ["CP-1", "CP-2"]
    status, listed = await _call(system, http, "GET", "/api/chargers?siteId=harbour")
    assert [c["siteId"] for c in listed["items"]] == ["harbour", "harbour"]

    status, refused = await _call(system, http, "DELETE", "/api/sites/harbour")
    assert status == 409 and refused["error"]["code"] == "has_chargers"
    assert "CP-1, CP-2" in refused["error"]["message"]

    status, left = await _call(system, http, "PATCH", "/api/chargers/CP-1", {"siteId": None})
    assert (status, left["siteId"]) == (200, None)
    status, listed = await _call(system, http, "GET", "/api/chargers?siteId=harbour")
    assert [c["id"] for c in listed["items"]] == ["CP-2"]
    assert (await _call(system, http, "PATCH", "/api/chargers/CP-2", {"siteId": None}))[0] == 200
    assert (await _call(system, http, "DELETE", "/api/sites/harbour"))[0] == 204
    assert (await _call(system, http, "GET", "/api/sites/harbour"))[0] == 404
    assert (await _call(system, http, "DELETE", "/api/sites/harbour"))[0] == 404


async def test_owner_is_checked_by_the_lookup_given(system: CentralSystem) -> None:
    async def known(owner_id: str) -> bool:
        return owner_id == "owner-1"

    routes = SiteRoutes(SiteStore(system.db), owner_exists=known)
    site = await routes.create_site(None, NewSite.model_validate(HARBOUR))  # type: ignore[arg-type]
    assert site.owner_id == "owner-1"
    with pytest.raises(ApiError) as refused:
        await routes.create_site(
            None,  # type: ignore[arg-type]
            NewSite.model_validate({**HARBOUR, "id": "other", "ownerId": "owner-2"}),
        )
    assert (refused.value.status, refused.value.field) == (400, "ownerId")
    assert await SiteStore(system.db).get("other") is None


async def test_charger_info_carries_the_site_and_the_zone_that_applies(
    system: CentralSystem,
) -> None:
    control = RemoteControl(
        system.commands, system.view, system.chargers, system.transactions, system.sites
    )
    info = await control.charger_info("CP-1")
    assert info is not None and (info["site"], info["time_zone"]) == (None, None)
    await system.sites.add(
        Site(
            id="tokyo",
            name="Tokyo depot",
            time_zone="Asia/Tokyo",
            address="1-1 Chiyoda\nTokyo",
            owner_id="owner-9",
            split={"commission_basis_points": 1000, "fixed_per_kwh": 5, "operator_minimum": 0},
            support_email="help@tokyo.example",
        )
    )
    await system.chargers.set_site("CP-1", "tokyo")
    info = await control.charger_info("CP-1")
    assert info is not None and info["time_zone"] == "Asia/Tokyo"  # the site's
    assert info["site"] == {
        "id": "tokyo",
        "name": "Tokyo depot",
        "address": "1-1 Chiyoda\nTokyo",
        "time_zone": "Asia/Tokyo",
        "owner_id": "owner-9",
        "split": {"commission_basis_points": 1000, "fixed_per_kwh": 5, "operator_minimum": 0},
        "support_email": "help@tokyo.example",
        "support_phone": None,
        "support_url": None,
    }
    await system.chargers.set_time_zone("CP-1", "Europe/Lisbon")
    info = await control.charger_info("CP-1")
    assert info is not None and info["time_zone"] == "Europe/Lisbon"  # its own comes first


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CSMS_DATABASE_PATH", str(tmp_path / "cli.db"))
    monkeypatch.setenv("CSMS_DATABASE_URL", database_url)
    return tmp_path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def _owner_in_cli_database(owner_id: str) -> None:
    db = await open_database(load_config(None))
    try:
        await _add_owner(db, owner_id)
    finally:
        await db.close()


async def _stored(site_id: str) -> tuple[Site | None, list[str]]:
    db = await open_database(load_config(None))
    try:
        store = SiteStore(db)
        return await store.get(site_id), await store.chargers(site_id)
    finally:
        await db.close()


def test_cli_add_set_show_list_remove(cli: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "sites", "add", "harbour", "--name", "H", "--time-zone", "UTC",
                        "--owner", "owner-1")  # fmt: skip
    assert (code, err) == (2, "csms: --owner: no such owner: owner-1 (csms owners add)\n")
    asyncio.run(_owner_in_cli_database("owner-1"))
    code, out, err = _run(
        capsys, "sites", "add", "harbour", "--name", "Harbour car park",
        "--time-zone", "Europe/Berlin", "--address", "Kaistraße 7", "--address", "20457 Hamburg",
        "--owner", "owner-1", "--commission", "15", "--per-kwh", "0.05",
        "--operator-minimum", "0.30", "--support-email", "help@harbour.example",
    )  # fmt: skip
    assert (code, out, err) == (0, "harbour: registered\n", "")
    assert _run(capsys, "sites", "add", "harbour", "--name", "x", "--time-zone", "UTC")[0] == 1
    code, out, _ = _run(capsys, "chargers", "add", "CP-9", "--site", "harbour")
    assert (code, out) == (0, "CP-9: registered\n")
    code, _, err = _run(capsys, "chargers", "add", "CP-8", "--site", "nowhere")
    assert code == 2 and "--site" in err
    assert _run(capsys, "chargers", "add", "CP-7")[0] == 0
    code, out, _ = _run(capsys, "chargers", "list")  # the site is the last column
    assert (code, out) == (
        0,
        "CP-7\tAccepted\toffline\t-\t-\nCP-9\tAccepted\toffline\t-\tharbour\n",
    )

    site, chargers = asyncio.run(_stored("harbour"))
    assert site is not None and chargers == ["CP-9"]
    assert site.split == {
        "commission_basis_points": 1500,
        "fixed_per_kwh": 5,
        "operator_minimum": 30,
    }
    assert site.address == "Kaistraße 7\n20457 Hamburg"

    code, out, _ = _run(capsys, "sites", "show", "harbour")
    assert code == 0 and "chargers:\tCP-9\n" in out and "time zone:\tEurope/Berlin\n" in out
    # One split option changes that one; '' clears an optional field.
    code, out, _ = _run(capsys, "sites", "set", "harbour", "--per-kwh", "0.10", "--owner", "")
    assert (code, out) == (0, "harbour: changed\n")
    site, _ = asyncio.run(_stored("harbour"))
    assert site is not None and site.owner_id is None
    assert site.split == {
        "commission_basis_points": 1500,
        "fixed_per_kwh": 10,
        "operator_minimum": 30,
    }
    assert _run(capsys, "sites", "list")[1] == "harbour\tHarbour car park\tEurope/Berlin\t-\n"

    code, _, err = _run(capsys, "sites", "remove", "harbour")
    assert code == 1 and "CP-9" in err and "CP-7" not in err
    assert _run(capsys, "sites", "remove", "nope")[0] == 1
    assert _run(capsys, "sites", "show", "nope")[0] == 1


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (("--time-zone", "Mars/Olympus"), "--time-zone"),
        (("--time-zone", "localtime"), "--time-zone"),
        (("--time-zone", ""), "--time-zone"),
        (("--commission", "150"), "--commission"),
        (("--commission", "lots"), "--commission"),
        (("--per-kwh", "0.055"), "--per-kwh"),
        (("--operator-minimum", "-1"), "--operator-minimum"),
        (("--support-email", "nobody"), "--support-email"),
        (("--support-url", "harbour.example"), "--support-url"),
        (("--name", ""), "--name"),
    ],
)
def test_cli_refuses_naming_the_option(
    cli: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], option: str
) -> None:
    assert _run(capsys, "sites", "add", "s", "--name", "S", "--time-zone", "UTC")[0] == 0
    code, _, err = _run(capsys, "sites", "set", "s", *argv)
    assert code == 2 and err.startswith(f"csms: {option}:"), err
    code, _, err = _run(capsys, "sites", "add", "t", "--name", "T", "--time-zone", "UTC", *argv)
    if option not in ("--time-zone", "--name"):
        assert code == 2 and err.startswith(f"csms: {option}:"), err
    code, out, _ = _run(capsys, "sites", "show", "s")
    assert "name:\tS\n" in out and "split:\t-\n" in out


def test_cli_removes_a_site_without_chargers(cli: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "sites", "add", "s", "--name", "S", "--time-zone", "UTC")[0] == 0
    assert _run(capsys, "sites", "remove", "s")[:2] == (0, "s: removed\n")
    assert _run(capsys, "sites", "list")[1] == ""


async def test_charger_store_filters_by_site(system: CentralSystem) -> None:
    await system.sites.add(Site(id="a", name="A", time_zone="UTC"))
    await system.chargers.set_site("CP-2", "a")
    found = await ChargerStore(system.db).find(site_id="a")
    assert [row["id"] for row in found] == ["CP-2"]
