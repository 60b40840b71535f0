"""Owners' shares beyond the state machine: reads of the `transfers` table (written by
payments.transfer_records), the owner-ready hook, `transfer.*` webhooks, and the operator's
alert for a movement Stripe refused.

`TransferService.on_ready(owner_id)` is the owner-readiness hook: every payment of the owner
whose share accrued (or was refused) gets `OwnerReady`, which queues the transfer again;
`sweep()` does the same for the accrued shares of every ready owner (at start-up: a hook
lost to a crash; and after each scheduled reconciliation, on the node that leads: a hook
call lost without a restart).
`TransferAlerts` raises one alert per failed movement (its subject: the movement's id).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import structlog

from payments.alerts import Candidate
from payments.audit_log import AuditLog
from payments.codec import decode_reservation
from payments.currency import format_money
from payments.reservation import Event, Reservation
from payments.transfer_messages import (
    ACCRUED,
    REFUSED,
    OwnerReady,
)
from payments.webhooks import WebhookOutcome
from storage.clock import utc_now
from storage.db import Connection, Database

log = structlog.get_logger()

TRANSFER_FAILED = "transfer_failed"  # the alert's kind


class TransferStore:
    """Reads of the `transfers` table and of the payments that owe an owner a share."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def of_reservation(self, reservation_id: str) -> list[dict[str, Any]]:
        rows = await self.db.fetchall(
            "SELECT * FROM transfers WHERE reservation_id = ? ORDER BY created_at,"
            " CASE kind WHEN 'transfer' THEN 0 ELSE 1 END, id",
            (reservation_id,),
        )
        return [dict(row) for row in rows]

    async def by_stripe_id(self, stripe_id: str) -> dict[str, Any] | None:
        row = await self.db.fetchone("SELECT * FROM transfers WHERE stripe_id = ?", (stripe_id,))
        return dict(row) if row else None

    async def owed(self, owner_id: str | None = None) -> list[Reservation]:
        """Payments (of `owner_id`, or of every owner) whose share waits: accrued or refused."""
        sql = "SELECT data FROM reservations WHERE transfer_status IN ('accrued', 'refused')"
        params: tuple[str, ...] = ()
        if owner_id is not None:
            sql, params = sql + " AND owner_id = ?", (owner_id,)
        rows = await self.db.fetchall(sql + " ORDER BY created_at", params)
        found = (decode_reservation(row["data"]) for row in rows)
        return [r for r in found if r.transfer_status in (ACCRUED, REFUSED)]

    async def named(self, reservation_ids: list[str]) -> list[Reservation]:
        """The payments with an owner among `reservation_ids` (transfer groups at Stripe)."""

        def find(conn: Connection) -> list[Reservation]:
            found = []
            for start in range(0, len(reservation_ids), 500):
                chunk = reservation_ids[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT data FROM reservations WHERE owner_id IS NOT NULL AND id IN ({marks})",
                    chunk,
                ).fetchall()
                found += [decode_reservation(row["data"]) for row in rows]
            return found

        return await self.db.read(find)

    async def with_owner_since(self, since: str) -> list[Reservation]:
        """Payments with an owner made since `since`, for reconciliation."""
        rows = await self.db.fetchall(
            "SELECT data FROM reservations WHERE owner_id IS NOT NULL AND created_at >= ?"
            " ORDER BY created_at",
            (since,),
        )
        return [decode_reservation(row["data"]) for row in rows]


class Handler(Protocol):
    async def handle(self, reservation_id: str, event: Event, *, actor: str = ...) -> Any: ...


class ReadyOwners(Protocol):
    async def get(self, owner_id: str) -> Any: ...


