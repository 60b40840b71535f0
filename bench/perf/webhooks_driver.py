"""What happens outside csms before a webhook: a driver paying at a charger, other sales on
the same Stripe account, and the events the Stripe sandbox records for all of it; plus
Stripe's webhook signature, so the bench can deliver those events itself."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

import aiohttp

CARD = {
    "email": "driver@example.com",
    "cardNumber": "4242 4242 4242 4242",
    "cardExpiry": "12 / 34",
    "cardCvc": "123",
    "billingName": "Bench Driver",
}
CSRF_COOKIE = "csms_csrf"
_CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')
_SESSION_IN_URL = re.compile(r"/pay/(cs_[A-Za-z0-9_]+)")


class StepFailed(Exception):
    """A step of the flow got an answer a driver or Stripe would not have."""


def signature(payload: bytes, secret: str, timestamp: int) -> str:
    """The Stripe-Signature header: t={unix time},v1={hex HMAC-SHA256(secret, "t.payload")}."""
    signed = str(timestamp).encode() + b"." + payload
    mac = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def session_id_of(checkout_url: str) -> str:
    found = _SESSION_IN_URL.search(checkout_url)
    if found is None:
        raise StepFailed(f"no Checkout Session id in {checkout_url!r}")
    return found.group(1)


async def _expect(response: aiohttp.ClientResponse, status: int, step: str) -> None:
    if response.status != status:
        text = (await response.text())[:300]
        raise StepFailed(f"{step}: HTTP {response.status}, wanted {status}: {text}")


async def pay_at_charger(http: aiohttp.ClientSession, base: str, charger_id: str) -> str:
    """The driver's pages, as a phone goes through them: the QR code's start page, then Pay.
    Returns the Checkout URL the driver is sent to. `http` must keep no cookies of its own:
    each driver is a browser of its own, with its own CSRF cookie."""
    async with http.get(f"{base}/c/{charger_id}/1") as page:
        await _expect(page, 200, "start page")
        html = await page.text()
        cookie = page.cookies.get(CSRF_COOKIE)
    found = _CSRF_FIELD.search(html)
    if found is None or cookie is None:
        raise StepFailed("start page: no CSRF token")
    form = {"csrf": found.group(1), "cp": charger_id, "conn": "1"}
    async with http.post(
        f"{base}/start",
        data=form,
        headers={"Cookie": f"{CSRF_COOKIE}={cookie.value}"},
        allow_redirects=False,
    ) as pay:
        await _expect(pay, 303, "pay")
        checkout_url = pay.headers.get("Location")
    if not checkout_url:
        raise StepFailed("pay: a redirect without a Location")
    return checkout_url


async def pay_by_api(http: aiohttp.ClientSession, base: str, api_key: str, charger_id: str) -> str:
    """A front-end's way in (POST /api/payments); returns the Checkout URL."""
    async with http.post(
        f"{base}/api/payments",
        json={"chargePointId": charger_id, "connectorId": 1},
        headers={"X-API-Key": api_key},
    ) as response:
        await _expect(response, 200, "POST /api/payments")
        body = await response.json()
    url: str = body["checkoutUrl"]
    return url


async def pay_on_checkout(http: aiohttp.ClientSession, checkout_url: str) -> str:
    """The card form on the (sandbox's) hosted Checkout page; returns the session id.

    The redirect back to csms is not followed: the driver's phone never gets there, so the
    webhook is the only news of the payment that csms gets."""
    async with http.get(checkout_url) as page:
        await _expect(page, 200, "Checkout page")
        await page.read()
    async with http.post(checkout_url, data=CARD, allow_redirects=False) as paid:
        await _expect(paid, 303, "Checkout card form")
    return session_id_of(checkout_url)


@dataclass
class Sandbox:
    """The Stripe sandbox's API, as the account's other integrations and its dashboard use it."""

    http: aiohttp.ClientSession
    base: str
    key: str

    async def _post(self, path: str, form: dict[str, str]) -> dict[str, Any]:
        async with self.http.post(
            f"{self.base}{path}", data=form, headers={"Authorization": f"Bearer {self.key}"}
        ) as response:
            await _expect(response, 200, f"sandbox POST {path}")
            body: dict[str, Any] = await response.json()
            return body

    async def event(self, event_type: str, object_id: str) -> dict[str, Any]:
        """The newest event of `event_type` about `object_id`, as Stripe would deliver it."""
        async with self.http.get(
            f"{self.base}/v1/events",
            params={"type": event_type, "limit": "100"},
            headers={"Authorization": f"Bearer {self.key}"},
        ) as response:
            await _expect(response, 200, "sandbox GET /v1/events")
            listing = await response.json()
        for event in listing["data"]:
            if event["data"]["object"]["id"] == object_id:
                found: dict[str, Any] = event
                return found
        raise StepFailed(f"no {event_type} event for {object_id}")

    async def all_events(self) -> list[dict[str, Any]]:
        """Every event the account has had, oldest first (the sandbox's control API)."""
        async with self.http.get(f"{self.base}/_sandbox/events") as response:
            await _expect(response, 200, "sandbox GET /_sandbox/events")
            body = await response.json()
        events: list[dict[str, Any]] = body["events"]
        return sorted(events, key=lambda event: event["created"])

    async def other_sale(self, number: int, refund: bool, dispute: bool) -> None:
        """A sale by another product on the same Stripe account (not a charging session):
        paid on Checkout, captured, then perhaps part refunded and disputed. csms gets its
        events too, for objects it has never seen."""
        session = await self._post(
            "/v1/checkout/sessions",
            {
                "mode": "payment",
                "line_items[0][quantity]": "1",
                "line_items[0][price_data][currency]": "eur",
                "line_items[0][price_data][unit_amount]": str(1000 + number),
                "line_items[0][price_data][product_data][name]": "Parking ticket",
                "payment_intent_data[capture_method]": "manual",
                "success_url": "https://shop.example.com/thanks",
            },
        )
        await pay_on_checkout(self.http, session["url"])
        paid = await self._get(f"/v1/checkout/sessions/{session['id']}")
        intent = paid["payment_intent"]
        await self._post(f"/v1/payment_intents/{intent}/capture", {})
        if refund:
            await self._post("/v1/refunds", {"payment_intent": intent, "amount": "300"})
        if dispute:
            await self._post(f"/_sandbox/payment_intents/{intent}/dispute", {})

    async def _get(self, path: str) -> dict[str, Any]:
        async with self.http.get(
            f"{self.base}{path}", headers={"Authorization": f"Bearer {self.key}"}
        ) as response:
            await _expect(response, 200, f"sandbox GET {path}")
            body: dict[str, Any] = await response.json()
            return body
