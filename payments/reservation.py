"""The reservation state machine: one paid charging session, from checkout to capture.

Pure: `transition(reservation, event, facts, now, policy)` returns the next reservation
and the effects to carry out (create a checkout, start or stop the charge, capture,
release the hold). The coordinator writes both in one database transaction and a
runner carries the effects out, at least once, with idempotency keys; so every
transition here must accept duplicated, late and reordered events and change nothing
when an event no longer applies.

Money rules the machine guarantees, whatever the order of events:
- the hold is captured at most once or released at most once, never both;
- the capture never exceeds the hold;
- the charge is only started after the PaymentIntent was seen in `requires_capture`;
- every reservation whose card was authorised ends with a capture or a release.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from payments.pricing import (
    STRIPE_MINIMUM_CHARGE,
    Breakdown,
    Tariff,
    Usage,
    price,
    would_pass_cap,
)


class State(StrEnum):
    PENDING_PAYMENT = "PendingPayment"
    AUTHORISED = "Authorised"  # card authorised; waiting for the charger to be reachable
    AWAITING_PLUG = "AwaitingPlug"
    START_REQUESTED = "StartRequested"
    CHARGING = "Charging"
    STOPPING = "Stopping"
    WAITING_FOR_DISCONNECT = "WaitingForDisconnect"
    SETTLING = "Settling"
    COMPLETED = "Completed"
    EXPIRED = "Expired"
    PAYMENT_FAILED = "PaymentFailed"
    CANCELLED = "Cancelled"
    START_REJECTED = "StartRejected"
    START_TIMEOUT = "StartTimeout"
    NEEDS_REVIEW = "NeedsReview"


TERMINAL = frozenset(
    {
        State.COMPLETED,
        State.EXPIRED,
        State.PAYMENT_FAILED,
        State.CANCELLED,
        State.START_REJECTED,
        State.START_TIMEOUT,
        State.NEEDS_REVIEW,
    }
)
ACTIVE = frozenset(State) - TERMINAL

# Where a cancel by the driver or the operator is still allowed: before the charge starts.
_CANCELLABLE = frozenset(
    {State.PENDING_PAYMENT, State.AUTHORISED, State.AWAITING_PLUG, State.START_REQUESTED}
)
_BEFORE_START = frozenset({State.AUTHORISED, State.AWAITING_PLUG, State.START_REQUESTED})
_CHARGING = frozenset({State.CHARGING, State.STOPPING})
# Connector statuses that mean the cable is still in after the transaction ended.
_STILL_PLUGGED = frozenset({"Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing"})


class Hold(StrEnum):
    """The money side: where the card authorisation stands."""

    NONE = "None"
    HELD = "Held"
    CAPTURING = "Capturing"
    CAPTURED = "Captured"
    RELEASING = "Releasing"
    RELEASED = "Released"
    LOST = "Lost"  # cancelled by Stripe or the bank before we captured
    FREE = "Free"  # a free tariff: nothing to hold


_MAY_CHARGE = frozenset({Hold.HELD, Hold.FREE})


@dataclass(frozen=True)
class Policy:
    start_window: timedelta = timedelta(minutes=5)  # from payment to StartTransaction
    start_reply_window: timedelta = timedelta(minutes=2)  # after RemoteStart was sent
    stop_retry_interval: timedelta = timedelta(minutes=1)
    settle_after_available: timedelta = timedelta(minutes=10)  # no StopTransaction came
    capture_deadline: timedelta = timedelta(days=6)  # card holds lapse after 7 days
    meter_interval: timedelta = timedelta(seconds=60)  # assumed when the charger does not say
    minimum_energy_wh: int = 1000  # below it nothing is charged
    # Below it the hold is released instead of captured; None: Stripe's minimum charge.
    minimum_amount: int | None = None


@dataclass(frozen=True)
class Reservation:
    id: str
    charger_id: str
    connector_id: int
    id_tag: str  # the OCPP idTag generated for this reservation (CiString20)
    tariff: Tariff
    hold_amount: int
    created_at: datetime
    payment_deadline: datetime
    state: State = State.PENDING_PAYMENT
    hold: Hold = Hold.NONE
    checkout_session_id: str | None = None
    checkout_url: str | None = None
    verifying: bool = False  # a VerifyPayment effect is outstanding
    payment_intent_id: str | None = None
    authorised_at: datetime | None = None
    start_deadline: datetime | None = None
    start_attempts: int = 0  # RemoteStartTransaction requests emitted
    transaction_id: int | None = None
    meter_start_wh: int | None = None
    started_at: datetime | None = None  # the charger's StartTransaction timestamp
    charging_since: datetime | None = None  # our clock, for the maximum duration
    energy_wh: int = 0  # delivered so far
    power_w: int = 0
    metered_at: datetime | None = None
    stop_requested_at: datetime | None = None
    stopped_at: datetime | None = None
    unplugged_at: datetime | None = None
    available_since: datetime | None = None  # connector Available while still charging
    breakdown: Breakdown | None = None
    capture_amount: int | None = None
    captured_amount: int = 0
    refunded_amount: int = 0
    refunds_pending: int = 0  # asked of Stripe, not yet confirmed
    failure_reason: str | None = None

    @property
    def refundable(self) -> int:
        """What may still be refunded: captured, less refunds done and under way."""
        if self.hold is not Hold.CAPTURED:
            return 0
        return self.captured_amount - self.refunded_amount - self.refunds_pending

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


# --- Facts about the charger, supplied fresh with every event by the coordinator.


@dataclass(frozen=True)
class ChargerFacts:
    online: bool
    connector_status: str | None


# --- Events.


@dataclass(frozen=True)
class CheckoutCreated:
    session_id: str
    url: str


@dataclass(frozen=True)
class CheckoutUnavailable:
    reason: str


@dataclass(frozen=True)
class PaymentCompleted:
    """The driver completed Checkout (success redirect or webhook): verify the PaymentIntent."""


@dataclass(frozen=True)
class PaymentAuthorised:
    payment_intent_id: str
    amount_capturable: int


@dataclass(frozen=True)
class PaymentNotAuthorised:
    payment_intent_id: str | None
    status: str


@dataclass(frozen=True)
class CheckoutExpired:
    pass


@dataclass(frozen=True)
class PaymentFailed:
    reason: str


@dataclass(frozen=True)
class HoldCancelledElsewhere:
    reason: str


@dataclass(frozen=True)
class Cancel:
    by: str  # "driver" or "operator"


@dataclass(frozen=True)
class StopRequested:
    by: str


@dataclass(frozen=True)
class ChargerChanged:
    """Connected, disconnected or a new connector status: the facts carry the news."""

    status_at: datetime | None = None  # the charger's timestamp of a status change


@dataclass(frozen=True)
class RemoteStartAnswered:
    accepted: bool


@dataclass(frozen=True)
class RemoteStartUndelivered:
    pass


@dataclass(frozen=True)
class RemoteStartUnanswered:
    pass


@dataclass(frozen=True)
class RemoteStopAnswered:
    accepted: bool


@dataclass(frozen=True)
class TransactionStarted:
    transaction_id: int
    meter_start_wh: int
    started_at: datetime


@dataclass(frozen=True)
class MeterReading:
    energy_register_wh: int | None
    power_w: int | None
    at: datetime


@dataclass(frozen=True)
class TransactionStopped:
    meter_stop_wh: int
    stopped_at: datetime


@dataclass(frozen=True)
class Captured:
    amount: int


@dataclass(frozen=True)
class CaptureRejected:
    reason: str


@dataclass(frozen=True)
class HoldReleased:
    pass


@dataclass(frozen=True)
class ReleaseRejected:
    reason: str


@dataclass(frozen=True)
class RefundRequested:
    refund_id: str
    amount: int


@dataclass(frozen=True)
class RefundSucceeded:
    refund_id: str
    amount: int
    stripe_refund_id: str


@dataclass(frozen=True)
class RefundFailed:
    refund_id: str
    amount: int
    reason: str


@dataclass(frozen=True)
class Tick:
    """Time passed: deadlines are checked."""


Event = (
    CheckoutCreated
    | CheckoutUnavailable
    | PaymentCompleted
    | PaymentAuthorised
    | PaymentNotAuthorised
    | CheckoutExpired
    | PaymentFailed
    | HoldCancelledElsewhere
    | Cancel
    | StopRequested
    | ChargerChanged
    | RemoteStartAnswered
    | RemoteStartUndelivered
    | RemoteStartUnanswered
    | RemoteStopAnswered
    | TransactionStarted
    | MeterReading
    | TransactionStopped
    | Captured
    | CaptureRejected
    | HoldReleased
    | ReleaseRejected
    | RefundRequested
    | RefundSucceeded
    | RefundFailed
    | Tick
)


# --- Effects.


@dataclass(frozen=True)
class CreateCheckout:
    pass


@dataclass(frozen=True)
class ExpireCheckout:
    session_id: str


@dataclass(frozen=True)
class VerifyPayment:
    session_id: str


@dataclass(frozen=True)
class RemoteStart:
    id_tag: str


@dataclass(frozen=True)
class RemoteStop:
    transaction_id: int


@dataclass(frozen=True)
class Capture:
    payment_intent_id: str
    amount: int


@dataclass(frozen=True)
class ReleaseHold:
    payment_intent_id: str


@dataclass(frozen=True)
class Refund:
    payment_intent_id: str
    refund_id: str
    amount: int


Effect = (
    CreateCheckout
    | ExpireCheckout
    | VerifyPayment
    | RemoteStart
    | RemoteStop
    | Capture
    | ReleaseHold
    | Refund
)


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
    return Decision(step.r, tuple(step.effects))


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
                if r.state is State.CANCELLED and r.hold is Hold.NONE:
                    # Cancelled while the checkout was being created: close it again.
                    self.effects.append(ExpireCheckout(session_id))
            case CheckoutUnavailable(reason):
                if r.state is State.PENDING_PAYMENT and r.checkout_session_id is None:
                    self.end(State.CANCELLED, f"payments unavailable: {reason}")
            case PaymentCompleted():
                if r.hold is Hold.NONE and not r.verifying and r.checkout_session_id:
                    self.set(verifying=True)
                    self.effects.append(VerifyPayment(r.checkout_session_id))
            case PaymentAuthorised(payment_intent_id, amount_capturable):
                self.authorised(payment_intent_id, amount_capturable)
            case PaymentNotAuthorised(payment_intent_id, status):
                self.set(verifying=False)
                if r.state is State.PENDING_PAYMENT and r.hold is Hold.NONE:
                    if payment_intent_id:
                        self.set(payment_intent_id=payment_intent_id)
                    if status in ("requires_payment_method", "requires_action", "processing"):
                        return  # the driver can still try another card on the Checkout page
                    # A PaymentIntent captured by someone else cannot be released by us.
                    ending = State.NEEDS_REVIEW if status == "succeeded" else State.PAYMENT_FAILED
                    self.end(ending, f"payment intent is {status}")
            case CheckoutExpired():
                if r.state is State.PENDING_PAYMENT and r.hold is Hold.NONE:
                    self.end(State.EXPIRED, "checkout expired")
            case PaymentFailed(reason):
                if r.state is State.PENDING_PAYMENT and r.hold is Hold.NONE:
                    self.end(State.PAYMENT_FAILED, reason)
            case HoldCancelledElsewhere(reason):
                self.hold_lost(reason)
            case Cancel(by):
                if r.state in _CANCELLABLE:
                    if r.state is State.PENDING_PAYMENT and r.checkout_session_id:
                        self.effects.append(ExpireCheckout(r.checkout_session_id))
                    self.end(State.CANCELLED, f"cancelled by the {by}")
            case StopRequested(by):
                if r.state is State.CHARGING:
                    self.request_stop()
                elif r.state in _CANCELLABLE:
                    self.apply(Cancel(by))
            case ChargerChanged(status_at):
                self.charger_changed(status_at)
            case RemoteStartAnswered(accepted):
                # A repeated request (after a crash or a lost connection) may be refused
                # because the first one got through: then StartTransaction, or the start
                # window, decides. Only a refusal of the one and only request is final.
                if r.state is State.START_REQUESTED and not accepted and r.start_attempts <= 1:
                    self.end(State.START_REJECTED, "the charger rejected the remote start")
            case RemoteStartUndelivered():
                if r.state is State.START_REQUESTED:
                    # Nothing reached the charger: try again when it is back.
                    self.set(state=State.AUTHORISED)
                    self.try_start()
            case RemoteStartUnanswered():
                pass  # it may still start: StartTransaction or the start window decides
            case RemoteStopAnswered(accepted):
                pass  # the StopTransaction, or the retry timer, decides
            case TransactionStarted(transaction_id, meter_start_wh, started_at):
                self.transaction_started(transaction_id, meter_start_wh, started_at)
            case MeterReading(energy_register_wh, power_w, at):
                self.meter_reading(energy_register_wh, power_w, at)
            case TransactionStopped(meter_stop_wh, stopped_at):
                self.transaction_stopped(meter_stop_wh, stopped_at)
            case Captured(amount):
                if r.hold is Hold.CAPTURING:
                    self.set(hold=Hold.CAPTURED, captured_amount=amount)
                    if r.state is State.SETTLING:
                        self.set(state=State.COMPLETED)
            case CaptureRejected(reason):
                if r.hold is Hold.CAPTURING:
                    self.set(hold=Hold.HELD, state=State.NEEDS_REVIEW, failure_reason=reason)
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
            case Tick():
                pass

    def authorised(self, payment_intent_id: str, amount_capturable: int) -> None:
        r = self.r
        self.set(verifying=False)
        if r.hold is not Hold.NONE:
            return  # seen already (confirm and webhook both verify)
        self.set(hold=Hold.HELD, payment_intent_id=payment_intent_id, authorised_at=self.now)
        if amount_capturable < r.hold_amount:
            self.end(State.PAYMENT_FAILED, f"authorised {amount_capturable} of {r.hold_amount}")
            return
        if r.state is not State.PENDING_PAYMENT:
            # Paid after the reservation ended (cancelled, expired): give the money back.
            self.release()
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
        elif r.state in _CHARGING:
            unplugged = self.facts.connector_status == "Available"
            if unplugged and r.available_since is None:
                self.set(available_since=status_at or self.now)
            elif not unplugged and r.available_since is not None:
                self.set(available_since=None)
        elif r.state is State.WAITING_FOR_DISCONNECT and self.facts.connector_status not in (
            _STILL_PLUGGED | {None}
        ):
            self.set(unplugged_at=status_at or self.now)
            self.settle()

    def transaction_started(self, transaction_id: int, meter_start_wh: int, at: datetime) -> None:
        r = self.r
        if r.state not in _BEFORE_START or r.hold not in _MAY_CHARGE:
            return
        self.set(
            state=State.CHARGING,
            transaction_id=transaction_id,
            meter_start_wh=meter_start_wh,
            started_at=at,
            charging_since=self.now,
            metered_at=at,
        )

    def meter_reading(self, register_wh: int | None, power_w: int | None, at: datetime) -> None:
        r = self.r
        if r.state not in _CHARGING or r.meter_start_wh is None:
            return
        if r.metered_at is not None and at < r.metered_at:
            return  # an older sample, delivered late
        energy = r.energy_wh if register_wh is None else max(0, register_wh - r.meter_start_wh)
        # The charger's own sampling interval, as observed; the policy's until there is one.
        interval = self.policy.meter_interval
        if r.metered_at is not None and at > r.metered_at:
            interval = at - r.metered_at
        self.set(energy_wh=energy, power_w=r.power_w if power_w is None else power_w, metered_at=at)
        if r.state is State.CHARGING and would_pass_cap(
            r.tariff, energy, self.r.power_w, interval.total_seconds()
        ):
            self.request_stop()

    def transaction_stopped(self, meter_stop_wh: int, stopped_at: datetime) -> None:
        r = self.r
        if r.state not in _CHARGING or r.meter_start_wh is None:
            return
        self.set(
            energy_wh=max(0, meter_stop_wh - r.meter_start_wh),
            stopped_at=stopped_at,
            metered_at=stopped_at,
        )
        if r.tariff.idle_fee_per_minute and self.facts.connector_status in _STILL_PLUGGED:
            self.set(state=State.WAITING_FOR_DISCONNECT)
        else:
            self.set(unplugged_at=stopped_at)
            self.settle()

    def request_stop(self) -> None:
        assert self.r.transaction_id is not None
        self.set(state=State.STOPPING, stop_requested_at=self.now)
        self.effects.append(RemoteStop(self.r.transaction_id))

    def settle(self) -> None:
        """Price the session from the tariff snapshot; capture it, or release a tiny amount."""
        r = self.r
        started = r.started_at or r.charging_since or self.now
        stopped = r.stopped_at or r.metered_at or self.now
        unplugged = r.unplugged_at or stopped
        breakdown = price(
            r.tariff,
            Usage(
                energy_wh=r.energy_wh,
                charging_seconds=int((stopped - started).total_seconds()),
                idle_seconds=int((unplugged - stopped).total_seconds()),
            ),
        )
        amount = min(breakdown.total, r.hold_amount)
        if r.hold is Hold.FREE:
            self.set(state=State.COMPLETED, breakdown=breakdown, capture_amount=0)
            return
        if r.hold is not Hold.HELD:
            # The hold was lost while charging: nothing can be captured; someone must look.
            self.set(state=State.NEEDS_REVIEW, breakdown=breakdown)
            return
        self.set(state=State.SETTLING, breakdown=breakdown)
        minimum = self.policy.minimum_amount
        if minimum is None:
            minimum = STRIPE_MINIMUM_CHARGE.get(r.tariff.currency, 50)
        if r.energy_wh < self.policy.minimum_energy_wh or amount < minimum:
            self.set(capture_amount=0)
            self.release()
        else:
            assert r.payment_intent_id is not None
            self.set(capture_amount=amount, hold=Hold.CAPTURING)
            self.effects.append(Capture(r.payment_intent_id, amount))

    def release(self) -> None:
        if self.r.hold is Hold.HELD:
            assert self.r.payment_intent_id is not None
            self.set(hold=Hold.RELEASING)
            self.effects.append(ReleaseHold(self.r.payment_intent_id))

    def end(self, state: State, reason: str) -> None:
        """A failure end: the reservation stops locking the connector; a held card is released."""
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
        if r.state in _BEFORE_START or r.state is State.PENDING_PAYMENT:
            self.set(state=State.CANCELLED)
        elif r.state not in TERMINAL and r.state not in _CHARGING:
            self.set(state=State.NEEDS_REVIEW)

    # -- deadlines

    def check_deadlines(self) -> None:
        r, now, _policy = self.r, self.now, self.policy
        if r.state is State.PENDING_PAYMENT and now >= r.payment_deadline and r.hold is Hold.NONE:
            if r.checkout_session_id:
                self.effects.append(ExpireCheckout(r.checkout_session_id))
            self.end(State.EXPIRED, "not paid in time")
        elif r.state in _BEFORE_START and r.start_deadline and now >= r.start_deadline:
            self.end(State.START_TIMEOUT, "the charge did not start in time")
        elif r.state in _CHARGING:
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
    elif r.state in _BEFORE_START:
        candidates.append(r.start_deadline)
    elif r.state in _CHARGING or r.state is State.WAITING_FOR_DISCONNECT:
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
