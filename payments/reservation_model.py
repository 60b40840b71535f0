"""What a paid charging session is: its states, its hold, the policy's numbers, and the
reservation record the state machine (`payments.reservation`) moves.

Pure values and pure functions of them: what a session costs from what is known of it, the
smallest amount worth capturing, and whether an operator's action on a review applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from payments import bands
from payments.currency import is_chargeable, minimum_charge_amount, round_capture, step
from payments.pricing import Breakdown, Tariff, Usage, price
from payments.reservation_messages import ReleaseInReview, Resolve, RetryCapture, ReviewAction
from payments.split import SplitRule


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
    RESOLVED = "Resolved"  # a review closed by an operator, with a note


TERMINAL = frozenset(
    {
        State.COMPLETED,
        State.EXPIRED,
        State.PAYMENT_FAILED,
        State.CANCELLED,
        State.START_REJECTED,
        State.START_TIMEOUT,
        State.NEEDS_REVIEW,
        State.RESOLVED,
    }
)
ACTIVE = frozenset(State) - TERMINAL

# Where a cancel by the driver or the operator is still allowed: before the charge starts.
CANCELLABLE = frozenset(
    {State.PENDING_PAYMENT, State.AUTHORISED, State.AWAITING_PLUG, State.START_REQUESTED}
)
BEFORE_START = frozenset({State.AUTHORISED, State.AWAITING_PLUG, State.START_REQUESTED})
CHARGING_STATES = frozenset({State.CHARGING, State.STOPPING})
# Connector statuses that mean the cable is still in after the transaction ended.
STILL_PLUGGED = frozenset({"Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing"})


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


MAY_CHARGE = frozenset({Hold.HELD, Hold.FREE})


@dataclass(frozen=True)
class Policy:
    start_window: timedelta = timedelta(minutes=5)  # from payment to StartTransaction
    start_reply_window: timedelta = timedelta(minutes=2)  # after RemoteStart was sent
    stop_retry_interval: timedelta = timedelta(minutes=1)
    settle_after_available: timedelta = timedelta(minutes=10)  # no StopTransaction came
    capture_deadline: timedelta = timedelta(days=6)  # card holds lapse after 7 days
    meter_interval: timedelta = timedelta(seconds=60)  # assumed when the charger does not say
    # From creation until the Checkout link reaches the driver (CheckoutHandedOver): a
    # reservation whose link never did expires then, instead of holding its connector.
    handover_window: timedelta = timedelta(minutes=2)
    minimum_energy_wh: int = 1000  # below it nothing is charged
    # Below it the hold is released instead of captured; None: Stripe's minimum charge.
    minimum_amount: int | None = None
    # The most a connector can deliver: a meter gaining faster is bounded (payments.energy).
    max_power_w: int = 350_000


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
    # The register value the next reading is compared with (payments.energy); None in rows
    # stored before it was kept, where it is meter_start_wh + energy_wh.
    meter_register_wh: int | None = None
    meter_restarts: int = 0  # times the register went back (restarted) during the session
    meter_bounded_wh: int = 0  # claimed by the meter above what the connector could deliver
    meter_warning: str | None = None  # why the meter was not taken at its word (the latest)
    stop_requested_at: datetime | None = None
    stopped_at: datetime | None = None
    unplugged_at: datetime | None = None
    available_since: datetime | None = None  # connector Available while still charging
    breakdown: Breakdown | None = None
    capture_amount: int | None = None
    captured_amount: int = 0
    refunded_amount: int = 0
    refunds_pending: int = 0  # asked of Stripe, not yet confirmed
    # Stripe's fee on the captured charge, as the capture's answer said (None: not known,
    # e.g. captured elsewhere, or in rows stored before it was kept).
    stripe_fee: int | None = None
    # The site owner's share (payments.reservation_transfers). Snapshot at creation: who is
    # paid and by which rule (None: the operator keeps everything).
    owner_id: str | None = None
    split: SplitRule | None = None
    # Once captured: the shares of captured - refunded (owner + operator == that, both >= 0).
    owner_share: int = 0
    operator_share: int = 0
    transfer_status: str | None = None  # payments.transfer_messages: accrued, transferring...
    transfer_attempts: int = 0  # TransferToOwner effects emitted
    transfer_id: str | None = None  # Stripe's tr_ id once transferred
    transferred_amount: int = 0  # moved to the owner's account
    reversed_amount: int = 0  # taken back from it by reversals
    reversing_amount: int = 0  # reversals asked of Stripe, not yet confirmed
    reversal_retries: int = 0  # reversals asked again after Stripe refused one
    transfer_failure: str | None = None  # why Stripe refused a transfer or a reversal
    failure_reason: str | None = None
    # A payment signal came while a verification was under way: verify again after it.
    verify_again: bool = False
    # The last RemoteStop found the charger offline: send it again when the charger is back.
    stop_undelivered: bool = False
    capture_attempts: int = 0  # Capture effects emitted (each attempt has its own key)
    release_attempts: int = 0  # ReleaseHold effects emitted
    # A transaction the charger started with this reservation's tag after it could no
    # longer charge (cancelled, timed out, ...): stopped with RemoteStopTransaction.
    stray_transaction_id: int | None = None
    disputed_amount: int = 0
    resolution: str | None = None  # an operator's note closing a review
    # The IANA zone the tariff's times of day are read in, snapshot at creation (the
    # charger's site's, else the operator's); None in older rows: UTC.
    time_zone: str | None = None
    # The energy counted, by part of a tariff with bands (payments.bands: index 0 outside
    # every band, i + 1 in bands[i]); up to the tariff's maximum energy. Empty: no bands.
    band_energy_wh: tuple[int, ...] = ()

    @property
    def refundable(self) -> int:
        """What may still be refunded: captured, less refunds done and under way."""
        if self.hold is not Hold.CAPTURED:
            return 0
        return self.captured_amount - self.refunded_amount - self.refunds_pending

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


def session_price(r: Reservation, now: datetime) -> Breakdown:
    """What the session costs under its tariff snapshot, from what is known of it now."""
    started = r.started_at or r.charging_since or now
    stopped = r.stopped_at or r.metered_at or now
    unplugged = r.unplugged_at or stopped
    return price(r.tariff, session_usage(r, started, stopped, unplugged))


def session_usage(
    r: Reservation, started: datetime, stopped: datetime, unplugged: datetime
) -> Usage:
    """The usage the tariff prices: energy (by band), charging and idle time."""
    window = r.tariff.time_fee_excluded
    charging = int((stopped - started).total_seconds())
    excluded = 0
    if window is not None and stopped > started:
        excluded = bands.seconds_in_window(window, bands.zone_of(r.time_zone), started, stopped)
    return Usage(
        energy_wh=r.energy_wh,
        charging_seconds=charging,
        idle_seconds=int((unplugged - stopped).total_seconds()),
        band_energy_wh=r.band_energy_wh,
        time_fee_seconds=None if window is None else max(0, charging - excluded),
    )


def band_energy(r: Reservation, counted_wh: int, at: datetime) -> tuple[int, ...]:
    """`r`'s energy by band after a reading at `at` counted `counted_wh` (payments.energy):
    the gain shared among the bands over the interval since the previous reading, up to
    the tariff's maximum energy (what is above it is not billed)."""
    parts = r.band_energy_wh or (0,) * (len(r.tariff.bands) + 1)
    room = counted_wh
    if r.tariff.max_energy_wh is not None:
        room = max(0, min(counted_wh, r.tariff.max_energy_wh - sum(parts)))
    if room == 0:
        return parts
    since = r.metered_at or r.started_at or at
    zone = bands.zone_of(r.time_zone)
    gained = bands.energy_by_band(room, r.tariff.bands, zone, since, at)
    return tuple(a + b for a, b in zip(parts, gained, strict=True))


