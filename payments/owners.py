"""Owners of sites' chargers, each a Stripe Connect connected account, and their payouts.

An owner is created here first, then its Express account at Stripe (`stripe_account_id`),
then onboarded through an Account Link that Stripe hosts. Stripe is the source of truth for
what the account may do: the flags are copied from the account as Stripe last reported it
(`account.updated`, or retrieved), never set here by hand.

An owner is **ready** (may receive transfers) when Stripe says all of:
- `details_submitted`: the owner finished the onboarding form;
- `payouts_enabled`: Stripe lets the account pay out to its bank;
- `capabilities.transfers == "active"`: the platform may transfer to the account.
`charges_enabled` is kept for the record but not required: an owner takes no charges of its
own. `ready_at` is when the owner first became ready; it is set once and kept, even if
Stripe later disables the account (then `ready` is False until Stripe enables it again).

Payouts are the connected accounts' own payouts to their banks, kept as Stripe reports them
(`payout.*` events on the account), one row per payout id, the latest status winning.

Contract: the writes (`add`, `set_account`, `set_flags`, `upsert_payout`) run in the
caller's open transaction and touch only that connection and their arguments; `find` reads
inside one. `set_flags` says whether it made the owner ready (it was not: the first time,
or again after Stripe had disabled the account), so the caller fires its readiness hook
once per such change, after the commit.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.clock import to_text
from storage.db import Connection, Database

# Called with an owner's id when it has become ready (after the commit that says so): the
# first time, and again if Stripe enabled it again after disabling it.
OnReady = Callable[[str], Awaitable[None]]


async def nothing_on_ready(owner_id: str) -> None:
    """The default readiness hook: does nothing. The composition root gives the real one
    (paying the shares accrued while the owner was not ready)."""


@dataclass(frozen=True)
class AccountFlags:
    """What Stripe says a connected account may do (from an Account object)."""

    charges_enabled: bool = False
    payouts_enabled: bool = False
    details_submitted: bool = False
    transfers_active: bool = False  # capabilities.transfers == "active"
    requirements_due: tuple[str, ...] = ()  # requirements.currently_due

    @property
    def ready(self) -> bool:
        return self.details_submitted and self.payouts_enabled and self.transfers_active

    @classmethod
    def of_account(cls, account: dict[str, Any]) -> AccountFlags:
        """From a Stripe Account object (a dict or the SDK's object)."""
        capabilities = account.get("capabilities") or {}
        requirements = account.get("requirements") or {}
        due = requirements.get("currently_due") or []
        return cls(
            charges_enabled=account.get("charges_enabled") is True,
            payouts_enabled=account.get("payouts_enabled") is True,
            details_submitted=account.get("details_submitted") is True,
            transfers_active=capabilities.get("transfers") == "active",
            requirements_due=tuple(str(item) for item in due),
        )


@dataclass(frozen=True)
class Owner:
    id: str
    name: str
    email: str
    country: str  # ISO 3166-1 alpha-2, upper case
    stripe_account_id: str | None
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool
    ready_at: datetime | None
    transfers_active: bool = False
    requirements_due: tuple[str, ...] = ()
    flags_as_of: int = 0  # Stripe's time (Unix seconds) of the state the flags were read from
    created_at: str = ""
    updated_at: str = ""

    @property
    def ready(self) -> bool:
        """Can receive transfers: Stripe says details_submitted, payouts_enabled and the
        transfers capability active (and the account exists)."""
        return self.stripe_account_id is not None and self.flags.ready

    @property
    def flags(self) -> AccountFlags:
        return AccountFlags(
            self.charges_enabled,
            self.payouts_enabled,
            self.details_submitted,
            self.transfers_active,
            self.requirements_due,
        )

    @classmethod
    def of(cls, row: Any) -> Owner:
        ready_at = row["ready_at"]
        return cls(
            id=row["id"],
            name=row["name"],
            email=row["email"],
            country=row["country"],
            stripe_account_id=row["stripe_account_id"],
            charges_enabled=bool(row["charges_enabled"]),
            payouts_enabled=bool(row["payouts_enabled"]),
            details_submitted=bool(row["details_submitted"]),
            ready_at=_moment(ready_at) if ready_at else None,
            transfers_active=bool(row["transfers_active"]),
            requirements_due=tuple(json.loads(row["requirements_due"] or "[]")),
            flags_as_of=int(row["flags_as_of"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


@dataclass(frozen=True)
class Payout:
    id: str
    owner_id: str | None
    stripe_account_id: str
    amount: int
    currency: str
    status: str
    arrival_date: str | None
    failure_message: str | None
    created_at: str = ""
    updated_at: str = ""

    @classmethod
    def of(cls, row: Any) -> Payout:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class OwnerStore:
    """The `owners` and `payouts` tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- writes (in the caller's transaction)

    def add(
        self, conn: Connection, owner_id: str, name: str, email: str, country: str, now: datetime
    ) -> None:
        """A new owner, no account yet. Raises Conflict if the id is taken."""
        conn.execute(
            "INSERT INTO owners (id, name, email, country, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (owner_id, name, email, country, to_text(now), to_text(now)),
        )

    def set_account(
        self, conn: Connection, owner_id: str, stripe_account_id: str, now: datetime
    ) -> None:
        """The owner's Stripe account, once created (the same id again changes nothing)."""
        conn.execute(
            "UPDATE owners SET stripe_account_id = ?, updated_at = ?"
            " WHERE id = ? AND (stripe_account_id IS NULL OR stripe_account_id = ?)",
            (stripe_account_id, to_text(now), owner_id, stripe_account_id),
        )

    def set_flags(
        self,
        conn: Connection,
        owner_id: str,
        flags: AccountFlags,
        now: datetime,
        *,
        as_of: int = 0,
    ) -> bool:
        """Stripe's flags for the owner, as of Stripe's time `as_of` (Unix seconds: the
        event's `created`, or when the account was retrieved); True when this made the owner
        ready: it was not (the first time, or again after Stripe had disabled it)."""
        became_ready = False
        if flags.ready:
            # One statement decides "was not ready": of two nodes racing, the second waits
            # for the first's row lock and then finds the owner ready.
            cursor = conn.execute(
                "UPDATE owners SET ready_at = COALESCE(ready_at, ?) WHERE id = ?"
                " AND stripe_account_id IS NOT NULL"
                " AND NOT (details_submitted = 1 AND payouts_enabled = 1 AND transfers_active = 1)",
                (to_text(now), owner_id),
            )
            became_ready = cursor.rowcount > 0
        conn.execute(
            "UPDATE owners SET charges_enabled = ?, payouts_enabled = ?, details_submitted = ?,"
            " transfers_active = ?, requirements_due = ?, updated_at = ?,"
            " flags_as_of = CASE WHEN flags_as_of > ? THEN flags_as_of ELSE ? END WHERE id = ?",
            (
                int(flags.charges_enabled),
                int(flags.payouts_enabled),
                int(flags.details_submitted),
                int(flags.transfers_active),
                json.dumps(list(flags.requirements_due)),
                to_text(now),
                as_of,
                as_of,
                owner_id,
            ),
        )
        return became_ready

    def upsert_payout(self, conn: Connection, payout: Payout, now: datetime) -> None:
        """A payout as Stripe reported it; a known payout takes the new status, unless it
        is final (paid, failed, canceled) and the new one is not (an event out of order)."""
        conn.execute(
            "INSERT INTO payouts (id, owner_id, stripe_account_id, amount, currency, status,"
            " arrival_date, failure_message, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " status = excluded.status, failure_message = excluded.failure_message,"
            " arrival_date = excluded.arrival_date, amount = excluded.amount,"
            " owner_id = COALESCE(payouts.owner_id, excluded.owner_id),"
            " updated_at = excluded.updated_at"
            # A late event of an earlier state never undoes paid, failed or canceled.
            " WHERE payouts.status NOT IN ('paid', 'failed', 'canceled')"
            " OR excluded.status IN ('paid', 'failed', 'canceled')",
            (
                payout.id,
                payout.owner_id,
                payout.stripe_account_id,
                payout.amount,
                payout.currency,
                payout.status,
                payout.arrival_date,
                payout.failure_message,
                to_text(now),
                to_text(now),
            ),
        )

    # -- reads

    def find(self, conn: Connection, owner_id: str) -> Owner | None:
        row = conn.execute("SELECT * FROM owners WHERE id = ?", (owner_id,)).fetchone()
        return Owner.of(row) if row else None

    def find_by_account(self, conn: Connection, stripe_account_id: str) -> Owner | None:
        row = conn.execute(
            "SELECT * FROM owners WHERE stripe_account_id = ?", (stripe_account_id,)
        ).fetchone()
        return Owner.of(row) if row else None

    async def get(self, owner_id: str) -> Owner | None:
        row = await self.db.fetchone("SELECT * FROM owners WHERE id = ?", (owner_id,))
        return Owner.of(row) if row else None

    async def by_account(self, stripe_account_id: str) -> Owner | None:
        row = await self.db.fetchone(
            "SELECT * FROM owners WHERE stripe_account_id = ?", (stripe_account_id,)
        )
        return Owner.of(row) if row else None

    async def all(self) -> list[Owner]:
        rows = await self.db.fetchall("SELECT * FROM owners ORDER BY id")
        return [Owner.of(row) for row in rows]

    async def payouts(self, owner_id: str) -> list[Payout]:
        rows = await self.db.fetchall(
            "SELECT * FROM payouts WHERE owner_id = ? ORDER BY created_at DESC, id DESC",
            (owner_id,),
        )
        return [Payout.of(row) for row in rows]
