"""Owners' monthly statements: the pure core (the figures add up, or it refuses), and end to
end: two paid sessions at an owner's site, one partly refunded, then the statement over the
API as JSON, CSV and the printable page, and through `csms owners statement`."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import stripe
from hypothesis import given, settings
from hypothesis import strategies as st

from csms.app import CentralSystem
from httpapi.csv_export import neutralise
from payments.reservation_model import Reservation
from payments.split import SplitRule, after_refunds, split
from payments.statements import (
    Month,
    MonthError,
    MovementRow,
    PayoutRow,
    SessionRow,
    StatementDoesNotAddUp,
    build,
)
from payments.statements_render import to_csv, to_html
from payments.transfer_messages import ACCRUED, TRANSFERRED
from payments.web.operator import Operator
from simulators.chargepoint import SimulatedCharger
from tests.conftest import API_HEADERS, MakeConfig
from tests.payflow import TARIFF, Driver, finished_session, refund_and_wait, run_cli
from tests.test_transfers_e2e import RULE, _owner_at_site, _settled
from tests.waiting import eventually

BERLIN = ZoneInfo("Europe/Berlin")
NOVEMBER = Month(2026, 11)
IN_NOVEMBER = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
TWENTY_PERCENT = SplitRule(commission_basis_points=2000)


def session(
    n: int,
    captured: int,
    refunded: int = 0,
    *,
    rule: SplitRule = TWENTY_PERCENT,
    energy_wh: int = 10_000,
    at: datetime = IN_NOVEMBER,
    transferred: bool = True,
) -> SessionRow:
    """A session whose shares are its rule's, transferred (less reversals) or accrued."""
    initial = split(rule, captured, energy_wh)
    now = after_refunds(initial, refunded)
    return SessionRow(
        reservation_id=f"res_{n}",
        stopped_at=at,
        charger_id="CP-1",
        charger_name="Hall 1",
        site_name="Harbour",
        currency="eur",
        energy_wh=energy_wh,
        captured=captured,
        refunded=refunded,
        owner_share=now.owner,
        operator_share=now.operator,
        transferred=initial.owner if transferred else 0,
        reversed=initial.owner - now.owner if transferred else 0,
        transfer_status=TRANSFERRED if transferred else ACCRUED,
        split=rule,
    )


def statement_of(sessions: list[SessionRow], **rows: Any) -> Any:
    return build(
        "owner-1",
        "Harbour GmbH",
        NOVEMBER,
        BERLIN,
        sessions,
        rows.get("movements", []),
        rows.get("payouts", []),
    )


# -- the pure core


def test_months_parse_and_are_bounded_in_the_operators_zone() -> None:
    assert str(Month.parse("2026-11")) == "2026-11"
    for bad in ("2026-13", "2026-1", "26-11", "2026-11.pdf", "", "1969-12", "2026-00", "9999-12"):
        with pytest.raises(MonthError):
            Month.parse(bad)
    start, end = NOVEMBER.bounds(BERLIN)
    assert start == datetime(2026, 10, 31, 23, 0, tzinfo=UTC)  # CET, +1
    assert end == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    start, end = Month(2026, 12).bounds(UTC)
    assert (start, end) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def test_a_session_belongs_to_the_month_its_charge_stopped_in() -> None:
    start, end = NOVEMBER.bounds(BERLIN)
    rows = [
        session(1, 1000, at=start),  # 00:00 on 1 November in Berlin
        session(2, 1000, at=start - timedelta(milliseconds=1)),  # still October there
        session(3, 1000, at=end - timedelta(milliseconds=1)),
        session(4, 1000, at=end),  # December
    ]
    s = statement_of(rows)
    assert [x.reservation_id for x in s.sessions] == ["res_1", "res_3"]
    assert s.totals[0].sessions == 2 and s.totals[0].captured == 2000


def test_an_empty_month_has_no_lines_and_no_totals() -> None:
    s = statement_of([])
    assert (s.sessions, s.movements, s.payouts, s.totals) == ((), (), (), ())
    text = to_csv(s)
    assert text.splitlines()[0].startswith("kind,date,reference")
    assert len(text.splitlines()) == 1
    page = to_html(s, Operator(name="Volt GmbH", address="Kai 1\n20457 Hamburg"), "en")
    assert "Volt GmbH" in page and "20457 Hamburg" in page and "None this month." in page


