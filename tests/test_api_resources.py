"""Chargers, tariffs and transactions over the management API, through real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from csms.app import CentralSystem
from csms.cli import main
from csms.store.transactions import StartRequest
from payments.pricing import Tariff
from tests import payflow
from tests.conftest import API_HEADERS, MakeConfig
from tests.waiting import eventually

TRANSACTION_COLUMNS = [
    "id", "chargerId", "connectorId", "idTag", "idTagStatus", "meterStartWh", "meterStopWh",
    "energyWh", "powerW", "startedAt", "stoppedAt", "stopReason",
]  # fmt: skip


class Client:
    """The management API as an operator's script calls it."""

    def __init__(self, system: CentralSystem, http: aiohttp.ClientSession) -> None:
        self.base = f"http://127.0.0.1:{system.http.port}"
        self.http = http

    async def call(
        self, method: str, path: str, body: Any = None, **params: Any
    ) -> tuple[int, Any]:
        async with self.http.request(
            method, self.base + path, json=body, params=params, headers=API_HEADERS
        ) as response:
            if response.status == 204:
                assert await response.read() == b""
                return 204, None
            assert response.content_type == "application/json", await response.text()
            return response.status, await response.json()

    async def ok(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        status, answer = await self.call(method, path, body, **params)
        assert status in (200, 201, 204), (status, answer)
        return answer

    async def every_item(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """All pages' items, following nextCursor; checks that no page overflows its limit."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = await self.ok("GET", path, **params, **({"cursor": cursor} if cursor else {}))
            assert len(page["items"]) <= int(params.get("limit", 50))
            items += page["items"]
            cursor = page["nextCursor"]
            if cursor is None:
                return items

    async def csv(self, **params: Any) -> str:
        async with self.http.get(
            f"{self.base}/api/transactions.csv", params=params, headers=API_HEADERS
        ) as response:
            assert response.status == 200, await response.text()
            assert response.content_type == "text/csv"
            assert response.headers["Content-Disposition"].startswith("attachment;")
            return await response.text()


@pytest.fixture
async def api(csms: CentralSystem) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as http:
        yield Client(csms, http)


def refusal(answer: dict[str, Any]) -> tuple[str, str | None]:
    return answer["error"]["code"], answer["error"].get("field")


# -- chargers


async def test_charger_register_read_change_remove(api: Client) -> None:
    created = await api.ok(
        "POST", "/api/chargers", {"id": "CP-A", "name": "Lot A", "location": "Level -1"}
    )
    assert created["id"] == "CP-A"
    assert (created["name"], created["location"]) == ("Lot A", "Level -1")
    assert created["registrationStatus"] == "Accepted"
    assert created["online"] is False
    assert created["connectors"] == created["openTransactions"] == []
    assert await api.ok("GET", "/api/chargers/CP-A") == created

    status, answer = await api.call("POST", "/api/chargers", {"id": "CP-A"})
    assert (status, refusal(answer)) == (409, ("exists", "id"))

    changed = await api.ok(
        "PATCH", "/api/chargers/CP-A", {"name": "Lot B", "registrationStatus": "Pending"}
    )
    assert (changed["name"], changed["location"]) == ("Lot B", "Level -1")
    assert changed["registrationStatus"] == "Pending"
    cleared = await api.ok("PATCH", "/api/chargers/CP-A", {"location": None})
    assert (cleared["name"], cleared["location"]) == ("Lot B", None)
    assert cleared["registrationStatus"] == "Pending"

    assert await api.ok("DELETE", "/api/chargers/CP-A") is None
    for method in ("GET", "PATCH", "DELETE"):
        status, answer = await api.call(
            method, "/api/chargers/CP-A", {} if method == "PATCH" else None
        )
        assert (status, refusal(answer)) == (404, ("not_found", None))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "bad  id"}, "id"),  # single inner spaces only
        ({"id": " CP-1"}, "id"),
        ({"id": "CP%2D1"}, "id"),  # would arrive decoded, as another id
        ({"id": "CP/1"}, "id"),
        ({"id": "X" * 49}, "id"),
        ({"id": ""}, "id"),
        ({"id": "Über"}, "id"),
        ({"id": "CP-1", "registrationStatus": "Maybe"}, "registrationStatus"),
        ({"id": "CP-1", "password": "secret"}, "password"),
        ({"name": "no id"}, "id"),
    ],
)
async def test_charger_registration_refused(
    api: Client, csms: CentralSystem, body: dict[str, Any], field: str
) -> None:
    status, answer = await api.call("POST", "/api/chargers", body)
    assert (status, refusal(answer)) == (400, ("invalid", field))
    assert await csms.chargers.list() == []


async def test_charger_change_refused(api: Client, csms: CentralSystem) -> None:
    await api.ok("POST", "/api/chargers", {"id": "CP-A", "name": "Lot A"})
    for body, field in (
        ({"name": "x", "tariffId": "nope"}, "tariffId"),
        ({"registrationStatus": "accepted"}, "registrationStatus"),
        ({"password": "secret"}, "password"),
        ({"id": "CP-B"}, "id"),
    ):
        status, answer = await api.call("PATCH", "/api/chargers/CP-A", body)
        assert status == 400 and answer["error"]["field"] == field, answer
    # Nothing of a refused change was applied.
    assert (await api.ok("GET", "/api/chargers/CP-A"))["name"] == "Lot A"


async def test_charger_list_pages_and_filters(api: Client, csms: CentralSystem) -> None:
    statuses = ["Accepted", "Pending", "Rejected", "Accepted", "Accepted", "Pending", "Accepted"]
    for n, registration in enumerate(statuses):
        await api.ok("POST", "/api/chargers", {"id": f"CP-{n}", "registrationStatus": registration})
    # A flag left behind (say, by a crash) does not make a charger online: the registry does.
    await csms.db.execute("UPDATE chargers SET online = 1 WHERE id = 'CP-0'")
    sim = payflow.charger(csms, "CP-3")
    await sim.start()
    try:
        listed = await api.every_item("/api/chargers", limit=3)
        assert [c["id"] for c in listed] == [f"CP-{n}" for n in range(7)]
        assert [c["registrationStatus"] for c in listed] == statuses
        assert [c["online"] for c in listed] == [n == 3 for n in range(7)]
        pending = await api.every_item("/api/chargers", limit=1, registrationStatus="Pending")
        assert [c["id"] for c in pending] == ["CP-1", "CP-5"]
        online = await api.every_item("/api/chargers", limit=2, online="true")
        assert [c["id"] for c in online] == ["CP-3"]
        assert [c["connectorId"] for c in online[0]["connectors"]] == [0, 1, 2]
        offline = await api.every_item("/api/chargers", limit=2, online="false")
        assert [c["id"] for c in offline] == ["CP-0", "CP-1", "CP-2", "CP-4", "CP-5", "CP-6"]
        accepted_online = await api.every_item(
            "/api/chargers", online="true", registrationStatus="Accepted"
        )
        assert [c["id"] for c in accepted_online] == ["CP-3"]
    finally:
        await sim.stop()
    for params, field in (
        ({"online": "sometimes"}, "online"),
        ({"registrationStatus": "Unknown"}, "registrationStatus"),
        ({"limit": "0"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"colour": "red"}, "colour"),
    ):
        status, answer = await api.call("GET", "/api/chargers", **params)
        assert (status, refusal(answer)) == (400, ("invalid", field)), params


async def test_live_state_of_a_simulated_charger(api: Client, csms: CentralSystem) -> None:
    await csms.id_tags.put("TAG-1")
    sim = payflow.charger(csms, "CP-1")
    await sim.start()
    try:
        charger = await api.ok("GET", "/api/chargers/CP-1")
        assert charger["online"] is True
        assert (charger["vendor"], charger["model"]) == ("Simulator", "SIM-22")
        assert (charger["serialNumber"], charger["firmwareVersion"]) == ("SIM-0001", "1.0.0")
        assert charger["lastBootAt"] is not None and charger["connectedAt"] is not None
        assert [(c["connectorId"], c["status"], c["errorCode"]) for c in charger["connectors"]] == [
            (0, "Available", "NoError"),
            (1, "Available", "NoError"),
            (2, "Available", "NoError"),
        ]

        await sim.fault(2, "GroundFailure")
        transaction_id = await sim.start_transaction(1, "TAG-1")

        async def connectors_reported() -> bool:
            connectors = (await api.ok("GET", "/api/chargers/CP-1"))["connectors"]
            return [(c["status"], c["errorCode"]) for c in connectors[1:]] == [
                ("Charging", "NoError"),
                ("Faulted", "GroundFailure"),
            ]

        await eventually(connectors_reported)
        charger = await api.ok("GET", "/api/chargers/CP-1")
        assert [t["id"] for t in charger["openTransactions"]] == [transaction_id]
        assert charger["openTransactions"][0]["idTag"] == "TAG-1"

        # Removing it is refused while it charges; nothing is removed.
        status, answer = await api.call("DELETE", "/api/chargers/CP-1")
        assert (status, refusal(answer)) == (409, ("charging", None))
        await sim.stop_transaction(1)
        await eventually(lambda: _no_open_transactions(api, "CP-1"))
        # Now it has charged: its transactions are billing records and keep it.
        status, answer = await api.call("DELETE", "/api/chargers/CP-1")
        assert (status, refusal(answer)) == (409, ("has_transactions", None))
    finally:
        await sim.stop()

    async def offline() -> bool:
        return (await api.ok("GET", "/api/chargers/CP-1"))["online"] is False

    await eventually(offline)
    listed = await api.every_item("/api/chargers", online="false")
    assert [c["id"] for c in listed] == ["CP-1"]


async def _no_open_transactions(api: Client, charger_id: str) -> bool:
    return (await api.ok("GET", f"/api/chargers/{charger_id}"))["openTransactions"] == []


async def test_removing_a_connected_charger_disconnects_it(
    api: Client, csms: CentralSystem
) -> None:
    sim = payflow.charger(csms, "CP-9")
    await sim.start()
    try:
        # A driver's paid session holds the charger until it ends.
        driver = payflow.Driver(csms, api.http)
        status, payment = await driver.create("CP-9", 1)
        assert (status, payment["status"]) == (200, "Redirect")
        status, answer = await api.call("DELETE", "/api/chargers/CP-9")
        assert (status, refusal(answer)) == (409, ("paid_session", None))
        status, _ = await driver.post(f"/api/payments/{payment['reservationId']}/cancel")
        assert status == 200

        first_session = csms.sessions.get("CP-9")
        assert first_session is not None
        assert await api.ok("DELETE", "/api/chargers/CP-9") is None

        async def replaced() -> bool:
            # The old connection is closed (the simulator reconnects; the test config then
            # registers unknown chargers again, as a fresh charger).
            return csms.sessions.get("CP-9") is not first_session

        await eventually(replaced)
    finally:
        await sim.stop()


# -- tariffs

EUR_TARIFF = {
    "currency": "EUR",
    "pricePerKwh": 35,
    "sessionFee": 50,
    "maxEnergyWh": 50_000,
    "timeFeePerMinute": 2,
    "timeFeeFreeMinutes": 60,
    "maxDurationMinutes": 240,
}


async def test_tariff_create_read_replace(api: Client, csms: CentralSystem) -> None:
    created = await api.ok("POST", "/api/tariffs", {"id": "fast", **EUR_TARIFF})
    # 50 session fee + 50 kWh at 35 + (240 - 60) minutes at 2.
    assert created["holdAmount"] == 50 + 1750 + 360
    assert created["currency"] == "eur"
    assert created["idleFeePerMinute"] == 0 and created["idleFeeMaxMinutes"] is None
    assert await api.ok("GET", "/api/tariffs/fast") == created
    assert (await csms.tariffs.all())["fast"] == Tariff(
        currency="eur",
        price_per_kwh=35,
        session_fee=50,
        max_energy_wh=50_000,
        time_fee_per_minute=2,
        time_fee_free_minutes=60,
        max_duration_minutes=240,
    )

    status, answer = await api.call("POST", "/api/tariffs", {"id": "fast", **EUR_TARIFF})
    assert (status, refusal(answer)) == (409, ("exists", "id"))

    replaced = await api.ok("PUT", "/api/tariffs/fast", {"currency": "jpy", "sessionFee": 300})
    assert replaced["holdAmount"] == 300 and replaced["pricePerKwh"] == 0
    assert replaced["currency"] == "jpy"
    assert await api.ok("GET", "/api/tariffs/fast") == replaced

    for method, body in (("GET", None), ("PUT", EUR_TARIFF)):
        status, answer = await api.call(method, "/api/tariffs/nope", body)
        assert (status, refusal(answer)) == (404, ("not_found", None))
    status, answer = await api.call("PUT", "/api/tariffs/fast", {"id": "fast", **EUR_TARIFF})
    assert (status, refusal(answer)) == (400, ("invalid", "id"))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"maxEnergyWh": None}, "maxEnergyWh"),  # a price per kWh with no cap on energy
        ({"maxDurationMinutes": None}, "timeFeeMaxMinutes"),  # an uncapped time fee
        ({"idleFeePerMinute": 10}, "idleFeeMaxMinutes"),
        ({"currency": "EURO"}, "currency"),
        ({"sessionFee": -1}, "sessionFee"),
        ({"pricePerKwh": 0.5}, "pricePerKwh"),  # minor units are whole
        ({"maxEnergyWh": 0}, "maxEnergyWh"),
        ({"price": 1}, "price"),
        ({"id": "two words"}, "id"),
        ({"id": "../up"}, "id"),
    ],
)
async def test_tariff_refused_naming_the_field(
    api: Client, csms: CentralSystem, change: dict[str, Any], field: str
) -> None:
    status, answer = await api.call("POST", "/api/tariffs", {"id": "t", **EUR_TARIFF, **change})
    assert (status, refusal(answer)) == (400, ("invalid", field))
    assert await csms.tariffs.all() == {}


async def test_tariff_list_pages(api: Client) -> None:
    names = ["a", "b", "c", "d", "e"]
    for name in reversed(names):
        await api.ok("POST", "/api/tariffs", {"id": name, "currency": "eur", "sessionFee": 50})
    listed = await api.every_item("/api/tariffs", limit=2)
    assert [t["id"] for t in listed] == names
    assert {t["holdAmount"] for t in listed} == {50}


async def test_tariff_assignments(api: Client, csms: CentralSystem) -> None:
    for charger_id in ("CP-A", "CP-B"):
        await api.ok("POST", "/api/chargers", {"id": charger_id})
    await api.ok("POST", "/api/tariffs", {"id": "fast", **EUR_TARIFF})
    await api.ok("POST", "/api/tariffs", {"id": "slow", "currency": "eur", "sessionFee": 100})

    assert await api.ok("PUT", "/api/tariffs/fast/assignments", {"chargerId": "CP-A"}) is None
    for connector_id in (2, 1):
        body = {"chargerId": "CP-B", "connectorId": connector_id}
        assert await api.ok("PUT", "/api/tariffs/fast/assignments", body) is None
    assert (
        await api.ok(
            "PUT", "/api/tariffs/slow/assignments", {"chargerId": "CP-A", "connectorId": 2}
        )
        is None
    )

    fast = await api.every_item("/api/tariffs/fast/assignments", limit=1)
    assert fast == [
        {"chargerId": "CP-A", "connectorId": 0},
        {"chargerId": "CP-B", "connectorId": 1},
        {"chargerId": "CP-B", "connectorId": 2},
    ]
    # What a driver would pay: a connector's own tariff first, then the charger's.
    assert (await csms.payment_service.tariff_for("CP-A", 1)).session_fee == 50
    assert (await csms.payment_service.tariff_for("CP-A", 2)).session_fee == 100
    charger = await api.ok("GET", "/api/chargers/CP-A")
    assert charger["tariffAssignments"] == [
        {"connectorId": 0, "tariffId": "fast"},
        {"connectorId": 2, "tariffId": "slow"},
    ]

    # The charger's own tariff through PATCH: replaced, then back to the default.
    changed = await api.ok("PATCH", "/api/chargers/CP-A", {"tariffId": "slow"})
    assert changed["tariffAssignments"][0] == {"connectorId": 0, "tariffId": "slow"}
    assert (await csms.payment_service.tariff_for("CP-A", 1)).session_fee == 100
    changed = await api.ok("PATCH", "/api/chargers/CP-A", {"tariffId": None})
    assert changed["tariffAssignments"] == [{"connectorId": 2, "tariffId": "slow"}]
    assert await csms.tariffs.for_connector("CP-A", 1) is None  # the default applies

    status, answer = await api.call("PUT", "/api/tariffs/fast/assignments", {"chargerId": "CP-X"})
    assert (status, refusal(answer)) == (400, ("not_found", "chargerId"))
    status, answer = await api.call(
        "PUT", "/api/tariffs/fast/assignments", {"chargerId": "CP-A", "connectorId": -1}
    )
    assert (status, refusal(answer)) == (400, ("invalid", "connectorId"))
    for method, body in (("PUT", {"chargerId": "CP-A"}), ("GET", None)):
        status, answer = await api.call(method, "/api/tariffs/nope/assignments", body)
        assert (status, refusal(answer)) == (404, ("not_found", None))

    # Removing a charger removes its assignments: a new charger of that id starts afresh.
    assert await api.ok("DELETE", "/api/chargers/CP-B") is None
    assert await api.every_item("/api/tariffs/fast/assignments") == []


# -- transactions


@dataclass(frozen=True)
class Seeded:
    charger_id: str
    connector_id: int
    id_tag: str
    started_at: str
    meter_start_wh: int
    meter_stop_wh: int | None  # None: still open


SEEDED = [
    Seeded("CP-A", 1, "TAG-1", "2026-01-01T08:00:00.000Z", 1_000, 8_500),
    Seeded("CP-A", 2, "TAG-2", "2026-01-02T08:00:00.000Z", 2_000, 2_000),
    Seeded("CP-B", 1, "TAG-1", "2026-01-03T08:00:00.000Z", 0, 11_000),
    Seeded("CP-A", 1, 'TAG,"3"', "2026-01-04T08:00:00.000Z", 8_500, 9_000),
    Seeded("CP-B", 2, "TAG-2", "2026-01-05T08:00:00.000Z", 500, None),
    Seeded("CP-A", 1, "TAG-1", "2026-01-06T08:00:00.000Z", 9_000, 12_000),
    Seeded("CP-B", 1, "TAG-3", "2026-01-07T08:00:00.000Z", 11_000, None),
]


async def seed(system: CentralSystem) -> list[int]:
    """SEEDED as the charger messages' handlers store them; their ids, in order."""
    for charger_id in ("CP-A", "CP-B"):
        await system.chargers.register(charger_id)
    ids = []
    for s in SEEDED:
        started = await system.transactions.start(
            StartRequest(s.charger_id, s.connector_id, s.id_tag, s.meter_start_wh, s.started_at),
            "Accepted",
            reject_concurrent=False,
        )
        if s.meter_stop_wh is not None:
            await system.transactions.stop(
                s.charger_id,
                started.transaction_id,
                meter_stop_wh=s.meter_stop_wh,
                stopped_at=s.started_at.replace("T08", "T09"),
                reason="Local",
                id_tag=None,
                samples=[],
            )
        ids.append(started.transaction_id)
    return ids


def newest_first(ids: list[int], keep: Any = lambda s: True) -> list[int]:
    return [i for i, s in sorted(zip(ids, SEEDED, strict=True), reverse=True) if keep(s)]


async def test_transactions_page_newest_first_with_filters(
    api: Client, csms: CentralSystem
) -> None:
    ids = await seed(csms)
    listed = await api.every_item("/api/transactions", limit=3)
    assert [t["id"] for t in listed] == newest_first(ids)
    first = next(t for t in listed if t["id"] == ids[0])
    assert first == {
        "id": ids[0],
        "chargerId": "CP-A",
        "connectorId": 1,
        "idTag": "TAG-1",
        "idTagStatus": "Accepted",
        "meterStartWh": 1_000,
        "meterStopWh": 8_500,
        "energyWh": 7_500,
        "powerW": None,
        "startedAt": "2026-01-01T08:00:00.000Z",
        "stoppedAt": "2026-01-01T09:00:00.000Z",
        "stopReason": "Local",
    }
    still_open = next(t for t in listed if t["id"] == ids[4])
    assert (still_open["meterStopWh"], still_open["energyWh"], still_open["stoppedAt"]) == (
        None,
        0,
        None,
    )

    cases: list[tuple[dict[str, Any], Any]] = [
        ({"chargerId": "CP-A"}, lambda s: s.charger_id == "CP-A"),
        (
            {"chargerId": "CP-B", "connectorId": 1},
            lambda s: (s.charger_id, s.connector_id) == ("CP-B", 1),
        ),
        ({"idTag": "TAG-1"}, lambda s: s.id_tag == "TAG-1"),
        ({"state": "open"}, lambda s: s.meter_stop_wh is None),
        ({"state": "closed"}, lambda s: s.meter_stop_wh is not None),
        (
            {"from": "2026-01-02T08:00:00Z", "to": "2026-01-05T08:00:00Z"},
            lambda s: "2026-01-02T08" <= s.started_at < "2026-01-05T08",
        ),
        (
            # Another zone: 10:00 at +02:00 is 08:00 UTC, so the 3rd is the first included.
            {"from": "2026-01-03T10:00:00+02:00", "chargerId": "CP-B", "state": "closed"},
            lambda s: s.started_at >= "2026-01-03T08" and s.charger_id == "CP-B"
            and s.meter_stop_wh is not None,
        ),
        ({"chargerId": "CP-Z"}, lambda s: False),
    ]  # fmt: skip
    for params, keep in cases:
        found = await api.every_item("/api/transactions", limit=2, **params)
        assert [t["id"] for t in found] == newest_first(ids, keep), params


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-01-01T00:00:00"}, "to"),  # no zone: ambiguous
        ({"state": "running"}, "state"),
        ({"connectorId": "one"}, "connectorId"),
        ({"limit": "501"}, "limit"),
        ({"cursor": "WyJ4Il0="}, "cursor"),  # ["x"]: a cursor, but not one of ours
        ({"chargerid": "CP-A"}, "chargerid"),
    ],
)
async def test_transaction_filters_refused(api: Client, params: dict[str, str], field: str) -> None:
    # The export has no pages: there, limit and cursor are refused as unknown parameters.
    for path in ("/api/transactions", "/api/transactions.csv"):
        status, answer = await api.call("GET", path, **params)
        assert (status, refusal(answer)) == (400, ("invalid", field)), path


