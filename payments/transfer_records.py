"""A movement of an owner's share as a record: its `transfers` row and its audit lines,
written by the coordinator in the unit of work of the transition that reports it.

Contract: `record` runs on the connection of that transition and touches only that
connection and its arguments, so a movement's row, its audit lines and the reservation's
new state commit together or not at all. A row's id is the movement's idempotency key
(`transfer:{reservation}[:attempt]`, `reversal:{refund id | transfer id}`), its `stripe_id`
Stripe's (unique): a movement is recorded once. A movement Stripe refused is kept with
status `failed` and its reason (payments.transfers.TransferAlerts raises its alert).
"""

from __future__ import annotations

from datetime import datetime

from payments.audit_log import AuditLog
from payments.reservation import Event, Reservation
from payments.transfer_messages import (
    TRANSFERRING,
    OwnerNotReady,
    OwnerReady,
    ReversalRefused,
    Transferred,
    TransferRefused,
    TransferReversed,
)
from storage.clock import to_text
from storage.db import Connection


def transfer_key(reservation_id: str, attempt: int) -> str:
    key = f"transfer:{reservation_id}"
    return key if attempt <= 1 else f"{key}:{attempt}"


# A movement's row: id (its key), kind, amount, status, Stripe's id, the reason of a refusal.
_Row = tuple[str, str, int, str, str | None, str | None]
# An audit line: actor, action, amount, Stripe's id, detail.
_Line = tuple[str, str, int, str | None, str | None]


def record(
    audit: AuditLog,
    conn: Connection,
    before: Reservation,
    after: Reservation,
    event: Event,
    actor: str,
    now: datetime,
) -> None:
    """The movement `event` reports, if it made one: its row and its audit lines."""
    if after.owner_id is None:
        return
    lines, row = movement(before, after, event, actor)
    for who, action, amount, stripe_id, detail in lines:
        audit.write(
            conn, now, who, action, after.id, amount, after.tariff.currency, stripe_id, detail
        )
    if row is not None and row[2] > 0:
        _insert(conn, after, row, now)


def movement(
    before: Reservation, after: Reservation, event: Event, actor: str
) -> tuple[list[_Line], _Row | None]:
    """What a transition did to the owner's share, as audit lines and a movement's row."""
    owner, lines = after.owner_id, []
    row: _Row | None = None
    if before.transfer_status is None and after.transfer_status is not None:
        detail = f"owner {owner}: {after.owner_share}, operator: {after.operator_share}"
        lines.append((actor, "owner share", after.owner_share, None, detail))
    was_moving = before.transfer_status == TRANSFERRING
    match event:
        case Transferred(transfer_id, amount) if was_moving:
            row = (key_of(after), "transfer", amount, "succeeded", transfer_id, None)
            lines.append(("stripe", "transferred to owner", amount, transfer_id, owner))
        case TransferRefused(reason) if was_moving:
            row = (key_of(after), "transfer", before.owner_share, "failed", None, reason)
            lines.append(("stripe", "transfer refused", before.owner_share, None, reason))
        case OwnerNotReady() if was_moving:
            detail = f"owner {owner} cannot receive transfers yet"
            lines.append((actor, "owner share accrued", after.owner_share, None, detail))
        case OwnerReady() if after.transfer_status == TRANSFERRING and not was_moving:
            lines.append((actor, "transfer asked again", after.owner_share, None, owner))
        case OwnerReady() if after.reversing_amount > before.reversing_amount:
            amount = after.reversing_amount - before.reversing_amount
            lines.append((actor, "reversal asked again", amount, None, owner))
        case TransferReversed(key, reversal_id, amount) if (
            after.reversed_amount > before.reversed_amount
        ):
            row = (f"reversal:{key}", "reversal", amount, "succeeded", reversal_id, None)
            lines.append(("stripe", "transfer reversed", amount, reversal_id, key))
        case ReversalRefused(key, amount, reason) if (
            after.reversing_amount < before.reversing_amount
        ):
            row = (f"reversal:{key}", "reversal", amount, "failed", None, reason)
            lines.append(("stripe", "reversal refused", amount, None, reason))
    return lines, row


def key_of(r: Reservation) -> str:
    """The key of the reservation's latest transfer attempt."""
    return transfer_key(r.id, r.transfer_attempts)


def _insert(conn: Connection, r: Reservation, row: _Row, now: datetime) -> None:
    key, kind, amount, status, stripe_id, failure = row
    at = to_text(now)
    conn.execute(
        "INSERT INTO transfers (id, reservation_id, owner_id, kind, amount, currency, status,"
        " stripe_id, failure, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (
            key,
            r.id,
            r.owner_id,
            kind,
            amount,
            r.tariff.currency,
            status,
            stripe_id,
            failure,
            at,
            at,
        ),
    )