def test_refunds_take_the_shares_down_and_the_totals_add_up() -> None:
    rows = [session(1, 2000, 500), session(2, 3333), session(3, 1001, 1001)]
    s = statement_of(rows)
    (t,) = s.totals
    assert t.captured == 6334 and t.refunded == 1501 and t.net == 4833
    assert t.owner_share + t.operator_share == t.captured - t.refunded
    first = s.sessions[0]
    assert (first.owner_share, first.operator_share) == (1200, 300)  # 80 % of 1500
    assert first.reversed == 1600 - 1200
    assert s.sessions[2].owner_share == s.sessions[2].operator_share == 0
    assert t.stripe_fee is None  # not recorded: blank, never 0


def test_an_accrued_share_is_owed_but_not_transferred() -> None:
    s = statement_of([session(1, 2500, transferred=False)])
    (x,) = s.sessions
    assert x.transfer_status == ACCRUED and x.owner_share == 2000 and x.transferred == 0
    assert s.totals[0].owner_share == 2000 and s.totals[0].transferred == 0


def test_the_months_movements_and_payouts_are_counted() -> None:
    start, end = NOVEMBER.bounds(BERLIN)
    moves = [
        MovementRow("transfer:a", "res_1", "transfer", 1600, "eur", "succeeded", "tr_1", start),
        MovementRow("reversal:b", "res_1", "reversal", 400, "eur", "succeeded", "trr_1", end),
        MovementRow("transfer:c", "res_2", "transfer", 900, "eur", "failed", None, IN_NOVEMBER),
        MovementRow("reversal:d", "res_1", "reversal", 100, "eur", "succeeded", "trr_2", start),
    ]
    payouts = [
        PayoutRow("po_1", 1500, "eur", "paid", "2026-11-12", IN_NOVEMBER),
        PayoutRow("po_2", 700, "eur", "failed", None, IN_NOVEMBER),
    ]
    s = statement_of([session(1, 2000)], movements=moves, payouts=payouts)
    (t,) = s.totals
    assert [m.id for m in s.movements] == ["reversal:d", "transfer:a", "transfer:c"]
    assert (t.transfers_in_month, t.reversals_in_month, t.payouts_paid) == (1600, 100, 1500)
    assert [p.id for p in s.payouts] == ["po_1", "po_2"]


def test_figures_that_do_not_add_up_are_refused_not_printed() -> None:
    good = session(1, 2000, 500)
    broken = [
        replace(good, owner_share=good.owner_share + 1),
        replace(good, refunded=2001),
        # Adds up, but is not what its split rule gives.
        replace(good, owner_share=good.owner_share - 1, operator_share=good.operator_share + 1),
        replace(good, owner_share=-1, operator_share=1501),
    ]
    for row in broken:
        with pytest.raises(StatementDoesNotAddUp, match="res_1"):
            statement_of([row])


rules = st.builds(
    SplitRule,
    commission_basis_points=st.integers(0, 10000),
    fixed_per_kwh=st.integers(0, 200),
    operator_minimum=st.integers(0, 500),
)


@st.composite
def sessions(draw: st.DrawFn) -> list[SessionRow]:
    rows = []
    for n in range(draw(st.integers(0, 12))):
        captured = draw(st.integers(0, 100_000))
        refunded = draw(st.integers(0, captured))
        rows.append(
            session(
                n,
                captured,
                refunded,
                rule=draw(rules),
                energy_wh=draw(st.integers(0, 80_000)),
                transferred=draw(st.booleans()),
            )
        )
        rows[-1] = replace(rows[-1], currency=draw(st.sampled_from(["eur", "jpy"])))
    return rows


@settings(max_examples=300, deadline=None)
@given(sessions())
def test_shares_always_add_up_per_session_and_in_total(rows: list[SessionRow]) -> None:
    s = statement_of(rows)
    for x in s.sessions:
        assert x.owner_share >= 0 and x.operator_share >= 0
        assert x.owner_share + x.operator_share == x.captured - x.refunded
    currencies = sorted({x.currency for x in rows})
    assert [t.currency for t in s.totals] == currencies  # one total per currency
    table = list(csv.DictReader(io.StringIO(to_csv(s))))
    for t in s.totals:
        mine = [x for x in rows if x.currency == t.currency]
        captured = sum(x.captured for x in mine)
        refunded = sum(x.refunded for x in mine)
        assert (t.captured, t.refunded, t.sessions) == (captured, refunded, len(mine))
        assert t.owner_share + t.operator_share == captured - refunded == t.net
        # The CSV says the same: its total row, and the sessions' rows summed.
        (total,) = [r for r in table if r["kind"] == "total" and r["currency"] == t.currency]
        assert int(total["owner_share"]) + int(total["operator_share"]) == t.net
        lines = [r for r in table if r["kind"] == "session" and r["currency"] == t.currency]
        assert sum(int(r["owner_share"]) for r in lines) == t.owner_share


