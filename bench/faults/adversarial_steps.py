"""The steps the `adversarial` cases take (`bench.faults.adversarial`): the session a case
drives (`Ctx`), the webhook switch the cases share, a driver's steps over HTTP and Stripe's
side (the sandbox's ledger, signed events of our own making).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.faults.driving import CARD, TERMINAL, Api, SessionLog, create_payment
from bench.faults.ledger import Report
from bench.faults.processes import WEBHOOK_SECRET
from bench.faults.stripe_proxy import StripeProxy
from simulators.chargepoint import SimulatedCharger
from simulators.stripe_sandbox import DEFAULT_API_VERSION

# The sandbox takes any test key; this one is the server's too.
STRIPE_KEY = "sk_test_fault_runs"
ENERGY_WH = 2000  # a session: the driver stops once the car took this much
RELEASE_WITHIN = 20.0  # a late payment's hold must be released by then


@dataclass
class Webhooks:
    """Pauses the sandbox's webhook deliveries for the cases that need them paused, and keeps
    them flowing for the cases that need them flowing (never both at once)."""

    api: Api
    paused_by: int = 0
    flowing_by: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    @asynccontextmanager
    async def held(self, paused: bool) -> AsyncIterator[None]:
        async with self.changed:
            await self.changed.wait_for(
                lambda: (self.flowing_by if paused else self.paused_by) == 0
            )
            if paused:
                self.paused_by += 1
                if self.paused_by == 1:
                    await sandbox(self.api, "POST", "/webhooks", {"paused": True})
            else:
                self.flowing_by += 1
        try:
            yield
        finally:
            async with self.changed:
                if paused:
                    self.paused_by -= 1
                    if self.paused_by == 0:
                        await sandbox(self.api, "POST", "/webhooks", {"paused": False})
                else:
                    self.flowing_by -= 1
                self.changed.notify_all()


@dataclass
class Ctx:
    api: Api
    sim: SimulatedCharger
    log: SessionLog
    report: Report
    webhooks: Webhooks
    round: int  # how many times this case ran before in this run
    stripe_proxy: StripeProxy | None = None
    rid: str | None = None  # the session's reservation, once created


# -- a driver's steps


async def create(ctx: Ctx) -> dict[str, Any] | None:
    created = await create_payment(ctx.api, ctx.sim.charge_point_id, ctx.log)
    if created is not None:
        ctx.rid = created["reservationId"]
        ctx.log.reservation_ids.append(ctx.rid)
    return created


async def create_and_pay(ctx: Ctx, name: str, settled: set[str]) -> tuple[str, str] | None:
    """A session created and paid on the Checkout page, back on our success page: its id
    and its state once in `settled`. None, with the case failed, when none was created."""
    created = await create(ctx)
    if created is None:
        ctx.report.case(name, False, f"{ctx.sim.charge_point_id}: no session created")
        return None
    rid = created["reservationId"]
    await pay(ctx.api, created["checkoutUrl"], follow=True)
    state = await ctx.api.until(rid, lambda s: s["state"] in settled)
    return rid, state["state"]


async def pay(api: Api, url: str, *, follow: bool) -> int:
    """Pay with 4242 on the Checkout page; the page's answer (303: authorised, 409: closed).
    `follow`: back to our success page, as a browser goes."""
    try:
        async with api.http.post(url, data=CARD, allow_redirects=follow) as response:
            return response.history[0].status if response.history else response.status
    except aiohttp.ClientError:
        return 0


async def pay_and_back(api: Api, url: str) -> tuple[int, str | None]:
    """Pay on the Checkout page; its answer and where it sends the driver back to."""
    try:
        async with api.http.post(url, data=CARD, allow_redirects=False) as response:
            return response.status, response.headers.get("Location")
    except aiohttp.ClientError:
        return 0, None


async def get(api: Api, url: str) -> int:
    try:
        async with api.http.get(url, timeout=aiohttp.ClientTimeout(total=30)) as response:
            return response.status
    except (aiohttp.ClientError, TimeoutError):
        return 0


async def charge(
    ctx: Ctx, rid: str, while_charging: Callable[[], Awaitable[None]] | None = None
) -> None:
    """Plug in, charge until the car took ENERGY_WH (or the server stops it), press Stop."""
    api, sim = ctx.api, ctx.sim
    await sim.plug_in(1)
    state = await api.until(rid, lambda s: s["state"] == "Charging" or s["state"] in TERMINAL)
    if state["state"] == "Charging" and while_charging is not None:
        await while_charging()

    def charged() -> bool:
        t = sim.connector(1).transaction
        return t is None or t.delivered_wh >= ENERGY_WH

    await until(charged, 60)
    state = await api.state(rid)
    if state["state"] not in TERMINAL:
        await api.call("POST", f"/api/payments/{rid}/stop")
    await api.until(rid, lambda s: s["state"] in TERMINAL, within=60)


async def leave_free(ctx: Ctx) -> None:
    """End what the case left open, so that the connector is free for the next session."""
    api, sim, rid = ctx.api, ctx.sim, ctx.rid
    if rid is not None and (await api.state(rid))["state"] not in TERMINAL:
        # Stop, or cancel what has not started.
        await api.call("POST", f"/api/payments/{rid}/stop")
        await api.until(rid, lambda s: s["state"] in TERMINAL, within=30)
    if sim.connector(1).transaction is not None:
        await until(lambda: sim.connector(1).transaction is None, 10)
        if sim.connector(1).transaction is not None:
            await sim.stop_transaction(1)
    if sim.connector(1).plugged:
        await sim.unplug(1)


async def until(done: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        if done() or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.05)


# -- Stripe's side


async def sandbox(api: Api, method: str, path: str, body: Any = None) -> Any:
    async with api.http.request(
        method, f"{api.processes.stripe}/_sandbox{path}", json=body
    ) as response:
        response.raise_for_status()
        return await response.json()


async def stripe(api: Api, method: str, path: str) -> dict[str, Any]:
    async with api.http.request(
        method,
        f"{api.processes.stripe}{path}",
        headers={"Authorization": f"Bearer {STRIPE_KEY}"},
    ) as response:
        return await response.json()


async def ledger(api: Api) -> dict[str, dict[str, Any]]:
    return (await sandbox(api, "GET", "/ledger"))["payment_intents"]


async def checkout_session(api: Api, rid: str) -> str:
    _, details = await api.call("GET", f"/api/payments/{rid}/details")
    return details["checkoutSessionId"]


async def intent_of(api: Api, session_id: str) -> str | None:
    """The PaymentIntent of a Checkout Session, from Stripe (the server may not know it)."""
    return (await stripe(api, "GET", f"/v1/checkout/sessions/{session_id}")).get("payment_intent")


async def until_released(api: Api, intent_id: str | None) -> tuple[dict[str, Any], float]:
    """The PaymentIntent's ledger entry once its hold is gone (or RELEASE_WITHIN passed)."""
    started = time.monotonic()
    while True:
        entry = (await ledger(api)).get(intent_id or "", {})
        held = entry.get("amount_held", 0) > 0 or entry.get("status") == "requires_capture"
        waited = time.monotonic() - started
        if intent_id is None or not held or waited > RELEASE_WITHIN:
            return entry, waited
        await asyncio.sleep(0.5)


