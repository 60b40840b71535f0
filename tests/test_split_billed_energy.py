"""The split's amount per kWh counts the energy the driver paid for: a charge stops a
little past the tariff's maximum energy, and what is past it is neither billed nor counted
for the operator (README: "minor units per billed kWh"); the monthly statement shows and
checks the same energy."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from payments.pricing import Tariff
from payments.reservation_model import Hold, Reservation, session_price
from payments.reservation_transfers import shares
from payments.split import SplitRule
from payments.statements import Month, build
from payments.statements_store import session_row
from tests.test_money_paths import pending

RULE = SplitRule(commission_basis_points=1000, fixed_per_kwh=10)


def _captured_past_the_cap() -> Reservation:
    tariff = Tariff("eur", price_per_kwh=40, max_energy_wh=5000)
    r = replace(pending(), tariff=tariff, energy_wh=5400, owner_id="owner-1", split=RULE)
    stopped = datetime(2026, 11, 12, 10, 0, tzinfo=UTC)
    price = session_price(replace(r, started_at=stopped, stopped_at=stopped), stopped)
    assert price.energy_wh == 5000 and price.total == 200  # 5 kWh billed of 5.4 metered
    return replace(r, hold=Hold.CAPTURED, captured_amount=price.total, stopped_at=stopped)


def test_the_per_kwh_amount_counts_billed_energy_only() -> None:
    r = _captured_past_the_cap()
    now = shares(r)
    # 10 % of 200 plus 10 per billed kWh (5): 70 to the operator, not 74.
    assert (now.owner, now.operator) == (130, 70)


def test_the_statement_shows_the_billed_energy_and_adds_up() -> None:
    r = _captured_past_the_cap()
    now = shares(r)
    r = replace(r, owner_share=now.owner, operator_share=now.operator)
    statement = build(
        "owner-1",
        "Owner",
        Month(2026, 11),
        UTC,
        [session_row(r, None)],
        [],
        [],
    )
    (row,) = statement.sessions
    assert (row.energy_wh, row.owner_share, row.operator_share) == (5000, 130, 70)
