"""Reports per day and per charger: real paid sessions through the sandbox, the figures held
against what the sandbox captured and refunded; ranges checked; CSV neutralised; the pure
grouping by the operator's days and by currency."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from csms.api.reports import ChargerCsv, chargers_csv, csv_text
from csms.app import CentralSystem
from payments.reports import ChargerRow, DateRange, Money, PaidSession, Transaction, daily
from payments.statements_store import stop_moment
from tests.conftest import API_HEADERS, MakeConfig
from tests.payflow import TARIFF, Driver, finished_session, refund_and_wait
from tests.waiting import eventually

# Far from UTC, so that the operator's day and UTC's differ by most of a day.
ZONE = ZoneInfo("Pacific/Kiritimati")


@pytest.fixture
async def system(make_config: MakeConfig) -> AsyncIterator[CentralSystem]:
    config = make_config(
        tariff=TARIFF,
        payments={"minimum_energy_wh": 100},
        operator={"time_zone": "Pacific/Kiritimati"},
    )
    async with CentralSystem(config) as running:
        yield running


async def _get(system: CentralSystem, path: str, **params: str) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession(headers=API_HEADERS) as http:
        url = f"http://127.0.0.1:{system.http.port}{path}"
        async with http.get(url, params=params) as response:
            await response.read()
            return response


async def _json(system: CentralSystem, path: str, **params: str) -> dict:
    async with aiohttp.ClientSession(headers=API_HEADERS) as http:
        url = f"http://127.0.0.1:{system.http.port}{path}"
        async with http.get(url, params=params) as response:
            assert response.status == 200, await response.text()
            return await response.json()


async def _csv(system: CentralSystem, path: str, **params: str) -> list[dict[str, str]]:
    async with aiohttp.ClientSession(headers=API_HEADERS) as http:
        url = f"http://127.0.0.1:{system.http.port}{path}"
        async with http.get(url, params=params) as response:
            assert response.status == 200, await response.text()
            assert response.content_type == "text/csv"
            return list(csv.DictReader(io.StringIO(await response.text())))


async def _stop_day(system: CentralSystem, reservation_id: str) -> date:
    """The operator's day the session's charge stopped on."""
    r = await system.payment_service.get(reservation_id)
    assert r is not None
    return stop_moment(r).astimezone(ZONE).date()


async def test_figures_are_the_sandbox_captures_and_refunds(
    system: CentralSystem, driver: Driver, sim
) -> None:
    first, _ = await finished_session(driver, sim)

    async def free() -> bool:  # unplugged after the first session
        return system.payment_service.connector_status(sim.charge_point_id, 1) == "Available"

    await eventually(free, timeout=15)
    second, _ = await finished_session(driver, sim)
    await refund_and_wait(driver, first, {"amount": 40, "reason": "slow charger"})
    assert system.sandbox is not None
    ledger = system.sandbox.ledger().values()
    captured = sum(entry["amount_captured"] for entry in ledger)
    refunded = sum(entry["amount_refunded"] for entry in ledger)
    assert captured > 2 * 50 and refunded == 40  # two session fees and some energy
    billed = 0
    for rid in (first, second):
        billed += (await driver.status(rid))["energyWh"]
    assert billed > 0

    today = await _stop_day(system, second)
    if await _stop_day(system, first) != today:  # seconds apart: almost never
        pytest.skip("the two sessions stopped either side of the operator's midnight")
    since, until = (today - timedelta(days=1)).isoformat(), (today + timedelta(days=1)).isoformat()
    report = await _json(system, "/api/reports/daily", **{"from": since, "to": until})
    assert report["timeZone"] == "Pacific/Kiritimati"
    assert (report["from"], report["to"], report["chargerId"]) == (since, until, None)
    assert [day["date"] for day in report["days"]] == [
        (today + timedelta(days=n)).isoformat() for n in (-1, 0, 1)
    ]
    expected = {
        "currency": "eur",
        "sessions": 2,
        "energyWh": billed,
        "captured": captured,
        "refunded": 40,
        "revenue": captured - 40,
    }
    assert report["totals"] == [expected]
    assert sum(day["transactions"] for day in report["days"]) == 2
    assert sum(day["transactionEnergyWh"] for day in report["days"]) >= billed
    busy = [day for day in report["days"] if day["currencies"]]
    assert [day["date"] for day in busy] == [today.isoformat()], report
    (money,) = busy[0]["currencies"]
    assert money == expected

    # A day without sessions is a row of zeros.
    quiet = [day for day in report["days"] if day["date"] != today.isoformat()]
    assert all(d["transactions"] == 0 and d["currencies"] == [] for d in quiet)

    # The same for one charger; another charger has nothing.
    own = await _json(
        system, "/api/reports/daily", **{"from": since, "to": until, "chargerId": "CP-1"}
    )
    assert own["totals"] == [expected]
    other = await _json(
        system, "/api/reports/daily", **{"from": since, "to": until, "chargerId": "CP-9"}
    )
    assert other["totals"] == [] and len(other["days"]) == 3

    chargers = await _json(system, "/api/reports/chargers", **{"from": since, "to": until})
    (row,) = chargers["chargers"]
    assert row["chargerId"] == "CP-1" and row["transactions"] == 2
    assert row["currencies"] == [expected] and chargers["totals"] == [expected]

    # CSV, both ways of asking.
    rows = await _csv(system, "/api/reports/daily.csv", **{"from": since, "to": until})
    same = await _csv(system, "/api/reports/daily", **{"from": since, "to": until, "format": "csv"})
    assert rows == same and len(rows) == 3
    (line,) = [r for r in rows if r["date"] == today.isoformat()]
    assert line["currency"] == "eur" and int(line["captured"]) == captured
    assert int(line["refunded"]) == 40 and int(line["revenue"]) == captured - 40
    assert int(line["energyWh"]) == billed and line["energyKwh"] == f"{billed / 1000:.3f}"
    assert line["transactions"] == "2"
    assert all(r["currency"] == "" and r["captured"] == "0" for r in rows if r is not line)
    by_charger = await _csv(system, "/api/reports/chargers.csv", **{"from": since, "to": until})
    assert [(r["chargerId"], int(r["revenue"])) for r in by_charger] == [("CP-1", captured - 40)]

    # A day before the sessions counts nothing.
    before = (today - timedelta(days=1)).isoformat()
    empty = await _json(system, "/api/reports/chargers", **{"from": before, "to": before})
    assert empty["chargers"] == [] and empty["totals"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-11-02", "to": "2026-11-01"}, "to"),
        ({"from": "2025-01-01", "to": "2026-01-02"}, "to"),  # 367 days
        ({"from": "2026-02-30", "to": "2026-03-01"}, "from"),
        ({"from": "2026-11-01", "to": "1.12.2026"}, "to"),
        ({"to": "2026-11-01"}, "from"),
        ({"from": "2026-11-01", "to": "2026-11-02", "format": "xls"}, "format"),
    ],
)
async def test_a_bad_range_is_refused_naming_the_field(
    system: CentralSystem, params: dict[str, str], field: str
) -> None:
    for path in ("/api/reports/daily", "/api/reports/chargers.csv"):
        async with aiohttp.ClientSession(headers=API_HEADERS) as http:
            url = f"http://127.0.0.1:{system.http.port}{path}"
            async with http.get(url, params=params) as response:
                assert response.status == 400, path
                assert (await response.json())["error"]["field"] == field


async def test_a_year_is_allowed(system: CentralSystem) -> None:
    report = await _json(system, "/api/reports/daily", **{"from": "2024-01-01", "to": "2024-12-31"})
    assert len(report["days"]) == 366 and report["totals"] == []


def test_csv_cells_are_never_formulas() -> None:
    row = ChargerRow("=HYPERLINK(1)", "+Name", 1, 500, (Money("eur", 1, 500, 250, 0),))
    text = csv_text(ChargerCsv, chargers_csv([row]))
    (line,) = list(csv.DictReader(io.StringIO(text)))
    assert line["chargerId"] == "'=HYPERLINK(1)" and line["name"] == "'+Name"
    assert line["revenue"] == "250"


def test_days_are_the_operators_and_currencies_never_add_up() -> None:
    dates = DateRange.parse("2026-11-01", "2026-11-02")
    # 2026-11-01 10:30 UTC is 2026-11-02 00:30 in Kiritimati (UTC+14).
    late = datetime(2026, 11, 1, 10, 30, tzinfo=UTC)
    early = datetime(2026, 10, 31, 10, 30, tzinfo=UTC)  # 2026-11-01 00:30 there
    sessions = [
        PaidSession("a", "CP-1", late, "eur", 1000, 500, 100),
        PaidSession("b", "CP-1", late, "chf", 2000, 700, 0),
        PaidSession("c", "CP-2", early, "eur", 3000, 900, 0),
        PaidSession("d", "CP-2", late + timedelta(days=1), "eur", 1, 1, 0),  # after the range
    ]
    rows = daily(dates, ZONE, sessions, [Transaction("CP-9", late, 1234)])
    assert [row.day for row in rows] == [date(2026, 11, 1), date(2026, 11, 2)]
    assert rows[0].money == (Money("eur", 1, 3000, 900, 0),) and rows[0].transactions == 0
    assert rows[1].money == (Money("chf", 1, 2000, 700, 0), Money("eur", 1, 1000, 500, 100))
    assert rows[1].transactions == 1 and rows[1].transaction_energy_wh == 1234
    assert rows[1].money[1].revenue == 400


async def test_the_reports_are_for_finance(system: CentralSystem) -> None:
    paths = [
        "/api/reports/daily",
        "/api/reports/daily.csv",
        "/api/reports/chargers",
        "/api/reports/chargers.csv",
    ]
    query = {"from": "2026-11-01", "to": "2026-11-02"}
    for role in ("viewer", "support", "finance"):
        await system.users.add(f"{role}-user", role, "a long enough password")
        key = await system.api_keys.create(f"{role}-key", f"{role}-user")
        for path in paths:
            async with aiohttp.ClientSession(headers={"X-API-Key": key}) as http:
                url = f"http://127.0.0.1:{system.http.port}{path}"
                async with http.get(url, params=query) as response:
                    if role == "finance":
                        assert response.status == 200, path
                    else:
                        assert response.status == 403, (role, path)
                        error = (await response.json())["error"]
                        assert error["message"] == "needs the role finance"
