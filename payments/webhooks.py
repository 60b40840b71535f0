"""Stripe webhook events -> reservation events, each applied once.

The signature is checked first (several secrets, for rotation). The event id is stored
in the same commit as its effect on the reservation, so a redelivery changes nothing.
Nothing slow happens here: the reply goes back to Stripe as soon as that commit is done.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from payments import reservation as machine
from payments.coordinator import Coordinator, WebhookContext
from payments.reservation import Event
from payments.reservations_store import ReservationStore

log = structlog.get_logger()


@dataclass(frozen=True)
class WebhookOutcome:
    reservation_id: str | None
    applied: str  # what was done: the reservation event's name, "recorded" or "ignored"


def to_reservation_event(event_type: str, obj: dict[str, Any]) -> Event | None:
    """The reservation event a Stripe event stands for (None: recorded only)."""
    match event_type:
        case "checkout.session.completed" | "payment_intent.amount_capturable_updated":
            # Never trusted as it is: it makes the server look the PaymentIntent up.
            return machine.PaymentCompleted()
        case "checkout.session.expired":
            return machine.CheckoutExpired()
        case "checkout.session.async_payment_failed":
            return machine.PaymentFailed("the payment failed")
        case "payment_intent.canceled":
            return machine.HoldCancelledElsewhere(obj.get("cancellation_reason") or "canceled")
        case "charge.dispute.created" if isinstance(obj.get("amount"), int):
            return machine.DisputeOpened(str(obj.get("id")), obj["amount"])
    return None


# Events kept for the record (refunds, disputes, failed attempts) without changing state.
_RECORDED = {
    "payment_intent.payment_failed": "payment attempt failed",
    "payment_intent.succeeded": None,
    "charge.captured": None,
    # Its amount is what is refunded of the captured money in all (see `_recorded_amount`).
    "charge.refunded": "refunds confirmed by stripe (total)",
    # Matched to a reservation it is a DisputeOpened there; otherwise kept for the record.
    "charge.dispute.created": "dispute opened",
    "refund.created": None,
    "refund.updated": None,
}


async def apply_webhook(
    coordinator: Coordinator, reservations: ReservationStore, event: dict[str, Any]
) -> WebhookOutcome:
    event_id, event_type = event["id"], event["type"]
    applied = "failed"
    try:
        # Bound for the whole event, so that the coordinator's lines name it too.
        with structlog.contextvars.bound_contextvars(event_id=event_id, event_type=event_type):
            outcome = await _apply(coordinator, reservations, event_id, event_type, event)
        applied = outcome.applied
        return outcome
    finally:
        if coordinator.observer is not None:
            coordinator.observer.webhook(_type_label(event_type), applied)


async def _apply(
    coordinator: Coordinator,
    reservations: ReservationStore,
    event_id: str,
    event_type: str,
    event: dict[str, Any],
) -> WebhookOutcome:
    obj = event.get("data", {}).get("object", {}) or {}
    reservation_id = await _reservation_of(reservations, obj)
    bound = log.bind(reservation_id=reservation_id)
    context = WebhookContext(event_id, event_type)
    reservation_event = to_reservation_event(event_type, obj)
    if reservation_id is not None and reservation_event is not None:
        await coordinator.handle(reservation_id, reservation_event, webhook=context, actor="stripe")
        bound.info("payments.webhook_applied", applied=type(reservation_event).__name__)
        return WebhookOutcome(reservation_id, type(reservation_event).__name__)
    audit = _RECORDED.get(event_type)
    amount = _recorded_amount(event_type, obj)
    recorded = await coordinator.record_webhook(
        context, reservation_id, audit, amount, obj.get("id")
    )
    applied = "recorded" if event_type in _RECORDED and recorded else "ignored"
    bound.info("payments.webhook_recorded", applied=applied)
    return WebhookOutcome(reservation_id, applied)


def _recorded_amount(event_type: str, obj: dict[str, Any]) -> Any:
    """The amount an audit line of the event shows: the object's, but for `charge.refunded`
    what is refunded of the captured money so far. Stripe counts the part of a hold left
    uncaptured as refunded too (`amount_refunded`), which is not money the driver paid."""
    if event_type != "charge.refunded":
        return obj.get("amount")
    amount, captured, refunded = (
        obj.get(k) for k in ("amount", "amount_captured", "amount_refunded")
    )
    if not all(isinstance(v, int) for v in (amount, captured, refunded)):
        return None
    return max(refunded - (amount - captured), 0)


def _type_label(event_type: str) -> str:
    """The event type as a metric label: any name an unsigned sender makes up is "other"."""
    known = event_type in _RECORDED or to_reservation_event(event_type, {}) is not None
    return event_type if known else "other"


async def _reservation_of(reservations: ReservationStore, obj: dict[str, Any]) -> str | None:
    """The reservation whose stored Checkout Session or PaymentIntent id is the object's (or
    its PaymentIntent's). Metadata alone never picks one: anyone can copy a reservation id
    into another object's metadata, and that object's money is not this reservation's."""
    found = await reservations.find_for_stripe((obj.get("id"), obj.get("payment_intent")))
    claimed = (obj.get("metadata") or {}).get("reservation_id")
    if claimed is not None and claimed != found:
        # None: an object whose id is not stored (yet): e.g. a PaymentIntent before the
        # payment is verified. Another reservation: someone copied metadata.
        (log.warning if found else log.debug)(
            "payments.webhook_unmatched",
            claimed_reservation_id=str(claimed)[:64],
            stripe_id=str(obj.get("id"))[:64],
            matched=found,
        )
    return found
