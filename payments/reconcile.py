"""Reconciliation, the comparison: our books against Stripe's objects, findings out.

Pure: `compare(books, stripe)` takes plain values (our reservations and refunds as
`Books`, what Stripe listed as a `StripeSnapshot`) and returns `Finding`s. It does no
I/O; `payments.reconciler` lists, loads, and acts on the findings through the state
machine. Stripe is the source of truth for money: a finding either tells a reservation
what Stripe says (an event for the machine, which decides), or is reported for a person.

Whose is a Stripe object
------------------------
- A PaymentIntent belongs to a reservation when the ids we stored say so: the
  reservation's stored `payment_intent_id` is the PaymentIntent, or its stored
  `checkout_session_id` is a listed Checkout Session whose `payment_intent` is it.
  Those ids came from Stripe's own answers to our calls.
- Our metadata (`reservation_id`) is how the objects this system created are recognised
  among everything on the account, but it never moves money by itself: anyone can copy a
  reservation id into an object's metadata. A PaymentIntent whose metadata names a
  reservation that exists here but whose ids do not confirm it (or confirm another
  reservation) is reported as UNMATCHED, never acted on.
- A PaymentIntent whose metadata names a reservation that does not exist here at all is
  reported as ORPHAN_HOLD (still authorised) or ORPHAN_PAYMENT (captured): logged loudly
  and counted, never released or refunded automatically, since nothing here proves the
  money is ours to move (another installation or a restored backup may own it). A
  PaymentIntent without our metadata and unknown to our ids is not ours: ignored.
- A refund, a dispute or a charge belongs to the reservation its PaymentIntent belongs to
  (its `payment_intent`, else its charge's).

Rules, per PaymentIntent that belongs to a reservation R
--------------------------------------------------------
`requires_capture` (an authorised hold):
- R ended (not active) and holds nothing (hold None): LATE_PAYMENT, event
  PaymentAuthorised(pi, amount_capturable); the machine releases it.
- R is live (active), or its hold is Held, Capturing or Releasing: fine, no finding.
- R's hold is Captured, Released, Lost or Free: REVIEW (Stripe still holds money that our
  books say was captured, released, lost, or never asked for).
`succeeded` (captured, `amount_received`):
- R's hold is Captured for the same amount: fine.
- R's hold is Capturing for the same amount as R's own capture: fine (in flight).
- anything else (a capture here for another amount, or none): CAPTURED_ELSEWHERE, event
  CapturedElsewhere(amount_received).
`canceled`:
- R's hold is Held or Capturing: HOLD_CANCELLED, event HoldCancelledElsewhere(reason).
- R's hold is Captured: REVIEW (captured here, canceled at Stripe).
- otherwise fine (nothing held, released, or our own release in flight).
Any other status (a payment still being attempted): no finding.

Rules, per Checkout Session whose id R stored
---------------------------------------------
- `expired` while R still waits for payment (PendingPayment, nothing held):
  CHECKOUT_EXPIRED, event CheckoutExpired().

Rules, per refund on R's PaymentIntent (refunds that failed or were canceled: ignored)
-------------------------------------------------------------------------------------
- Its id is the Stripe refund id of one of R's refunds here: fine.
- Its metadata `refund_request_id` names one of R's refunds here:
  still pending here: fine (our refund, its answer on the way);
  settled here with another Stripe refund id: REVIEW (one request refunded twice);
  failed here: REVIEW (failed here, made at Stripe).
- Otherwise (made in the dashboard, or lost to us): REFUNDED_ELSEWHERE, event
  RefundedElsewhere(refund id, amount).

Rules, per dispute on R's PaymentIntent
---------------------------------------
- R records no disputed amount: DISPUTE_OPENED, event DisputeOpened(dispute id, amount).
- Per charge of R marked `disputed` with no dispute listed for it and nothing recorded
  here: REVIEW (a dispute we could not see).

Rules, per reservation
----------------------
- R was created inside the listed window, stored a PaymentIntent and our books say money
  is held or captured (Held, Capturing, Releasing, Captured), but Stripe listed no such
  PaymentIntent: MISSING, reported only (a listing cannot prove an absence well enough
  to move money).

A REVIEW is only found for a reservation that has ended: a live one is still moving, and
the same comparison finds the disagreement again once it has ended, if it still holds.

Each finding that tells the machine something carries a dedupe key,
"reconcile:<kind>:<Stripe id>[:<detail>]", stable for the same fact: recorded in the same
commit as the transition, it makes two reconcilers (or two runs) apply a fact once.
Findings come sorted by reservation, then in the order the machine should hear them
(checkout, payment, capture, refunds, disputes, reviews).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from payments import reservation as machine
from payments.reconcile_objects import (
    StripeCharge,
    StripeDispute,
    StripeIntent,
    StripeRefund,
    StripeSession,
    StripeSnapshot,
)
from payments.refunds import RefundRecord
from payments.reservation import ACTIVE, Event, Hold, Reservation, State

# Clocks differ: a reservation this close to the start of the window may have Stripe
# objects just before it, so it is not expected in the listing.
CLOCK_SKEW = 3600


class Kind(StrEnum):
    CHECKOUT_EXPIRED = "checkout_expired"
    LATE_PAYMENT = "late_payment"
    HOLD_CANCELLED = "hold_cancelled"
    CAPTURED_ELSEWHERE = "captured_elsewhere"
    REFUNDED_ELSEWHERE = "refunded_elsewhere"
    DISPUTE_OPENED = "dispute_opened"
    REVIEW = "review"
    ORPHAN_HOLD = "orphan_hold"
    ORPHAN_PAYMENT = "orphan_payment"
    UNMATCHED = "unmatched"
    MISSING = "missing"


# The kinds that tell the machine something; the others are reported only.
ACTING = frozenset(
    {
        Kind.CHECKOUT_EXPIRED,
        Kind.LATE_PAYMENT,
        Kind.HOLD_CANCELLED,
        Kind.CAPTURED_ELSEWHERE,
        Kind.REFUNDED_ELSEWHERE,
        Kind.DISPUTE_OPENED,
        Kind.REVIEW,
    }
)

# The order in which one reservation hears about its findings.
_ORDER = {kind: n for n, kind in enumerate(Kind)}


# --- Our side.


@dataclass(frozen=True)
class OurRefund:
    request_id: str  # our refund id, sent to Stripe as metadata refund_request_id
    amount: int
    status: str  # pending, succeeded, failed
    stripe_refund_id: str | None

    @classmethod
    def of(cls, record: RefundRecord) -> OurRefund:
        return cls(record.id, record.amount, record.status, record.stripe_refund_id)


@dataclass(frozen=True)
class Books:
    """One reservation as our books have it."""

    reservation_id: str
    state: State
    hold: Hold
    created_at: int  # Unix seconds
    currency: str = ""
    hold_amount: int = 0
    checkout_session_id: str | None = None
    payment_intent_id: str | None = None
    captured_amount: int = 0
    capture_amount: int | None = None  # what our own capture asks for
    disputed_amount: int = 0
    refunds: tuple[OurRefund, ...] = ()

    @property
    def live(self) -> bool:
        return self.state in ACTIVE

    @classmethod
    def of(cls, r: Reservation, refunds: Iterable[RefundRecord] = ()) -> Books:
        return cls(
            reservation_id=r.id,
            state=r.state,
            hold=r.hold,
            created_at=int(r.created_at.timestamp()),
            currency=r.tariff.currency,
            hold_amount=r.hold_amount,
            checkout_session_id=r.checkout_session_id,
            payment_intent_id=r.payment_intent_id,
            captured_amount=r.captured_amount,
            capture_amount=r.capture_amount,
            disputed_amount=r.disputed_amount,
            refunds=tuple(OurRefund.of(x) for x in refunds),
        )


# --- Findings.


@dataclass(frozen=True)
class Finding:
    kind: Kind
    reservation_id: str | None
    stripe_id: str
    detail: str
    amount: int | None = None
    currency: str = ""
    event: Event | None = field(default=None, compare=False)  # None: reported only
    key: str | None = None  # the dedupe key, with an event

    @property
    def acts(self) -> bool:
        return self.event is not None


def compare(books: Iterable[Books], stripe: StripeSnapshot) -> list[Finding]:
    """The findings of one comparison, by the rules in this module's docstring.

    `books` must hold every reservation that a listed object names in its metadata or
    points to by a stored id: a name not among them is taken not to exist here.
    """
    return _Comparison(books, stripe).run()


class _Comparison:
    def __init__(self, books: Iterable[Books], stripe: StripeSnapshot) -> None:
        self.stripe = stripe
        self.books = {b.reservation_id: b for b in books}
        self.findings: list[Finding] = []
        # Our ids -> reservation.
        self.by_session = {
            b.checkout_session_id: b for b in self.books.values() if b.checkout_session_id
        }
        self.owner_of_intent = {
            b.payment_intent_id: b for b in self.books.values() if b.payment_intent_id
        }
        for session in stripe.sessions:
            owner = self.by_session.get(session.id)
            if owner is not None and session.payment_intent:
                self.owner_of_intent.setdefault(session.payment_intent, owner)
        self.intent_of_charge = {c.id: c.payment_intent for c in stripe.charges}

    def run(self) -> list[Finding]:
        for session in self.stripe.sessions:
            self.session(session)
        for intent in self.stripe.intents:
            self.intent(intent)
        for refund in self.stripe.refunds:
            self.refund(refund)
        disputed_charges = {d.charge for d in self.stripe.disputes}
        for dispute in self.stripe.disputes:
            self.dispute(dispute)
        for charge in self.stripe.charges:
            if charge.disputed and charge.id not in disputed_charges:
                self.unseen_dispute(charge)
        self.missing()
        return sorted(
            self.findings,
            key=lambda f: (f.reservation_id or "", _ORDER[f.kind], f.stripe_id, f.key or ""),
        )

    def add(
        self,
        kind: Kind,
        r: Books | None,
        stripe_id: str,
        detail: str,
        amount: int | None = None,
        event: Event | None = None,
        key_detail: str | None = None,
        currency: str = "",
    ) -> None:
        key = None
        if event is not None:
            key = f"reconcile:{kind.value}:{stripe_id}" + (f":{key_detail}" if key_detail else "")
        reservation_id, currency = (r.reservation_id, r.currency) if r else (None, currency)
        self.findings.append(
            Finding(kind, reservation_id, stripe_id, detail, amount, currency, event, key)
        )

    def review(self, r: Books, stripe_id: str, code: str, detail: str) -> None:
        if r.live:
            return  # found again once the reservation has ended, if it still holds
        self.add(Kind.REVIEW, r, stripe_id, detail, None, machine.ReviewNeeded(detail), code)

    # -- Checkout Sessions

    def session(self, session: StripeSession) -> None:
        r = self.by_session.get(session.id)
        if r is None or session.status != "expired":
            return
        if r.state is State.PENDING_PAYMENT and r.hold is Hold.NONE:
            self.add(
                Kind.CHECKOUT_EXPIRED,
                r,
                session.id,
                "Checkout Session expired at Stripe while the reservation waits for payment",
                event=machine.CheckoutExpired(),
            )

    # -- PaymentIntents

    def intent(self, pi: StripeIntent) -> None:
        owner = self.owner_of_intent.get(pi.id)
        claimed = pi.reservation_id
        at_stake = pi.status in ("requires_capture", "succeeded")
        if claimed is not None and (owner is None or owner.reservation_id != claimed):
            if not at_stake:
                return
            if owner is None and claimed not in self.books:
                orphan = pi.status == "requires_capture"
                self.add(
                    Kind.ORPHAN_HOLD if orphan else Kind.ORPHAN_PAYMENT,
                    None,
                    pi.id,
                    f"{'holds' if orphan else 'captured'} money for reservation {claimed},"
                    " which does not exist here; not moved: nothing proves it is ours",
                    pi.amount_capturable if orphan else pi.amount_received,
                    currency=pi.currency,
                )
                return
            confirmed = f"the ids confirm {owner.reservation_id}" if owner else "no stored id"
            self.add(
                Kind.UNMATCHED,
                self.books.get(claimed),
                pi.id,
                f"metadata names {claimed} but {confirmed} matches this PaymentIntent;"
                " not acted on",
                pi.amount_capturable or pi.amount_received,
            )
            return
        if owner is None:
            return  # not ours
        match pi.status:
            case "requires_capture":
                self.held(owner, pi)
            case "succeeded":
                self.captured(owner, pi)
            case "canceled":
                self.canceled(owner, pi)

    def held(self, r: Books, pi: StripeIntent) -> None:
        if r.hold is Hold.NONE:
            if r.live:
                return  # its payment is being confirmed: the machine will see it
            self.add(
                Kind.LATE_PAYMENT,
                r,
                pi.id,
                f"authorised after the reservation ended ({r.state.value}): to be released",
                pi.amount_capturable,
                machine.PaymentAuthorised(pi.id, pi.amount_capturable),
            )
        elif r.hold not in (Hold.HELD, Hold.CAPTURING, Hold.RELEASING):
            self.review(
                r,
                pi.id,
                f"held-but-{r.hold.value.lower()}",
                f"Stripe still holds {pi.amount_capturable} but the hold here is {r.hold.value}",
            )

    def captured(self, r: Books, pi: StripeIntent) -> None:
        amount = pi.amount_received
        if r.hold is Hold.CAPTURED and r.captured_amount == amount:
            return
        if r.hold is Hold.CAPTURING and r.capture_amount == amount:
            return  # our own capture, its answer on the way
        here = (
            f"captured {r.captured_amount} here"
            if r.hold is Hold.CAPTURED
            else f"the hold here is {r.hold.value}"
        )
        self.add(
            Kind.CAPTURED_ELSEWHERE,
            r,
            pi.id,
            f"captured {amount} at Stripe; {here}",
            amount,
            machine.CapturedElsewhere(amount),
            str(amount),
        )

    def canceled(self, r: Books, pi: StripeIntent) -> None:
        reason = pi.cancellation_reason or "canceled"
        if r.hold in (Hold.HELD, Hold.CAPTURING):
            self.add(
                Kind.HOLD_CANCELLED,
                r,
                pi.id,
                f"hold canceled at Stripe ({reason}) while held here",
                r.hold_amount,
                machine.HoldCancelledElsewhere(reason),
            )
        elif r.hold is Hold.CAPTURED:
            self.review(
                r,
                pi.id,
                "captured-but-canceled",
                f"captured {r.captured_amount} here but canceled at Stripe ({reason})",
            )

    # -- refunds, disputes, charges

    def owner_through(self, payment_intent: str | None, charge: str | None) -> Books | None:
        intent = payment_intent or (self.intent_of_charge.get(charge) if charge else None)
        return self.owner_of_intent.get(intent) if intent else None

    def refund(self, refund: StripeRefund) -> None:
        r = self.owner_through(refund.payment_intent, refund.charge)
        if r is None or refund.status in ("failed", "canceled"):
            return
        if any(ours.stripe_refund_id == refund.id for ours in r.refunds):
            return
        ours = next((x for x in r.refunds if x.request_id == refund.request_id), None)
        if ours is not None:
            if ours.status == "pending":
                return  # our refund, its answer on the way
            if ours.status == "failed":
                detail = f"refund {ours.request_id} failed here but Stripe made {refund.id}"
            else:
                detail = (
                    f"refund {ours.request_id} was made twice at Stripe:"
                    f" {ours.stripe_refund_id} and {refund.id}"
                )
            self.review(r, refund.id, "refund-twice", detail)
            return
        self.add(
            Kind.REFUNDED_ELSEWHERE,
            r,
            refund.id,
            "refunded at Stripe, not asked for here",
            refund.amount,
            machine.RefundedElsewhere(refund.id, refund.amount),
        )

    def dispute(self, dispute: StripeDispute) -> None:
        r = self.owner_through(dispute.payment_intent, dispute.charge)
        if r is None or r.disputed_amount > 0:
            return
        self.add(
            Kind.DISPUTE_OPENED,
            r,
            dispute.id,
            f"disputed {dispute.amount} at Stripe ({dispute.status or 'open'})",
            dispute.amount,
            machine.DisputeOpened(dispute.id, dispute.amount),
        )

    def unseen_dispute(self, charge: StripeCharge) -> None:
        r = self.owner_through(charge.payment_intent, None)
        if r is None or r.disputed_amount > 0:
            return
        self.review(
            r, charge.id, "disputed", f"charge {charge.id} is disputed at Stripe; dispute not seen"
        )

    # -- our side

    def missing(self) -> None:
        listed = {i.id for i in self.stripe.intents}
        for r in self.books.values():
            if (
                r.payment_intent_id
                and r.payment_intent_id not in listed
                and r.hold in (Hold.HELD, Hold.CAPTURING, Hold.RELEASING, Hold.CAPTURED)
                and r.created_at >= self.stripe.since + CLOCK_SKEW
            ):
                self.add(
                    Kind.MISSING,
                    r,
                    r.payment_intent_id,
                    f"the hold here is {r.hold.value} but Stripe listed no such PaymentIntent",
                    r.captured_amount if r.hold is Hold.CAPTURED else r.hold_amount,
                )


_DURATION = re.compile(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_UNITS = (7 * 86400, 86400, 3600, 60, 1)


def parse_since(text: str, now: datetime) -> datetime:
    """`--since`: an ISO 8601 time (UTC unless it says otherwise) or a duration back from
    `now` such as "90m", "24h", "7d" or "1d12h". Raises ValueError."""
    text = text.strip()
    match = _DURATION.fullmatch(text)
    if text and match:
        seconds = sum(int(n) * unit for n, unit in zip(match.groups(), _UNITS, strict=True) if n)
        return now - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"not an ISO 8601 time or a duration such as 24h or 7d: {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
