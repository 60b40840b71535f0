"""Owners onboarded end to end with the real `stripe` SDK against the sandbox: the owner
and its Express account created, an Account Link, the hosted onboarding page completed over
HTTP, `account.updated` delivered (twice: every event is sent twice here), the owner ready,
the readiness hook called once; payouts recorded; a stale event not trusted."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from csms.app import CentralSystem
from tests.conftest import API_HEADERS, MakeConfig
from tests.payflow import run_cli
from tests.test_owners_api import deliver, url
from tests.waiting import eventually

OWNER = {"id": "hotel-adler", "name": "Hotel Adler", "email": "owner@adler.example",
         "country": "de"}  # fmt: skip


@pytest.fixture
async def system(make_config: MakeConfig) -> AsyncIterator[CentralSystem]:
    async with CentralSystem(make_config()) as running:
        assert running.sandbox is not None
        running.sandbox.webhook_duplicates(2)
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=API_HEADERS) as session:
        yield session


async def owner_json(system: CentralSystem, http: aiohttp.ClientSession) -> dict[str, Any]:
    async with http.get(url(system, f"/api/owners/{OWNER['id']}")) as response:
        assert response.status == 200
        return dict(await response.json())


def delivered(system: CentralSystem, event_type: str) -> list[dict[str, Any]]:
    assert system.sandbox is not None
    return [
        d for d in system.sandbox.deliveries() if d["event_type"] == event_type and d["delivered"]
    ]


async def test_an_owner_onboarded_through_stripes_hosted_page(
    system: CentralSystem, http: aiohttp.ClientSession
) -> None:
    ready_calls: list[str] = []

    async def on_ready(owner_id: str) -> None:
        ready_calls.append(owner_id)

    system.connect_webhooks.on_ready = on_ready
    assert system.sandbox is not None
    async with http.post(url(system, "/api/owners"), json=OWNER) as response:
        assert response.status == 201, await response.text()
        created = await response.json()
    account_id = created["stripeAccountId"]
    assert account_id.startswith("acct_") and created["country"] == "DE"
    assert not created["ready"] and not created["detailsSubmitted"]
    assert created["requirementsDue"], "Stripe wants the owner's details"
    account = system.sandbox.get(account_id)
    assert account["type"] == "express" and account["email"] == OWNER["email"]
    assert account["capabilities"] == {"transfers": "inactive"}
    # The same request again (a lost answer): the same account, no second one.
    async with http.post(url(system, "/api/owners"), json=OWNER) as again:
        assert again.status == 201 and (await again.json())["stripeAccountId"] == account_id
    accounts = [o for o in system.sandbox.account.objects.values() if o["object"] == "account"]
    assert len(accounts) == 1

    code, out = await run_cli(system, "owners", "link", OWNER["id"])
    assert code == 0, out
    link = re.search(r"https?://\S+", out)
    assert link is not None
    async with aiohttp.ClientSession() as browser:  # the owner's browser: no API key
        async with browser.get(link[0]) as page:
            assert page.status == 200
            form = await page.text()
        action = re.search(r"<form method='post' action='([^']+)'", form)
        assert action is not None and "Hotel Adler" in form
        async with browser.post(
            str(page.url.join(aiohttp.client.URL(action[1]))),
            data={"action": "submit", "iban": "DE89370400440532013000", "tos": "on"},
        ) as submitted:
            # Stripe sends the owner back to our return page.
            assert submitted.status == 200
            assert submitted.url.path == "/owners/onboarding/done"
            assert "Onboarding finished" in await submitted.text()
        # The link was used: opened again, it lands on our "expired" page.
        async with browser.get(link[0]) as reused:
            assert reused.url.path == "/owners/onboarding/expired"
            assert "ask the operator for a new link" in (await reused.text()).lower()

    async def ready() -> bool:
        return bool((await owner_json(system, http))["ready"])

    await eventually(ready, 15)

    # Both copies of every account.updated delivered; the hook ran once.
    async def both_copies() -> bool:
        return len(delivered(system, "account.updated")) >= 2

    await eventually(both_copies, 15)
    owner = await owner_json(system, http)
    assert owner["detailsSubmitted"] and owner["payoutsEnabled"] and owner["transfersActive"]
    assert owner["requirementsDue"] == [] and owner["readyAt"] is not None
    assert ready_calls == [OWNER["id"]]
    audit = [line["action"] for line in await system.audit.lines()]
    assert audit.count("owner ready") == 1
    assert {"owner added", "owner account created"} <= set(audit)
    # Onboarded: no new link.
    async with http.post(url(system, f"/api/owners/{OWNER['id']}/onboarding-link")) as response:
        assert response.status == 409

    # A stale account.updated (older than what is stored) saying the opposite: Stripe is
    # asked again, and Stripe says ready.
    stale = {"id": "evt_stale", "object": "event", "type": "account.updated",
             "account": account_id, "created": int(time.time()) - 3600,
             "data": {"object": {**account, "details_submitted": False,
                                 "payouts_enabled": False}}}  # fmt: skip
    assert (await deliver(system, stale))[1]["applied"] == "AccountUpdated"
    assert (await owner_json(system, http))["ready"]
    assert ready_calls == [OWNER["id"]]

    # Payouts of the owner's account, to its bank.
    paid = system.sandbox.create_payout(account_id, 4250, "eur", "paid")
    failed = system.sandbox.create_payout(account_id, 900, "eur", "failed", "account_closed")

    async def payouts_settled() -> bool:
        statuses = {p["id"]: p["status"] for p in (await owner_json(system, http))["payouts"]}
        return statuses == {paid["id"]: "paid", failed["id"]: "failed"}

    await eventually(payouts_settled, 15)
    payouts = {p["id"]: p for p in (await owner_json(system, http))["payouts"]}
    assert payouts[paid["id"]]["amount"] == 4250 and payouts[paid["id"]]["currency"] == "eur"
    assert payouts[failed["id"]]["failureMessage"]
    code, out = await run_cli(system, "owners", "list")
    assert code == 0 and re.search(rf"{OWNER['id']}\s.*{account_id}\s+ready", out), out


async def test_refresh_reads_the_account_from_stripe(
    system: CentralSystem, http: aiohttp.ClientSession
) -> None:
    """With the webhooks held back, Stripe's word still gets here: refresh reads it. A
    readiness hook that fails is logged; the owner is ready all the same."""
    called: list[str] = []

    async def failing_hook(owner_id: str) -> None:
        called.append(owner_id)
        raise RuntimeError("the payer is down")

    system.connect_webhooks.on_ready = failing_hook
    assert system.sandbox is not None
    system.sandbox.pause_webhooks()
    async with http.post(url(system, "/api/owners"), json=OWNER) as response:
        account_id = (await response.json())["stripeAccountId"]
    system.sandbox.complete_account(account_id)
    assert not (await owner_json(system, http))["ready"]
    code, out = await run_cli(system, "owners", "refresh", OWNER["id"])
    assert code == 0 and "Ready: ready" in out, out
    owner = await system.owners.get(OWNER["id"])
    assert owner is not None and owner.ready and owner.ready_at is not None
    assert called == [OWNER["id"]]


async def test_an_event_out_of_order_makes_stripe_asked_again(
    system: CentralSystem, http: aiohttp.ClientSession
) -> None:
    """An account.updated older than the state stored is neither trusted nor dropped: the
    account is read from Stripe, which has moved on (onboarded, its event still on the way)."""
    assert system.sandbox is not None
    system.sandbox.pause_webhooks()
    async with http.post(url(system, "/api/owners"), json=OWNER) as response:
        account_id = (await response.json())["stripeAccountId"]
    pending = system.sandbox.get(account_id)
    now = int(time.time())

    def event(event_id: str, created: int) -> dict[str, Any]:
        return {"id": event_id, "object": "event", "type": "account.updated",
                "account": account_id, "created": created, "data": {"object": pending}}  # fmt: skip

    assert (await deliver(system, event("evt_newer", now)))[1]["applied"] == "AccountUpdated"
    system.sandbox.complete_account(account_id)
    assert not (await owner_json(system, http))["ready"]
    # Stripe unreachable for the re-read: the event is not taken (Stripe sends it again).
    system.sandbox.fail_next(3, 500, path=f"/v1/accounts/{account_id}", method="GET")
    status, _ = await deliver(system, event("evt_older", now - 60))
    assert status == 500
    assert await system.db.fetchone("SELECT 1 FROM webhook_events WHERE id = 'evt_older'") is None
    system.sandbox.clear_faults()
    # Older than the one stored, and saying "not onboarded": Stripe is asked, and says ready.
    assert (await deliver(system, event("evt_older", now - 60)))[1]["applied"] == "OwnerReady"
    assert (await owner_json(system, http))["ready"]


async def test_an_account_lost_in_transit_is_the_same_account_when_asked_again(
    make_config: MakeConfig, http: aiohttp.ClientSession
) -> None:
    """Stripe made the account but its answer was lost (the request timed out after Stripe
    processed it): the owner is saved without it, 503; asking again gets that account."""
    config = make_config(stripe={"timeout": 1.0, "max_network_retries": 0})
    async with CentralSystem(config) as system:
        await _lost_then_found(system, http)


async def _lost_then_found(system: CentralSystem, http: aiohttp.ClientSession) -> None:
    assert system.sandbox is not None
    system.sandbox.fail_next(
        1, "timeout", path="/v1/accounts", method="POST", after_processing=True
    )
    async with http.post(url(system, "/api/owners"), json=OWNER) as response:
        assert response.status == 503, await response.text()
        assert (await response.json())["error"]["code"] == "stripe_unavailable"
    saved = await system.owners.get(OWNER["id"])
    assert saved is not None and saved.stripe_account_id is None
    made = [o for o in system.sandbox.account.objects.values() if o["object"] == "account"]
    assert len(made) == 1  # Stripe did make it
    system.sandbox.clear_faults()
    async with http.post(url(system, f"/api/owners/{OWNER['id']}/onboarding-link")) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["url"].startswith(system.sandbox.base_url)
    accounts = [o for o in system.sandbox.account.objects.values() if o["object"] == "account"]
    assert len(accounts) == 1
    owner = await system.owners.get(OWNER["id"])
    assert owner is not None and owner.stripe_account_id == accounts[0]["id"]
    # Other details under the same id are refused, naming the field.
    async with http.post(url(system, "/api/owners"), json={**OWNER, "name": "Other"}) as other:
        assert other.status == 409 and (await other.json())["error"]["field"] == "id"


async def test_the_reconciler_pass_reads_unready_owners_again(
    system: CentralSystem, http: aiohttp.ClientSession
) -> None:
    ready_calls: list[str] = []

    async def on_ready(owner_id: str) -> None:
        ready_calls.append(owner_id)

    system.connect_webhooks.on_ready = on_ready
    assert system.sandbox is not None
    system.sandbox.pause_webhooks()  # account.updated lost, as far as we know
    accounts = {}
    for owner_id in ("a", "b"):
        body = {**OWNER, "id": owner_id}
        async with http.post(url(system, "/api/owners"), json=body) as response:
            accounts[owner_id] = (await response.json())["stripeAccountId"]
    system.sandbox.complete_account(accounts["b"])
    assert await system.onboarding.refresh_unready() == 1
    assert await system.onboarding.refresh_unready() == 0
    assert ready_calls == ["b"]
    ready = {o.id: o.ready for o in await system.owners.all()}
    assert ready == {"a": False, "b": True}