class TransferService:
    def __init__(
        self,
        store: TransferStore,
        coordinator: Handler,
        owners: ReadyOwners,
        audit: AuditLog | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self._coordinator = coordinator
        self._owners = owners
        self._audit = audit or AuditLog(store.db)
        self._clock = clock

    async def on_ready_hook(self, owner_id: str) -> None:
        """`on_ready` as payments.owners.OnReady."""
        await self.on_ready(owner_id)

    async def webhook(self, event: dict[str, Any]) -> WebhookOutcome:
        """A `transfer.*` event: recorded once, and checked against the movement stored for
        it. Stripe's amount differing from ours is written to the audit log as a
        disagreement (reconciliation then puts the payment in review). An event ahead of our
        own record (the transfer's answer not yet committed) is only recorded."""
        obj = (event.get("data") or {}).get("object") or {}
        stripe_id = str(obj.get("id") or "")
        row = await self.store.by_stripe_id(stripe_id) if stripe_id else None
        reservation_id = row["reservation_id"] if row else None
        amount = obj.get("amount")
        differs = row is not None and isinstance(amount, int) and amount != row["amount"]
        now, audit, event_id, event_type = self._clock(), self._audit, event["id"], event["type"]

        def apply(conn: Connection) -> bool:
            fresh = audit.record_webhook(
                conn, event_id, event_type, reservation_id, "recorded", now
            )
            if fresh and differs:
                detail = f"stripe says {amount}, ours {row['amount']}"
                audit.write(
                    conn,
                    now,
                    "stripe",
                    "transfer differs",
                    reservation_id,
                    amount,
                    obj.get("currency"),
                    stripe_id,
                    detail,
                )
            return fresh

        fresh = await self.store.db.write(apply)
        if differs:
            log.warning("payments.transfer_differs", stripe_id=stripe_id, amount=amount)
        return WebhookOutcome(reservation_id, "recorded" if fresh else "ignored")

    async def on_ready(self, owner_id: str) -> int:
        """The owner can receive transfers now: ask again for every share owed to them."""
        owed = await self.store.owed(owner_id)
        for r in owed:
            await self._coordinator.handle(r.id, OwnerReady(), actor="system")
        if owed:
            log.info("payments.owner_shares_released", owner_id=owner_id, payments=len(owed))
        return len(owed)

    async def sweep(self) -> int:
        """Ask again for the shares that accrued for owners who are ready now (a readiness
        hook lost to a crash). Refused shares wait for a person (or the readiness hook)."""
        accrued = [r for r in await self.store.owed() if r.transfer_status == ACCRUED]
        ready: dict[str, bool] = {}
        for r in accrued:
            assert r.owner_id is not None
            if r.owner_id not in ready:
                owner = await self._owners.get(r.owner_id)
                ready[r.owner_id] = owner is not None and owner.ready
            if ready[r.owner_id]:
                await self._coordinator.handle(r.id, OwnerReady(), actor="system")
        return sum(1 for r in accrued if ready.get(r.owner_id or ""))


class TransferAlerts:
    """An alert source (payments.alerts): one alert per movement Stripe refused."""

    def due(self, conn: Connection) -> list[Candidate]:
        rows = conn.execute(
            "SELECT * FROM transfers t WHERE t.status = 'failed' AND NOT EXISTS"
            " (SELECT 1 FROM alerts a WHERE a.subject = ? || t.id) ORDER BY t.created_at LIMIT 100",
            (f"{TRANSFER_FAILED}:",),
        ).fetchall()
        return [
            Candidate(
                TRANSFER_FAILED,
                f"{TRANSFER_FAILED}:{row['id']}",
                row["reservation_id"],
                f"Stripe refused the {row['kind']} of"
                f" {format_money(row['amount'], row['currency'])} for owner {row['owner_id']}:"
                f" {row['failure']}",
                {
                    "reservationId": row["reservation_id"],
                    "ownerId": row["owner_id"],
                    "kind": row["kind"],
                    "amount": row["amount"],
                    "currency": row["currency"],
                    "reason": row["failure"],
                },
            )
            for row in rows
        ]

    def raised(self, conn: Connection, candidates: list[Candidate]) -> None:
        """Nothing to mark: the alert's subject is the mark (`alerts` keeps it)."""
