"""Stripe's fee on a session's charge: read from the capture's answer (the charge's balance
transaction), kept on the reservation, blank wherever Stripe did not say it: the pure parts,
and end to end a capture made in the dashboard, whose fee stays blank in the statement. The
fee of our own captures in a statement end to end is in tests/test_statements.py."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import orjson

from csms.app import CentralSystem
from payments import reservation as machine
from payments.codec import decode_reservation, encode_reservation
from payments.reservation import Hold, State
from payments.statements_render import csv_rows, to_html
from payments.statements_store import stop_moment
from payments.stripe_gateway import charge_fee
from payments.web.operator import Operator
from simulators.chargepoint import SimulatedCharger
from tests.payflow import Driver
from tests.test_money_paths import _settling, step
from tests.test_statements import _charge_fee, session, statement_of
from tests.test_transfers_e2e import _call, _owner_at_site, _reservation


def _intent(charge: object) -> SimpleNamespace:
    return SimpleNamespace(id="pi_1", latest_charge=charge)


def _charge(txn: object, currency: str = "eur") -> SimpleNamespace:
    return SimpleNamespace(id="ch_1", currency=currency, balance_transaction=txn)


def test_the_fee_is_read_from_the_expanded_balance_transaction_only() -> None:
    txn = SimpleNamespace(id="txn_1", fee=55, currency="eur")
    assert charge_fee(_intent(_charge(txn))) == 55
    # Not expanded, not there yet (Stripe may leave it null right after capture), or in
    # another (settlement) currency: not known, never guessed.
    assert charge_fee(_intent("ch_1")) is None
    assert charge_fee(_intent(None)) is None
    assert charge_fee(_intent(_charge(None))) is None
    assert charge_fee(_intent(_charge("txn_1"))) is None
    assert charge_fee(_intent(_charge(txn, currency="usd"))) is None
    assert charge_fee(_intent(_charge(SimpleNamespace(fee=-1, currency="eur")))) is None


def test_a_confirmed_capture_keeps_the_fee_it_was_told() -> None:
    told = step(_settling(), machine.Captured(300, 34)).reservation
    assert (told.hold, told.state, told.stripe_fee) == (Hold.CAPTURED, State.COMPLETED, 34)
    untold = step(_settling(), machine.Captured(300)).reservation
    assert untold.hold is Hold.CAPTURED and untold.stripe_fee is None


def test_a_capture_made_elsewhere_has_no_known_fee() -> None:
    told = step(_settling(), machine.Captured(300, 34)).reservation
    # Stripe says the payment was captured for another amount (the dashboard): the fee
    # read for ours does not describe it.
    other = step(told, machine.CapturedElsewhere(250)).reservation
    assert other.captured_amount == 250 and other.stripe_fee is None
    # The same capture confirmed again: nothing changes.
    same = step(told, machine.CapturedElsewhere(300)).reservation
    assert same.stripe_fee == 34


def test_rows_stored_before_the_fee_was_kept_decode_as_unknown() -> None:
    r = step(_settling(), machine.Captured(300, 34)).reservation
    stored = orjson.loads(encode_reservation(r))
    assert stored["stripe_fee"] == 34
    assert decode_reservation(encode_reservation(r)) == r
    del stored["stripe_fee"]
    assert decode_reservation(orjson.dumps(stored).decode()).stripe_fee is None


def test_a_statement_shows_known_fees_and_leaves_unknown_ones_blank() -> None:
    known = replace(session(1, 2000), stripe_fee=55)
    unknown = session(2, 3000)  # captured elsewhere, or before fees were kept
    s = statement_of([known, unknown])
    (t,) = s.totals
    assert t.stripe_fee == 55  # the known ones add up; the unknown one is not 0
    rows = {row["reference"]: row for row in csv_rows(s) if row["kind"] == "session"}
    fees = [rows[x.reservation_id]["stripe_fee"] for x in (known, unknown)]
    assert fees == [55, ""]
    page = to_html(s, Operator(name="Volt GmbH"), "en")
    assert page.count('class="amount stripe-fee"></td>') == 1
    assert 'class="amount stripe-fee">€0.55</td>' in page
    nothing = statement_of([unknown])
    assert nothing.totals[0].stripe_fee is None
    assert [r["stripe_fee"] for r in csv_rows(nothing) if r["kind"] == "total"] == [""]


# -- end to end: a capture made in the dashboard, found by reconciliation


async def test_a_capture_made_elsewhere_leaves_the_fee_blank_in_the_statement(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger
) -> None:
    await _owner_at_site(driver, sim, onboard=True)
    reservation_id = await driver.start_charging(sim)
    r = await _reservation(system, reservation_id)
    assert system.sandbox is not None and r.payment_intent_id is not None
    system.sandbox.pause_webhooks()  # csms hears nothing of the capture
    system.sandbox.capture_payment_intent(r.payment_intent_id, 180)
    status, summary = await driver.post("/api/reconcile")
    assert status == 200 and summary["counts"] == {"captured_elsewhere": 1}, summary
    await driver.wait_for_state(reservation_id, "NeedsReview")
    r = await _reservation(system, reservation_id)
    assert (r.hold, r.captured_amount, r.stripe_fee) == (Hold.CAPTURED, 180, None)
    assert await _charge_fee(system, r) > 0  # Stripe has one; this capture's answer never came

    month = stop_moment(r).strftime("%Y-%m")  # the operator's zone: UTC by default
    status, statement = await _call(driver, "GET", f"/api/owners/owner-1/statements/{month}")
    assert status == 200, statement
    (line,) = [x for x in statement["sessions"] if x["reservationId"] == reservation_id]
    assert line["captured"] == 180 and line["stripeFee"] is None
    assert statement["totals"][0]["stripeFee"] is None
