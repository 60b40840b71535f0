"""The Stripe sandbox, driven by the real stripe SDK 16 and a plain HTTP client over 127.0.0.1.

Every API call goes through `stripe.StripeClient` with the SDK's aiohttp client (aiohttp
is a project dependency; the SDK's default async client would need httpx). The hosted
payment page is driven with aiohttp's client, posting the same fields a browser would.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import stripe
from aiohttp import web

from simulators.stripe_sandbox import StripeSandbox
from simulators.stripe_sandbox.forms import decode
from simulators.stripe_sandbox.params import Reader
from tests.waiting import eventually

SECRET = "whsec_test_sandbox"
API_KEY = "sk_test_sandbox_tests"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "stripe-fixtures.json"
DAY = 24 * 3600

CARD_OK = "4242 4242 4242 4242"
CARD_DECLINED = "4000 0000 0000 0002"
CARD_NO_FUNDS = "4000 0000 0000 9995"
CARD_3DS = "4000 0025 0000 3155"


# -- fixtures ---------------------------------------------------------------------------


class WebhookReceiver:
    """A webhook endpoint that records every delivery and can fail on demand."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, str]] = []
        self.failures = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append((await request.read(), request.headers["Stripe-Signature"]))
        if self.failures:
            self.failures -= 1
            return web.Response(status=500, text="boom")
        return web.json_response({"received": True})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/webhook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/webhook"

    async def stop(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body, _ in self.received]

    def ids(self) -> list[str]:
        return [event["id"] for event in self.events()]


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    endpoint = WebhookReceiver()
    await endpoint.start()
    yield endpoint
    await endpoint.stop()


@pytest.fixture
async def sandbox(receiver: WebhookReceiver) -> AsyncIterator[StripeSandbox]:
    server = StripeSandbox(
        webhook_url=receiver.url,
        webhook_secret=SECRET,
        webhook_retry_initial=0.05,
        webhook_retry_max=0.2,
    )
    await server.start(host="127.0.0.1", port=0)
    yield server
    await server.stop()


def make_client(
    sandbox: StripeSandbox, *, retries: int = 2, timeout: float = 10.0
) -> tuple[stripe.StripeClient, stripe.AIOHTTPClient]:
    http = stripe.AIOHTTPClient(timeout=timeout)
    client = stripe.StripeClient(
        API_KEY,
        base_addresses={"api": sandbox.base_url},
        http_client=http,
        max_network_retries=retries,
    )
    return client, http


@pytest.fixture
async def client(sandbox: StripeSandbox) -> AsyncIterator[stripe.StripeClient]:
    sdk, http = make_client(sandbox)
    yield sdk
    await http.close_async()


@pytest.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# -- helpers ----------------------------------------------------------------------------


def session_params(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": "eur",
                    "unit_amount": 2000,
                    "product_data": {"name": "Charging session CP-1/1"},
                },
                "quantity": 1,
            }
        ],
        "payment_intent_data": {
            "capture_method": "manual",
            "metadata": {"reservation": "r-1"},
        },
        "metadata": {"reservation": "r-1", "charge_point": "CP-1"},
        "success_url": "http://127.0.0.1:9/done?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "http://127.0.0.1:9/cancelled",
        "customer_email": "driver@example.com",
        "client_reference_id": "r-1",
    }
    params.update(overrides)
    return params


async def create_session(client: stripe.StripeClient, **overrides: Any) -> Any:
    return await client.v1.checkout.sessions.create_async(params=session_params(**overrides))


async def pay(
    browser: aiohttp.ClientSession, url: str, card: str = CARD_OK, **fields: str
) -> tuple[int, str, str | None]:
    """Submit the hosted page's form: status, page text, redirect location."""
    form = {
        "email": "driver@example.com",
        "cardNumber": card,
        "cardExpiry": "12 / 34",
        "cardCvc": "123",
        "billingName": "Jane Driver",
    } | fields
    async with browser.post(url, data=form, allow_redirects=False) as response:
        return response.status, await response.text(), response.headers.get("Location")


async def authorised_session(
    client: stripe.StripeClient, browser: aiohttp.ClientSession, **overrides: Any
) -> tuple[Any, Any]:
    """A session paid with 4242: (session, its PaymentIntent in requires_capture)."""
    session = await create_session(client, **overrides)
    status, _, _ = await pay(browser, session.url)
    assert status == 303
    session = await client.v1.checkout.sessions.retrieve_async(session.id)
    intent = await client.v1.payment_intents.retrieve_async(session.payment_intent)
    return session, intent


async def raw(
    browser: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    data: Any = None,
) -> tuple[int, dict[str, Any], Any]:
    async with browser.request(method, url, headers=headers, data=data) as response:
        return response.status, json.loads(await response.text()), response.headers


def types_of(sandbox: StripeSandbox) -> list[str]:
    return [event["type"] for event in sandbox.events()]


# -- object shapes against Stripe's own fixtures ------------------------------------------

# Sub-objects whose fixture is an unrelated example (an event about a plan) or a free-form hash.
_SHAPE_SKIP = {"event.data.object", "charge.source"}


