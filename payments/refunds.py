"""Refunds as records: asked for by an operator, carried out through the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.clock import to_text
from storage.db import Connection, Database


@dataclass(frozen=True)
class RefundRecord:
    id: str
    reservation_id: str
    amount: int
    reason: str
    status: str
    stripe_refund_id: str | None
    failure: str | None
    requested_by: str
    created_at: str
    updated_at: str = ""  # when it succeeded or failed (else when it was asked for)

    @classmethod
    def of(cls, row: Any) -> RefundRecord:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


class RefundStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self,
        conn: Connection,
        refund_id: str,
        reservation_id: str,
        amount: int,
        reason: str,
        requested_by: str,
        now: datetime,
    ) -> None:
        conn.execute(
            "INSERT INTO refunds (id, reservation_id, amount, reason, status, requested_by,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
            (refund_id, reservation_id, amount, reason, requested_by, to_text(now), to_text(now)),
        )

    def settle(
        self,
        conn: Connection,
        refund_id: str,
        *,
        stripe_refund_id: str | None,
        failure: str | None,
        now: datetime,
    ) -> None:
        conn.execute(
            "UPDATE refunds SET status = ?, stripe_refund_id = ?, failure = ?, updated_at = ?"
            " WHERE id = ? AND status = 'pending'",
            (
                "failed" if failure else "succeeded",
                stripe_refund_id,
                failure,
                to_text(now),
                refund_id,
            ),
        )

    def find(self, conn: Connection, refund_id: str) -> RefundRecord | None:
        row = conn.execute("SELECT * FROM refunds WHERE id = ?", (refund_id,)).fetchone()
        return RefundRecord.of(row) if row else None

    async def get(self, refund_id: str) -> RefundRecord | None:
        row = await self.db.fetchone("SELECT * FROM refunds WHERE id = ?", (refund_id,))
        return RefundRecord.of(row) if row else None

    async def of_reservation(self, reservation_id: str) -> list[RefundRecord]:
        rows = await self.db.fetchall(
            "SELECT * FROM refunds WHERE reservation_id = ? ORDER BY created_at, id",
            (reservation_id,),
        )
        return [RefundRecord.of(row) for row in rows]
