"""Reservations, the effect outbox, webhook events, tariffs and the money audit log.

Every write that goes with a state change takes the caller's open transaction, so the
coordinator can put a transition, its effects, the webhook event that caused it and the
audit lines in one commit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from payments.codec import (
    decode_effect,
    decode_reservation,
    effect_kind,
    encode_effect,
    encode_reservation,
)
from payments.pricing import Tariff
from payments.reservation import ACTIVE, Capture, Effect, ReleaseHold, Reservation
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


class PaymentStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reservations

    def insert(
        self, conn: sqlite3.Connection, r: Reservation, token: str, email: str | None
    ) -> None:
        now = to_text(r.created_at)
        conn.execute(
            "INSERT INTO reservations (id, charger_id, connector_id, id_tag, token, state, hold,"
            " currency, hold_amount, email, data, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                r.id,
                r.charger_id,
                r.connector_id,
                r.id_tag,
                token,
                r.state.value,
                r.hold.value,
                r.tariff.currency,
                r.hold_amount,
                email,
                encode_reservation(r),
                now,
                now,
            ),
        )

    def save(
        self,
        conn: sqlite3.Connection,
        before: Reservation,
        after: Reservation,
        event: str,
        wake_at: datetime | None,
        now: datetime,
    ) -> None:
        conn.execute(
            "UPDATE reservations SET state = ?, hold = ?, captured_amount = ?, energy_wh = ?,"
            " transaction_id = ?, checkout_session_id = ?, payment_intent_id = ?, wake_at = ?,"
            " data = ?, updated_at = ? WHERE id = ?",
            (
                after.state.value,
                after.hold.value,
                after.captured_amount,
                after.energy_wh,
                after.transaction_id,
                after.checkout_session_id,
                after.payment_intent_id,
                to_text(wake_at) if wake_at else None,
                encode_reservation(after),
                to_text(now),
                after.id,
            ),
        )
        if (before.state, before.hold) != (after.state, after.hold):
            conn.execute(
                "INSERT INTO reservation_history (reservation_id, event, from_state, to_state,"
                " hold, at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    after.id,
                    event,
                    before.state.value,
                    after.state.value,
                    after.hold.value,
                    to_text(now),
                ),
            )

    def load(self, conn: sqlite3.Connection, reservation_id: str) -> Reservation | None:
        row = conn.execute(
            "SELECT data FROM reservations WHERE id = ?", (reservation_id,)
        ).fetchone()
        return decode_reservation(row["data"]) if row else None

    async def get(self, reservation_id: str) -> Reservation | None:
        row = await self.db.fetchone(
            "SELECT data FROM reservations WHERE id = ?", (reservation_id,)
        )
        return decode_reservation(row["data"]) if row else None

    async def place(self, reservation_id: str) -> tuple[str, int] | None:
        """The charger and connector of a reservation (None: no such reservation)."""
        row = await self.db.fetchone(
            "SELECT charger_id, connector_id FROM reservations WHERE id = ?", (reservation_id,)
        )
        return (row["charger_id"], row["connector_id"]) if row else None

    async def load_for_driver(self, reservation_id: str) -> tuple[Reservation, str, str | None]:
        """The reservation with the driver's token and e-mail."""
        row = await self.db.fetchone(
            "SELECT data, token, email FROM reservations WHERE id = ?", (reservation_id,)
        )
        assert row is not None, reservation_id
        return decode_reservation(row["data"]), row["token"], row["email"]

    async def row(self, reservation_id: str) -> dict[str, Any] | None:
        row = await self.db.fetchone("SELECT * FROM reservations WHERE id = ?", (reservation_id,))
        return dict(row) if row else None

    async def find_id(self, column: str, value: object) -> str | None:
        """The newest reservation whose `column` has `value` (its OCPP tag or driver token)."""
        assert column in ("id_tag", "token")
        row = await self.db.fetchone(
            f"SELECT id FROM reservations WHERE {column} = ? ORDER BY created_at DESC LIMIT 1",
            (value,),
        )
        return row["id"] if row else None

    async def find_for_stripe(self, stripe_ids: Sequence[object]) -> str | None:
        """The reservation a Stripe object is about: the newest one with one of `stripe_ids`
        as its stored Checkout Session or PaymentIntent (never by metadata). One trip to the
        database for all the lookups."""

        def find(conn: sqlite3.Connection) -> str | None:
            for value in stripe_ids:
                if not isinstance(value, str):
                    continue
                row = conn.execute(
                    "SELECT id FROM reservations WHERE checkout_session_id = ?1"
                    " OR payment_intent_id = ?1 ORDER BY created_at DESC LIMIT 1",
                    (value,),
                ).fetchone()
                if row:
                    return row["id"]
            return None

        return await self.db.read(find)

    async def active_on(self, charger_id: str, connector_id: int) -> Reservation | None:
        active = ", ".join(f"'{state.value}'" for state in ACTIVE)
        row = await self.db.fetchone(
            f"SELECT data FROM reservations WHERE charger_id = ? AND connector_id = ?"
            f" AND state IN ({active})",
            (charger_id, connector_id),
        )
        return decode_reservation(row["data"]) if row else None

    async def active_reservations(self) -> list[Reservation]:
        active = ", ".join(f"'{state.value}'" for state in ACTIVE)
        rows = await self.db.fetchall(f"SELECT data FROM reservations WHERE state IN ({active})")
        return [decode_reservation(row["data"]) for row in rows]

    async def active_connectors(self, charger_id: str) -> list[int]:
        active = ", ".join(f"'{state.value}'" for state in ACTIVE)
        rows = await self.db.fetchall(
            f"SELECT connector_id FROM reservations WHERE charger_id = ? AND state IN ({active})",
            (charger_id,),
        )
        return [row["connector_id"] for row in rows]

    async def waking(self, now: datetime, limit: int = 500) -> list[str]:
        rows = await self.db.fetchall(
            "SELECT id FROM reservations WHERE wake_at IS NOT NULL AND wake_at <= ?"
            " ORDER BY wake_at LIMIT ?",
            (to_text(now), limit),
        )
        return [row["id"] for row in rows]

    async def page(
        self,
        *,
        state: str | None,
        charger_id: str | None,
        since: str | None,
        until: str | None,
        before: tuple[str, str] | None,
        limit: int,
    ) -> list[Reservation]:
        """Reservations newest first, filtered; `before` is the (created_at, id) to go on from."""
        conditions, params = [], []
        for column, value, operator in (
            ("state", state, "="),
            ("charger_id", charger_id, "="),
            ("created_at", since, ">="),
            ("created_at", until, "<"),
        ):
            if value is not None:
                conditions.append(f"{column} {operator} ?")
                params.append(value)
        if before is not None:
            conditions.append("(created_at, id) < (?, ?)")
            params.extend(before)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = await self.db.fetchall(
            f"SELECT data FROM reservations {where} ORDER BY created_at DESC, id DESC LIMIT ?",
            (*params, limit),
        )
        return [decode_reservation(row["data"]) for row in rows]

    async def history(self, reservation_id: str) -> list[dict[str, Any]]:
        rows = await self.db.fetchall(
            "SELECT event, from_state, to_state, hold, at FROM reservation_history"
            " WHERE reservation_id = ? ORDER BY id",
            (reservation_id,),
        )
        return [dict(row) for row in rows]

    # -- the outbox

    def add_effect(
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

    async def due_effects(
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

    async def next_effect_at(self) -> str | None:
        row = await self.db.fetchone(
            "SELECT MIN(next_attempt_at) AS at FROM effects WHERE status = 'pending'"
        )
        return row["at"] if row else None

    def effect_done(
        self, conn: sqlite3.Connection, effect_id: int, result: str, now: datetime
    ) -> bool:
        """Mark an effect done; False when it was done already (its result was applied)."""
        cursor = conn.execute(
            "UPDATE effects SET status = 'done', result = ?, done_at = ?, attempts = attempts + 1"
            " WHERE id = ? AND status = 'pending'",
            (result, to_text(now), effect_id),
        )
        return cursor.rowcount > 0

    async def effect_retry(self, effect_id: int, next_at: datetime, error: str) -> None:
        await self.db.execute(
            "UPDATE effects SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
            " WHERE id = ? AND status = 'pending'",
            (to_text(next_at), error[:500], effect_id),
        )

    async def effects_of(self, reservation_id: str) -> list[dict[str, Any]]:
        rows = await self.db.fetchall(
            "SELECT id, kind, payload, idempotency_key, status, attempts, last_error, result,"
            " created_at, done_at FROM effects WHERE reservation_id = ? ORDER BY id",
            (reservation_id,),
        )
        return [dict(row) for row in rows]

    # -- webhooks and audit

    def record_webhook(
        self,
        conn: sqlite3.Connection,
        event_id: str,
        event_type: str,
        reservation_id: str | None,
        outcome: str,
        now: datetime,
    ) -> bool:
        """Remember a Stripe event; False when it was seen before (then change nothing)."""
        cursor = conn.execute(
            "INSERT INTO webhook_events (id, type, reservation_id, outcome, received_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (event_id, event_type, reservation_id, outcome, to_text(now)),
        )
        return cursor.rowcount > 0

    def audit(
        self,
        conn: sqlite3.Connection,
        now: datetime,
        actor: str,
        action: str,
        reservation_id: str | None,
        amount: int | None = None,
        currency: str | None = None,
        stripe_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        conn.execute(
            "INSERT INTO money_audit (at, actor, action, reservation_id, amount, currency,"
            " stripe_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (to_text(now), actor, action, reservation_id, amount, currency, stripe_id, detail),
        )

    async def audit_log(self, reservation_id: str | None = None) -> list[dict[str, Any]]:
        if reservation_id is None:
            rows = await self.db.fetchall("SELECT * FROM money_audit ORDER BY id")
        else:
            rows = await self.db.fetchall(
                "SELECT * FROM money_audit WHERE reservation_id = ? ORDER BY id",
                (reservation_id,),
            )
        return [dict(row) for row in rows]

    # -- tariffs

    async def put_tariff(self, tariff_id: str, tariff: Tariff, now: datetime) -> None:
        await self.db.execute(
            "INSERT INTO tariffs (id, settings, created_at, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET settings = excluded.settings,"
            " updated_at = excluded.updated_at",
            (tariff_id, orjson.dumps(tariff.to_dict()).decode(), to_text(now), to_text(now)),
        )

    async def tariffs(self) -> dict[str, Tariff]:
        rows = await self.db.fetchall("SELECT id, settings FROM tariffs ORDER BY id")
        return {row["id"]: Tariff.from_dict(orjson.loads(row["settings"])) for row in rows}

    async def assign_tariff(self, tariff_id: str, charger_id: str, connector_id: int = 0) -> None:
        await self.db.execute(
            "INSERT INTO tariff_assignments (charger_id, connector_id, tariff_id) VALUES (?, ?, ?)"
            " ON CONFLICT (charger_id, connector_id) DO UPDATE SET tariff_id = excluded.tariff_id",
            (charger_id, connector_id, tariff_id),
        )

    async def tariff_for(self, charger_id: str, connector_id: int) -> Tariff | None:
        """The connector's own tariff, else the charger's, else None (the default applies)."""
        row = await self.db.fetchone(
            "SELECT t.settings FROM tariff_assignments a JOIN tariffs t ON t.id = a.tariff_id"
            " WHERE a.charger_id = ? AND a.connector_id IN (?, 0)"
            " ORDER BY a.connector_id DESC LIMIT 1",
            (charger_id, connector_id),
        )
        return Tariff.from_dict(orjson.loads(row["settings"])) if row else None

    async def tariff_assignments(
        self, tariff_id: str, after: tuple[str, int] = ("", -1), limit: int = -1
    ) -> list[dict[str, Any]]:
        """Where a tariff applies, in (charger, connector) order after `after`; -1: all."""
        rows = await self.db.fetchall(
            "SELECT charger_id, connector_id FROM tariff_assignments WHERE tariff_id = ?"
            " AND (charger_id, connector_id) > (?, ?) ORDER BY charger_id, connector_id LIMIT ?",
            (tariff_id, *after, limit),
        )
        return [dict(row) for row in rows]

    async def charger_tariffs(self, charger_id: str) -> dict[int, str]:
        """A charger's assignments: connector (0: the whole charger) -> tariff id."""
        rows = await self.db.fetchall(
            "SELECT connector_id, tariff_id FROM tariff_assignments WHERE charger_id = ?"
            " ORDER BY connector_id",
            (charger_id,),
        )
        return {row["connector_id"]: row["tariff_id"] for row in rows}

    async def unassign_tariffs(self, charger_id: str, connector_id: int | None = None) -> None:
        """Drop the assignment on `connector_id` (0: the whole charger's), or all when None."""
        if connector_id is None:
            await self.db.execute(
                "DELETE FROM tariff_assignments WHERE charger_id = ?", (charger_id,)
            )
        else:
            await self.db.execute(
                "DELETE FROM tariff_assignments WHERE charger_id = ? AND connector_id = ?",
                (charger_id, connector_id),
            )

    async def audit_page(
        self,
        *,
        reservation_id: str | None,
        action: str | None,
        since: str | None,
        until: str | None,
        before: int | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Audit lines newest first (by id: the order they were written), filtered on
        `since <= at < until`; `before` is the id to go on below."""
        conditions: list[str] = []
        params: list[object] = []
        for column, value, operator in (
            ("reservation_id", reservation_id, "="),
            ("action", action, "="),
            ("at", since, ">="),
            ("at", until, "<"),
            ("id", before, "<"),
        ):
            if value is not None:
                conditions.append(f"{column} {operator} ?")
                params.append(value)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = await self.db.fetchall(
            f"SELECT * FROM money_audit {where} ORDER BY id DESC LIMIT ?", (*params, limit)
        )
        return [dict(row) for row in rows]