def test_csv_cells_that_look_like_formulas_are_neutralised() -> None:
    row = session(1, 1000)
    evil = replace(row, charger_name='=HYPERLINK("x")', site_name="@A1")
    table = list(csv.DictReader(io.StringIO(to_csv(statement_of([evil])))))
    assert table[0]["charger"] == '\'=HYPERLINK("x")' and table[0]["site"] == "'@A1"
    assert neutralise(-5) == -5 and neutralise("-5") == "'-5" and neutralise("Hall") == "Hall"


# -- end to end: the real server, the sandbox, a simulated charger at an owner's site


@pytest.fixture
async def system(make_config: MakeConfig) -> AsyncIterator[CentralSystem]:
    config = make_config(
        tariff=TARIFF,
        payments={"minimum_energy_wh": 100},
        operator={"name": "Volt Operator GmbH", "address": "Kai 1\n20457 Hamburg"},
    )
    async with CentralSystem(config) as running:
        yield running


async def _get(driver: Driver, path: str, **headers: str) -> tuple[int, str, str]:
    async with driver.http.get(
        f"{driver.base}{path}", headers={**API_HEADERS, **headers}
    ) as response:
        return response.status, response.content_type, await response.text()


async def _charge_fee(system: CentralSystem, r: Reservation) -> int:
    """Stripe's fee on the reservation's charge, read from the sandbox with the real SDK."""
    assert system.sandbox is not None and r.payment_intent_id is not None
    http = stripe.AIOHTTPClient(timeout=10)
    client = stripe.StripeClient(
        "sk_test_sandbox", base_addresses={"api": system.sandbox.base_url}, http_client=http
    )
    try:
        intent = await client.v1.payment_intents.retrieve_async(
            r.payment_intent_id, {"expand": ["latest_charge.balance_transaction"]}
        )
    finally:
        await http.close_async()
    return int(intent.latest_charge.balance_transaction.fee)


