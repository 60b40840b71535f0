"""What happens outside the API calls under test (an operator in the Dashboard), the
ledger that shows every capture and cancel request, and webhook subscriptions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
import stripe

from simulators.stripe_sandbox import StripeSandbox
from simulators.stripe_sandbox.errors import StripeError
from tests import test_stripe_sandbox as base
from tests.test_stripe_sandbox import (
    SECRET,
    WebhookReceiver,
    authorised_session,
    create_session,
    make_client,
    raw,
    types_of,
)
from tests.waiting import eventually

# The fixtures of the sandbox's main tests.
receiver, sandbox, client, browser = base.receiver, base.sandbox, base.client, base.browser


# -- Dashboard actions -----------------------------------------------------------------------


async def test_dashboard_capture_emits_the_api_events_and_is_not_an_api_request(
    sandbox: StripeSandbox, client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    _, intent = await authorised_session(client, browser)

    captured = sandbox.capture_payment_intent(intent.id, amount=1500)

    assert (captured["status"], captured["amount_received"]) == ("succeeded", 1500)
    captured_events = sandbox.events()[-2:]
    assert [e["type"] for e in captured_events] == ["charge.captured", "payment_intent.succeeded"]
    for event in captured_events:
        assert event["request"]["id"].startswith("req_")
        assert event["request"]["idempotency_key"] is None
    ledger = sandbox.ledger()[intent.id]
    assert (ledger["amount_captured"], ledger["amount_released"]) == (1500, 500)
    assert (ledger["captured_by"], ledger["capture_requests"], ledger["captures"]) == (
        "dashboard",
        0,
        0,
    )

    # The system under test captures too late: refused, and it shows.
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.payment_intents.capture_async(intent.id)
    ledger = sandbox.ledger()[intent.id]
    assert (ledger["capture_requests"], ledger["captures"], ledger["amount_captured"]) == (
        1,
        0,
        1500,
    )


async def test_dashboard_refund_partial_then_the_rest(
    sandbox: StripeSandbox, client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    _, intent = await authorised_session(client, browser)
    with pytest.raises(StripeError) as error:
        sandbox.refund_payment_intent(intent.id)  # nothing captured yet
    assert error.value.param == "payment_intent"
    await client.v1.payment_intents.capture_async(intent.id)

    partial = sandbox.refund_payment_intent(intent.id, 500, "requested_by_customer")
    rest = sandbox.refund_payment_intent(intent.id)

    assert (partial["amount"], partial["reason"], rest["amount"]) == (
        500,
        "requested_by_customer",
        1500,
    )
    refund_events = [
        e for e in sandbox.events() if e["type"] in ("refund.created", "charge.refunded")
    ]
    assert [e["type"] for e in refund_events] == ["refund.created", "charge.refunded"] * 2
    assert all(e["request"]["id"].startswith("req_") for e in refund_events)
    assert all(e["request"]["idempotency_key"] is None for e in refund_events)
    assert sandbox.ledger()[intent.id]["amount_refunded"] == 2000
    fetched = await client.v1.refunds.retrieve_async(partial["id"])
    assert fetched.payment_intent == intent.id
    with pytest.raises(ValueError):
        sandbox.refund_payment_intent(intent.id, 0)


async def test_dashboard_actions_over_http(
    sandbox: StripeSandbox, client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    base_url = f"{sandbox.base_url}/_sandbox/payment_intents"
    _, intent = await authorised_session(client, browser)

    status, body, headers = await raw(
        browser, "POST", f"{base_url}/{intent.id}/capture", data='{"amount": 1200}'
    )
    assert (status, body["status"], body["amount_received"]) == (200, "succeeded", 1200)
    assert headers["Request-Id"].startswith("req_")
    status, body, _ = await raw(browser, "POST", f"{base_url}/{intent.id}/capture")
    assert (status, body["error"]["code"]) == (400, "payment_intent_unexpected_state")
    status, body, _ = await raw(
        browser,
        "POST",
        f"{base_url}/{intent.id}/refund",
        data='{"amount": 200, "reason": "duplicate"}',
    )
    assert (status, body["object"], body["amount"], body["reason"]) == (
        200,
        "refund",
        200,
        "duplicate",
    )
    status, body, _ = await raw(
        browser, "POST", f"{base_url}/{intent.id}/refund", data='{"amount": 5000}'
    )
    assert (status, body["error"]["code"]) == (400, "amount_too_large")
    status, body, _ = await raw(
        browser, "POST", f"{base_url}/{intent.id}/refund", data='{"amount": "lots"}'
    )
    assert (status, body["error"]["param"]) == (400, "amount")
    status, body, _ = await raw(browser, "POST", f"{base_url}/pi_missing/capture")
    assert (status, body["error"]["code"]) == (404, "resource_missing")
    status, body, _ = await raw(browser, "GET", f"{sandbox.base_url}/_sandbox/ledger")
    entry = body["payment_intents"][intent.id]
    assert (entry["amount_captured"], entry["amount_refunded"], entry["captured_by"]) == (
        1200,
        200,
        "dashboard",
    )


# -- the ledger ---------------------------------------------------------------------------------


async def test_ledger_counts_every_request_but_not_replays(
    sandbox: StripeSandbox, client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    session, intent = await authorised_session(client, browser)
    key = {"idempotency_key": "capture:r-1"}

    await client.v1.payment_intents.capture_async(intent.id, options=key)
    replayed = await client.v1.payment_intents.capture_async(intent.id, options=key)
    assert replayed.last_response.headers["Idempotent-Replayed"] == "true"
    ledger = sandbox.ledger()[intent.id]
    assert (ledger["capture_requests"], ledger["captures"]) == (1, 1)

    # A second capture under another key: Stripe refuses it, the ledger shows it.
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.payment_intents.capture_async(
            intent.id, options={"idempotency_key": "capture:r-1:again"}
        )
    ledger = sandbox.ledger()[intent.id]
    assert (ledger["capture_requests"], ledger["captures"]) == (2, 1)
    # What a checker needs to recognise the PaymentIntents a system created.
    assert ledger["metadata"] == {"reservation": "r-1"}
    assert ledger["created"] == intent.created
    assert (ledger["status"], ledger["amount_held"]) == ("succeeded", 0)
    assert session.payment_intent == intent.id


async def test_ledger_counts_cancels(
    sandbox: StripeSandbox, client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    _, intent = await authorised_session(client, browser)
    await client.v1.payment_intents.cancel_async(intent.id)
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.payment_intents.cancel_async(intent.id)
    ledger = sandbox.ledger()[intent.id]
    assert (ledger["cancel_requests"], ledger["cancels"], ledger["canceled_by"]) == (2, 1, "api")

    _, other = await authorised_session(client, browser)
    sandbox.cancel_payment_intent_elsewhere(other.id)
    ledger = sandbox.ledger()[other.id]
    assert (ledger["cancel_requests"], ledger["cancels"], ledger["canceled_by"]) == (
        0,
        0,
        "elsewhere",
    )


# -- webhook subscriptions ----------------------------------------------------------------------


@pytest.fixture
async def subscribed(receiver: WebhookReceiver) -> AsyncIterator[StripeSandbox]:
    server = StripeSandbox(
        webhook_url=receiver.url,
        webhook_secret=SECRET,
        enabled_events=["checkout.session.completed", "payment_intent.canceled"],
    )
    await server.start()
    yield server
    await server.stop()


async def test_only_enabled_events_are_delivered(
    subscribed: StripeSandbox, receiver: WebhookReceiver, browser: aiohttp.ClientSession
) -> None:
    sdk, http = make_client(subscribed)
    try:
        _, intent = await authorised_session(sdk, browser)
        await sdk.v1.payment_intents.cancel_async(intent.id)
        everything = await sdk.v1.events.list_async(params={"limit": 100})
    finally:
        await http.close_async()

    async def two() -> bool:
        return len(receiver.received) == 2

    await eventually(two)
    await asyncio.sleep(0.2)
    assert [e["type"] for e in receiver.events()] == [
        "checkout.session.completed",
        "payment_intent.canceled",
    ]
    assert len(types_of(subscribed)) > 2
    # Events no endpoint subscribes to are not pending.
    pending = {e.type: e.pending_webhooks for e in everything.data}
    assert pending["payment_intent.created"] == 0


async def test_enabled_events_over_http_and_wildcard(
    sandbox: StripeSandbox,
    client: stripe.StripeClient,
    browser: aiohttp.ClientSession,
    receiver: WebhookReceiver,
) -> None:
    url = f"{sandbox.base_url}/_sandbox/webhooks"
    status, body, _ = await raw(browser, "GET", url)
    assert body["enabled_events"] == ["*"]
    status, body, _ = await raw(
        browser, "POST", url, data=json.dumps({"enabled_events": ["checkout.session.expired"]})
    )
    assert (status, body["enabled_events"]) == (200, ["checkout.session.expired"])
    for bad in (["charge.*"], [], "checkout.session.expired", [3]):
        status, body, _ = await raw(browser, "POST", url, data=json.dumps({"enabled_events": bad}))
        assert (status, body["error"]["param"]) == (400, "enabled_events")

    await authorised_session(client, browser)
    session = await create_session(client)
    await client.v1.checkout.sessions.expire_async(session.id)

    async def one() -> bool:
        return len(receiver.received) == 1

    await eventually(one)
    await asyncio.sleep(0.2)
    assert [e["type"] for e in receiver.events()] == ["checkout.session.expired"]
    sandbox.enabled_events = ["*"]
    assert sandbox.enabled_events == ["*"]