def assert_same_shape(ours: Any, theirs: Any, path: str) -> None:
    """Every field of Stripe's example is present, and holds the same JSON type when both
    values are non-null; recursively for nested objects."""
    if ours is None or theirs is None or path in _SHAPE_SKIP:
        return
    assert type(ours) is type(theirs), f"{path}: {type(ours).__name__} vs {type(theirs).__name__}"
    if isinstance(theirs, dict) and not path.endswith(".metadata"):
        missing = set(theirs) - set(ours)
        assert not missing, f"{path} lacks {sorted(missing)}"
        for key in theirs:
            assert_same_shape(ours[key], theirs[key], f"{path}.{key}")
    if isinstance(theirs, list) and ours and theirs:
        assert_same_shape(ours[0], theirs[0], f"{path}[0]")


async def test_objects_have_the_fields_and_types_of_stripe_fixtures(
    sandbox: StripeSandbox, client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    if not FIXTURES.exists():
        pytest.skip(f"{FIXTURES} not available")
    fixtures = json.loads(FIXTURES.read_text())["resources"]
    session, intent = await authorised_session(client, browser)
    await client.v1.payment_intents.capture_async(intent.id)
    refund = await client.v1.refunds.create_async(
        params={"payment_intent": intent.id, "amount": 100}
    )
    dispute = sandbox.create_dispute(intent.id)
    event = sandbox.events("checkout.session.completed")[0]
    charge_id = sandbox.get(intent.id)["latest_charge"]

    wire: dict[str, dict[str, Any]] = {}
    for name, path in [
        ("checkout.session", f"/v1/checkout/sessions/{session.id}"),
        ("payment_intent", f"/v1/payment_intents/{intent.id}"),
        ("charge", f"/v1/charges/{charge_id}"),
        ("refund", f"/v1/refunds/{refund.id}"),
        ("event", f"/v1/events/{event['id']}"),
    ]:
        status, body, _ = await raw(browser, "GET", sandbox.base_url + path, headers=AUTH)
        assert status == 200
        wire[name] = body
    wire["dispute"] = dispute

    sdk_classes = {
        "checkout.session": stripe.checkout.Session,
        "payment_intent": stripe.PaymentIntent,
        "charge": stripe.Charge,
        "refund": stripe.Refund,
        "event": stripe.Event,
        "dispute": stripe.Dispute,
    }
    for name, ours in wire.items():
        theirs = fixtures[name]
        assert ours["object"] == theirs["object"]
        assert_same_shape(ours, theirs, name)
        # Fields beyond the example must be fields the SDK knows for this object.
        extra = set(ours) - set(theirs)
        assert extra <= set(sdk_classes[name].__annotations__), f"{name}: {sorted(extra)}"


# -- Checkout Sessions --------------------------------------------------------------------


async def test_create_session_returns_an_open_unpaid_session(
    sandbox: StripeSandbox, client: stripe.StripeClient
) -> None:
    session = await create_session(client)

    assert session.object == "checkout.session"
    assert session.id.startswith("cs_test_")
    assert session.url == f"{sandbox.base_url}/pay/{session.id}"
    assert (session.status, session.payment_status) == ("open", "unpaid")
    assert (session.amount_total, session.currency, session.mode) == (2000, "eur", "payment")
    # Stripe creates the PaymentIntent when the customer pays, not with the session.
    assert session.payment_intent is None
    assert session.metadata.to_dict() == {"reservation": "r-1", "charge_point": "CP-1"}
    assert session.customer_email == "driver@example.com"
    assert session.client_reference_id == "r-1"
    assert session.success_url.endswith("session_id={CHECKOUT_SESSION_ID}")
    assert session.livemode is False
    assert abs(session.expires_at - (sandbox.now() + DAY)) <= 2
    assert abs(session.created - sandbox.now()) <= 2
    assert session.last_response.headers["Request-Id"].startswith("req_")
    assert session.last_response.headers["Stripe-Version"] == stripe.api_version


async def test_public_url_is_used_for_the_hosted_page() -> None:
    async with StripeSandbox(public_url="https://pay.example.test/") as server:
        sdk, http = make_client(server)
        session = await create_session(sdk)
        await http.close_async()
    assert session.url == f"https://pay.example.test/pay/{session.id}"


async def test_line_items_and_payment_intent_can_be_expanded(
    client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    session, intent = await authorised_session(client, browser)

    expanded = await client.v1.checkout.sessions.retrieve_async(
        session.id, params={"expand": ["payment_intent.latest_charge", "line_items"]}
    )

    assert expanded.payment_intent.id == intent.id
    assert expanded.payment_intent.latest_charge.object == "charge"
    assert expanded.line_items.data[0].description == "Charging session CP-1/1"
    assert expanded.line_items.data[0].amount_total == 2000
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.checkout.sessions.retrieve_async(
            session.id, params={"expand": ["metadata"]}
        )
    assert error.value.param == "expand"


@pytest.mark.parametrize(
    ("lifetime", "accepted"),
    [(30 * 60 - 5, False), (30 * 60 + 5, True), (DAY - 5, True), (DAY + 5, False)],
)
async def test_expires_at_must_be_between_30_minutes_and_24_hours(
    sandbox: StripeSandbox, client: stripe.StripeClient, lifetime: int, accepted: bool
) -> None:
    expires_at = sandbox.now() + lifetime
    if accepted:
        session = await create_session(client, expires_at=expires_at)
        assert session.expires_at == expires_at
        return
    with pytest.raises(stripe.InvalidRequestError) as error:
        await create_session(client, expires_at=expires_at)
    assert error.value.http_status == 400
    assert error.value.param == "expires_at"


async def test_payment_method_types_is_refused_as_in_api_version_endive(
    client: stripe.StripeClient,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as error:
        await create_session(client, payment_method_types=["card"])
    assert (error.value.code, error.value.param) == ("parameter_unknown", "payment_method_types")

    session = await create_session(client, allowed_payment_method_types=["card"])
    assert session.payment_method_types == ["card"]


async def test_parameter_errors_name_the_parameter(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as error:
        await create_session(
            client,
            line_items=[{"price_data": {"currency": "eur", "unit_amount": 2000}, "quantity": 1}],
        )
    assert error.value.code == "parameter_missing"
    assert error.value.param == "line_items[0][price_data][product_data]"

    with pytest.raises(stripe.InvalidRequestError) as error:
        await create_session(client, line_items=[{"price": "price_nope", "quantity": 1}])
    assert (error.value.code, error.value.http_status) == ("resource_missing", 404)

    with pytest.raises(stripe.InvalidRequestError) as error:
        await create_session(
            client,
            line_items=[
                {
                    "price_data": {
                        "currency": "eur",
                        "unit_amount": 10,
                        "product_data": {"name": "x"},
                    },
                    "quantity": 1,
                }
            ],
        )
    assert "at least €0.50 eur" in error.value.user_message


async def test_expire_an_open_session_and_not_twice(
    sandbox: StripeSandbox, client: stripe.StripeClient
) -> None:
    session = await create_session(client)

    expired = await client.v1.checkout.sessions.expire_async(session.id)

    assert (expired.status, expired.url) == ("expired", None)
    assert types_of(sandbox) == ["checkout.session.expired"]
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.checkout.sessions.expire_async(session.id)
    assert "This Checkout Session has a status of `expired`" in error.value.user_message


# -- the hosted page ------------------------------------------------------------------------


async def test_hosted_page_has_stable_fields_and_no_external_assets(
    client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    session = await create_session(client)

    async with browser.get(session.url) as response:
        assert response.status == 200
        assert response.headers["Request-Id"].startswith("req_")
        html = await response.text()

    for field in ("email", "cardNumber", "cardExpiry", "cardCvc", "billingName"):
        assert f'id="{field}" name="{field}"' in html
    assert 'id="submit"' in html
    assert 'name="viewport"' in html
    assert "€20.00" in html
    assert "Charging session CP-1/1" in html
    assert 'href="http://127.0.0.1:9/cancelled"' in html
    assert "<script" not in html
    assert "<link" not in html
    assert "src=" not in html


async def test_paying_with_4242_authorises_and_completes_the_session(
    sandbox: StripeSandbox, client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    session = await create_session(client)

    status, _, location = await pay(browser, session.url)

    assert status == 303
    assert location == f"http://127.0.0.1:9/done?session_id={session.id}"
    session = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert session.status == "complete"
    # An authorised manual-capture payment is not paid yet: check the PaymentIntent.
    assert session.payment_status == "unpaid"
    assert session.customer_details.email == "driver@example.com"
    assert session.url is None
    intent = await client.v1.payment_intents.retrieve_async(session.payment_intent)
    assert intent.status == "requires_capture"
    assert (intent.amount, intent.amount_capturable, intent.amount_received) == (2000, 2000, 0)
    assert intent.capture_method == "manual"
    assert intent.metadata.to_dict() == {"reservation": "r-1"}
    charge = await client.v1.charges.retrieve_async(intent.latest_charge)
    assert (charge.captured, charge.amount_captured, charge.status) == (False, 0, "succeeded")
    assert charge.payment_method_details.card.last4 == "4242"
    assert types_of(sandbox) == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.amount_capturable_updated",
        "checkout.session.completed",
    ]

    async with browser.get(f"{sandbox.base_url}/pay/{session.id}") as response:
        assert "This Checkout Session is complete" in await response.text()
    status, _, _ = await pay(browser, f"{sandbox.base_url}/pay/{session.id}")
    assert status == 409


async def test_automatic_capture_session_is_paid_at_once(
    client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    session, intent = await authorised_session(client, browser, payment_intent_data={})

    assert (session.status, session.payment_status) == ("complete", "paid")
    assert (intent.status, intent.amount_received) == ("succeeded", 2000)


@pytest.mark.parametrize(
    ("card", "decline_code", "message"),
    [
        (CARD_DECLINED, "generic_decline", "Your card was declined."),
        (CARD_NO_FUNDS, "insufficient_funds", "Your card has insufficient funds."),
    ],
)
async def test_declined_card_keeps_the_session_open(
    sandbox: StripeSandbox,
    client: stripe.StripeClient,
    browser: aiohttp.ClientSession,
    card: str,
    decline_code: str,
    message: str,
) -> None:
    session = await create_session(client)

    status, html, _ = await pay(browser, session.url, card)

    assert status == 402
    assert message in html
    session = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert session.status == "open"
    intent = await client.v1.payment_intents.retrieve_async(session.payment_intent)
    assert intent.status == "requires_payment_method"
    error = intent.last_payment_error
    assert (error.type, error.code) == ("card_error", "card_declined")
    assert error.decline_code == decline_code
    assert error.message == message
    assert types_of(sandbox)[-2:] == ["charge.failed", "payment_intent.payment_failed"]

    # The customer tries another card on the same session and PaymentIntent.
    status, _, _ = await pay(browser, session.url, CARD_OK)
    assert status == 303
    intent = await client.v1.payment_intents.retrieve_async(session.payment_intent)
    assert (intent.status, intent.last_payment_error) == ("requires_capture", None)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cardNumber": "1234 5678 9012 3456"}, "Your card number is invalid."),
        ({"cardExpiry": "13/30"}, "Your card's expiration date is incomplete."),
        ({"cardExpiry": "01/20"}, "Your card's expiration year is in the past."),
        ({"cardCvc": "1"}, "Your card's security code is incomplete."),
        ({"billingName": ""}, "Your cardholder name is incomplete."),
    ],
)
async def test_bad_card_input_is_refused_before_any_payment(
    client: stripe.StripeClient,
    browser: aiohttp.ClientSession,
    fields: dict[str, str],
    message: str,
) -> None:
    session = await create_session(client)

    status, html, _ = await pay(browser, session.url, **fields)

    assert status == 400
    assert message.replace("'", "&#x27;") in html
    session = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert (session.status, session.payment_intent) == ("open", None)


@pytest.mark.parametrize("outcome", ["complete", "fail"])
async def test_3d_secure_card_asks_for_authentication(
    sandbox: StripeSandbox,
    client: stripe.StripeClient,
    browser: aiohttp.ClientSession,
    outcome: str,
) -> None:
    session = await create_session(client)

    status, _, location = await pay(browser, session.url, CARD_3DS)

    assert (status, location) == (303, f"/pay/{session.id}/authenticate")
    async with browser.get(sandbox.base_url + location) as response:
        html = await response.text()
    assert 'id="authenticate-complete"' in html
    assert 'id="authenticate-fail"' in html
    session = await client.v1.checkout.sessions.retrieve_async(session.id)
    intent = await client.v1.payment_intents.retrieve_async(session.payment_intent)
    assert intent.status == "requires_action"

    async with browser.post(
        sandbox.base_url + location, data={"action": outcome}, allow_redirects=False
    ) as response:
        status, html = response.status, await response.text()

    intent = await client.v1.payment_intents.retrieve_async(session.payment_intent)
    if outcome == "complete":
        assert status == 303
        assert intent.status == "requires_capture"
        charge = await client.v1.charges.retrieve_async(intent.latest_charge)
        assert charge.payment_method_details.card.three_d_secure.result == "authenticated"
    else:
        assert status == 402
        assert "unable to authenticate" in html
        assert intent.status == "requires_payment_method"
        assert intent.last_payment_error.code == "payment_intent_authentication_failure"
        assert types_of(sandbox)[-1] == "payment_intent.payment_failed"
        session = await client.v1.checkout.sessions.retrieve_async(session.id)
        assert session.status == "open"


async def test_another_card_replaces_the_one_waiting_for_authentication(
    sandbox: StripeSandbox, client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    session = await create_session(client)
    _, _, location = await pay(browser, session.url, CARD_3DS)
    assert location is not None

    status, _, _ = await pay(browser, session.url, CARD_DECLINED)
    assert status == 402
    async with browser.post(
        sandbox.base_url + location, data={"action": "complete"}, allow_redirects=False
    ) as response:
        # Nothing waits for authentication any more: back to the payment form.
        assert (response.status, response.headers["Location"]) == (303, f"/pay/{session.id}")

    session = await client.v1.checkout.sessions.retrieve_async(session.id)
    intent = await client.v1.payment_intents.retrieve_async(session.payment_intent)
    assert (session.status, intent.status) == ("open", "requires_payment_method")


async def test_card_numbers_are_never_logged_nor_stored(
    sandbox: StripeSandbox,
    client: stripe.StripeClient,
    browser: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="simulators.stripe_sandbox")

    await authorised_session(client, browser)
    session = await create_session(client)
    await pay(browser, session.url, CARD_DECLINED)

    assert "****4242" in caplog.text
    everything = caplog.text + json.dumps(sandbox.account.objects)
    for number in ("4242424242424242", CARD_OK, "4000000000000002"):
        assert number not in everything


# -- PaymentIntents: capture and cancel ---------------------------------------------------


async def test_partial_capture_releases_the_rest(
    sandbox: StripeSandbox, client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    _, intent = await authorised_session(client, browser)
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.payment_intents.capture_async(intent.id, params={"amount_to_capture": 2001})
    assert (error.value.code, error.value.param) == ("amount_too_large", "amount_to_capture")
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.payment_intents.capture_async(intent.id, params={"amount_to_capture": 10})
    assert error.value.code == "amount_too_small"

    captured = await client.v1.payment_intents.capture_async(
        intent.id,
        params={"amount_to_capture": 1500, "expand": ["latest_charge"]},
        options={"idempotency_key": f"capture:r-1:{1500}"},
    )

    assert captured.status == "succeeded"
    assert (captured.amount_received, captured.amount_capturable) == (1500, 0)
    charge = captured.latest_charge
    assert (charge.captured, charge.amount_captured, charge.amount_refunded) == (True, 1500, 500)
    assert charge.balance_transaction.startswith("txn_")
    assert types_of(sandbox)[-2:] == ["charge.captured", "payment_intent.succeeded"]
    ledger = sandbox.ledger()[intent.id]
    assert ledger["amount_authorized"] == 2000
    assert (ledger["amount_captured"], ledger["amount_released"], ledger["amount_held"]) == (
        1500,
        500,
        0,
    )
    # Every capture request counts, the two refused ones too; one captured.
    assert (ledger["capture_requests"], ledger["captures"], ledger["captured_by"]) == (3, 1, "api")

    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.payment_intents.capture_async(intent.id)
    assert error.value.code == "payment_intent_unexpected_state"
    assert error.value.json_body["error"]["payment_intent"]["status"] == "succeeded"
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.payment_intents.cancel_async(intent.id)
    assert error.value.code == "payment_intent_unexpected_state"
    ledger = sandbox.ledger()[intent.id]
    assert (ledger["capture_requests"], ledger["captures"]) == (4, 1)
    assert (ledger["cancel_requests"], ledger["cancels"]) == (1, 0)


async def test_cancel_releases_the_hold_once(
    sandbox: StripeSandbox, client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    _, intent = await authorised_session(client, browser)

    canceled = await client.v1.payment_intents.cancel_async(
        intent.id, params={"cancellation_reason": "requested_by_customer"}
    )

    assert canceled.status == "canceled"
    assert canceled.cancellation_reason == "requested_by_customer"
    assert canceled.amount_capturable == 0
    assert abs(canceled.canceled_at - sandbox.now()) <= 2
    assert types_of(sandbox)[-1] == "payment_intent.canceled"
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.payment_intents.cancel_async(intent.id)
    assert error.value.code == "payment_intent_unexpected_state"
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.payment_intents.capture_async(intent.id)
    ledger = sandbox.ledger()[intent.id]
    assert (ledger["amount_released"], ledger["amount_held"]) == (2000, 0)
    # The second cancel was refused but is counted: a checker sees it.
    assert (ledger["cancel_requests"], ledger["cancels"], ledger["canceled_by"]) == (2, 1, "api")
    assert (ledger["capture_requests"], ledger["captures"]) == (1, 0)


async def test_checkout_payment_intent_is_released_by_expiring_the_session(
    sandbox: StripeSandbox, client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    session = await create_session(client)
    await pay(browser, session.url, CARD_DECLINED)
    session = await client.v1.checkout.sessions.retrieve_async(session.id)

    # As on Stripe: a Checkout PaymentIntent can only be canceled once authorised.
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.payment_intents.cancel_async(session.payment_intent)
    assert "Expire the Checkout Session instead" in error.value.user_message

    await client.v1.checkout.sessions.expire_async(session.id)
    intent = await client.v1.payment_intents.retrieve_async(session.payment_intent)
    assert (intent.status, intent.cancellation_reason) == ("canceled", "abandoned")
    assert types_of(sandbox)[-2:] == ["payment_intent.canceled", "checkout.session.expired"]


async def test_cancel_elsewhere_and_dispute(
    sandbox: StripeSandbox, client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    _, held = await authorised_session(client, browser)
    sandbox.cancel_payment_intent_elsewhere(held.id)
    intent = await client.v1.payment_intents.retrieve_async(held.id)
    assert (intent.status, intent.cancellation_reason) == ("canceled", "requested_by_customer")
    assert sandbox.ledger()[held.id]["canceled_by"] == "elsewhere"
    assert sandbox.events("payment_intent.canceled")[0]["request"]["id"].startswith("req_")

    _, paid = await authorised_session(client, browser)
    await client.v1.payment_intents.capture_async(paid.id)
    dispute = sandbox.create_dispute(paid.id)
    assert (dispute["object"], dispute["amount"], dispute["status"]) == (
        "dispute",
        2000,
        "needs_response",
    )
    assert sandbox.events()[-1]["type"] == "charge.dispute.created"
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.refunds.create_async(params={"payment_intent": paid.id})
    assert error.value.code == "charge_disputed"


# -- time -----------------------------------------------------------------------------------


async def test_session_expires_when_the_clock_passes_expires_at(
    sandbox: StripeSandbox, client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    session = await create_session(client, expires_at=sandbox.now() + 1800)

    sandbox.advance_clock(1700)
    assert (await client.v1.checkout.sessions.retrieve_async(session.id)).status == "open"
    sandbox.advance_clock(200)

    session = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert session.status == "expired"
    assert types_of(sandbox) == ["checkout.session.expired"]
    async with browser.get(f"{sandbox.base_url}/pay/{session.id}") as response:
        assert "expired" in await response.text()
    status, _, _ = await pay(browser, f"{sandbox.base_url}/pay/{session.id}")
    assert status == 409


async def test_uncaptured_authorisation_is_canceled_after_7_days(
    sandbox: StripeSandbox, client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    _, intent = await authorised_session(client, browser)
    charge = await client.v1.charges.retrieve_async(intent.latest_charge)
    assert charge.payment_method_details.card.capture_before >= sandbox.now() + 7 * DAY - 2

    sandbox.advance_clock(7 * DAY - 60)
    assert (await client.v1.payment_intents.retrieve_async(intent.id)).status == "requires_capture"
    sandbox.advance_clock(120)

    intent = await client.v1.payment_intents.retrieve_async(intent.id)
    assert (intent.status, intent.cancellation_reason) == ("canceled", "automatic")
    assert types_of(sandbox)[-2:] == ["charge.expired", "payment_intent.canceled"]
    ledger = sandbox.ledger()[intent.id]
    assert (ledger["amount_released"], ledger["amount_held"], ledger["canceled_by"]) == (
        2000,
        0,
        "automatic",
    )


# -- refunds ----------------------------------------------------------------------------------


async def test_refunds_partial_full_and_over_refund(
    sandbox: StripeSandbox, client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    _, intent = await authorised_session(client, browser)
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.refunds.create_async(params={"payment_intent": intent.id})
    await client.v1.payment_intents.capture_async(intent.id, params={"amount_to_capture": 1800})

    partial = await client.v1.refunds.create_async(
        params={
            "payment_intent": intent.id,
            "amount": 500,
            "reason": "requested_by_customer",
            "metadata": {"reservation": "r-1"},
        }
    )
    assert (partial.object, partial.status, partial.amount) == ("refund", "succeeded", 500)
    assert partial.reason == "requested_by_customer"
    assert partial.payment_intent == intent.id
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.refunds.create_async(params={"payment_intent": intent.id, "amount": 1301})
    assert (error.value.code, error.value.param) == ("amount_too_large", "amount")

    rest = await client.v1.refunds.create_async(params={"payment_intent": intent.id})
    assert rest.amount == 1300
    charge = await client.v1.charges.retrieve_async(partial.charge)
    # 200 released by the partial capture + 1800 refunded.
    assert (charge.amount_refunded, charge.refunded) == (2000, True)
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.refunds.create_async(params={"payment_intent": intent.id})
    assert error.value.code == "charge_already_refunded"

    fetched = await client.v1.refunds.retrieve_async(partial.id)
    assert fetched.metadata.to_dict() == {"reservation": "r-1"}
    updated = await client.v1.refunds.update_async(partial.id, params={"metadata": {"note": "x"}})
    assert updated.metadata.to_dict() == {"reservation": "r-1", "note": "x"}
    assert sandbox.ledger()[intent.id]["amount_refunded"] == 1800
    refund_events = [t for t in types_of(sandbox) if t.startswith(("refund.", "charge.refunded"))]
    assert refund_events == [
        "refund.created",
        "charge.refunded",
        "refund.created",
        "charge.refunded",
        "refund.updated",
    ]


# -- idempotency --------------------------------------------------------------------------------


async def test_same_key_same_params_replays_the_response(
    sandbox: StripeSandbox, client: stripe.StripeClient
) -> None:
    first = await client.v1.checkout.sessions.create_async(
        params=session_params(), options={"idempotency_key": "create:r-1"}
    )
    again = await client.v1.checkout.sessions.create_async(
        params=session_params(), options={"idempotency_key": "create:r-1"}
    )

    assert again.id == first.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert again.last_response.headers["Original-Request"] == first.last_response.request_id
    sessions = [o for o in sandbox.account.objects.values() if o["object"] == "checkout.session"]
    assert len(sessions) == 1


async def test_same_key_other_params_or_endpoint_is_an_idempotency_error(
    client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    await client.v1.checkout.sessions.create_async(
        params=session_params(), options={"idempotency_key": "create:r-2"}
    )

    with pytest.raises(stripe.IdempotencyError) as error:
        await client.v1.checkout.sessions.create_async(
            params=session_params(client_reference_id="r-3"),
            options={"idempotency_key": "create:r-2"},
        )
    assert error.value.http_status == 400
    assert error.value.json_body["error"]["type"] == "idempotency_error"

    _, intent = await authorised_session(client, browser)
    with pytest.raises(stripe.IdempotencyError):
        await client.v1.payment_intents.capture_async(
            intent.id, options={"idempotency_key": "create:r-2"}
        )


async def test_validation_errors_are_not_saved_under_the_key(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.checkout.sessions.create_async(
            params=session_params(expires_at=1), options={"idempotency_key": "create:r-4"}
        )

    session = await client.v1.checkout.sessions.create_async(
        params=session_params(), options={"idempotency_key": "create:r-4"}
    )
    assert session.status == "open"


async def test_key_in_flight_is_refused_with_409(
    sandbox: StripeSandbox, client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    _, intent = await authorised_session(client, browser)
    url = f"{sandbox.base_url}/v1/payment_intents/{intent.id}/capture"
    headers = AUTH | {"Idempotency-Key": "capture:r-1"}
    sandbox.fail_next(delay_seconds=1.0, path="/v1/payment_intents/")

    slow = asyncio.create_task(raw(browser, "POST", url, headers=headers))
    await asyncio.sleep(0.2)
    status, body, _ = await raw(browser, "POST", url, headers=headers)

    assert status == 409
    assert body["error"]["code"] == "idempotency_key_in_use"
    status, body, _ = await slow
    assert (status, body["status"]) == (200, "succeeded")
    status, body, response_headers = await raw(browser, "POST", url, headers=headers)
    assert (status, response_headers["Idempotent-Replayed"]) == (200, "true")
    assert sandbox.ledger()[intent.id]["capture_requests"] == 1


# -- faults and the SDK's own retries -----------------------------------------------------------


async def test_500_then_success_with_sdk_retries_captures_once(
    sandbox: StripeSandbox, client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    _, intent = await authorised_session(client, browser)
    sandbox.fail_next(1, 500, path=f"/v1/payment_intents/{intent.id}/capture")

    captured = await client.v1.payment_intents.capture_async(
        intent.id, options={"idempotency_key": "capture:r-1:2000"}
    )

    assert captured.status == "succeeded"
    assert sandbox.ledger()[intent.id]["capture_requests"] == 1

    sandbox.fail_next(1, 500)
    status, body, headers = await raw(
        browser, "GET", f"{sandbox.base_url}/v1/payment_intents/{intent.id}", headers=AUTH
    )
    assert (status, body["error"]["type"]) == (500, "api_error")
    assert headers["Request-Id"].startswith("req_")

    no_retry, http = make_client(sandbox, retries=0)
    sandbox.fail_next(1, 503)
    with pytest.raises(stripe.APIError):
        await no_retry.v1.payment_intents.retrieve_async(intent.id)
    await http.close_async()


@pytest.mark.parametrize("after_processing", [False, True])
async def test_timeout_then_retry_with_the_same_key_captures_once(
    sandbox: StripeSandbox,
    client: stripe.StripeClient,
    browser: aiohttp.ClientSession,
    after_processing: bool,
) -> None:
    _, intent = await authorised_session(client, browser)
    impatient, http = make_client(sandbox, retries=2, timeout=1.0)
    sandbox.fail_next(1, "timeout", path="/v1/payment_intents/", after_processing=after_processing)

    captured = await impatient.v1.payment_intents.capture_async(
        intent.id,
        params={"amount_to_capture": 1200},
        options={"idempotency_key": "capture:r-1:1200"},
    )
    await http.close_async()

    assert (captured.status, captured.amount_received) == ("succeeded", 1200)
    replayed = captured.last_response.headers.get("Idempotent-Replayed") == "true"
    assert replayed is after_processing
    ledger = sandbox.ledger()[intent.id]
    assert (ledger["capture_requests"], ledger["amount_captured"]) == (1, 1200)


async def test_slow_answers_still_succeed(
    sandbox: StripeSandbox, client: stripe.StripeClient
) -> None:
    sandbox.fail_next(1, delay_seconds=0.3)
    started = time.monotonic()

    session = await create_session(client)

    assert session.status == "open"
    assert time.monotonic() - started >= 0.3


# -- errors -----------------------------------------------------------------------------------


async def test_authentication_is_required(
    sandbox: StripeSandbox, browser: aiohttp.ClientSession
) -> None:
    status, body, headers = await raw(browser, "GET", f"{sandbox.base_url}/v1/events")
    assert status == 401
    assert body["error"]["type"] == "invalid_request_error"
    assert "You did not provide an API key" in body["error"]["message"]
    assert headers["Request-Id"].startswith("req_")

    live = stripe.StripeClient(
        "sk_live_notallowed1234",
        base_addresses={"api": sandbox.base_url},
        http_client=(http := stripe.AIOHTTPClient()),
    )
    with pytest.raises(stripe.AuthenticationError) as error:
        await live.v1.events.list_async()
    await http.close_async()
    assert error.value.http_status == 401
    assert "sk_live_" in error.value.user_message
    assert "notallowed" not in error.value.user_message


async def test_missing_objects_and_unknown_urls_are_404(
    sandbox: StripeSandbox, client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.payment_intents.retrieve_async("pi_missing")
    assert (error.value.http_status, error.value.code) == (404, "resource_missing")
    assert error.value.param == "intent"
    assert error.value.user_message == "No such payment_intent: 'pi_missing'"
    assert error.value.json_body["error"]["doc_url"].endswith("resource-missing")

    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.checkout.sessions.retrieve_async("cs_test_missing")
    assert error.value.http_status == 404

    status, body, _ = await raw(
        browser, "POST", f"{sandbox.base_url}/v1/payment_intents/pi_x", headers=AUTH
    )
    assert status == 404
    assert body["error"]["message"].startswith("Unrecognized request URL (POST:")
    async with browser.get(f"{sandbox.base_url}/pay/cs_test_missing") as response:
        assert response.status == 404


# -- events and webhooks ------------------------------------------------------------------------


async def test_events_can_be_listed_and_filtered(
    sandbox: StripeSandbox, client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    _, intent = await authorised_session(client, browser)
    await client.v1.payment_intents.capture_async(intent.id)

    everything = await client.v1.events.list_async(params={"limit": 100})
    assert [e.type for e in everything.data] == list(reversed(types_of(sandbox)))
    assert everything.has_more is False
    payment_intents = await client.v1.events.list_async(params={"type": "payment_intent.*"})
    assert {e.type for e in payment_intents.data} == {
        "payment_intent.created",
        "payment_intent.amount_capturable_updated",
        "payment_intent.succeeded",
    }
    page = await client.v1.events.list_async(params={"limit": 2})
    assert page.has_more is True
    following = await client.v1.events.list_async(
        params={"limit": 2, "starting_after": page.data[-1].id}
    )
    assert following.data[0].id == everything.data[2].id
    future = await client.v1.events.list_async(params={"created": {"gt": sandbox.now() + 10}})
    assert future.data == []
    one = await client.v1.events.retrieve_async(page.data[0].id)
    assert (one.object, one.type) == ("event", page.data[0].type)
    assert one.api_version == stripe.api_version
    assert one.request.idempotency_key is not None  # the SDK sends one on every POST


async def test_webhooks_are_signed_like_stripe(
    sandbox: StripeSandbox,
    client: stripe.StripeClient,
    browser: aiohttp.ClientSession,
    receiver: WebhookReceiver,
) -> None:
    _, intent = await authorised_session(client, browser)

    async def all_delivered() -> bool:
        return len(receiver.received) == len(sandbox.events())

    await eventually(all_delivered)
    for body, signature in receiver.received:
        assert signature.startswith("t=") and ",v1=" in signature
        event = client.construct_event(body, signature, SECRET)
        assert event.object == "event"
        assert stripe.Webhook.construct_event(body, signature, SECRET).id == event.id
        with pytest.raises(stripe.SignatureVerificationError):
            client.construct_event(body, signature, "whsec_wrong")
    completed = client.construct_event(*receiver.received[-1], SECRET)
    assert completed.type == "checkout.session.completed"
    assert completed.data.object.payment_intent == intent.id
    assert completed.data.object.payment_status == "unpaid"
    assert completed.request.id is None  # a customer action, not an API request
    stored = await client.v1.events.retrieve_async(completed.id)
    assert stored.pending_webhooks == 0


async def test_webhook_is_retried_after_a_500(
    sandbox: StripeSandbox,
    client: stripe.StripeClient,
    browser: aiohttp.ClientSession,
    receiver: WebhookReceiver,
) -> None:
    receiver.failures = 1
    session = await create_session(client)
    await client.v1.checkout.sessions.expire_async(session.id)

    async def delivered() -> bool:
        return len(receiver.received) == 2

    await eventually(delivered)
    assert receiver.ids()[0] == receiver.ids()[1]
    attempts = [(a["attempt"], a["status"], a["delivered"]) for a in sandbox.deliveries()]
    assert attempts == [(1, 500, False), (2, 200, True)]


async def test_webhook_duplicates_and_shuffle(
    sandbox: StripeSandbox,
    client: stripe.StripeClient,
    browser: aiohttp.ClientSession,
    receiver: WebhookReceiver,
) -> None:
    sandbox.pause_webhooks()
    await authorised_session(client, browser)
    await asyncio.sleep(0.1)
    assert receiver.received == []
    sandbox.webhook_shuffle(True)
    sandbox.webhook_duplicates(2)

    sandbox.resume_webhooks()

    created = [event["id"] for event in sandbox.events()]

    async def delivered() -> bool:
        return len(receiver.received) == 2 * len(created)

    await eventually(delivered)
    received = receiver.ids()
    assert sorted(received) == sorted(created * 2)
    assert list(dict.fromkeys(received)) != created


# -- driving it from another process ----------------------------------------------------------


async def test_control_endpoints_drive_the_sandbox_over_http(
    sandbox: StripeSandbox,
    client: stripe.StripeClient,
    browser: aiohttp.ClientSession,
    receiver: WebhookReceiver,
) -> None:
    base = f"{sandbox.base_url}/_sandbox"
    _, intent = await authorised_session(client, browser)

    status, body, _ = await raw(browser, "POST", f"{base}/webhooks", data='{"paused": true}')
    assert (status, body["paused"]) == (200, True)
    status, body, _ = await raw(browser, "POST", f"{base}/clock/advance", data='{"seconds": 60}')
    assert abs(body["now"] - (time.time() + 60)) <= 2
    status, body, _ = await raw(
        browser, "POST", f"{base}/faults", data='{"count": 1, "status": 500, "path": "/v1/events"}'
    )
    assert body["pending"][0]["status"] == 500
    status, _, _ = await raw(browser, "GET", f"{sandbox.base_url}/v1/events", headers=AUTH)
    assert status == 500
    status, body, _ = await raw(browser, "POST", f"{base}/payment_intents/{intent.id}/cancel")
    assert body["status"] == "canceled"
    status, body, _ = await raw(browser, "GET", f"{base}/ledger")
    assert body["payment_intents"][intent.id]["canceled_by"] == "elsewhere"
    status, body, _ = await raw(browser, "GET", f"{base}/events")
    assert body["events"][-1]["type"] == "payment_intent.canceled"
    status, body, _ = await raw(
        browser, "POST", f"{base}/payment_intents/{intent.id}/dispute", headers=AUTH
    )
    assert (status, body["error"]["code"]) == (400, "payment_intent_unexpected_state")
    status, body, _ = await raw(browser, "POST", f"{base}/faults", data='{"status": "teapot"}')
    assert status == 400
    delivered = len(receiver.received)
    await asyncio.sleep(0.1)
    assert len(receiver.received) == delivered  # paused: the new events wait
    status, body, _ = await raw(browser, "GET", f"{base}/webhooks")
    assert len(body["attempts"]) == delivered


async def test_cli_prints_its_base_url_and_stops_on_sigterm(
    browser: aiohttp.ClientSession,
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulators.stripe_sandbox",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--log-level",
        "warning",
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        base_url = (await asyncio.wait_for(process.stdout.readline(), 20)).decode().strip()
        assert base_url.startswith("http://127.0.0.1:")
        status, body, _ = await raw(browser, "GET", f"{base_url}/_sandbox")
        assert (status, body["base_url"]) == (200, base_url)
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0


# -- form decoding ----------------------------------------------------------------------------


def test_bracket_syntax_decodes_to_nested_hashes_and_lists() -> None:
    encoded = (
        "mode=payment&metadata[reservation]=r-1&metadata[7]=seven"
        "&line_items[0][price_data][unit_amount]=2000&line_items[0][quantity]=1"
        "&line_items[1][quantity]=2&expand[]=a&expand[]=b"
        "&payment_intent_data%5Bcapture_method%5D=manual"
    )
    params = Reader(decode(encoded))

    assert params.string("mode") == "payment"
    assert params.metadata() == {"reservation": "r-1", "7": "seven"}
    items = params.hashes("line_items") or []
    assert [item.integer("quantity") for item in items] == [1, 2]
    price = items[0].hash("price_data")
    assert price is not None and price.integer("unit_amount") == 2000
    assert params.strings("expand") == ["a", "b"]
    payment_intent_data = params.hash("payment_intent_data")
    assert payment_intent_data is not None
    assert payment_intent_data.string("capture_method") == "manual"
