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

Several nodes share the table: an effect is claimed by the node that carries it out (the
one that queued it, at once). `due` returns only the effects this node may carry out,
claiming them as it goes: its own, unclaimed ones, and those of a node whose lease has run
out (`taken_over`: that node may have carried them out already). On PostgreSQL it skips
rows another node is claiming at that moment, rather than waiting for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from payments.codec import decode_effect, effect_kind, encode_effect
from payments.reservation import Capture, Effect, ReleaseHold
from payments.transfer_messages import ReverseTransfer, TransferToOwner
from storage.clock import to_text
from storage.db import Connection, Database
from storage.nodes import alive
from storage.sql import Row

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
    if isinstance(effect, TransferToOwner):
        return _attempt(f"transfer:{reservation_id}", effect.attempt)
    if isinstance(effect, ReverseTransfer):
        return f"reversal:{effect.key}"
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
    taken_over: bool = False  # claimed from a node whose lease ran out


class Outbox:
    """The `effects` table, as seen by one node."""

    def __init__(self, db: Database, node_id: str) -> None:
        self.db = db
        self.node_id = node_id

    def add(
        self, conn: Connection, reservation_id: str, effect: Effect, now: datetime
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
            " next_attempt_at, created_at, claimed_by) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
            (
                reservation_id,
                kind,
                encode_effect(effect),
                key,
                to_text(now),
                to_text(now),
                self.node_id,
            ),
        )
        inserted = cursor.fetchone()
        if inserted is None:  # queued already
            return None
        return PendingEffect(inserted["id"], reservation_id, effect, key, 0)

    def done(self, conn: Connection, effect_id: int, result: str, now: datetime) -> bool:
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
        """The pending effects this node may carry out now, claimed for it."""
        at = to_text(now)
        sql = (
            "SELECT * FROM effects WHERE status = 'pending' AND next_attempt_at <= ?"
            f" AND ({self._mine_or_free})"
        )
        params: list[object] = [at, self.node_id, at]
        if reservation_id is not None:
            sql += " AND reservation_id = ?"
            params.append(reservation_id)
        sql += f" ORDER BY id LIMIT ?{self.db.dialect.skip_locked}"
        params.append(limit)

        def claim(conn: Connection) -> list[Row]:
            rows = conn.execute(sql, params).fetchall()
            theirs = [row["id"] for row in rows if row["claimed_by"] != self.node_id]
            if theirs:
                marks = ", ".join("?" * len(theirs))  # at most `limit` of them
                conn.execute(
                    f"UPDATE effects SET claimed_by = ? WHERE id IN ({marks})",
                    (self.node_id, *theirs),
                )
            return rows

        rows = await self.db.write(claim)
        return [
            PendingEffect(
                row["id"],
                row["reservation_id"],
                decode_effect(row["kind"], row["payload"]),
                row["idempotency_key"],
                row["attempts"],
                row["created_at"],
                taken_over=row["claimed_by"] not in (None, self.node_id),
            )
            for row in rows
        ]

    @property
    def _mine_or_free(self) -> str:
        return f"claimed_by IS NULL OR claimed_by = ? OR NOT {alive('claimed_by')}"

    async def next_at(self, now: datetime) -> str | None:
        """When the next effect this node may carry out falls due."""
        row = await self.db.fetchone(
            "SELECT MIN(next_attempt_at) AS at FROM effects WHERE status = 'pending'"
            f" AND ({self._mine_or_free})",
            (self.node_id, to_text(now)),
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
