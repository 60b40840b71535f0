"""Reservations as rows: the coordinator writes them, everyone else reads them.

A reservation is stored whole (`data`, encoded by `payments.codec`) beside the columns it
is looked up by: charger and connector, OCPP idTag, the driver's token, the Checkout
Session and PaymentIntent ids, state and hold, and `wake_at`, its next deadline.

Contract: `insert` and `save` run in the caller's open transaction (a unit of work on the
database thread) and touch only that connection and their arguments, so a transition
commits together with its effects and audit lines, or not at all. `save` adds a line to
the reservation's history whenever the state or the hold changes. The table allows one
active reservation per connector: a second `insert` raises Conflict. `load` reads inside
a unit of work, and on PostgreSQL locks the row until the commit, so units on several
nodes change one reservation one after the other. The other reads go through the database
thread, so they see every write handed over before them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from payments.active_index import IndexEntry
from payments.codec import decode_reservation, encode_reservation
from payments.reservation import ACTIVE, CANCELLABLE, Reservation
from storage.clock import to_text
from storage.db import Connection, Database


class ReservationStore:
    """The `reservations` table and its `reservation_history`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- in the caller's transaction

    def insert(self, conn: Connection, r: Reservation, token: str, email: str | None) -> None:
        now = to_text(r.created_at)
        conn.execute(
            "INSERT INTO reservations (id, charger_id, connector_id, id_tag, token, state, hold,"
            " currency, hold_amount, email, data, created_at, updated_at, owner_id,"
            " transfer_status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                r.owner_id,
                r.transfer_status,
            ),
        )

    def save(
        self,
        conn: Connection,
        before: Reservation,
        after: Reservation,
        event: str,
        wake_at: datetime | None,
        now: datetime,
    ) -> None:
        conn.execute(
            "UPDATE reservations SET state = ?, hold = ?, captured_amount = ?, energy_wh = ?,"
            " transaction_id = ?, checkout_session_id = ?, payment_intent_id = ?, wake_at = ?,"
            " data = ?, updated_at = ?, transfer_status = ? WHERE id = ?",
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
                after.transfer_status,
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

    def load(self, conn: Connection, reservation_id: str) -> Reservation | None:
        """The reservation, to change it: on PostgreSQL its row stays locked until the
        commit, so a unit on another node that loads it waits, then sees this one's change."""
        row = conn.execute(
            f"SELECT data FROM reservations WHERE id = ?{self.db.dialect.for_update}",
            (reservation_id,),
        ).fetchone()
        return decode_reservation(row["data"]) if row else None

    # -- reads

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

        def find(conn: Connection) -> str | None:
            for value in stripe_ids:
                if not isinstance(value, str):
                    continue
                row = conn.execute(
                    "SELECT id FROM reservations WHERE checkout_session_id = ?"
                    " OR payment_intent_id = ? ORDER BY created_at DESC LIMIT 1",
                    (value, value),
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

    async def active_entries(self) -> list[IndexEntry]:
        """Where each active reservation is, for the index: no reservation decoded."""
        active = ", ".join(f"'{state.value}'" for state in ACTIVE)
        rows = await self.db.fetchall(
            "SELECT id, charger_id, connector_id, transaction_id FROM reservations"
            f" WHERE state IN ({active})"
        )
        return [IndexEntry(row[0], row[1], row[2], row[3], active=True) for row in rows]

    async def held_before_start(self, charger_ids: Sequence[str]) -> dict[tuple[str, int], str]:
        """(charger, connector) -> the reservation holding it before its charge has begun
        (payment pending or authorised, waiting for the plug or the start)."""
        if not charger_ids:
            return {}
        states = ", ".join(f"'{state.value}'" for state in CANCELLABLE)
        marks = ", ".join("?" for _ in charger_ids)
        rows = await self.db.fetchall(
            "SELECT id, charger_id, connector_id FROM reservations"
            f" WHERE charger_id IN ({marks}) AND state IN ({states})",
            tuple(charger_ids),
        )
        return {(row["charger_id"], row["connector_id"]): row["id"] for row in rows}

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