async def test_transaction_csv_is_the_listing(api: Client, csms: CentralSystem) -> None:
    ids = await seed(csms)
    for params in ({}, {"chargerId": "CP-A", "state": "closed"}, {"idTag": "nobody"}):
        text = await api.csv(**params)
        rows = list(csv.reader(io.StringIO(text, newline="")))
        assert rows[0] == TRANSACTION_COLUMNS
        listed = await api.every_item("/api/transactions", **params)
        assert rows[1:] == [
            ["" if t[c] is None else str(t[c]) for c in TRANSACTION_COLUMNS] for t in listed
        ]
    # RFC 4180: CRLF line ends, a field with a comma or quote quoted, quotes doubled.
    text = await api.csv(idTag='TAG,"3"')
    assert text.count("\r\n") == 2
    assert f'{ids[3]},CP-A,1,"TAG,""3""",Accepted,' in text


async def test_transaction_with_meter_values(api: Client, csms: CentralSystem) -> None:
    await csms.id_tags.put("TAG-1")
    sim = payflow.charger(csms, "CP-1")
    await sim.start()
    try:
        transaction_id = await sim.start_transaction(2, "TAG-1")
        seen: dict[str, Any] = {}

        async def metered() -> bool:
            seen.update(await api.ok("GET", f"/api/transactions/{transaction_id}"))
            return seen["energyWh"] > 0 and (seen["powerW"] or 0) > 0

        await eventually(metered)
        assert (seen["chargerId"], seen["connectorId"], seen["idTag"]) == ("CP-1", 2, "TAG-1")
        assert seen["stoppedAt"] is None and seen["stopIdTag"] is None
        measurands = {v["measurand"] for v in seen["meterValues"]}
        assert "Energy.Active.Import.Register" in measurands
        assert "Power.Active.Import" in measurands
        energy = [
            v for v in seen["meterValues"] if v["measurand"] == "Energy.Active.Import.Register"
        ]
        assert all(v["unit"] == "Wh" and v["normalised"] == v["value"] for v in energy)
        assert Decimal(energy[-1]["normalised"]) - seen["meterStartWh"] <= seen["energyWh"]

        await sim.stop_transaction(2)

        async def stopped() -> bool:
            seen.update(await api.ok("GET", f"/api/transactions/{transaction_id}"))
            return seen["stoppedAt"] is not None

        await eventually(stopped)
    finally:
        await sim.stop()
    assert seen["stopReason"] == "Local" and seen["powerW"] is None
    assert seen["energyWh"] == seen["meterStopWh"] - seen["meterStartWh"] > 0
    listed = await api.every_item("/api/transactions", chargerId="CP-1")
    assert [t["id"] for t in listed] == [transaction_id]
    assert listed[0]["energyWh"] == seen["energyWh"]


