"""The reservation state machine: one paid charging session, from checkout to capture.

Pure: `transition(reservation, event, facts, now, policy)` returns the next reservation
and the effects to carry out (create a checkout, start or stop the charge, capture,
release the hold). The coordinator writes both in one database transaction and a
runner carries the effects out, at least once, with idempotency keys; so every
transition here must accept duplicated, late and reordered events and change nothing
when an event no longer applies.

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
from datetime import datetime, timedelta

from payments import energy, reservation_transfers
from payments.pricing import would_pass_cap
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
    BEFORE_START,
    CANCELLABLE,
    CHARGING_STATES,
    MAY_CHARGE,
    STILL_PLUGGED,
    TERMINAL,
    Hold,
    Policy,
    Reservation,
    State,
    band_energy,
    minimum_charge,
    retry_amount,
    review_refusal,
    session_price,
)

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


class _Step:
    """One transition being worked out; collects the effects as it goes."""

    def __init__(self, r: Reservation, facts: ChargerFacts, now: datetime, policy: Policy) -> None:
        self.r = r
        self.facts = facts
        self.now = now
        self.policy = policy
        self.effects: list[Effect] = []

    def set(self, **changes: object) -> None:
        self.r = replace(self.r, **changes)  # type: ignore[arg-type]

    # -- events

    def apply(self, event: Event) -> None:
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
                self.set(verifying=False)
                if self.verify_pending():
                    return
                if r.state is State.PENDING_PAYMENT and r.hold is Hold.NONE:
                    if payment_intent_id:
                        self.set(payment_intent_id=payment_intent_id)
                    if status in ("requires_payment_method", "requires_action", "processing"):
                        return  # the driver can still try another card on the Checkout page
                    # A PaymentIntent captured by someone else cannot be released by us.
                    ending = State.NEEDS_REVIEW if status == "succeeded" else State.PAYMENT_FAILED
                    self.end(ending, f"payment intent is {status}")
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
            case Tick():
                pass

    def verify(self) -> None:
        assert self.r.checkout_session_id is not None
        self.set(verifying=True, verify_again=False)
        self.effects.append(VerifyPayment(self.r.checkout_session_id))

    def verify_pending(self) -> bool:
        """After a verification's answer: verify again if a signal came meanwhile."""
        if self.r.verify_again and self.r.hold is Hold.NONE and self.r.checkout_session_id:
            self.verify()
            return True
        return False

    def authorised(self, payment_intent_id: str, amount_capturable: int) -> None:
        r = self.r
        self.set(verifying=False, verify_again=False)
        if r.hold is not Hold.NONE:
            return  # seen already (confirm and webhook both verify)
        self.set(hold=Hold.HELD, payment_intent_id=payment_intent_id, authorised_at=self.now)
        if r.state is not State.PENDING_PAYMENT:
            # Paid after the reservation ended (cancelled, expired): give the money back.
            self.release()
            return
        if amount_capturable < r.hold_amount:
            self.end(State.PAYMENT_FAILED, f"authorised {amount_capturable} of {r.hold_amount}")
            return
        self.set(state=State.AUTHORISED, start_deadline=self.now + self.policy.start_window)
        self.try_start()

    def try_start(self) -> None:
        """Send RemoteStart once the charger is online and the cable is in."""
        if self.r.state not in (State.AUTHORISED, State.AWAITING_PLUG):
            return
        if not self.facts.online:
            self.set(state=State.AUTHORISED)
        elif self.facts.connector_status == "Preparing":
            deadline = max(
                self.r.start_deadline or self.now, self.now + self.policy.start_reply_window
            )
            self.set(
                state=State.START_REQUESTED,
                start_deadline=deadline,
                start_attempts=self.r.start_attempts + 1,
            )
            self.effects.append(RemoteStart(self.r.id_tag))
        else:
            self.set(state=State.AWAITING_PLUG)

    def charger_changed(self, status_at: datetime | None) -> None:
        r = self.r
        if r.state in (State.AUTHORISED, State.AWAITING_PLUG):
            self.try_start()
        elif r.state in CHARGING_STATES:
            unplugged = self.facts.connector_status == "Available"
            if unplugged and r.available_since is None:
                self.set(available_since=status_at or self.now)
            elif not unplugged and r.available_since is not None:
                self.set(available_since=None)
            if r.state is State.STOPPING and r.stop_undelivered and self.facts.online:
                self.request_stop()  # back online: the stop the driver asked for, at once
        elif r.state is State.WAITING_FOR_DISCONNECT and self.facts.connector_status not in (
            STILL_PLUGGED | {None}
        ):
            self.set(unplugged_at=status_at or self.now)
            self.settle()

    def transaction_started(self, transaction_id: int, meter_start_wh: int, at: datetime) -> None:
        r = self.r
        if r.transaction_id == transaction_id:
            return  # the same StartTransaction again
        if r.state not in BEFORE_START or r.hold not in MAY_CHARGE:
            # Started after the reservation let go (cancel, refusal, timeout...), or a second
            # transaction: the tag was answered Invalid, but the charger may charge anyway.
            self.stray(r.charger_id, transaction_id)
            return
        self.set(
            state=State.CHARGING,
            transaction_id=transaction_id,
            meter_start_wh=meter_start_wh,
            meter_register_wh=meter_start_wh,
            started_at=at,
            charging_since=self.now,
            metered_at=at,
        )

    def meter_reading(self, register_wh: int | None, power_w: int | None, at: datetime) -> None:
        r = self.r
        if r.state not in CHARGING_STATES or r.meter_start_wh is None:
            return
        if r.metered_at is not None and at < r.metered_at:
            return  # an older sample, delivered late: applying it would count twice
        # The charger's own sampling interval, as observed; the policy's until there is one.
        interval = self.policy.meter_interval
        if r.metered_at is not None and at > r.metered_at:
            interval = at - r.metered_at
        if register_wh is not None:
            self.count_energy(register_wh, at)
        self.set(power_w=r.power_w if power_w is None else power_w, metered_at=at)
        if r.state is State.CHARGING and would_pass_cap(
            r.tariff, self.r.energy_wh, self.r.power_w, interval.total_seconds()
        ):
            self.request_stop()

    def count_energy(self, register_wh: int, at: datetime) -> None:
        """Count one reading of the register (rules in payments.energy); a restart or a
        reading above what the connector could deliver is flagged on the reservation."""
        r = self.r
        assert r.meter_start_wh is not None
        baseline = r.meter_register_wh
        if baseline is None:
            baseline = r.meter_start_wh + r.energy_wh
        elapsed = at - (r.metered_at or r.started_at or at)
        count = energy.advance(r.energy_wh, baseline, register_wh, elapsed, self.policy.max_power_w)
        self.set(energy_wh=count.energy_wh, meter_register_wh=count.register_wh)
        if r.tariff.bands and count.counted_wh:
            self.set(band_energy_wh=band_energy(r, count.counted_wh, at))
        when = at.isoformat(timespec="seconds")
        if count.restarted:
            self.set(
                meter_restarts=r.meter_restarts + 1,
                meter_warning=f"meter went back from {baseline} to {register_wh} Wh at {when}:"
                f" a restart; the {r.energy_wh} Wh before are kept",
            )
        if count.bounded_wh:
            self.set(
                meter_bounded_wh=r.meter_bounded_wh + count.bounded_wh,
                meter_warning=f"meter gained {register_wh - baseline} Wh in"
                f" {max(0, int(elapsed.total_seconds()))} s at {when}, more than"
                f" {self.policy.max_power_w // 1000} kW can deliver: {count.counted_wh} Wh counted",
            )

    def transaction_stopped(
        self, meter_stop_wh: int, stopped_at: datetime, readings: tuple[tuple[datetime, int], ...]
    ) -> None:
        r = self.r
        if r.state not in CHARGING_STATES or r.meter_start_wh is None:
            return
        # transactionData in time order, except what is older than the last reading applied;
        # then meterStop, the last reading whatever its timestamp: it adds, never erases.
        for at, register_wh in sorted(readings):
            if self.r.metered_at is None or at >= self.r.metered_at:
                self.count_energy(register_wh, at)
                self.set(metered_at=at)
        self.count_energy(meter_stop_wh, stopped_at)
        self.set(stopped_at=stopped_at, metered_at=stopped_at)
        if r.tariff.idle_fee_per_minute and self.facts.connector_status in STILL_PLUGGED:
            self.set(state=State.WAITING_FOR_DISCONNECT)
        else:
            self.set(unplugged_at=stopped_at)
            self.settle()

    def request_stop(self) -> None:
        assert self.r.transaction_id is not None
        self.set(state=State.STOPPING, stop_requested_at=self.now, stop_undelivered=False)
        self.effects.append(RemoteStop(self.r.transaction_id))

    def stray(self, charger_id: str, transaction_id: int) -> None:
        """Stop a transaction this reservation's tag must not be charging on (once per id)."""
        if self.r.stray_transaction_id == transaction_id:
            return
        self.set(stray_transaction_id=transaction_id)
        self.effects.append(RemoteStop(transaction_id, charger_id))

    def settle(self) -> None:
        """Price the session from the tariff snapshot; capture it, or release a tiny amount."""
        r = self.r
        breakdown = session_price(r, self.now)
        amount = min(breakdown.total, r.hold_amount)
        if r.hold is Hold.FREE:
            self.set(state=State.COMPLETED, breakdown=breakdown, capture_amount=0)
            return
        if r.hold is not Hold.HELD:
            # The hold was lost while charging: nothing can be captured; someone must look.
            self.set(state=State.NEEDS_REVIEW, breakdown=breakdown)
            return
        self.set(state=State.SETTLING, breakdown=breakdown)
        if r.energy_wh < self.policy.minimum_energy_wh or amount < minimum_charge(r, self.policy):
            self.set(capture_amount=0)
            self.release()
        else:
            self.capture(amount)

    def capture(self, amount: int) -> None:
        assert self.r.payment_intent_id is not None
        attempt = self.r.capture_attempts + 1
        self.set(capture_amount=amount, hold=Hold.CAPTURING, capture_attempts=attempt)
        self.effects.append(Capture(self.r.payment_intent_id, amount, attempt))

    def release(self) -> None:
        if self.r.hold is Hold.HELD:
            assert self.r.payment_intent_id is not None
            attempt = self.r.release_attempts + 1
            self.set(hold=Hold.RELEASING, release_attempts=attempt)
            self.effects.append(ReleaseHold(self.r.payment_intent_id, attempt))

    def capture_rejected(self, reason: str, kind: str) -> None:
        """Stripe refused the capture: below the minimum, release; the authorisation gone,
        the hold is lost; anything else, someone must look (the hold stays)."""
        if kind == BELOW_MINIMUM:
            self.set(hold=Hold.HELD, capture_amount=0, failure_reason=reason)
            if self.r.state is not State.SETTLING:
                self.set(state=State.SETTLING)
            self.release()
        elif kind == AUTHORISATION_EXPIRED:
            self.set(hold=Hold.LOST, state=State.NEEDS_REVIEW, failure_reason=reason)
        else:
            self.set(hold=Hold.HELD, state=State.NEEDS_REVIEW, failure_reason=reason)

    def captured_elsewhere(self, amount: int) -> None:
        """Stripe (the source of truth) says captured: take its amount, and have a person
        look unless it is the capture this reservation was making anyway."""
        r = self.r
        if r.hold is Hold.CAPTURED and r.captured_amount == amount:
            return
        expected = r.hold is Hold.CAPTURING and r.capture_amount == amount
        # Stripe's fee on a capture made elsewhere is not known here.
        self.set(hold=Hold.CAPTURED, captured_amount=amount, stripe_fee=None)
        if expected and r.state is State.SETTLING:
            self.set(state=State.COMPLETED)
        elif r.state is State.CHARGING:
            self.request_stop()  # nothing is left to capture: the charge must end
        elif not expected:
            self.review(f"captured {amount} at Stripe outside csms")

    def review(self, reason: str) -> None:
        """Park for a person: active charges are stopped first, then settled into review."""
        if self.r.state in CHARGING_STATES or self.r.state is State.WAITING_FOR_DISCONNECT:
            self.set(failure_reason=reason)
            return
        self.set(state=State.NEEDS_REVIEW, failure_reason=reason)

    def review_action(self, action: ReviewAction) -> None:
        match action:
            case RetryCapture():
                self.set(state=State.SETTLING, failure_reason=None)
                self.capture(retry_amount(self.r, action, self.now))
            case ReleaseInReview():
                self.set(state=State.RESOLVED, resolution="hold released by an operator")
                self.release()
            case Resolve(note):
                self.set(state=State.RESOLVED, resolution=note)

    def end(self, state: State, reason: str, *, checkout_open: bool = True) -> None:
        """A failure end: the reservation stops locking the connector; a held card is released.

        Ending before a payment closes the Checkout Session, so that it can no longer be
        paid; closing it finds out when the driver paid first (a late payment)."""
        r = self.r
        unpaid = r.state is State.PENDING_PAYMENT and r.hold is Hold.NONE
        if checkout_open and unpaid and r.checkout_session_id:
            self.effects.append(ExpireCheckout(r.checkout_session_id))
        self.set(state=state, failure_reason=reason, verifying=False)
        self.release()

    def hold_lost(self, reason: str) -> None:
        r = self.r
        if r.hold not in (Hold.HELD, Hold.RELEASING, Hold.CAPTURING):
            return
        if r.hold is Hold.RELEASING:
            self.set(hold=Hold.RELEASED)  # our own release, reported back
            if r.state is State.SETTLING:
                self.set(state=State.COMPLETED)
            return
        self.set(hold=Hold.LOST, failure_reason=f"hold cancelled: {reason}")
        if r.state is State.CHARGING:
            self.request_stop()
        if r.state in BEFORE_START or r.state is State.PENDING_PAYMENT:
            self.set(state=State.CANCELLED)
        elif r.state not in TERMINAL and r.state not in CHARGING_STATES:
            self.set(state=State.NEEDS_REVIEW)

    # -- deadlines

    def check_deadlines(self) -> None:
        r, now, _policy = self.r, self.now, self.policy
        if r.state is State.PENDING_PAYMENT and now >= r.payment_deadline and r.hold is Hold.NONE:
            self.end(State.EXPIRED, "not paid in time")
        elif r.state in BEFORE_START and r.start_deadline and now >= r.start_deadline:
            self.end(State.START_TIMEOUT, "the charge did not start in time")
        elif r.state in CHARGING_STATES:
            self.charging_deadlines()
        elif r.state is State.WAITING_FOR_DISCONNECT and r.stopped_at is not None:
            idle_cap = timedelta(
                minutes=r.tariff.idle_grace_minutes + (r.tariff.idle_fee_max_minutes or 0)
            )
            if now >= r.stopped_at + idle_cap or self.past_capture_deadline():
                self.set(unplugged_at=min(now, r.stopped_at + idle_cap))
                self.settle()

    def charging_deadlines(self) -> None:
        r, now, policy = self.r, self.now, self.policy
        # No StopTransaction though the cable is out, or the card hold is about to lapse:
        # settle from the last meter value (and make sure the charge stops).
        unplugged_long = (
            r.available_since is not None
            and now >= r.available_since + policy.settle_after_available
        )
        if unplugged_long or self.past_capture_deadline():
            if r.state is State.CHARGING and not unplugged_long:
                self.request_stop()
            self.settle()
            return
        if r.state is State.CHARGING:
            max_minutes = r.tariff.max_duration_minutes
            if (
                max_minutes
                and r.charging_since
                and now >= r.charging_since + timedelta(minutes=max_minutes)
            ):
                self.request_stop()
        elif r.stop_requested_at and now >= r.stop_requested_at + policy.stop_retry_interval:
            self.request_stop()  # no StopTransaction yet: ask again

    def past_capture_deadline(self) -> bool:
        return (
            self.r.authorised_at is not None
            and self.now >= self.r.authorised_at + self.policy.capture_deadline
        )


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


