"""The reservation state machine: one paid charging session, from checkout to capture.

Pure: `transition(reservation, event, facts, now, policy)` returns the next reservation
and the effects to carry out (create a checkout, start or stop the charge, capture,
release the hold). The coordinator writes both in one database transaction and a
runner carries the effects out, at least once, with idempotency keys; so every
transition here must accept duplicated, late and reordered events and change nothing
when an event no longer applies.

This module is the machine's public surface and its transition table: which phase each
event goes to. The handlers are by phase, each module adding to the step of the one it
builds on: payments.reservation_step (the step and the primitives of its effects),
payments.reservation_settlement (capture, release, review), payments.reservation_charging
(starting, metering, ending the charge), payments.reservation_payment (checkout and
authorisation), payments.reservation_deadlines (what a Tick does and when one is due); the
record and the prices in payments.reservation_model, the vocabulary in
payments.reservation_messages.

Money rules the machine guarantees, whatever the order of events:
- the hold is captured at most once or released at most once, never both (an operator's
  retry after Stripe refused is a new attempt with its own idempotency key);
- the capture never exceeds the hold, nor the session's price;
- the charge is only started after the PaymentIntent was seen in `requires_capture`;
- every reservation whose card was authorised ends with a capture or a release: a
  payment that arrives after the reservation ended (closing the Checkout Session found it
  paid, a late webhook, reconciliation) is released, and the ended state is kept;
- a payment signal that arrives while a verification is under way makes it verify again
  afterwards: the answer under way may predate the payment;
- a transaction started with the reservation's tag that it cannot own (after a cancel, a
  refused start, a start timeout; or on another connector) is stopped remotely, once;
- a stop that found the charger offline is sent again the moment the charger is back;
- Stripe's refusal of a capture is classified: below the minimum charge, the hold is
  released; the authorisation gone, the hold is lost and a person reviews; anything
  else, a person reviews with the hold kept;
- a review always has a way out: retry the capture (at most the price, within the
  hold), release the hold, or resolve with a note once no hold is live;
- what Stripe (the source of truth) reports through reconciliation is taken as it is:
  a capture or refund made elsewhere, a dispute; a disagreement no rule settles ends in
  review with the reason;
- a site owner's share of a capture is transferred at most once and never more than the
  share; refunds take it back in proportion (payments.reservation_transfers).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from payments import reservation_transfers
from payments.reservation_deadlines import TimedStep, next_deadline
from payments.reservation_messages import (
    AUTHORISATION_EXPIRED,
    BELOW_MINIMUM,
    REFUSED,
    Cancel,
    Capture,
    Captured,
    CapturedElsewhere,
    CaptureRejected,
    ChargerChanged,
    ChargerFacts,
    CheckoutCreated,
    CheckoutExpired,
    CheckoutHandedOver,
    CheckoutUnavailable,
    CreateCheckout,
    DisputeOpened,
    Effect,
    Event,
    ExpireCheckout,
    HoldCancelledElsewhere,
    HoldReleased,
    MeterReading,
    PaymentAuthorised,
    PaymentCompleted,
    PaymentFailed,
    PaymentNotAuthorised,
    Refund,
    RefundedElsewhere,
    RefundFailed,
    RefundRequested,
    RefundSucceeded,
    ReleaseHold,
    ReleaseInReview,
    ReleaseRejected,
    RemoteStart,
    RemoteStartAnswered,
    RemoteStartUnanswered,
    RemoteStartUndelivered,
    RemoteStop,
    RemoteStopAnswered,
    RemoteStopUndelivered,
    Resolve,
    RetryCapture,
    ReviewAction,
    ReviewNeeded,
    StopRequested,
    StrayTransaction,
    Tick,
    TransactionStarted,
    TransactionStopped,
    VerifyPayment,
)
from payments.reservation_model import (
    ACTIVE,
    CANCELLABLE,
    TERMINAL,
    Hold,
    Policy,
    Reservation,
    State,
    minimum_charge,
    retry_amount,
    review_refusal,
    session_price,
)
from payments.reservation_payment import PayingStep

# The machine's public surface: its model, its vocabulary and the transition.
__all__ = [  # noqa: RUF022 - grouped
    "AUTHORISATION_EXPIRED",
    "BELOW_MINIMUM",
    "REFUSED",
    "Cancel",
    "Capture",
    "CaptureRejected",
    "Captured",
    "CapturedElsewhere",
    "ChargerChanged",
    "ChargerFacts",
    "CheckoutCreated",
    "CheckoutExpired",
    "CheckoutHandedOver",
    "CheckoutUnavailable",
    "CreateCheckout",
    "DisputeOpened",
    "Effect",
    "Event",
    "ExpireCheckout",
    "HoldCancelledElsewhere",
    "HoldReleased",
    "MeterReading",
    "PaymentAuthorised",
    "PaymentCompleted",
    "PaymentFailed",
    "PaymentNotAuthorised",
    "Refund",
    "RefundFailed",
    "RefundRequested",
    "RefundSucceeded",
    "RefundedElsewhere",
    "ReleaseHold",
    "ReleaseInReview",
    "ReleaseRejected",
    "RemoteStart",
    "RemoteStartAnswered",
    "RemoteStartUnanswered",
    "RemoteStartUndelivered",
    "RemoteStop",
    "RemoteStopAnswered",
    "RemoteStopUndelivered",
    "Resolve",
    "RetryCapture",
    "ReviewAction",
    "ReviewNeeded",
    "StopRequested",
    "StrayTransaction",
    "Tick",
    "TransactionStarted",
    "TransactionStopped",
    "VerifyPayment",
    "ACTIVE",
    "TERMINAL",
    "Hold",
    "Policy",
    "Reservation",
    "State",
    "minimum_charge",
    "retry_amount",
    "review_refusal",
    "session_price",
    "Decision",
    "transition",
    "free_session",
    "next_deadline",
]


@dataclass(frozen=True)
class Decision:
    reservation: Reservation
    effects: tuple[Effect, ...] = field(default=())


def transition(
    r: Reservation, event: Event, facts: ChargerFacts, now: datetime, policy: Policy
) -> Decision:
    """The next reservation and the effects that must be carried out for it."""
    step = _Step(r, facts, now, policy)
    step.apply(event)
    step.check_deadlines()
    # The owner's share of a captured payment (its rules: payments.reservation_transfers).
    after, owner_effects = reservation_transfers.follow(r, step.r, event)
    return Decision(after, (*step.effects, *owner_effects))


class _Step(PayingStep, TimedStep):
    """One transition being worked out: the table of which phase each event goes to.

    The phases' handlers come from the steps it is made of (payments.reservation_step and
    the modules it names); every event is in exactly one of the three groups below.
    """

    def apply(self, event: Event) -> None:
        for group in (self.payment_event, self.charger_event, self.money_event):
            if group(event):
                return

    def payment_event(self, event: Event) -> bool:
        """The driver's and the checkout's events; whether `event` was one."""
        r = self.r
        match event:
            case CheckoutCreated(session_id, url):
                if r.checkout_session_id is None:
                    self.set(checkout_session_id=session_id, checkout_url=url)
                if r.state in TERMINAL and r.hold is Hold.NONE:
                    # Ended (cancelled, expired) while the checkout was being created: close
                    # it again, before the driver can pay on it.
                    self.effects.append(ExpireCheckout(session_id))
            case CheckoutHandedOver(payment_deadline):
                if r.state is State.PENDING_PAYMENT and payment_deadline > r.payment_deadline:
                    self.set(payment_deadline=payment_deadline)
            case CheckoutUnavailable(reason):
                if r.state is State.PENDING_PAYMENT and r.checkout_session_id is None:
                    self.end(State.CANCELLED, f"payments unavailable: {reason}")
            case PaymentCompleted():
                if r.hold is Hold.NONE and r.checkout_session_id:
                    if r.verifying:
                        # The answer under way may predate this signal: ask again after it.
                        self.set(verify_again=True)
                    else:
                        self.verify()
            case PaymentAuthorised(payment_intent_id, amount_capturable):
                self.authorised(payment_intent_id, amount_capturable)
            case PaymentNotAuthorised(payment_intent_id, status):
                self.not_authorised(payment_intent_id, status)
            case CheckoutExpired():
                self.set(verifying=False, verify_again=False)
                if r.state is State.PENDING_PAYMENT and r.hold is Hold.NONE:
                    self.end(State.EXPIRED, "checkout expired", checkout_open=False)
            case PaymentFailed(reason):
                if r.state is State.PENDING_PAYMENT and r.hold is Hold.NONE:
                    self.end(State.PAYMENT_FAILED, reason)
            case HoldCancelledElsewhere(reason):
                self.hold_lost(reason)
            case Cancel(by):
                if r.state in CANCELLABLE:
                    self.end(State.CANCELLED, f"cancelled by the {by}")
            case StopRequested(by):
                if r.state is State.CHARGING:
                    self.request_stop()
                elif r.state in CANCELLABLE:
                    self.apply(Cancel(by))
            case _:
                return False
        return True

    def charger_event(self, event: Event) -> bool:
        """The charger's events, and the clock's; whether `event` was one."""
        r = self.r
        match event:
            case ChargerChanged(status_at):
                self.charger_changed(status_at)
            case RemoteStartAnswered(accepted, repeated):
                # A repeated request (after a crash or a lost connection) may be refused
                # because the first one got through: then StartTransaction, or the start
                # window, decides. Only a refusal of the one and only request is final.
                first = r.start_attempts <= 1 and not repeated
                if r.state is State.START_REQUESTED and not accepted and first:
                    self.end(State.START_REJECTED, "the charger rejected the remote start")
            case RemoteStartUndelivered():
                if r.state is State.START_REQUESTED:
                    # Nothing reached the charger: try again when it is back.
                    self.set(state=State.AUTHORISED)
                    self.try_start()
            case RemoteStartUnanswered():
                pass  # it may still start: StartTransaction or the start window decides
            case RemoteStopAnswered(accepted):
                self.set(stop_undelivered=False)  # the StopTransaction, or the retry timer, decides
            case RemoteStopUndelivered():
                if r.state is State.STOPPING:
                    self.set(stop_undelivered=True)
            case StrayTransaction(charger_id, transaction_id):
                self.stray(charger_id, transaction_id)
            case TransactionStarted(transaction_id, meter_start_wh, started_at):
                self.transaction_started(transaction_id, meter_start_wh, started_at)
            case MeterReading(energy_register_wh, power_w, at):
                self.meter_reading(energy_register_wh, power_w, at)
            case TransactionStopped(meter_stop_wh, stopped_at, readings):
                self.transaction_stopped(meter_stop_wh, stopped_at, readings)
            case Tick():
                pass  # only the deadlines move (checked after every event)
            case _:
                return False
        return True

    def money_event(self, event: Event) -> bool:
        """Stripe's, reconciliation's and a reviewer's events; whether `event` was one."""
        r = self.r
        match event:
            case Captured(amount, stripe_fee):
                if r.hold is Hold.CAPTURING:
                    self.set(hold=Hold.CAPTURED, captured_amount=amount, stripe_fee=stripe_fee)
                    if r.state is State.SETTLING:
                        self.set(state=State.COMPLETED)
            case CaptureRejected(reason, kind):
                if r.hold is Hold.CAPTURING:
                    self.capture_rejected(reason, kind)
            case HoldReleased():
                if r.hold is Hold.RELEASING:
                    self.set(hold=Hold.RELEASED)
                    if r.state is State.SETTLING:
                        self.set(state=State.COMPLETED)
            case ReleaseRejected(reason):
                if r.hold is Hold.RELEASING:
                    self.set(hold=Hold.HELD, state=State.NEEDS_REVIEW, failure_reason=reason)
            case RefundRequested(refund_id, amount):
                # Never more than was captured, all refunds together.
                if 0 < amount <= r.refundable:
                    assert r.payment_intent_id is not None
                    self.set(refunds_pending=r.refunds_pending + amount)
                    self.effects.append(Refund(r.payment_intent_id, refund_id, amount))
            case RefundSucceeded(_, amount, _):
                self.set(
                    refunds_pending=max(0, r.refunds_pending - amount),
                    refunded_amount=r.refunded_amount + amount,
                )
            case RefundFailed(_, amount, _):
                self.set(refunds_pending=max(0, r.refunds_pending - amount))
            case CapturedElsewhere(amount):
                self.captured_elsewhere(amount)
            case RefundedElsewhere(_, amount):
                self.set(refunded_amount=r.refunded_amount + amount)
                if self.r.refunded_amount > r.captured_amount:
                    self.review(f"refunded {self.r.refunded_amount}, captured {r.captured_amount}")
            case DisputeOpened(_, amount):
                self.set(disputed_amount=amount)
            case ReviewNeeded(reason):
                if r.state in TERMINAL and r.state is not State.NEEDS_REVIEW:
                    self.review(reason)
            case RetryCapture() | ReleaseInReview() | Resolve():
                if review_refusal(r, event, self.policy, self.now) is None:
                    self.review_action(event)
            case _:
                return False
        return True


def free_session(r: Reservation, facts: ChargerFacts, now: datetime, policy: Policy) -> Decision:
    """A reservation under a free tariff: no payment, straight to starting the charge."""
    step = _Step(
        replace(
            r, state=State.AUTHORISED, hold=Hold.FREE, start_deadline=now + policy.start_window
        ),
        facts,
        now,
        policy,
    )
    step.try_start()
    return Decision(step.r, tuple(step.effects))