async def test_transaction_ids_that_are_not_ones(api: Client, csms: CentralSystem) -> None:
    ids = await seed(csms)
    for text in ("abc", "1e3", "-1", " 1", "0x1", "99999999999999999999999", str(max(ids) + 1)):
        status, answer = await api.call("GET", f"/api/transactions/{text}")
        assert (status, refusal(answer)) == (404, ("not_found", None)), text
    assert (await api.ok("GET", f"/api/transactions/{ids[0]}"))["meterValues"] == []
    document = await api.ok("GET", "/api/openapi.json")
    operation = document["paths"]["/api/transactions/{transactionId}"]["get"]
    assert operation["parameters"][0]["schema"] == {"type": "integer"}
    assert (
        "text/csv"
        in document["paths"]["/api/transactions.csv"]["get"]["responses"]["200"]["content"]
    )
    assert {"chargers", "tariffs", "transactions"} <= {
        op["tags"][0] for methods in document["paths"].values() for op in methods.values()
    }


async def test_the_key_is_required(api: Client) -> None:
    for path in ("/api/chargers", "/api/tariffs", "/api/transactions", "/api/transactions.csv"):
        async with api.http.get(api.base + path) as response:
            assert response.status == 401


# -- the command line export


def test_cli_export_writes_the_api_csv(
    make_config: MakeConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = make_config()
    filters = {"chargerId": "CP-A", "from": "2026-01-02T00:00:00Z", "state": "closed"}

    async def seeded_and_exported() -> tuple[str, str]:
        async with CentralSystem(config) as system, aiohttp.ClientSession() as http:
            await seed(system)
            client = Client(system, http)
            return await client.csv(**filters), await client.csv()

    api_filtered, api_all = asyncio.run(seeded_and_exported())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CSMS_DATABASE_PATH", config.database.path)
    monkeypatch.setenv("CSMS_DATABASE_URL", config.database.url)

    code = main(
        ["transactions", "export", "--charger", "CP-A", "--from", "2026-01-02T00:00:00Z",
         "--closed"]
    )  # fmt: skip
    out, _ = capsys.readouterr()
    assert code == 0 and out == api_filtered
    assert len(out.splitlines()) == 1 + 3  # the header, the 2nd, 4th and 6th transactions

    output = tmp_path / "all.csv"
    assert main(["transactions", "export", "--output", str(output)]) == 0
    assert output.read_bytes().decode() == api_all
    assert capsys.readouterr().out == ""

    code = main(["transactions", "export", "--to", "soon"])
    assert code == 2 and "--to" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["transactions", "export", "--open", "--closed"])
