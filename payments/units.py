"""The database half of a transition: what one unit of work writes for it.

Each function runs on the database thread inside the caller's transaction and touches
only its connection and its arguments (no clock, no charger state, no event-loop
objects), so a transition, its effects, its audit lines and a refund's outcome commit
together or not at all.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from payments import reservation as machine
from payments.audit_log import AuditLog
from payments.outbox import Outbox, PendingEffect
from payments.refunds import RefundStore
from payments.reservation import Decision, Event, Hold, Policy, Reservation, State, next_deadline
from payments.reservations_store import ReservationStore
from storage.db import Connection

log = structlog.get_logger()


def persist(
    reservations: ReservationStore,
    outbox: Outbox,
    policy: Policy,
    conn: Connection,
    before: Reservation,
    decision: Decision,
    event: str,
    now: datetime,
) -> list[PendingEffect]:
    """Save the transition and queue its effects; returns the effects queued."""
    after = decision.reservation
    reservations.save(conn, before, after, event, next_deadline(after, policy), now)
    queued = [outbox.add(conn, after.id, effect, now) for effect in decision.effects]
    if before.state != after.state:
        log.info(
            "payments.transition",
            reservation_id=after.id,
            cause=event,
            state=after.state.value,
            previous=before.state.value,
            hold=after.hold.value,
            reason=after.failure_reason,
        )
    return [pending for pending in queued if pending is not None]


# An audit line: action, amount, Stripe id, detail (None: the reservation's failure reason).
_Line = tuple[str, int | None, str | None, str | None]


def audit_lines(before: Reservation, after: Reservation, event: Event) -> list[_Line]:
    """One line for each movement of money, each cancellation, review and operator act."""
    pi = after.payment_intent_id
    lines: list[_Line] = []
    if before.hold is Hold.NONE and after.hold is not Hold.NONE and pi:
        lines.append(("hold confirmed", after.hold_amount, pi, None))
        if before.state is not State.PENDING_PAYMENT:
            lines.append(("paid after the reservation ended", after.hold_amount, pi, None))
    if before.checkout_session_id is None and after.checkout_session_id:
        lines.append(("checkout created", after.hold_amount, after.checkout_session_id, None))
    if before.hold is not Hold.CAPTURED and after.hold is Hold.CAPTURED:
        elsewhere = isinstance(event, machine.CapturedElsewhere)
        lines.append(
            ("captured at stripe" if elsewhere else "captured", after.captured_amount, pi, None)
        )
    if before.hold is not Hold.RELEASED and after.hold is Hold.RELEASED:
        lines.append(("hold released", after.hold_amount, pi, None))
    if before.hold is not Hold.LOST and after.hold is Hold.LOST:
        lines.append(("hold cancelled by stripe", after.hold_amount, pi, None))
    lines.extend(_event_lines(before, after, event))
    lines.extend(_meter_lines(before, after))
    if after.state is State.NEEDS_REVIEW and before.state is not State.NEEDS_REVIEW:
        lines.append(("needs review", None, pi, None))
    return lines


def _event_lines(before: Reservation, after: Reservation, event: Event) -> list[_Line]:
    pi = after.payment_intent_id
    match event:
        case machine.Cancel(by) if before.state != after.state:
            return [(f"cancelled by {by}", None, None, None)]
        case machine.TransactionStarted() | machine.StrayTransaction() if (
            after.stray_transaction_id != before.stray_transaction_id
        ):
            detail = f"transaction {after.stray_transaction_id} started with this tag after "
            detail += f"the reservation ended ({after.state.value}): answered Invalid, stopped"
            return [("stray transaction stopped", None, None, detail)]
        case machine.CaptureRejected(reason, kind) if before.hold is Hold.CAPTURING:
            return [(f"capture refused ({kind})", before.capture_amount, pi, reason)]
        case machine.RefundedElsewhere(stripe_refund_id, amount):
            return [("refunded at stripe", amount, stripe_refund_id, None)]
        case machine.DisputeOpened(dispute_id, amount):
            return [("dispute opened", amount, dispute_id, None)]
        case machine.RetryCapture() if after.state is not State.NEEDS_REVIEW:
            return [("capture retried", after.capture_amount, pi, None)]
        case machine.ReleaseInReview() if after.state is State.RESOLVED:
            return [("release requested in review", after.hold_amount, pi, None)]
        case machine.Resolve(note) if after.state is State.RESOLVED:
            return [("review resolved", None, None, note)]
    return []


def _meter_lines(before: Reservation, after: Reservation) -> list[_Line]:
    """A meter not taken at its word changes what is billed (payments.energy)."""
    lines: list[_Line] = []
    if after.meter_restarts > before.meter_restarts:
        lines.append(("meter register restarted", None, None, after.meter_warning))
    if after.meter_bounded_wh > before.meter_bounded_wh:
        lines.append(("meter reading bounded", None, None, after.meter_warning))
    return lines


def audit_transition(
    audit: AuditLog,
    conn: Connection,
    before: Reservation,
    after: Reservation,
    event: Event,
    actor: str,
    now: datetime,
) -> None:
    for action, amount, stripe_id, detail in audit_lines(before, after, event):
        audit.write(
            conn,
            now,
            actor,
            action,
            after.id,
            amount,
            after.tariff.currency,
            stripe_id,
            detail if detail is not None else after.failure_reason,
        )


def settle_refund(
    audit: AuditLog,
    refunds: RefundStore,
    conn: Connection,
    r: Reservation,
    event: Event,
    now: datetime,
) -> None:
    """A refund's outcome, recorded with the transition that reports it."""
    match event:
        case machine.RefundSucceeded(refund_id, amount, stripe_refund_id):
            refunds.settle(
                conn, refund_id, stripe_refund_id=stripe_refund_id, failure=None, now=now
            )
            audit.write(
                conn, now, "stripe", "refunded", r.id, amount, r.tariff.currency, stripe_refund_id
            )
        case machine.RefundedElsewhere(stripe_refund_id, amount):
            # Kept as a refund like ours, so the next reconciliation knows it.
            refund_id = f"rf_{stripe_refund_id}"
            refunds.add(conn, refund_id, r.id, amount, "refunded at Stripe", "stripe", now)
            refunds.settle(
                conn, refund_id, stripe_refund_id=stripe_refund_id, failure=None, now=now
            )
        case machine.RefundFailed(refund_id, amount, reason):
            refunds.settle(conn, refund_id, stripe_refund_id=None, failure=reason, now=now)
            audit.write(
                conn,
                now,
                "stripe",
                "refund failed",
                r.id,
                amount,
                r.tariff.currency,
                None,
                reason,
            )
