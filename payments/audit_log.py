"""The money audit log, and the ids of the Stripe events already taken.

Every movement of money and every act on a payment is one line: when, who (`actor`: the
system, the driver, the charger, Stripe, the reconciler, or an operator's user or API key),
what, and the amount, currency and Stripe object it concerns. The table is append-only (its
triggers refuse UPDATE and DELETE). Stripe's event ids (and the reconciler's finding keys)
are kept with a unique constraint, so each event is applied once.

Contract: `write` and `record_webhook` run in the caller's open transaction and touch only
that connection and their arguments, so a line commits with the change it tells of, and an
event id with its effect. `record_webhook` says False for an id recorded before: then the
caller changes nothing. `lines` reads in the order written; `page` newest first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage.clock import to_text
from storage.db import Connection, Database


class AuditLog:
    """The `money_audit` and `webhook_events` tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def write(
        self,
        conn: Connection,
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

    def record_webhook(
        self,
        conn: Connection,
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

    async def lines(self, reservation_id: str | None = None) -> list[dict[str, Any]]:
        """Every line (of one reservation, or all), in the order written."""
        if reservation_id is None:
            rows = await self.db.fetchall("SELECT * FROM money_audit ORDER BY id")
        else:
            rows = await self.db.fetchall(
                "SELECT * FROM money_audit WHERE reservation_id = ? ORDER BY id",
                (reservation_id,),
            )
        return [dict(row) for row in rows]

    async def page(
        self,
        *,
        reservation_id: str | None,
        action: str | None,
        since: str | None,
        until: str | None,
        before: int | None,
        limit: int,
        actor: str | None = None,
    ) -> list[dict[str, Any]]:
        """Audit lines newest first (by id: the order they were written), filtered on
        `since <= at < until` (and the other values given); `before` is the id to go on
        below."""
        conditions: list[str] = []
        params: list[object] = []
        for column, value, operator in (
            ("reservation_id", reservation_id, "="),
            ("action", action, "="),
            ("actor", actor, "="),
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