def minimum_charge(r: Reservation, policy: Policy) -> int:
    """Below this amount the hold is released instead of captured."""
    minimum = policy.minimum_amount
    if minimum is None:
        minimum = minimum_charge_amount(r.tariff.currency)
    return minimum


def retry_amount(r: Reservation, action: RetryCapture, now: datetime) -> int:
    """What a retried capture takes: the operator's amount, else the price; never more than
    the price or the hold."""
    price_now = (r.breakdown or session_price(r, now)).total
    ceiling = round_capture(min(price_now, r.hold_amount), r.tariff.currency)
    return ceiling if action.amount is None else action.amount


def review_refusal(
    r: Reservation, action: ReviewAction, policy: Policy, now: datetime
) -> str | None:
    """Why an operator's action on a review cannot be taken (None: it can)."""
    if r.state is not State.NEEDS_REVIEW:
        return f"the payment is {r.state.value}, not in review"
    match action:
        case RetryCapture(amount):
            if r.hold is not Hold.HELD or r.payment_intent_id is None:
                return f"no hold to capture (the hold is {r.hold.value})"
            ceiling = retry_amount(r, RetryCapture(), now)
            wanted = ceiling if amount is None else amount
            if wanted > ceiling:
                return f"at most {ceiling} can be captured (the price, within the hold)"
            if wanted < max(1, minimum_charge(r, policy)):
                return f"{wanted} is below the minimum charge: release the hold instead"
            if not is_chargeable(wanted, r.tariff.currency):
                unit = step(r.tariff.currency)
                currency = r.tariff.currency.upper()
                return f"{wanted} is not an amount Stripe takes in {currency} (steps of {unit})"
        case ReleaseInReview():
            if r.hold is not Hold.HELD or r.payment_intent_id is None:
                return f"no hold to release (the hold is {r.hold.value})"
        case Resolve(note):
            if not note.strip():
                return "a note is required"
            if r.hold in (Hold.HELD, Hold.CAPTURING, Hold.RELEASING):
                return "the hold is still on the card: capture or release it first"
    return None