def next_deadline(r: Reservation, policy: Policy) -> datetime | None:
    """When the machine next needs a Tick for this reservation (None: only events move it)."""
    candidates: list[datetime | None] = []
    if r.state is State.PENDING_PAYMENT:
        candidates.append(r.payment_deadline)
    elif r.state in BEFORE_START:
        candidates.append(r.start_deadline)
    elif r.state in CHARGING_STATES or r.state is State.WAITING_FOR_DISCONNECT:
        if r.authorised_at is not None:
            candidates.append(r.authorised_at + policy.capture_deadline)
        if r.available_since is not None:
            candidates.append(r.available_since + policy.settle_after_available)
        if r.state is State.CHARGING and r.charging_since and r.tariff.max_duration_minutes:
            candidates.append(r.charging_since + timedelta(minutes=r.tariff.max_duration_minutes))
        if r.state is State.STOPPING and r.stop_requested_at:
            candidates.append(r.stop_requested_at + policy.stop_retry_interval)
        if r.state is State.WAITING_FOR_DISCONNECT and r.stopped_at:
            idle = r.tariff.idle_grace_minutes + (r.tariff.idle_fee_max_minutes or 0)
            candidates.append(r.stopped_at + timedelta(minutes=idle))
    known = [c for c in candidates if c is not None]
    return min(known) if known else None
