"""The fault runs' counts, on fabricated facts: each count must be able to fire.

A count that never fires proves nothing, so each one is fed a ledger, a set of
reservations and the chargers' transactions with exactly one thing wrong.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench.faults.ledger import Delivery, Payment, Report, tally
from simulators.chargepoint.connector import METER_DOWN_WH, METER_JUMP_WH, Connector, Transaction


def payment(**changes: Any) -> Payment:
    base: dict[str, Any] = {
        "reservation_id": "res_1",
        "state": "Completed",
        "hold": "Captured",
        "captured_amount": 130,
        "payment_intent_id": "pi_1",
        "charger_id": "CP-1",
        "transaction_id": 7,
        "energy_wh": 2000,
    }
    return Payment(**(base | changes))


def intent(**changes: Any) -> dict[str, Any]:
    """A ledger entry as the sandbox reports it (with the request counters it is gaining)."""
    base: dict[str, Any] = {
        "payment_intent": "pi_1",
        "currency": "eur",
        "status": "succeeded",
        "amount_authorized": 850,
        "amount_captured": 130,
        "amount_released": 720,
        "amount_held": 0,
        "capture_requests": 1,
        "captures": 1,
        "cancel_requests": 0,
        "cancels": 0,
        "metadata": {"reservation_id": "res_1"},
        "created": 1_700_000_000,
    }
    return base | changes


def delivery(**changes: Any) -> Delivery:
    base: dict[str, Any] = {
        "charger_id": "CP-1",
        "transaction_id": 7,
        "delivered_wh": 2000.4,
        "reported_wh": 2000,
        "stopped": True,
        "accepted": True,
    }
    return Delivery(**(base | changes))


def run(
    payments: list[Payment] | None = None,
    ledger: dict[str, dict[str, Any]] | None = None,
    delivered: list[Delivery] | None = None,
) -> Report:
    return tally(
        Report("test"),
        [payment()] if payments is None else payments,
        {"pi_1": intent()} if ledger is None else ledger,
        [delivery()] if delivered is None else delivered,
    )


def test_a_clean_session_counts_nothing() -> None:
    report = run()
    assert report.clean, report.notes
    assert (report.sessions, report.completed) == (1, 1)
    assert report.notes == []


def test_a_hold_the_server_never_recorded_is_an_orphan() -> None:
    orphan = intent(
        payment_intent="pi_2",
        status="requires_capture",
        amount_captured=0,
        amount_released=0,
        amount_held=850,
        capture_requests=0,
        captures=0,
        metadata={"reservation_id": "res_1"},
    )
    report = run(ledger={"pi_1": intent(), "pi_2": orphan})
    assert (report.unreleased_holds, report.orphan_holds) == (1, 1)
    assert not report.clean
    assert any("orphan hold pi_2" in note for note in report.notes)


def test_a_hold_left_on_a_recorded_payment_intent_is_unreleased() -> None:
    report = run(
        payments=[payment(state="Cancelled", hold="Released", captured_amount=0)],
        ledger={"pi_1": intent(status="requires_capture", amount_captured=0, amount_held=850)},
    )
    assert (report.unreleased_holds, report.orphan_holds) == (1, 0)
    assert not report.clean


def test_a_refused_second_capture_is_a_double_capture() -> None:
    # Stripe refused the second request, but the server did ask twice.
    report = run(ledger={"pi_1": intent(capture_requests=2, captures=1)})
    assert report.double_captures == 1
    assert not report.clean


def test_double_captures_show_with_the_older_ledger_too() -> None:
    # Before the request counters: only `capture_requests` (successful ones), no metadata.
    entry = intent(capture_requests=2)
    for key in ("captures", "cancel_requests", "cancels", "metadata", "created"):
        del entry[key]
    assert run(ledger={"pi_1": entry}).double_captures == 1
    del entry["capture_requests"]
    assert run(ledger={"pi_1": entry}).clean


def test_energy_the_charger_reported_and_nobody_billed_is_unbilled() -> None:
    # The register went back mid-session and the server billed meterStop - meterStart.
    report = run(payments=[payment(energy_wh=0)])
    assert report.unbilled_wh == 2000
    assert not report.clean
    assert any("billed 0 Wh" in note for note in report.notes)


def test_a_rounding_is_not_unbilled_energy() -> None:
    assert run(payments=[payment(energy_wh=1999)]).clean


def test_energy_past_what_the_meter_reported_is_not_counted() -> None:
    # Delivered but never reported (the charger was powered off): nothing to bill from.
    assert run(delivered=[delivery(stopped=False)], payments=[payment(energy_wh=500)]).clean
    # A meter that jumped reports more than was delivered: the delivered energy counts.
    assert run(delivered=[delivery(reported_wh=METER_JUMP_WH)]).clean


def test_a_transaction_accepted_with_no_paid_session_is_free_charging() -> None:
    stray = delivery(transaction_id=8, delivered_wh=1300.0, reported_wh=1300)
    report = run(delivered=[delivery(), stray])
    assert (report.free_charging, report.unbilled_wh) == (1, 1300)
    assert not report.clean
    # Refused by the server (Invalid): the scenario's own check judges whether it stopped.
    assert run(delivered=[delivery(), delivery(transaction_id=8, accepted=False)]).clean


def test_our_payment_intent_neither_captured_nor_cancelled_is_lost() -> None:
    ledger = {
        "pi_1": intent(),
        "pi_2": intent(
            payment_intent="pi_2",
            status="requires_payment_method",
            amount_authorized=0,
            amount_captured=0,
            amount_released=0,
            capture_requests=0,
            captures=0,
        ),
    }
    report = run(ledger=ledger)
    assert report.lost == 1
    assert not report.clean


def test_a_capture_the_server_does_not_know_is_lost() -> None:
    report = run(ledger={"pi_1": intent(), "pi_9": intent(payment_intent="pi_9")})
    assert report.lost == 1


def test_the_line_shows_every_count_and_a_failed_case_is_not_clean() -> None:
    report = Report("adversarial")
    report.case("late-cancel", True)
    report.case("late-cancel", True, happened=False)
    report.case("meter-reset", False, "res_1: billed 0 Wh")
    assert report.cases == {"late-cancel": [2, 0, 1], "meter-reset": [0, 1, 0]}
    assert report.failed_checks == 1 and not report.clean
    line = report.line()
    for shown in (
        "lost 0",
        "double captures 0",
        "unreleased holds 0",
        "orphan holds 0",
        "unbilled Wh 0",
        "free charging 0",
        "failed checks 1",
        "crashes 0",
    ):
        assert shown in line


# -- what the simulated charger records


def transaction(start: int = 1000) -> Transaction:
    return Transaction(1, "TAG", start, begin=None)  # type: ignore[arg-type]


def test_reported_energy_adds_up_the_rises_of_the_readings() -> None:
    t = transaction(1000)
    for reading in (1300, 1600, 0, 200, 200, 500):  # a reset after 600 Wh
        t.report(reading)
    assert t.reported_wh == 600 + 500


@pytest.mark.parametrize(
    ("kind", "after"),
    [("down", 5000 - METER_DOWN_WH), ("reset", 0), ("jump", 5000 + METER_JUMP_WH)],
)
def test_a_meter_anomaly_moves_the_register_but_not_the_energy(kind: str, after: int) -> None:
    connector = Connector(1, 11_000)
    connector.register_wh = 5000
    connector.begin(transaction(5000), now=0.0)
    connector.accrue(now=0.0, speed=1, capacity_wh=None)
    connector.meter_anomaly(kind)
    assert connector.energy_wh == after
    assert connector.transaction is not None
    assert connector.transaction.anomalies == [kind]
    assert connector.transaction.delivered_wh == 0
    with pytest.raises(ValueError, match="meter anomaly"):
        connector.meter_anomaly("sideways")
