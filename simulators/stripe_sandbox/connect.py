"""Stripe Connect on the sandbox's platform account: connected accounts and their
onboarding; the money (transfers, fees, payouts) is in `connect_money`.

Every object lives in `Account.objects` with the payment objects (so the state file keeps
it) and every event goes through `Account.emit`. Rules, as Stripe documents them:

- A connected account is created with its requirements due: `charges_enabled`,
  `payouts_enabled` and `details_submitted` false, its requested capabilities
  `inactive`. Completing onboarding (the hosted page, or the control endpoint) submits
  the details, adds a test bank account, activates the requested capabilities and emits
  `account.updated`, a Connect event (its `account` is the connected account).
- An Account Link is single-use and expires `LINK_LIFETIME` seconds after creation:
  opened twice, opened after `expires_at`, or posted after its form was submitted, it
  sends the browser to `refresh_url`.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import connect_resources as res
from .connect_money import Money
from .params import merge_metadata
from .resources import JSON, new_id
from .state import Account
from .state_types import AUTOMATIC, Origin

log = logging.getLogger("simulators.stripe_sandbox")

LINK_LIFETIME = 300


@dataclass(frozen=True)
class AccountSpec:
    account_type: str
    controller: JSON
    country: str
    email: str | None = None
    business_type: str | None = None
    business_profile: dict[str, Any] = field(default_factory=dict)
    capabilities: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    default_currency: str | None = None


@dataclass(frozen=True)
class AccountUpdate:
    email: str | None = None
    business_type: str | None = None
    business_profile: dict[str, Any] = field(default_factory=dict)
    capabilities: dict[str, bool] = field(default_factory=dict)
    metadata: dict[str, str] | None = None


class Connect(Money):
    """Connect on `account`; `site_url()` gives the address its hosted pages are at."""

    def __init__(self, account: Account, site_url: Callable[[], str]) -> None:
        self.account = account
        self.objects = account.objects
        self.clock = account.clock
        self.site_url = site_url
        account.on_capture = self.on_capture
        account.on_refund = self.on_refund

    # -- accounts -------------------------------------------------------------------------

    def connected(self, account_id: str, param: str = "account") -> JSON:
        return self.account.retrieve("account", account_id, param)

    def create_account(self, spec: AccountSpec, origin: Origin) -> JSON:
        account_id = new_id("acct_1", 15)
        obj = res.account(
            account_id=account_id,
            created=self.clock.now(),
            account_type=spec.account_type,
            controller=spec.controller,
            country=spec.country,
            currency=spec.default_currency or res.default_currency(spec.country),
            email=spec.email,
            business_type=spec.business_type,
            business_profile=spec.business_profile,
            capabilities=dict.fromkeys(spec.capabilities, "inactive"),
            metadata=spec.metadata,
        )
        self.objects[account_id] = obj
        log.info("connected account %s created (%s)", account_id, spec.account_type)
        return obj

    def update_account(self, account_id: str, update: AccountUpdate, origin: Origin) -> JSON:
        obj = self.connected(account_id, "account")
        before = copy.deepcopy(obj)
        if update.email is not None:
            obj["email"] = update.email
        if update.business_type is not None:
            obj["business_type"] = update.business_type
        obj["business_profile"].update(update.business_profile)
        active = obj["details_submitted"]
        for name, requested in update.capabilities.items():
            if requested:
                obj["capabilities"].setdefault(name, "active" if active else "inactive")
            else:
                obj["capabilities"].pop(name, None)
        obj["metadata"] = merge_metadata(obj["metadata"], update.metadata)
        self._account_updated(obj, before, origin)
        return obj

    def _account_updated(self, obj: JSON, before: JSON, origin: Origin) -> None:
        previous = {key: value for key, value in before.items() if obj[key] != value}
        if previous:
            self._emit(
                "account.updated", obj, origin, previous_attributes=previous, account=obj["id"]
            )

    def complete_onboarding(self, account_id: str, origin: Origin = AUTOMATIC) -> JSON:
        """The owner submits every detail: the account can take charges and get payouts."""
        obj = self.connected(account_id, "account")
        if obj["details_submitted"] and obj["charges_enabled"]:
            return obj
        before = copy.deepcopy(obj)
        now = self.clock.now()
        external = obj["external_accounts"]
        if not external["data"]:
            bank = res.bank_account(
                account_id=account_id,
                holder=obj["business_profile"]["name"],
                country=obj["country"],
                currency=obj["default_currency"],
            )
            self.objects[bank["id"]] = bank
            external["data"].append(bank)
            external["total_count"] = 1
        obj.update(
            details_submitted=True,
            charges_enabled=True,
            payouts_enabled=True,
            requirements=res.requirements([]),
            capabilities=dict.fromkeys(obj["capabilities"], "active"),
            tos_acceptance={"date": now, "ip": "127.0.0.1", "user_agent": None},
        )
        log.info("connected account %s onboarded", account_id)
        self._account_updated(obj, before, origin)
        return obj

    # -- Account Links --------------------------------------------------------------------

    def create_link(
        self, account_id: str, refresh_url: str, return_url: str, link_type: str
    ) -> JSON:
        self.connected(account_id, "account")
        token = new_id("", 32)
        now = self.clock.now()
        url = f"{self.site_url()}/connect/onboarding/{token}"
        link = res.account_link(created=now, expires_at=now + LINK_LIFETIME, url=url)
        # What the hosted page needs, kept under the token (never served by the API).
        self.objects[token] = link | {
            "id": token,
            "object": "sandbox.account_link",
            "account": account_id,
            "refresh_url": refresh_url,
            "return_url": return_url,
            "type": link_type,
            "state": "new",
        }
        return link

    def link(self, token: str) -> JSON | None:
        record = self.objects.get(token)
        if record is None or record["object"] != "sandbox.account_link":
            return None
        return record

    def open_link(self, token: str) -> JSON | None:
        """The link's record if its form may be shown (once), else None."""
        record = self.link(token)
        if record is None or record["state"] != "new":
            return None
        if record["expires_at"] <= self.clock.now():
            return None
        record["state"] = "opened"
        return record

    def submit_link(self, token: str, complete: bool) -> JSON | None:
        """The form is submitted: the account completed when `complete`; the link's record,
        or None when the link can no longer be used."""
        record = self.link(token)
        if record is None or record["state"] == "used":
            return None
        if record["state"] == "new" and record["expires_at"] <= self.clock.now():
            return None
        record["state"] = "used"
        if complete:
            self.complete_onboarding(record["account"])
        return record
