"""Stripe Connect events: owners' accounts and payouts, each event applied once.

They come to the same endpoint as the payment events, verified the same way (the caller
checks the signature), and are recorded in `webhook_events` with the same unique event id,
in the same commit as their effect:

- `account.updated`: the owner's flags, as Stripe says (payments/owners.py says which make
  an owner ready). Stripe is the source of truth, and events may come out of order: an
  event no newer than the state already stored (its `created` at or before `flags_as_of`)
  is not trusted; the account is retrieved from Stripe instead, and that is stored. When
  the owner becomes ready (it was not: the first time, or again after Stripe disabled the
  account), `on_ready(owner_id)` is awaited once, after the commit (a redelivered event is
  a duplicate and changes nothing; a crash between the commit and the call loses the call,
  so whoever pays on it also sweeps ready owners, e.g. at start-up). If it raises, the
  error is logged: the hook's owner sweeps ready owners on its own too.
- `payout.*` (paid, failed, ...): the payouts table, by `event.account` (the owner).
- `transfer.*`: recorded as received; the transfers' own code acts on them.

If Stripe cannot be reached for the re-read, the event is not recorded and the error goes
up (Stripe then delivers it again).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from payments.audit_log import AuditLog
from payments.observe import PaymentsObserver
from payments.owners import AccountFlags, OnReady, Owner, OwnerStore, Payout, nothing_on_ready
from payments.webhooks import WebhookOutcome
from storage.clock import to_text, utc_now
from storage.db import Connection, Database

log = structlog.get_logger()


# Connect event types counted by name in the metrics; any other is "other".
_KNOWN = frozenset(
    {
        "account.updated",
        *(f"payout.{s}" for s in ("created", "updated", "paid", "failed", "canceled")),
        *(f"transfer.{s}" for s in ("created", "updated", "reversed")),
    }
)


def is_connect_event(event_type: str) -> bool:
    return event_type == "account.updated" or event_type.startswith(("payout.", "transfer."))


class AccountReader(Protocol):
    """What the handler needs of Stripe: an account as it is now (a dict)."""

    async def retrieve_account(self, account_id: str) -> dict[str, Any]: ...


class ConnectWebhooks:
    def __init__(
        self,
        db: Database,
        owners: OwnerStore,
        audit: AuditLog,
        stripe: AccountReader,
        *,
        clock: Callable[[], datetime] = utc_now,
        # The composition root gives the real hook (paying the shares accrued while the
        # owner was not ready); the default does nothing.
        on_ready: OnReady = nothing_on_ready,
        # transfer.* events, checked against the transfers made (payments.transfers).
        on_transfer: Callable[[dict[str, Any]], Awaitable[WebhookOutcome]] | None = None,
    ) -> None:
        self.on_transfer = on_transfer
        self._db = db
        self._owners = owners
        self._audit = audit
        self._stripe = stripe
        self._clock = clock
        self.on_ready = on_ready
        self.observer: PaymentsObserver | None = None  # counts the events (metrics)

    async def receive(self, event: dict[str, Any]) -> WebhookOutcome:
        """A verified Connect event, applied once, and counted."""
        applied = "failed"
        try:
            outcome = await self.apply(event)
            applied = outcome.applied
            return outcome
        finally:
            if self.observer is not None:
                label = event["type"] if event["type"] in _KNOWN else "other"
                self.observer.webhook(label, applied)

    async def apply(self, event: dict[str, Any]) -> WebhookOutcome:
        event_type = event["type"]
        with structlog.contextvars.bound_contextvars(event_id=event["id"], event_type=event_type):
            if event_type == "account.updated":
                return await self._account_updated(event)
            if event_type.startswith("payout."):
                return await self._payout(event)
            if event_type.startswith("transfer.") and self.on_transfer is not None:
                return await self.on_transfer(event)
            return await self._record(event)

    # -- account.updated

    async def _account_updated(self, event: dict[str, Any]) -> WebhookOutcome:
        account = _object(event)
        account_id = str(account.get("id") or event.get("account") or "")
        created = event.get("created") if isinstance(event.get("created"), int) else 0
        owner = await self._owners.by_account(account_id) if account_id else None
        if owner is None:
            return await self._record(event)
        if await self._db.fetchone("SELECT 1 FROM webhook_events WHERE id = ?", (event["id"],)):
            return WebhookOutcome(None, "ignored")  # delivered again: nothing to re-read
        as_of, reread = created, created <= owner.flags_as_of
        if reread:
            # Not newer than what is stored: out of order (or the same second). Ask Stripe.
            log.info("owners.account_reread", owner_id=owner.id, created=created)
            as_of = int(self._clock().timestamp())
            account = await self._stripe.retrieve_account(account_id)
        fresh, became_ready = await self._store(
            owner.id, account_id, AccountFlags.of_account(account), as_of, event["id"], reread
        )
        applied = "ignored" if not fresh else "OwnerReady" if became_ready else "AccountUpdated"
        log.info("owners.account_updated", owner_id=owner.id, applied=applied)
        return WebhookOutcome(None, applied)

    async def refresh_owner(self, owner: Owner) -> bool:
        """The owner's account read again from Stripe and stored; True if this made the
        owner ready (then the hook has been called). Raises StripeUnavailable."""
        if owner.stripe_account_id is None:
            return False
        as_of = int(self._clock().timestamp())
        account = await self._stripe.retrieve_account(owner.stripe_account_id)
        flags = AccountFlags.of_account(account)
        _, became_ready = await self._store(
            owner.id, owner.stripe_account_id, flags, as_of, None, True
        )
        return became_ready

    async def _store(
        self,
        owner_id: str,
        account_id: str,
        flags: AccountFlags,
        as_of: int,
        event_id: str | None,
        reread: bool,
    ) -> tuple[bool, bool]:
        """Stripe's flags stored with the event's id (if any) in one commit; (the event was
        new, the owner became ready). A flag read from an event is kept only if no newer
        state was stored meanwhile; a read from Stripe always is."""
        now, owners, audit = self._clock(), self._owners, self._audit

        def apply(conn: Connection) -> tuple[bool, bool]:
            if event_id is not None and not audit.record_webhook(
                conn, event_id, "account.updated", None, "applied", now
            ):
                return False, False
            current = owners.find(conn, owner_id)
            if current is None or (not reread and as_of <= current.flags_as_of):
                return True, False
            became_ready = owners.set_flags(conn, owner_id, flags, now, as_of=as_of)
            if became_ready:
                audit.write(conn, now, "stripe", "owner ready", None, None, None, account_id,
                            f"owner {owner_id} can receive transfers")  # fmt: skip
            return True, became_ready

        fresh, became_ready = await self._db.write(apply)
        if became_ready:
            await self.fire_ready(owner_id)
        return fresh, became_ready

    async def fire_ready(self, owner_id: str) -> None:
        """The readiness hook, for an owner that has just become ready (after the commit)."""
        log.info("owners.ready", owner_id=owner_id)
        try:
            await self.on_ready(owner_id)
        except Exception:
            log.exception("owners.on_ready_failed", owner_id=owner_id)

    # -- payout.*

    async def _payout(self, event: dict[str, Any]) -> WebhookOutcome:
        obj = _object(event)
        account_id = event.get("account")
        amount = obj.get("amount")
        if not isinstance(account_id, str) or not isinstance(amount, int) or "id" not in obj:
            return await self._record(event)  # the platform's own payouts: not ours
        owner = await self._owners.by_account(account_id)
        payout = Payout(
            id=str(obj["id"]),
            owner_id=owner.id if owner else None,
            stripe_account_id=account_id,
            amount=amount,
            currency=str(obj.get("currency") or ""),
            status=str(obj.get("status") or event["type"].removeprefix("payout.")),
            arrival_date=_moment(obj.get("arrival_date")),
            failure_message=obj.get("failure_message") or obj.get("failure_code"),
        )
        now, owners, audit, event_id = self._clock(), self._owners, self._audit, event["id"]
        final = event["type"] in ("payout.paid", "payout.failed")

        def apply(conn: Connection) -> bool:
            if not audit.record_webhook(conn, event_id, event["type"], None, "applied", now):
                return False
            owners.upsert_payout(conn, payout, now)
            if final:
                detail = f"owner {payout.owner_id}" + (
                    f": {payout.failure_message}" if payout.failure_message else ""
                )
                audit.write(conn, now, "stripe", event["type"].replace(".", " "), None,
                            payout.amount, payout.currency, payout.id, detail)  # fmt: skip
            return True

        fresh = await self._db.write(apply)
        applied = "PayoutRecorded" if fresh else "ignored"
        log.info("owners.payout", payout_id=payout.id, status=payout.status, applied=applied)
        return WebhookOutcome(None, applied)

    # -- the rest

    async def _record(self, event: dict[str, Any]) -> WebhookOutcome:
        now, audit, event_id, event_type = self._clock(), self._audit, event["id"], event["type"]

        def record(conn: Connection) -> bool:
            return audit.record_webhook(conn, event_id, event_type, None, "recorded", now)

        fresh = await self._db.write(record)
        return WebhookOutcome(None, "recorded" if fresh else "ignored")


def _object(event: dict[str, Any]) -> dict[str, Any]:
    obj = (event.get("data") or {}).get("object")
    return obj if isinstance(obj, dict) else {}


def _moment(seconds: Any) -> str | None:
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        return None
    return to_text(datetime.fromtimestamp(seconds, UTC))
