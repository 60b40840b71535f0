"""The event orders real drivers, chargers and Stripe produce, one behaviour per test, on
the pure state machine (the end-to-end versions are in test_money_paths_e2e.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from payments import reservation as machine
from payments.outbox import idempotency_key
from payments.pricing import Tariff, hold_amount
from payments.reservation import (
    ChargerFacts,
    Decision,
    Event,
    Hold,
    Policy,
    Reservation,
    State,
    transition,
)

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
TARIFF = Tariff("eur", price_per_kwh=40, session_fee=100, max_energy_wh=20_000)
POLICY = Policy()
ONLINE = ChargerFacts(online=True, connector_status="Preparing")
OFFLINE = ChargerFacts(online=False, connector_status=None)


def pending() -> Reservation:
    return Reservation(
        id="res_1",
        charger_id="CP-1",
        connector_id=1,
        id_tag="PAYTEST",
        tariff=TARIFF,
        hold_amount=hold_amount(TARIFF),
        created_at=T0,
        payment_deadline=T0 + timedelta(minutes=34),
        checkout_session_id="cs_1",
    )


def step(
    r: Reservation, event: Event, facts: ChargerFacts = ONLINE, at: timedelta = timedelta(0)
) -> Decision:
    return transition(r, event, facts, T0 + at, POLICY)


def charging() -> Reservation:
    r = step(pending(), machine.PaymentAuthorised("pi_1", hold_amount(TARIFF))).reservation
    assert r.state is State.START_REQUESTED
    r = step(r, machine.TransactionStarted(7, 10_000, T0)).reservation
    assert r.state is State.CHARGING
    return r


def in_review() -> Reservation:
    """Charged 5 kWh; Stripe refused the capture for a reason no rule settles."""
    r = step(charging(), machine.MeterReading(15_000, 11_000, T0 + timedelta(minutes=30)))
    r = step(r.reservation, machine.TransactionStopped(15_000, T0 + timedelta(minutes=30)))
    assert r.reservation.hold is Hold.CAPTURING
    r = step(r.reservation, machine.CaptureRejected("card issuer says no"))
    assert r.reservation.state is State.NEEDS_REVIEW and r.reservation.hold is Hold.HELD
    return r.reservation


# -- a late payment


@pytest.mark.parametrize("end", [machine.Cancel("driver"), machine.Tick()])
def test_a_payment_after_the_reservation_ended_is_released_and_the_end_kept(end: Event) -> None:
    at = timedelta(hours=1) if isinstance(end, machine.Tick) else timedelta(0)
    ended = step(pending(), end, at=at).reservation
    assert ended.state in (State.CANCELLED, State.EXPIRED)
    # Closing the Checkout Session found it paid: that is a payment signal.
    verify = step(ended, machine.PaymentCompleted(), at=at)
    assert verify.effects == (machine.VerifyPayment("cs_1"),)
    paid = step(verify.reservation, machine.PaymentAuthorised("pi_1", 1), at=at)
    assert paid.effects == (machine.ReleaseHold("pi_1"),)
    assert paid.reservation.hold is Hold.RELEASING
    assert paid.reservation.state is ended.state  # not turned into PaymentFailed


@pytest.mark.parametrize("end", [machine.Cancel("driver"), machine.Tick()])
def test_a_checkout_created_after_the_reservation_ended_is_closed_at_once(end: Event) -> None:
    """The Checkout Session was being created when the reservation ended (the driver
    cancelled, the payment window closed): it must not stay open for the driver to pay."""
    at = timedelta(hours=1) if isinstance(end, machine.Tick) else timedelta(0)
    ended = step(replace(pending(), checkout_session_id=None), end, at=at).reservation
    assert ended.state in (State.CANCELLED, State.EXPIRED)
    created = step(ended, machine.CheckoutCreated("cs_late", "https://pay.example/cs"), at=at)
    assert created.effects == (machine.ExpireCheckout("cs_late"),)
    assert created.reservation.state is ended.state


def test_a_reservation_whose_link_never_reached_a_driver_frees_its_connector_soon() -> None:
    """The server died between making the reservation and handing the Checkout link over:
    nobody can pay it, so it expires after the hand-over window, not the whole one."""
    made = replace(pending(), payment_deadline=T0 + POLICY.handover_window)
    before = step(made, machine.Tick(), at=POLICY.handover_window - timedelta(seconds=1))
    assert before.reservation.state is State.PENDING_PAYMENT
    after = step(made, machine.Tick(), at=POLICY.handover_window)
    assert after.reservation.state is State.EXPIRED
    assert machine.ExpireCheckout("cs_1") in after.effects  # closed before anyone pays on it


def test_a_handed_over_link_has_the_whole_payment_window() -> None:
    made = replace(pending(), payment_deadline=T0 + POLICY.handover_window)
    whole = T0 + timedelta(minutes=34)
    handed = step(made, machine.CheckoutHandedOver(whole)).reservation
    assert handed.payment_deadline == whole
    assert step(handed, machine.Tick(), at=timedelta(minutes=20)).reservation.state is (
        State.PENDING_PAYMENT
    )
    # Late (the window had closed already): nothing changes.
    expired = step(made, machine.Tick(), at=timedelta(minutes=3)).reservation
    late = step(expired, machine.CheckoutHandedOver(whole), at=timedelta(minutes=3))
    assert late.reservation == expired and late.effects == ()


# -- payment signals during a verification


def test_a_payment_signal_during_a_verification_is_not_lost() -> None:
    verifying = step(pending(), machine.PaymentCompleted()).reservation
    assert verifying.verifying
    # The payment and its webhooks land while the look-up is under way.
    again = step(verifying, machine.PaymentCompleted())
    assert again.effects == ()
    # The look-up answers from before the payment: not paid yet. It must look again.
    answer = step(
        again.reservation, machine.PaymentNotAuthorised("pi_1", "requires_payment_method")
    )
    assert answer.effects == (machine.VerifyPayment("cs_1"),)
    paid = step(answer.reservation, machine.PaymentAuthorised("pi_1", hold_amount(TARIFF)))
    assert paid.reservation.state is State.START_REQUESTED


def test_without_a_signal_meanwhile_one_verification_is_enough() -> None:
    verifying = step(pending(), machine.PaymentCompleted()).reservation
    answer = step(verifying, machine.PaymentNotAuthorised(None, "requires_payment_method"))
    assert answer.effects == ()
    assert answer.reservation.state is State.PENDING_PAYMENT


# -- a start after the reservation let go


@pytest.mark.parametrize(
    "ending",
    [
        [machine.Cancel("operator")],
        [machine.RemoteStartAnswered(accepted=False)],
        [machine.Tick()],  # the start window closes
    ],
)
def test_a_transaction_started_after_a_release_is_stopped(ending: list[Event]) -> None:
    r = step(pending(), machine.PaymentAuthorised("pi_1", hold_amount(TARIFF))).reservation
    for event in ending:
        r = step(r, event, at=timedelta(minutes=10)).reservation
    assert r.state in machine.TERMINAL
    started = step(r, machine.TransactionStarted(99, 0, T0), at=timedelta(minutes=11))
    assert machine.RemoteStop(99, "CP-1") in started.effects
    assert started.reservation.stray_transaction_id == 99
    assert started.reservation.state is r.state
    # The same StartTransaction again: one stop is enough.
    again = step(started.reservation, machine.TransactionStarted(99, 0, T0))
    assert again.effects == ()


def test_the_tag_used_on_another_charger_is_stopped_there() -> None:
    r = charging()
    stray = step(r, machine.StrayTransaction("CP-2", 41))
    assert stray.effects == (machine.RemoteStop(41, "CP-2"),)
    assert stray.reservation.state is State.CHARGING  # its own charge goes on


def test_the_same_transaction_started_twice_is_not_stray() -> None:
    r = charging()
    assert step(r, machine.TransactionStarted(7, 10_000, T0)).effects == ()


# -- stop while offline


def test_a_stop_that_found_the_charger_offline_is_sent_when_it_is_back() -> None:
    r = step(charging(), machine.StopRequested("driver"), OFFLINE)
    assert r.effects == (machine.RemoteStop(7),)
    r = step(r.reservation, machine.RemoteStopUndelivered(), OFFLINE)
    assert r.reservation.stop_undelivered
    still_offline = step(r.reservation, machine.ChargerChanged(), OFFLINE, timedelta(seconds=5))
    assert still_offline.effects == ()
    back = step(still_offline.reservation, machine.ChargerChanged(), ONLINE, timedelta(seconds=8))
    assert back.effects == (machine.RemoteStop(7),)
    assert not back.reservation.stop_undelivered
    # Delivered this time: a status change later sends nothing more.
    answered = step(back.reservation, machine.RemoteStopAnswered(accepted=True))
    assert step(answered.reservation, machine.ChargerChanged()).effects == ()


# -- capture refusals, classified


def _settling() -> Reservation:
    r = step(charging(), machine.TransactionStopped(15_000, T0 + timedelta(minutes=30)))
    assert r.effects == (machine.Capture("pi_1", 300),)
    return r.reservation


def test_a_capture_below_the_minimum_releases_the_hold() -> None:
    r = step(_settling(), machine.CaptureRejected("too small", machine.BELOW_MINIMUM))
    assert r.effects == (machine.ReleaseHold("pi_1"),)
    done = step(r.reservation, machine.HoldReleased()).reservation
    assert done.state is State.COMPLETED and done.hold is Hold.RELEASED


def test_a_capture_after_the_authorisation_expired_marks_the_hold_lost() -> None:
    r = step(_settling(), machine.CaptureRejected("canceled", machine.AUTHORISATION_EXPIRED))
    assert r.effects == ()
    assert r.reservation.hold is Hold.LOST
    assert r.reservation.state is State.NEEDS_REVIEW


def test_other_capture_refusals_go_to_review_with_the_hold_kept() -> None:
    r = in_review()
    assert r.failure_reason == "card issuer says no"


# -- reviews that resolve


def test_a_review_capture_retry_uses_a_new_idempotency_key() -> None:
    r = in_review()
    assert machine.review_refusal(r, machine.RetryCapture(), POLICY, T0) is None
    retried = step(r, machine.RetryCapture())
    (capture,) = retried.effects
    assert capture == machine.Capture("pi_1", 300, attempt=2)
    first = idempotency_key(r.id, machine.Capture("pi_1", 300), 1)
    assert idempotency_key(r.id, capture, 1) != first
    assert retried.reservation.state is State.SETTLING
    done = step(retried.reservation, machine.Captured(300)).reservation
    assert done.state is State.COMPLETED and done.captured_amount == 300


def test_a_review_capture_is_at_most_the_price_and_at_least_the_minimum() -> None:
    r = in_review()
    assert "at most 300" in (machine.review_refusal(r, machine.RetryCapture(301), POLICY, T0) or "")
    low = machine.review_refusal(r, machine.RetryCapture(10), POLICY, T0)
    assert low is not None and "minimum" in low
    assert step(r, machine.RetryCapture(301)).effects == ()  # refused: nothing happens


def test_a_review_release_lets_the_hold_go_and_resolves() -> None:
    r = step(in_review(), machine.ReleaseInReview())
    assert r.effects == (machine.ReleaseHold("pi_1"),)
    assert r.reservation.state is State.RESOLVED
    done = step(r.reservation, machine.HoldReleased()).reservation
    assert done.hold is Hold.RELEASED and done.state is State.RESOLVED


def test_a_refused_release_in_review_goes_back_to_review() -> None:
    r = step(in_review(), machine.ReleaseInReview()).reservation
    back = step(r, machine.ReleaseRejected("no")).reservation
    assert back.state is State.NEEDS_REVIEW and back.hold is Hold.HELD
    retried = step(back, machine.ReleaseInReview())
    assert retried.effects == (machine.ReleaseHold("pi_1", attempt=2),)


def test_resolving_needs_the_hold_gone_and_a_note() -> None:
    r = in_review()
    refusal = machine.review_refusal(r, machine.Resolve("checked"), POLICY, T0)
    assert refusal is not None and "still on the card" in refusal
    lost = step(r, machine.HoldCancelledElsewhere("expired")).reservation
    assert lost.hold is Hold.LOST
    assert machine.review_refusal(lost, machine.Resolve("  "), POLICY, T0) == "a note is required"
    done = step(lost, machine.Resolve("driver paid cash")).reservation
    assert done.state is State.RESOLVED and done.resolution == "driver paid cash"


def test_review_actions_apply_only_to_reviews() -> None:
    refusal = machine.review_refusal(charging(), machine.ReleaseInReview(), POLICY, T0)
    assert refusal == "the payment is Charging, not in review"


# -- what reconciliation finds at Stripe


def test_a_capture_made_in_the_dashboard_is_taken_and_reviewed() -> None:
    r = step(in_review(), machine.CapturedElsewhere(250)).reservation
    assert r.hold is Hold.CAPTURED and r.captured_amount == 250
    assert r.state is State.NEEDS_REVIEW


def test_stripe_confirming_our_own_capture_completes_it() -> None:
    r = step(_settling(), machine.CapturedElsewhere(300)).reservation
    assert r.state is State.COMPLETED and r.captured_amount == 300


def test_a_refund_made_in_the_dashboard_counts() -> None:
    done = step(_settling(), machine.Captured(300)).reservation
    r = step(done, machine.RefundedElsewhere("re_1", 100)).reservation
    assert r.refunded_amount == 100 and r.refundable == 200
    assert r.state is State.COMPLETED


def test_disagreement_goes_to_review_only_once_ended() -> None:
    assert step(charging(), machine.ReviewNeeded("x")).reservation.state is State.CHARGING
    done = step(_settling(), machine.Captured(300)).reservation
    r = step(done, machine.ReviewNeeded("amounts disagree")).reservation
    assert r.state is State.NEEDS_REVIEW and r.failure_reason == "amounts disagree"


def test_stored_rows_without_the_new_fields_still_decode() -> None:
    from payments.codec import decode_reservation, encode_reservation

    r = charging()
    text = encode_reservation(r)
    import orjson

    data = orjson.loads(text)
    for name in ("verify_again", "stop_undelivered", "capture_attempts", "stray_transaction_id"):
        del data[name]
    assert decode_reservation(orjson.dumps(data).decode()) == replace(r)


# -- a RemoteStart carried out again after a crash


def test_a_refusal_of_a_start_that_may_have_been_sent_before_is_not_final() -> None:
    r = step(pending(), machine.PaymentAuthorised("pi_1", hold_amount(TARIFF))).reservation
    assert r.state is State.START_REQUESTED and r.start_attempts == 1
    # The process died while sending it; sent again, the charger (already starting with
    # the first one) refuses: StartTransaction, or the start window, decides.
    again = step(r, machine.RemoteStartAnswered(accepted=False, repeated=True))
    assert again.reservation.state is State.START_REQUESTED and again.effects == ()
    started = step(again.reservation, machine.TransactionStarted(7, 0, T0))
    assert started.reservation.state is State.CHARGING
    # The one and only request, refused: final.
    refused = step(r, machine.RemoteStartAnswered(accepted=False))
    assert refused.reservation.state is State.START_REJECTED


def test_a_review_capture_in_a_three_decimal_currency_is_an_amount_stripe_takes() -> None:
    kwd = Tariff("kwd", price_per_kwh=123, session_fee=500, max_energy_wh=20_000)
    r = replace(in_review(), tariff=kwd, hold_amount=hold_amount(kwd), breakdown=None)
    r = replace(r, energy_wh=5_001)  # 5.001 kWh at 0.123 KWD: 0.615 + 0.500 = 1.115 KWD
    assert machine.retry_amount(r, machine.RetryCapture(), T0) == 1110  # down to 0.010 steps
    refusal = machine.review_refusal(r, machine.RetryCapture(1105), POLICY, T0)
    assert refusal is not None and "steps of 10" in refusal
    assert machine.review_refusal(r, machine.RetryCapture(1100), POLICY, T0) is None