def signature(body: str, secret: str = WEBHOOK_SECRET) -> str:
    """Stripe-Signature, as Stripe signs: t=<unix time>,v1=<HMAC-SHA256 of "t.body">."""
    timestamp = int(time.time())
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


async def send_event(api: Api, event_type: str, obj: dict[str, Any]) -> int:
    """POST a correctly signed event to the server's webhook endpoint; its HTTP status."""
    now = int(time.time())
    event = {
        "id": f"evt_3{secrets.token_hex(12)}",
        "object": "event",
        "api_version": DEFAULT_API_VERSION,
        "created": now,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }
    body = json.dumps(event)
    async with api.http.post(
        f"{api.processes.base}/api/stripe/webhook",
        data=body,
        headers={"Stripe-Signature": signature(body), "Content-Type": "application/json"},
    ) as response:
        return response.status


def foreign_session(rid: str, amount: int, currency: str) -> dict[str, Any]:
    """Another Checkout Session (not the reservation's) with our reservation id."""
    return {
        "id": f"cs_test_{secrets.token_hex(16)}",
        "object": "checkout.session",
        "amount_total": amount,
        "client_reference_id": rid,
        "created": int(time.time()) - 60,
        "currency": currency,
        "expires_at": int(time.time()),
        "livemode": False,
        "metadata": {"reservation_id": rid},
        "mode": "payment",
        "payment_intent": None,
        "payment_status": "unpaid",
        "status": "expired",
        "url": None,
    }


def foreign_intent(rid: str, amount: int, currency: str, status: str) -> dict[str, Any]:
    """Another PaymentIntent (not the reservation's) with our reservation id."""
    now = int(time.time())
    return {
        "id": f"pi_3{secrets.token_hex(12)}",
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": amount if status == "requires_capture" else 0,
        "amount_received": 0,
        "canceled_at": now if status == "canceled" else None,
        "cancellation_reason": "abandoned" if status == "canceled" else None,
        "capture_method": "manual",
        "created": now - 60,
        "currency": currency,
        "latest_charge": None,
        "livemode": False,
        "metadata": {"reservation_id": rid},
        "status": status,
    }
