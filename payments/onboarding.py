"""Owners' onboarding: an owner, its Stripe Express account, and links to Stripe's hosted
onboarding. The API and the CLI (through the API) come here.

Rules:
- `add` saves the owner first, then asks Stripe for its account with the key
  `account:{owner_id}`: whatever happens to the answer, asking again gives the same account.
  If Stripe cannot be reached the owner stays without an account (`OwnerUnavailable`), and
  the next `add` of the same owner, or its next onboarding link, creates it.
- Adding an owner that exists with the same name, e-mail and country is the same request
  again (it completes the account if need be); with other values it is refused
  (`OwnerRefused`, 409), changing nothing.
- `link` gives a new Account Link (account_onboarding) for an owner not yet ready. Stripe's
  links are single-use and expire within minutes: the operator sends it at once; an expired
  one lands the owner on our refresh page, which says to ask for a new one.
- The flags are Stripe's: read from the account when it is created, then from
  `account.updated` (payments/connect_webhooks.py), or by `refresh`.
Every write is one commit with its audit line, naming who acted.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog
from babel import Locale

from payments.audit_log import AuditLog
from payments.connect_gateway import ConnectGateway, OnboardingLink
from payments.connect_webhooks import ConnectWebhooks
from payments.owners import AccountFlags, Owner, OwnerStore
from payments.stripe_gateway import StripeRejected, StripeUnavailable
from storage.clock import utc_now
from storage.db import Connection, Database

log = structlog.get_logger()

DONE_PATH = "/owners/onboarding/done"
EXPIRED_PATH = "/owners/onboarding/expired"

# ISO 3166-1 alpha-2: the CLDR territories less the codes ISO only reserves (EU, UN, ...).
_RESERVED = {"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "XA", "XB"}
COUNTRIES = frozenset(
    code
    for code in Locale("en").territories
    if len(code) == 2 and code.isalpha() and code not in _RESERVED | {"XK", "ZZ"}
)


class OwnerRefused(Exception):
    """The request does not apply; `status`, `code` and `field` say how the API answers."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


class OwnerUnavailable(Exception):
    """Stripe could not be reached (or refused for now): nothing lost, ask again later."""


class Onboarding:
    def __init__(
        self,
        db: Database,
        owners: OwnerStore,
        audit: AuditLog,
        connect: ConnectGateway,
        webhooks: ConnectWebhooks,
        *,
        public_base_url: Callable[[], str],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._db = db
        self.owners = owners
        self._audit = audit
        self._connect = connect
        self._webhooks = webhooks
        self._base_url = public_base_url
        self._clock = clock

    async def add(self, owner_id: str, name: str, email: str, country: str, actor: str) -> Owner:
        country = country.upper()
        if country not in COUNTRIES:
            raise OwnerRefused(400, "invalid", "an ISO 3166-1 alpha-2 country code", "country")
        now, owners, audit = self._clock(), self.owners, self._audit

        def add(conn: Connection) -> Owner | None:
            existing = owners.find(conn, owner_id)
            if existing is not None:
                return existing
            owners.add(conn, owner_id, name, email, country, now)
            audit.write(conn, now, actor, "owner added", None, detail=f"owner {owner_id}")
            return None

        existing = await self._db.write(add)
        if existing is not None and (existing.name, existing.email, existing.country) != (
            name,
            email,
            country,
        ):
            raise OwnerRefused(409, "exists", f"owner {owner_id} exists with other details", "id")
        if existing is not None and existing.stripe_account_id is not None:
            return existing
        return await self._ensure_account(owner_id, actor)

    async def _ensure_account(self, owner_id: str, actor: str) -> Owner:
        owner = await self._get(owner_id)
        if owner.stripe_account_id is not None:
            return owner
        try:
            account = await self._connect.create_account(
                owner_id, email=owner.email, country=owner.country, name=owner.name
            )
        except StripeUnavailable as error:
            raise OwnerUnavailable(f"Stripe could not be reached: {error}") from error
        except StripeRejected as rejected:
            # Stripe's message names the parameter it refused (the country, the e-mail).
            raise OwnerRefused(
                400, "stripe_rejected", f"Stripe refused the account: {rejected.message}"
            ) from rejected
        account_id, flags = str(account["id"]), AccountFlags.of_account(account)
        now, owners, audit = self._clock(), self.owners, self._audit

        def save(conn: Connection) -> bool:
            owners.set_account(conn, owner_id, account_id, now)
            audit.write(conn, now, actor, "owner account created", None, None, None, account_id,
                        f"owner {owner_id}")  # fmt: skip
            # The account as created is its first state: any event about it is newer.
            return owners.set_flags(conn, owner_id, flags, now, as_of=0)

        if await self._db.write(save):
            await self._webhooks.fire_ready(owner_id)
        log.info("owners.account_created", owner_id=owner_id, account_id=account_id)
        return await self._get(owner_id)

    async def link(self, owner_id: str, actor: str) -> OnboardingLink:
        """A fresh Account Link to Stripe's hosted onboarding (the account made if need be)."""
        owner = await self._ensure_account(owner_id, actor)
        if owner.ready:
            raise OwnerRefused(409, "ready", f"owner {owner_id} is onboarded already")
        base = self._base_url().rstrip("/")
        try:
            link = await self._connect.onboarding_link(
                owner_id,
                str(owner.stripe_account_id),
                refresh_url=f"{base}{EXPIRED_PATH}",
                return_url=f"{base}{DONE_PATH}",
                now=self._clock(),
            )
        except StripeUnavailable as error:
            raise OwnerUnavailable(f"Stripe could not be reached: {error}") from error
        except StripeRejected as rejected:
            raise OwnerRefused(409, "stripe_rejected", rejected.message) from rejected
        log.info("owners.onboarding_link", owner_id=owner_id, actor=actor)
        return link

    async def refresh(self, owner_id: str) -> Owner:
        """The owner's flags read again from Stripe (the source of truth)."""
        owner = await self._get(owner_id)
        if owner.stripe_account_id is None:
            return owner
        try:
            await self._webhooks.refresh_owner(owner)
        except StripeUnavailable as error:
            raise OwnerUnavailable(f"Stripe could not be reached: {error}") from error
        return await self._get(owner_id)

    async def refresh_unready(self) -> int:
        """Every owner with an account that is not ready, read again from Stripe (in case an
        account.updated was lost); how many became ready. Run after each reconciliation;
        ready owners are kept true by their events (and `refresh` on demand)."""
        became = 0
        for owner in await self.owners.all():
            if owner.stripe_account_id is None or owner.ready:
                continue
            try:
                became += await self._webhooks.refresh_owner(owner)
            except (StripeUnavailable, StripeRejected) as error:
                log.warning("owners.refresh_failed", owner_id=owner.id, error=str(error)[:200])
        return became

    async def _get(self, owner_id: str) -> Owner:
        owner = await self.owners.get(owner_id)
        if owner is None:
            raise OwnerRefused(404, "not_found", "no such owner")
        return owner
