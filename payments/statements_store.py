"""The rows of an owner's monthly statement, read from the database, and the statement made
of them (payments.statements says which month a row belongs to and checks the figures).

- sessions: the owner's captured payments (`reservations.owner_id`, the owner when the
  session was created), each with its charger's name and its site's as they are now;
- movements: the owner's rows of `transfers`; payouts: its rows of `payouts`.

A session stops within its card hold's life of its creation (7 days at most), so the
sessions read are those created from `LOOKBACK` before the month's start to its end, and
`payments.statements.build` keeps those that stopped in the month.

Contract: the reads go through the database's thread and touch only their arguments'
rows; nothing is written.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, tzinfo

from payments.codec import decode_reservation
from payments.owners import OwnerStore
from payments.ports import ChargerInfo
from payments.reservation_model import Hold, Reservation
from payments.reservation_transfers import billed_wh
from payments.statements import Month, MovementRow, PayoutRow, SessionRow, Statement, build
from storage.clock import to_text
from storage.db import Database

LOOKBACK = timedelta(days=31)

ChargerLookup = Callable[[str], Awaitable[ChargerInfo | None]]


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def stop_moment(r: Reservation) -> datetime:
    """When the session's charge stopped: StopTransaction's time, else its last meter
    reading, else when the driver was unplugged, paid, or the session made."""
    return r.stopped_at or r.metered_at or r.unplugged_at or r.authorised_at or r.created_at


def session_row(r: Reservation, info: ChargerInfo | None) -> SessionRow:
    site = (info or {}).get("site") or {}
    return SessionRow(
        reservation_id=r.id,
        stopped_at=stop_moment(r),
        charger_id=r.charger_id,
        charger_name=(info or {}).get("name"),
        site_name=site.get("name"),
        currency=r.tariff.currency,
        energy_wh=billed_wh(r),  # what was paid for, and what the split counts
        captured=r.captured_amount,
        refunded=r.refunded_amount,
        owner_share=r.owner_share,
        operator_share=r.operator_share,
        transferred=r.transferred_amount,
        reversed=r.reversed_amount,
        transfer_status=r.transfer_status,
        split=r.split,
        stripe_fee=r.stripe_fee,  # None: Stripe did not say
    )


class StatementBook:
    """Statements of owners, in the operator's time zone."""

    def __init__(
        self, db: Database, owners: OwnerStore, charger_info: ChargerLookup, zone: tzinfo
    ) -> None:
        self.db = db
        self.owners = owners
        self.charger_info = charger_info
        self.zone = zone

    async def statement(self, owner_id: str, month: Month) -> Statement | None:
        """The owner's statement of `month` (None: no such owner). Raises
        payments.statements.StatementDoesNotAddUp when the figures disagree."""
        owner = await self.owners.get(owner_id)
        if owner is None:
            return None
        start, end = month.bounds(self.zone)
        sessions = await self.sessions(owner_id, start - LOOKBACK, end)
        infos: dict[str, ChargerInfo | None] = {}
        for r in sessions:
            if r.charger_id not in infos:
                infos[r.charger_id] = await self.charger_info(r.charger_id)
        return build(
            owner.id,
            owner.name,
            month,
            self.zone,
            [session_row(r, infos[r.charger_id]) for r in sessions],
            await self.movements(owner_id, start, end),
            await self.payouts(owner_id, start, end),
        )

    async def sessions(self, owner_id: str, since: datetime, until: datetime) -> list[Reservation]:
        """The owner's captured sessions created in [since, until)."""
        rows = await self.db.fetchall(
            "SELECT data FROM reservations WHERE owner_id = ? AND hold = ?"
            " AND created_at >= ? AND created_at < ? ORDER BY created_at, id",
            (owner_id, Hold.CAPTURED.value, to_text(since), to_text(until)),
        )
        return [decode_reservation(row["data"]) for row in rows]

    async def movements(self, owner_id: str, start: datetime, end: datetime) -> list[MovementRow]:
        rows = await self.db.fetchall(
            "SELECT id, reservation_id, kind, amount, currency, status, stripe_id, created_at"
            " FROM transfers WHERE owner_id = ? AND created_at >= ? AND created_at < ?"
            " ORDER BY created_at, id",
            (owner_id, to_text(start), to_text(end)),
        )
        return [
            MovementRow(
                id=row["id"],
                reservation_id=row["reservation_id"],
                kind=row["kind"],
                amount=int(row["amount"]),
                currency=row["currency"],
                status=row["status"],
                stripe_id=row["stripe_id"],
                at=_moment(row["created_at"]),
            )
            for row in rows
        ]

    async def payouts(self, owner_id: str, start: datetime, end: datetime) -> list[PayoutRow]:
        rows = await self.db.fetchall(
            "SELECT id, amount, currency, status, arrival_date, created_at FROM payouts"
            " WHERE owner_id = ? AND created_at >= ? AND created_at < ? ORDER BY created_at, id",
            (owner_id, to_text(start), to_text(end)),
        )
        return [
            PayoutRow(
                id=row["id"],
                amount=int(row["amount"]),
                currency=row["currency"],
                status=row["status"],
                arrival_date=row["arrival_date"],
                at=_moment(row["created_at"]),
            )
            for row in rows
        ]
