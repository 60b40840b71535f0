"""Stripe Connect calls for owners: their Express accounts and hosted onboarding links.

Through the same SDK client, error mapping (`StripeUnavailable`, `StripeRejected`) and
metrics as `payments.stripe_gateway`. Every write carries a deterministic idempotency key:
creating an owner's account is `account:{owner_id}`, so asking again (a lost answer, a
retried request) gives back the same account, never a second one. An Account Link is
single-use and short-lived by Stripe's design: a new one is made for every request, keyed by
the owner and the minute (two clicks in the same minute get the same link).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from payments.stripe_gateway import StripeGateway


@dataclass(frozen=True)
class OnboardingLink:
    url: str
    expires_at: datetime


def account_key(owner_id: str) -> str:
    return f"account:{owner_id}"


def link_key(owner_id: str, account_id: str, now: datetime) -> str:
    return f"account_link:{owner_id}:{account_id}:{now.astimezone(UTC):%Y%m%dT%H%M}"


class ConnectGateway:
    """Connected accounts, over the payments gateway's client."""

    def __init__(self, gateway: StripeGateway) -> None:
        self._gateway = gateway
        self._client = gateway._client  # the one SDK client, its HTTP pool and its retries
        self._call = gateway._call  # the one error mapping and its metrics

    async def create_account(
        self, owner_id: str, *, email: str, country: str, name: str
    ) -> dict[str, Any]:
        """The owner's Express account with the transfers capability requested."""
        params: dict[str, Any] = {
            "type": "express",
            "country": country,
            "email": email,
            "capabilities": {"transfers": {"requested": True}},
            "business_profile": {"name": name},
            "metadata": {"owner_id": owner_id},
        }
        account = await self._call(
            "account.create",
            self._client.v1.accounts.create_async(
                params,  # type: ignore[arg-type]
                {"idempotency_key": account_key(owner_id)},
            ),
        )
        return dict(account.to_dict())

    async def retrieve_account(self, account_id: str) -> dict[str, Any]:
        account = await self._call(
            "account.retrieve", self._client.v1.accounts.retrieve_async(account_id)
        )
        return dict(account.to_dict())

    async def onboarding_link(
        self,
        owner_id: str,
        account_id: str,
        *,
        refresh_url: str,
        return_url: str,
        now: datetime,
    ) -> OnboardingLink:
        """An Account Link (account_onboarding) to Stripe's hosted onboarding."""
        link = await self._call(
            "account_link.create",
            self._client.v1.account_links.create_async(
                {
                    "account": account_id,
                    "type": "account_onboarding",
                    "refresh_url": refresh_url,
                    "return_url": return_url,
                },
                {"idempotency_key": link_key(owner_id, account_id, now)},
            ),
        )
        return OnboardingLink(link.url, datetime.fromtimestamp(int(link.expires_at), UTC))
