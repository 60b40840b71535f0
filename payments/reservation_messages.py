"""The state machine's vocabulary: the facts it is given, the events it takes and the
effects it asks for. Plain frozen values, encoded as they are into the outbox
(`payments.codec`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from payments.transfer_messages import (
    OwnerNotReady,
    OwnerReady,
    ReversalRefused,
    ReverseTransfer,
    Transferred,
    TransferRefused,
    TransferReversed,
    TransferToOwner,
)

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
class CheckoutHandedOver:
    """The driver has the Checkout link: they have until `payment_deadline` to pay. Until
    then the reservation has only the short hand-over window, so that one whose link never
    reached anybody (the process died while making it) does not hold the connector."""

    payment_deadline: datetime


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
    # The same request may have reached the charger before (a retry, or sent by a process
    # that died): a refusal may then mean the first one got through.
    repeated: bool = False


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
class RemoteStopUndelivered:
    """The charger was offline: the stop is sent again the moment it is back."""


@dataclass(frozen=True)
class StrayTransaction:
    """The charger started a transaction with this reservation's tag that the reservation
    cannot own (it ended, or the tag was used elsewhere): it must be stopped."""

    charger_id: str
    transaction_id: int


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
    # The energy register in StopTransaction's transactionData: (timestamp, Wh) readings.
    readings: tuple[tuple[datetime, int], ...] = ()


@dataclass(frozen=True)
class Captured:
    amount: int
    # Stripe's fee on the charge, in the charge's currency, when the capture's answer said
    # it (its balance transaction); None: not known.
    stripe_fee: int | None = None


# Why Stripe refused a capture, as the effect classifies it.
BELOW_MINIMUM = "below_minimum"  # the amount is below the currency's minimum charge
AUTHORISATION_EXPIRED = "authorisation_expired"  # the hold lapsed or was cancelled
REFUSED = "refused"  # anything else: someone must look


@dataclass(frozen=True)
class CaptureRejected:
    reason: str
    kind: str = REFUSED


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


# -- What reconciliation finds at Stripe, the source of truth.


@dataclass(frozen=True)
class CapturedElsewhere:
    """Stripe says the PaymentIntent was captured for `amount` (e.g. in the dashboard)."""

    amount: int


@dataclass(frozen=True)
class RefundedElsewhere:
    """A refund at Stripe that was not asked for here."""

    stripe_refund_id: str
    amount: int


@dataclass(frozen=True)
class DisputeOpened:
    dispute_id: str
    amount: int


@dataclass(frozen=True)
class ReviewNeeded:
    """Our books and Stripe's disagree in a way no rule settles."""

    reason: str


# -- An operator's way out of NeedsReview.


@dataclass(frozen=True)
class RetryCapture:
    amount: int | None = None  # None: the session's price


@dataclass(frozen=True)
class ReleaseInReview:
    pass


@dataclass(frozen=True)
class Resolve:
    note: str


ReviewAction = RetryCapture | ReleaseInReview | Resolve


@dataclass(frozen=True)
class Tick:
    """Time passed: deadlines are checked."""


Event = (
    CheckoutCreated
    | CheckoutUnavailable
    | CheckoutHandedOver
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
    | RemoteStopUndelivered
    | StrayTransaction
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
    | CapturedElsewhere
    | RefundedElsewhere
    | DisputeOpened
    | ReviewNeeded
    | RetryCapture
    | ReleaseInReview
    | Resolve
    | Tick
    | OwnerNotReady
    | OwnerReady
    | Transferred
    | TransferRefused
    | TransferReversed
    | ReversalRefused
)


# --- Effects.


@dataclass(frozen=True)
class CreateCheckout:
    # The language of the driver's pages ("en", "de"), for Checkout's; None: Stripe picks.
    locale: str | None = None
    # The charger's name when the reservation was made, for Checkout's line item (None: its
    # id). Fixed in the effect, so that a retried request to Stripe is the same request.
    charger_name: str | None = None


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
    charger_id: str | None = None  # None: the reservation's charger


@dataclass(frozen=True)
class Capture:
    payment_intent_id: str
    amount: int
    attempt: int = 1  # a retry after a refusal needs a new idempotency key


@dataclass(frozen=True)
class ReleaseHold:
    payment_intent_id: str
    attempt: int = 1


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
    | TransferToOwner
    | ReverseTransfer
)
