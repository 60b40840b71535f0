"""The effect outbox: what a transition requires done (Stripe calls, charger commands),
kept as rows until it is.

Contract: `add` and `done` run in the caller's open transaction and touch only that
connection and their arguments, so an effect is queued in the same commit as the
transition that requires it, and marked done in the same commit as the event that reports
its outcome. Every effect carries a deterministic idempotency key (`idempotency_key`), unique
in the table: `add` queues an effect whose key is queued already no second time, and `done`
says False for an effect done before, whose outcome was applied then. An effect stays
pending until `done`: `retry` counts the attempt, keeps its error and puts the next one
off; `due` finds the pending effects again after a restart.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from payments.codec import decode_effect, effect_kind, encode_effect
from payments.reservation import Capture, Effect, ReleaseHold
from storage.clock import to_text
from storage.db import Database

# Stripe writes carry a key that is the same however often the effect is retried.
# A new attempt (an operator's retry after Stripe refused) needs a new key, since Stripe
# answers a key it has seen with its first answer; the first attempt keeps the plain key.
_STRIPE_KEYS = {
    "CreateCheckout": "checkout:{id}",
    "ExpireCheckout": "expire-checkout:{id}",
}


def _attempt(key: str, attempt: int) -> str:
    return key if attempt <= 1 else f"{key}:{attempt}"


def idempotency_key(reservation_id: str, effect: Effect, sequence: int) -> str:
    kind = effect_kind(effect)
    if kind in _STRIPE_KEYS:
        return _STRIPE_KEYS[kind].format(id=reservation_id)
    if isinstance(effect, Capture):
        return _attempt(f"capture:{reservation_id}:{effect.amount}", effect.attempt)
    if isinstance(effect, ReleaseHold):
        return _attempt(f"release:{reservation_id}", effect.attempt)
    if kind == "Refund":
        return f"refund:{effect.refund_id}"  # type: ignore[union-attr]
    # Charger commands and payment checks may legitimately repeat: number them.
    return f"{kind}:{reservation_id}:{sequence}"


@dataclass(frozen=True)
class PendingEffect:
    id: int
    reservation_id: str
    effect: Effect
    idempotency_key: str
    attempts: int
    created_at: str = ""  # as stored; empty for an effect just queued


class Outbox:
    """The `effects` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self, conn: sqlite3.Connection, reservation_id: str, effect: Effect, now: datetime
    ) -> PendingEffect | None:
        """Queue an effect; None when its idempotency key is queued already."""
        kind = effect_kind(effect)
        count = conn.execute(
            "SELECT COUNT(*) AS n FROM effects WHERE reservation_id = ? AND kind = ?",
            (reservation_id, kind),
        ).fetchone()
        assert count is not None
        key = idempotency_key(reservation_id, effect, count["n"] + 1)
        cursor = conn.execute(
            "INSERT INTO effects (reservation_id, kind, payload, idempotency_key,"
            " next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (idempotency_key) DO NOTHING",
            (reservation_id, kind, encode_effect(effect), key, to_text(now), to_text(now)),
        )
        if cursor.rowcount == 0 or cursor.lastrowid is None:
            return None
        return PendingEffect(cursor.lastrowid, reservation_id, effect, key, 0)

    def done(self, conn: sqlite3.Connection, effect_id: int, result: str, now: datetime) -> bool:
        """Mark an effect done; False when it was done already (its result was applied)."""
        cursor = conn.execute(
            "UPDATE effects SET status = 'done', result = ?, done_at = ?, attempts = attempts + 1"
            " WHERE id = ? AND status = 'pending'",
            (result, to_text(now), effect_id),
        )
        return cursor.rowcount > 0

    async def due(
        self, now: datetime, limit: int = 100, reservation_id: str | None = None
    ) -> list[PendingEffect]:
        sql = "SELECT * FROM effects WHERE status = 'pending' AND next_attempt_at <= ?"
        params: list[object] = [to_text(now)]
        if reservation_id is not None:
            sql += " AND reservation_id = ?"
            params.append(reservation_id)
        rows = await self.db.fetchall(sql + " ORDER BY id LIMIT ?", (*params, limit))
        return [
            PendingEffect(
                row["id"],
                row["reservation_id"],
                decode_effect(row["kind"], row["payload"]),
                row["idempotency_key"],
                row["attempts"],
                row["created_at"],
            )
            for row in rows
        ]

    async def next_at(self) -> str | None:
        row = await self.db.fetchone(
            "SELECT MIN(next_attempt_at) AS at FROM effects WHERE status = 'pending'"
        )
        return row["at"] if row else None

    async def retry(self, effect_id: int, next_at: datetime, error: str) -> None:
        await self.db.execute(
            "UPDATE effects SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
            " WHERE id = ? AND status = 'pending'",
            (to_text(next_at), error[:500], effect_id),
        )

    async def of_reservation(self, reservation_id: str) -> list[dict[str, Any]]:
        rows = await self.db.fetchall(
            "SELECT id, kind, payload, idempotency_key, status, attempts, last_error, result,"
            " created_at, done_at FROM effects WHERE reservation_id = ? ORDER BY id",
            (reservation_id,),
        )
        return [dict(row) for row in rows]
