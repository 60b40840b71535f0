"""Owners over the API and the CLI: refusals naming the field, reading, and Connect's payout
events recorded once; the pages Stripe's onboarding sends the owner back to."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import pytest

from csms.app import SANDBOX_WEBHOOK_SECRET, CentralSystem
from tests.conftest import API_HEADERS, MakeConfig
from tests.payflow import run_cli

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def system(make_config: MakeConfig) -> AsyncIterator[CentralSystem]:
    async with CentralSystem(make_config()) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=API_HEADERS) as session:
        yield session


def url(system: CentralSystem, path: str) -> str:
    return f"http://127.0.0.1:{system.http.port}{path}"


def signed(body: bytes, secret: str = SANDBOX_WEBHOOK_SECRET) -> str:
    timestamp = int(time.time())
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


async def deliver(system: CentralSystem, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    body = orjson.dumps(event)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url(system, "/api/stripe/webhook"),
            data=body,
            headers={"Stripe-Signature": signed(body), "Content-Type": "application/json"},
        ) as response,
    ):
        return response.status, await response.json()


async def stored_owner(system: CentralSystem, owner_id: str, account_id: str) -> None:
    """An owner whose account exists (as if created at Stripe), straight into the store."""

    def add(conn: Any) -> None:
        system.owners.add(conn, owner_id, "Hotel Adler", "owner@example.com", "DE", NOW)
        system.owners.set_account(conn, owner_id, account_id, NOW)

    await system.db.write(add)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "hotel", "name": "H", "email": "x@y.de", "country": "Germany"}, "country"),
        ({"id": "hotel", "name": "H", "email": "x@y.de", "country": "QQ"}, "country"),
        ({"id": "hotel", "name": "H", "email": "x@y.de", "country": "EU"}, "country"),
        ({"id": "hotel", "name": "H", "email": "not-an-address", "country": "DE"}, "email"),
        ({"id": "hotel", "name": "", "email": "x@y.de", "country": "DE"}, "name"),
        ({"id": "no spaces", "name": "H", "email": "x@y.de", "country": "DE"}, "id"),
        ({"name": "H", "email": "x@y.de", "country": "DE"}, "id"),
        ({"id": "hotel", "name": "H", "email": "x@y.de", "country": "DE", "iban": "x"}, "iban"),
    ],
)
async def test_a_refused_owner_names_the_field_and_creates_nothing(
    system: CentralSystem, http: aiohttp.ClientSession, body: dict[str, Any], field: str
) -> None:
    async with http.post(url(system, "/api/owners"), json=body) as response:
        assert response.status == 400
        assert (await response.json())["error"]["field"] == field
    assert await system.owners.all() == []


async def test_unknown_owners_are_404(system: CentralSystem, http: aiohttp.ClientSession) -> None:
    for method, path in (
        ("GET", "/api/owners/nobody"),
        ("POST", "/api/owners/nobody/onboarding-link"),
        ("POST", "/api/owners/nobody/refresh"),
    ):
        async with http.request(method, url(system, path)) as response:
            assert response.status == 404, path
            assert (await response.json())["error"]["code"] == "not_found"
    async with http.get(url(system, "/api/owners")) as response:
        assert response.status == 200 and await response.json() == []


async def test_payout_events_are_recorded_once_and_shown(
    system: CentralSystem, http: aiohttp.ClientSession
) -> None:
    await stored_owner(system, "hotel", "acct_hotel")

    def payout_event(event_id: str, kind: str, **fields: Any) -> dict[str, Any]:
        payout = {"id": "po_1", "object": "payout", "amount": 4250, "currency": "eur",
                  "arrival_date": 1772668800, "status": kind, **fields}  # fmt: skip
        return {"id": event_id, "object": "event", "type": f"payout.{kind}",
                "account": "acct_hotel", "created": int(time.time()),
                "data": {"object": payout}}  # fmt: skip

    assert await deliver(system, payout_event("evt_p1", "paid")) == (
        200, {"received": True, "applied": "PayoutRecorded"})  # fmt: skip
    assert await deliver(system, payout_event("evt_p1", "paid")) == (
        200, {"received": True, "applied": "ignored"})  # fmt: skip
    failed = payout_event("evt_p2", "failed", id="po_2", failure_message="The bank refused")
    assert (await deliver(system, failed))[1]["applied"] == "PayoutRecorded"
    # A payout of an account no owner here has is kept too, with no owner.
    stranger = {**payout_event("evt_p3", "paid", id="po_3"), "account": "acct_other"}
    assert (await deliver(system, stranger))[1]["applied"] == "PayoutRecorded"
    async with http.get(url(system, "/api/owners/hotel")) as response:
        owner = await response.json()
    assert [(p["id"], p["status"], p["amount"]) for p in owner["payouts"]] == [
        ("po_2", "failed", 4250), ("po_1", "paid", 4250)]  # fmt: skip
    failures = [p["failureMessage"] for p in owner["payouts"]]
    assert failures == ["The bank refused", None]
    assert owner["payouts"][1]["arrivalDate"] == "2026-03-05T00:00:00.000Z"
    audit = [(line["action"], line["stripe_id"]) for line in await system.audit.lines()]
    assert ("payout paid", "po_1") in audit and ("payout failed", "po_2") in audit
    assert sum(1 for action, _ in audit if action == "payout paid") == 2  # po_1 once, po_3
    async with http.get(url(system, "/metrics")) as response:
        metrics = await response.text()
    counted = 'csms_stripe_webhooks_total{applied="PayoutRecorded",type="payout.paid"} 2.0'
    assert counted in metrics
    code, out = await run_cli(system, "owners", "show", "hotel")
    assert code == 0, out
    assert "po_1  42.50 EUR  paid" in out and "po_2  42.50 EUR  failed (The bank refused)" in out


async def test_transfer_events_are_recorded_not_acted_on(system: CentralSystem) -> None:
    await stored_owner(system, "hotel", "acct_hotel")
    event = {"id": "evt_t1", "object": "event", "type": "transfer.created",
             "created": int(time.time()),
             "data": {"object": {"id": "tr_1", "object": "transfer", "amount": 100,
                                 "destination": "acct_hotel"}}}  # fmt: skip
    assert (await deliver(system, event))[1]["applied"] == "recorded"
    assert (await deliver(system, event))[1]["applied"] == "ignored"
    seen = await system.db.fetchone("SELECT type FROM webhook_events WHERE id = 'evt_t1'")
    assert seen is not None and seen["type"] == "transfer.created"


async def test_an_unsigned_connect_event_is_refused(system: CentralSystem) -> None:
    await stored_owner(system, "hotel", "acct_hotel")
    event = {"id": "evt_forged", "object": "event", "type": "account.updated",
             "created": int(time.time()),
             "data": {"object": {"id": "acct_hotel", "details_submitted": True,
                                 "payouts_enabled": True,
                                 "capabilities": {"transfers": "active"}}}}  # fmt: skip
    body = orjson.dumps(event)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url(system, "/api/stripe/webhook"),
            data=body,
            headers={"Stripe-Signature": signed(body, "whsec_wrong")},
        ) as response,
    ):
        assert response.status == 400
    owner = await system.owners.get("hotel")
    assert owner is not None and not owner.ready


async def test_the_pages_stripe_returns_to(system: CentralSystem) -> None:
    async with aiohttp.ClientSession() as session:  # no API key: the owner's browser
        for path, words in (
            ("/owners/onboarding/done", "Onboarding finished"),
            ("/owners/onboarding/expired", "ask the operator for a new link"),
        ):
            async with session.get(url(system, path)) as response:
                assert response.status == 200
                page = await response.text()
                assert words.lower() in page.lower() and "<script" not in page
        async with session.get(
            url(system, "/owners/onboarding/expired"), headers={"Accept-Language": "de"}
        ) as response:
            assert "Bitten Sie den Betreiber um einen neuen Link" in await response.text()


async def test_cli_lists_owners(system: CentralSystem) -> None:
    code, out = await run_cli(system, "owners", "list")
    assert code == 0 and "No owners yet" in out
    await stored_owner(system, "hotel", "acct_hotel")
    code, out = await run_cli(system, "owners", "list")
    assert code == 0, out
    assert "hotel" in out and "acct_hotel" in out and "onboarding unfinished" in out
    code, out = await run_cli(system, "owners", "add", "x", "--name", "X", "--email",
                              "x@y.de", "--country", "XX")  # fmt: skip
    assert code == 1 and "country" in out
    code, out = await run_cli(system, "owners", "show", "nobody")
    assert code == 1 and "404" in out