async def test_a_months_statement_over_the_api_matches_the_payments(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger, tmp_path: Path
) -> None:
    await _owner_at_site(driver, sim, onboard=True)
    first, _ = await finished_session(driver, sim)

    async def free() -> bool:  # unplugged after the first session
        return system.payment_service.connector_status(sim.charge_point_id, 1) == "Available"

    await eventually(free, timeout=15)
    second, _ = await finished_session(driver, sim)
    await _settled(system, second, TRANSFERRED)
    before = await _settled(system, first, TRANSFERRED)
    await refund_and_wait(driver, first, {"amount": before.captured_amount // 3, "reason": "x"})
    paid = [await _settled(system, first, TRANSFERRED), await _settled(system, second, TRANSFERRED)]
    assert paid[0].refunded_amount == before.captured_amount // 3 > 0
    stopped = paid[0].stopped_at or paid[0].created_at
    month = stopped.astimezone(UTC).strftime("%Y-%m")  # the operator's zone: UTC by default
    assert all((r.stopped_at or r.created_at).strftime("%Y-%m") == month for r in paid)
    base = f"/api/owners/owner-1/statements/{month}"
    fees = {r.id: await _charge_fee(system, r) for r in paid}

    status, kind, text = await _get(driver, base)
    assert (status, kind) == (200, "application/json"), text
    s = json.loads(text)
    assert (s["ownerId"], s["ownerName"], s["month"]) == ("owner-1", "Harbour GmbH", month)
    lines = {x["reservationId"]: x for x in s["sessions"]}
    assert set(lines) == {first, second}
    for r in paid:
        x = lines[r.id]
        assert (x["captured"], x["refunded"], x["energyWh"]) == (
            r.captured_amount, r.refunded_amount, r.energy_wh
        )  # fmt: skip
        expected = after_refunds(split(SplitRule(**RULE), r.captured_amount, r.energy_wh),
                                 r.refunded_amount)  # fmt: skip
        assert (x["ownerShare"], x["operatorShare"]) == (expected.owner, expected.operator)
        assert x["ownerShare"] + x["operatorShare"] == x["captured"] - x["refunded"]
        assert (x["transferred"], x["reversed"]) == (r.transferred_amount, r.reversed_amount)
        assert x["siteName"] == "Harbour"
        # Stripe's fee, as the sandbox's balance transaction of the charge has it.
        assert x["stripeFee"] == r.stripe_fee == fees[r.id] > 0
    assert lines[first]["reversed"] > 0 and lines[second]["reversed"] == 0
    (t,) = s["totals"]
    assert t["stripeFee"] == sum(fees.values())
    assert t["captured"] == sum(r.captured_amount for r in paid)
    assert t["refunded"] == paid[0].refunded_amount
    assert t["ownerShare"] + t["operatorShare"] == t["captured"] - t["refunded"] == t["net"]
    assert [(m["kind"], m["status"]) for m in s["movements"]].count(("transfer", "succeeded")) == 2
    assert t["transfersInMonth"] == sum(r.transferred_amount for r in paid)
    assert t["reversalsInMonth"] == paid[0].reversed_amount

    status, kind, text = await _get(driver, f"{base}.csv")
    assert (status, kind) == (200, "text/csv"), text
    table = list(csv.DictReader(io.StringIO(text)))
    rows = {row["reference"]: row for row in table if row["kind"] == "session"}
    assert {k: int(v["owner_share"]) for k, v in rows.items()} == {
        k: v["ownerShare"] for k, v in lines.items()
    }
    assert {k: int(v["stripe_fee"]) for k, v in rows.items()} == fees
    (total,) = [row for row in table if row["kind"] == "total"]
    assert int(total["owner_share"]) == t["ownerShare"] and int(total["amount"]) == t["net"]
    assert int(total["stripe_fee"]) == t["stripeFee"]
    assert [row["kind"] for row in table].count("reversal") == 1

    status, kind, page = await _get(driver, f"{base}.html?lang=de")
    assert (status, kind) == (200, "text/html"), page
    assert "Volt Operator GmbH" in page and "20457 Hamburg" in page and "Harbour GmbH" in page
    assert "@media print" in page and "Anteil Eigentümer" in page
    assert f"session-{first}" in page and f"session-{second}" in page
    assert page.count('class="amount stripe-fee"></td>') == 0  # every fee known: none blank

    # A bad month names the field; an unknown owner is not found; the key is required.
    for bad in ("2026-13", "november", "2026-11.pdf", "9999-12", "9999-12.csv"):
        status, _, text = await _get(driver, f"/api/owners/owner-1/statements/{bad}")
        assert status == 400 and json.loads(text)["error"]["field"] == "month", text
    status, _, text = await _get(driver, "/api/owners/owner-1/statements/2026-1.csv")
    assert status == 400 and json.loads(text)["error"]["field"] == "month"
    status, _, text = await _get(driver, f"/api/owners/nobody/statements/{month}.html")
    assert status == 404, text
    status, _, _ = await _get(driver, f"{base}.html", **{"X-API-Key": "wrong"})
    assert status == 401
    # Another month: nothing in it.
    status, _, text = await _get(driver, "/api/owners/owner-1/statements/2001-01")
    assert status == 200 and json.loads(text)["sessions"] == []

    # The CLI: the same statement, as CSV into a file, and as text.
    out = tmp_path / "statement.csv"
    code, printed = await run_cli(
        system, "owners", "statement", "owner-1", "--month", month, "--csv", "-o", str(out)
    )
    assert code == 0, printed
    assert list(csv.DictReader(io.StringIO(out.read_text()))) == table
    code, printed = await run_cli(system, "owners", "statement", "owner-1", "--month", month)
    assert code == 0 and "Harbour GmbH" in printed and first in printed, printed
    code, printed = await run_cli(system, "owners", "statement", "owner-1", "--month", "11-2026")
    assert code == 1 and "month" in printed, printed
    # What would change the request's path or query is a bad month, not another statement.
    for bad in ("2026-11?x=1", "2026-11#", "2026-11/../2026-10", "2026-11.csv"):
        code, printed = await run_cli(system, "owners", "statement", "owner-1", "--month", bad)
        assert code != 0 and "month" in printed and "Harbour GmbH" not in printed, (bad, printed)
