"""The `adversarial` scenario: real-world orders of events, one per session, round robin.

Each case drives one paid session through an order of events that real drivers, chargers
and Stripe produce, checks what must hold, and records its verdict with the evidence
(`Report.case`). The final audit then holds the whole ledger and the energy against the
server's books as for every scenario.

- late-cancel, late-cancel-paused: the driver cancels, then pays on the Checkout page
  anyway while Stripe is slow to expire it (webhooks flowing, or paused): the hold must
  be released.
- late-window: Stripe's Checkout window passes, then the driver pays anyway: nothing may
  be held and the reservation must end. (The server's own payment window is 30 minutes
  or more: too long for a run.)
- confirm-race: the driver's page confirms while the driver pays (webhooks paused): the
  session must not stay PendingPayment.
- foreign-webhook: correctly signed events for ANOTHER Checkout Session and PaymentIntent
  carrying our reservation id: the real session must carry on and capture.
- meter-down, meter-reset, meter-jump: the charger's register goes down, resets to 0 or
  jumps by gigawatt-hours mid-session: the energy billed must be the sum of the rises
  (down, reset) or bounded by the tariff's cap (jump), never 0 after kWh went in.
- start-after-release: after a cancel, the charger starts a transaction with the
  reservation's idTag anyway: the server must answer Invalid and send
  RemoteStopTransaction; a charger still charging a few seconds later is free charging.
- stop-offline: the driver presses Stop while the charger is offline: on reconnection the
  stop must arrive at once.
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
from pathlib import Path
from typing import Any

import aiohttp

from bench.faults.driving import CARD, TERMINAL, Api, SessionLog, create_payment
from bench.faults.ledger import ROUNDING_WH, Report
from bench.faults.processes import WEBHOOK_SECRET
from bench.faults.stripe_proxy import StripeProxy
from simulators.chargepoint import AuthorizationRejected, SimulatedCharger, Transaction
from simulators.stripe_sandbox import DEFAULT_API_VERSION

# The sandbox takes any test key; this one is the server's too.
STRIPE_KEY = "sk_test_fault_runs"
# Production-like: a server that only retries RemoteStop on this timer stops a charger
# that comes back online this late.
ENV = {"CSMS_PAYMENTS_STOP_RETRY_INTERVAL": "30"}
# Chargers start with a lifetime register, as real ones do, so that "down" and "reset" differ.
LIFETIME_WH = 1_234_567
ENERGY_WH = 2000  # a session: the driver stops once the car took this much
ANOMALY_AT_WH = 1000  # the meter misreads once this much went in
EXPIRE_DELAY = 2.0  # Stripe's slow answer to the server's expiry of a cancelled Checkout
RELEASE_WITHIN = 20.0  # a late payment's hold must be released by then
CONFIRM_WITHIN = 10.0  # a paid session must have left PendingPayment by then
FREE_AFTER = 4.0  # a charger still charging this long after a refused start charges free
OFFLINE_FOR = 3.0
STOP_AT_ONCE = 2.0  # seconds from reconnection to the charge stopping
# How long after the confirm the payment goes in, one race each (then one race held).
CONFIRM_OFFSETS = (0.0, 0.005, 0.02)
BEFORE_START = {"Authorised", "AwaitingPlug", "StartRequested"}


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
                    await _sandbox(self.api, "POST", "/webhooks", {"paused": True})
            else:
                self.flowing_by += 1
        try:
            yield
        finally:
            async with self.changed:
                if paused:
                    self.paused_by -= 1
                    if self.paused_by == 0:
                        await _sandbox(self.api, "POST", "/webhooks", {"paused": False})
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


Case = Callable[[Ctx], Awaitable[None]]


def adversarial(stripe_proxy: StripeProxy) -> Callable[..., Awaitable[None]]:
    """The drive for run_fleet: session number i runs CASES[i % len(CASES)]."""
    switches: list[Webhooks] = []

    async def drive(
        api: Api, sim: SimulatedCharger, log: SessionLog, report: Report, number: int
    ) -> None:
        if not switches:
            switches.append(Webhooks(api))
        webhooks = switches[0]
        name, case = CASES[number % len(CASES)]
        ctx = Ctx(api, sim, log, report, webhooks, number // len(CASES), stripe_proxy)
        try:
            await case(ctx)
        except Exception as exc:  # a broken case must not end the run: it is a failure
            report.case(name, False, f"{sim.charge_point_id}: the case broke: {exc!r}")
        await _leave_free(ctx)

    return drive


# -- the cases


async def late_cancel(ctx: Ctx) -> None:
    await _late_payment(ctx, "late-cancel", paused=False)


async def late_cancel_paused(ctx: Ctx) -> None:
    await _late_payment(ctx, "late-cancel-paused", paused=True)


async def _late_payment(ctx: Ctx, name: str, *, paused: bool) -> None:
    api = ctx.api
    created = await _create(ctx)
    if created is None:
        return ctx.report.case(name, False, f"{ctx.sim.charge_point_id}: no session created")
    rid, url = created["reservationId"], created["checkoutUrl"]
    session_id = await _checkout_session(api, rid)
    # Stripe is slow to expire the Checkout Session, so the driver's payment gets in first.
    await _sandbox(
        api,
        "POST",
        "/faults",
        {
            "count": 1,
            "delay_seconds": EXPIRE_DELAY,
            "method": "POST",
            "path": f"/v1/checkout/sessions/{session_id}/expire",
        },
    )
    async with ctx.webhooks.held(paused):
        status, body = await api.call("POST", f"/api/payments/{rid}/cancel")
        # The driver closed the tab after paying: no way back to our success page.
        paid = await _pay(api, url, follow=False)
        intent_id = await _intent_of(api, session_id)
        entry, waited = await _until_released(api, intent_id)
        state = await api.state(rid)
    how = "webhooks paused" if paused else "webhooks flowing"
    if intent_id is None:
        # The page was closed before the payment (the expiry won): nothing to release.
        ctx.report.case(name, True, happened=False)
        return
    released = entry.get("status") == "canceled" and entry.get("amount_held", 0) == 0
    ended = state["state"] in TERMINAL and state["state"] != "Completed"
    ctx.report.case(
        name,
        released and ended,
        None
        if released and ended
        else (
            f"{rid}: cancelled ({status} {body.get('state')}), then paid on the Checkout page "
            f"(page answered {paid}, {how}): {waited:.0f} s later {intent_id} is "
            f"{entry.get('status')} with {entry.get('amount_held')} held; reservation "
            f"{state['state']}, hold {state['hold']}"
        ),
    )


async def late_window(ctx: Ctx) -> None:
    name, api = "late-window", ctx.api
    created = await _create(ctx)
    if created is None:
        return ctx.report.case(name, False, f"{ctx.sim.charge_point_id}: no session created")
    rid, url = created["reservationId"], created["checkoutUrl"]
    session_id = await _checkout_session(api, rid)
    async with ctx.webhooks.held(paused=False):
        # The Checkout Session's window passes at Stripe (as at its expires_at).
        await _stripe(api, "POST", f"/v1/checkout/sessions/{session_id}/expire")
        paid = await _pay(api, url, follow=True)
        state = await api.until(rid, lambda s: s["state"] in TERMINAL, within=15)
    intent_id = await _intent_of(api, session_id)
    entry = (await _ledger(api)).get(intent_id or "", {})
    held = entry.get("amount_held", 0) > 0 or entry.get("status") == "requires_capture"
    ok = not held and state["state"] in TERMINAL and state["state"] != "Completed"
    ctx.report.case(
        name,
        ok,
        None
        if ok
        else (
            f"{rid}: Checkout expired at Stripe, then the driver paid (page answered {paid}): "
            f"{intent_id or 'no PaymentIntent'} {entry.get('status')} with "
            f"{entry.get('amount_held', 0)} held; reservation {state['state']}, hold "
            f"{state['hold']} 15 s later"
        ),
    )


async def confirm_race(ctx: Ctx) -> None:
    """Races with the payment going in at several offsets after the confirm, then the race
    held: the server's read of the Checkout Session reaches Stripe before the payment and
    its answer comes back once the driver is on our success page. The driver walks away
    (cancels) from all but the last session, which goes on to charge."""
    name, api = "confirm-race", ctx.api
    rid: str | None = None
    held_order = False
    async with ctx.webhooks.held(paused=True):
        for attempt in [*CONFIRM_OFFSETS, None]:
            if rid is not None:
                await api.call("POST", f"/api/payments/{rid}/cancel")
                await api.until(rid, lambda s: s["state"] in TERMINAL, within=15)
            created = await _create(ctx)
            if created is None:
                return ctx.report.case(name, False, f"{ctx.sim.charge_point_id}: no session")
            rid, url = created["reservationId"], created["checkoutUrl"]
            session_id = await _checkout_session(api, rid)
            if attempt is None:
                how, held_order = await _held_race(ctx, rid, url, session_id)
            else:
                how = await _race(api, rid, url, session_id, attempt)
            state = await api.until(rid, lambda s: s["state"] != "PendingPayment", CONFIRM_WITHIN)
            if state["state"] == "PendingPayment":
                return ctx.report.case(
                    name,
                    False,
                    f"{rid}: {how}, webhooks paused: still PendingPayment, hold "
                    f"{state['hold']}, {CONFIRM_WITHIN:.0f} s later",
                )
    ctx.report.case(name, True, happened=held_order)
    assert rid is not None
    if state["state"] in BEFORE_START:
        await _charge(ctx, rid)


async def _race(api: Api, rid: str, url: str, session_id: str, offset: float) -> str:
    async def paying() -> int:
        await asyncio.sleep(offset)
        # Back from Checkout to our success page, which confirms too.
        return await _pay(api, url, follow=True)

    (confirmed, _), paid = await asyncio.gather(
        api.call("POST", f"/api/payments/{rid}/confirm", {"checkoutSessionId": session_id}),
        paying(),
    )
    return f"confirm ({confirmed}) and payment {offset * 1000:.0f} ms later (page {paid})"


async def _held_race(ctx: Ctx, rid: str, url: str, session_id: str) -> tuple[str, bool]:
    """The order held in place by the proxy; whether that order came about."""
    api, proxy = ctx.api, ctx.stripe_proxy
    assert proxy is not None
    held = proxy.hold("GET", f"/v1/checkout/sessions/{session_id}")
    confirm = asyncio.create_task(
        api.call("POST", f"/api/payments/{rid}/confirm", {"checkoutSessionId": session_id})
    )
    try:
        await asyncio.wait_for(held.reached.wait(), 5)
    except TimeoutError:
        proxy.forget(held)
        await confirm
        return "the confirm never read the Checkout Session", False
    paid, success_url = await _pay_and_back(api, url)
    back = asyncio.create_task(_get(api, success_url)) if success_url else None
    await asyncio.sleep(0.5)  # our success page's confirm reaches the server meanwhile
    held.release()
    confirmed, _ = await confirm
    if back is not None:
        await back
    return (
        f"confirm ({confirmed}) read the Checkout Session, then the driver paid (page "
        f"{paid}) and came back to our success page, then the confirm got Stripe's answer"
    ), True


async def foreign_webhook(ctx: Ctx) -> None:
    name, api = "foreign-webhook", ctx.api
    created = await _create(ctx)
    if created is None:
        return ctx.report.case(name, False, f"{ctx.sim.charge_point_id}: no session created")
    rid, url = created["reservationId"], created["checkoutUrl"]
    hold, currency = created["maxAmount"], created["currency"]
    # Another Checkout Session for the same reservation expires, its payment fails...
    answers = [
        await _send_event(api, "checkout.session.expired", _foreign_session(rid, hold, currency)),
        await _send_event(
            api, "checkout.session.async_payment_failed", _foreign_session(rid, hold, currency)
        ),
    ]
    await _pay(api, url, follow=True)
    state = await api.until(rid, lambda s: s["state"] in BEFORE_START | TERMINAL)
    if state["state"] in BEFORE_START:

        async def while_charging() -> None:
            # ... and another PaymentIntent with our reservation id is cancelled, authorised.
            for status in ("canceled", "requires_capture"):
                intent = _foreign_intent(rid, hold, currency, status)
                event = (
                    "payment_intent.canceled"
                    if status == "canceled"
                    else ("payment_intent.amount_capturable_updated")
                )
                answers.append(await _send_event(api, event, intent))

        await _charge(ctx, rid, while_charging=while_charging)
    final = await api.until(rid, lambda s: s["state"] in TERMINAL, within=30)
    _, details = await api.call("GET", f"/api/payments/{rid}/details")
    intent_id = details.get("paymentIntentId")
    entry = (await _ledger(api)).get(intent_id or "", {})
    ok = (
        final["state"] == "Completed"
        and final["capturedAmount"] > 0
        and entry.get("status") == "succeeded"
        and entry.get("amount_captured") == final["capturedAmount"]
        and all(status == 200 for status in answers)
    )
    ctx.report.case(
        name,
        ok,
        None
        if ok
        else (
            f"{rid}: after signed events for another session and PaymentIntent (answered "
            f"{answers}): reservation {final['state']}, hold {final['hold']}, captured "
            f"{final['capturedAmount']} ({final.get('failureReason')}); at Stripe "
            f"{intent_id} {entry.get('status')} captured {entry.get('amount_captured')}"
        ),
    )


def _meter(kind: str) -> Case:
    async def case(ctx: Ctx) -> None:
        name, api, sim = f"meter-{kind}", ctx.api, ctx.sim
        sim.behaviour.meter_anomaly = kind
        sim.behaviour.meter_anomaly_at_wh = ANOMALY_AT_WH
        try:
            created = await _create(ctx)
            if created is None:
                return ctx.report.case(name, False, f"{sim.charge_point_id}: no session created")
            rid = created["reservationId"]
            await _pay(api, created["checkoutUrl"], follow=True)
            state = await api.until(rid, lambda s: s["state"] in BEFORE_START | TERMINAL)
            if state["state"] in BEFORE_START:
                await _charge(ctx, rid)
        finally:
            sim.behaviour.meter_anomaly = None
        final = await api.until(rid, lambda s: s["state"] in TERMINAL, within=30)
        breakdown = final.get("breakdown") or {}
        billed = breakdown.get("energyWh", final["energyWh"])
        t = sim.transaction(final["transactionId"]) if final["transactionId"] else None
        if t is None or not t.anomalies:
            why = "no transaction" if t is None else "the anomaly never happened"
            return ctx.report.case(
                name, False, f"{rid}: inconclusive, {why} ({final['state']}, {final['hold']})"
            )
        if kind == "jump":
            # Bounded: never the gigawatt-hours, never nothing.
            ok = ROUNDING_WH < billed <= final["maxEnergyWh"]
            expected = f"between 1 and {final['maxEnergyWh']} Wh"
        else:
            ok = billed > ROUNDING_WH and abs(billed - t.reported_wh) <= max(
                ROUNDING_WH, t.reported_wh // 50
            )
            expected = f"the sum of the rises, {t.reported_wh} Wh"
        ctx.report.case(
            name,
            ok,
            None
            if ok
            else (
                f"{rid}: register {kind} after {ANOMALY_AT_WH} Wh (meterStart "
                f"{t.meter_start_wh}, meterStop {t.meter_stop_wh}); delivered "
                f"{t.delivered_wh:.0f} Wh, billed {billed} Wh, expected {expected}; "
                f"{final['state']}, captured {final['capturedAmount']}"
            ),
        )

    return case


async def start_after_release(ctx: Ctx) -> None:
    name, api, sim = "start-after-release", ctx.api, ctx.sim
    created = await _create(ctx)
    if created is None:
        return ctx.report.case(name, False, f"{sim.charge_point_id}: no session created")
    rid = created["reservationId"]
    await _pay(api, created["checkoutUrl"], follow=True)
    state = await api.until(rid, lambda s: s["state"] in BEFORE_START | TERMINAL)
    if state["state"] not in BEFORE_START:
        return ctx.report.case(name, False, f"{rid}: inconclusive, not paid ({state['state']})")
    _, details = await api.call("GET", f"/api/payments/{rid}/details")
    id_tag = details["idTag"]
    cancelled, body = await api.call("POST", f"/api/payments/{rid}/cancel")
    state = await api.until(rid, lambda s: s["hold"] not in ("Held", "Releasing"), within=15)
    # Every other round the charger asks first (Authorize); otherwise it trusts the tag.
    authorize = ctx.round % 2 == 1
    # A charger that keeps charging until the CSMS tells it to stop.
    sim.config.set("StopTransactionOnInvalidId", "false")
    t: Transaction | None = None
    try:
        try:
            t = sim.transaction(await sim.start_transaction(1, id_tag, authorize=authorize))
        except AuthorizationRejected:
            # Authorize said no: nothing started.
            return ctx.report.case(name, True)
        running = t
        if running is not None:
            await _until(lambda: not running.running, FREE_AFTER)
    finally:
        sim.config.set("StopTransactionOnInvalidId", "true")
    assert t is not None
    stops = [
        p for a, p in sim.received_calls
        if a == "RemoteStopTransaction" and p.get("transactionId") == t.transaction_id
    ]  # fmt: skip
    still = t.running
    if still:
        ctx.report.free_charging += 1
        ctx.report.free_transactions.add((sim.charge_point_id, t.transaction_id))
    ok = not still and t.id_tag_status != "Accepted"
    took = (t.stopped_at - t.started_at) if t.stopped_at else None
    ctx.report.case(
        name,
        ok,
        None
        if ok
        else (
            f"{rid}: cancelled ({cancelled} {body.get('state')}, hold {state['hold']}), then "
            f"the charger started transaction {t.transaction_id} with its idTag {id_tag} "
            f"({'after' if authorize else 'without'} Authorize): answered "
            f"{t.id_tag_status}, RemoteStopTransaction "
            f"{'sent' if stops else 'never sent'}, "
            + (
                f"still charging {FREE_AFTER:.0f} s later ({t.delivered_wh:.0f} Wh)"
                if still
                else f"stopped after {took:.1f} s ({t.delivered_wh:.0f} Wh)"
            )
        ),
    )
    if t.running:
        await sim.stop_transaction(1)


async def stop_offline(ctx: Ctx) -> None:
    name, api, sim = "stop-offline", ctx.api, ctx.sim
    created = await _create(ctx)
    if created is None:
        return ctx.report.case(name, False, f"{sim.charge_point_id}: no session created")
    rid = created["reservationId"]
    await _pay(api, created["checkoutUrl"], follow=True)
    state = await api.until(rid, lambda s: s["state"] in BEFORE_START | TERMINAL)
    if state["state"] not in BEFORE_START:
        return ctx.report.case(name, False, f"{rid}: inconclusive, not paid ({state['state']})")
    await sim.plug_in(1)
    state = await api.until(rid, lambda s: s["state"] == "Charging" or s["state"] in TERMINAL)
    t = sim.connector(1).transaction
    if state["state"] != "Charging" or t is None:
        return ctx.report.case(name, False, f"{rid}: inconclusive, never charged ({state})")
    await _until(lambda: sim.connector(1).transaction is None or t.delivered_wh >= 500, 30)
    await sim.go_offline()
    await asyncio.sleep(0.5)  # the server notices the connection is gone
    stopped, body = await api.call("POST", f"/api/payments/{rid}/stop")
    await asyncio.sleep(OFFLINE_FOR)
    sim.connector(1)  # brings the meter up to date
    before, back = t.delivered_wh, time.monotonic()
    await sim.reconnect(timeout=30)
    await _until(lambda: not t.running, 10)
    sim.connector(1)
    after = t.delivered_wh - before
    took = (t.stopped_at or time.monotonic()) - back
    ok = not t.running and took <= STOP_AT_ONCE
    ctx.report.case(
        name,
        ok,
        None
        if ok
        else (
            f"{rid}: Stop pressed while the charger was offline ({stopped} "
            f"{body.get('state')}); after reconnecting it "
            + (
                f"stopped {took:.1f} s later, {after:.0f} Wh more"
                if not t.running
                else f"was still charging {took:.0f} s later, {after:.0f} Wh more"
            )
        ),
    )
    if t.running:
        await sim.stop_transaction(1)  # the driver gives up and unplugs
    await api.until(rid, lambda s: s["state"] in TERMINAL, within=30)


CASES: tuple[tuple[str, Case], ...] = (
    ("late-cancel", late_cancel),
    ("late-cancel-paused", late_cancel_paused),
    ("late-window", late_window),
    ("confirm-race", confirm_race),
    ("foreign-webhook", foreign_webhook),
    ("meter-down", _meter("down")),
    ("meter-reset", _meter("reset")),
    ("meter-jump", _meter("jump")),
    ("start-after-release", start_after_release),
    ("stop-offline", stop_offline),
)


async def run(name: str, folder: Path, chargers: int, sessions: int) -> Report:
    """Every case at least `sessions` times: one charger per case at least."""
    from bench.faults.scenarios import run_fleet

    fleet = max(chargers, len(CASES))
    proxy = StripeProxy()
    return await run_fleet(
        name,
        folder,
        fleet,
        sessions,
        drive=adversarial(proxy),
        env=ENV,
        register_wh=LIFETIME_WH,
        stripe_proxy=proxy,
    )


# -- a driver's steps


async def _create(ctx: Ctx) -> dict[str, Any] | None:
    created = await create_payment(ctx.api, ctx.sim.charge_point_id, ctx.log)
    if created is not None:
        ctx.rid = created["reservationId"]
        ctx.log.reservation_ids.append(ctx.rid)
    return created


async def _pay(api: Api, url: str, *, follow: bool) -> int:
    """Pay with 4242 on the Checkout page; the page's answer (303: authorised, 409: closed).
    `follow`: back to our success page, as a browser goes."""
    try:
        async with api.http.post(url, data=CARD, allow_redirects=follow) as response:
            return response.history[0].status if response.history else response.status
    except aiohttp.ClientError:
        return 0


async def _pay_and_back(api: Api, url: str) -> tuple[int, str | None]:
    """Pay on the Checkout page; its answer and where it sends the driver back to."""
    try:
        async with api.http.post(url, data=CARD, allow_redirects=False) as response:
            return response.status, response.headers.get("Location")
    except aiohttp.ClientError:
        return 0, None


async def _get(api: Api, url: str) -> int:
    try:
        async with api.http.get(url, timeout=aiohttp.ClientTimeout(total=30)) as response:
            return response.status
    except (aiohttp.ClientError, TimeoutError):
        return 0


async def _charge(
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

    await _until(charged, 60)
    state = await api.state(rid)
    if state["state"] not in TERMINAL:
        await api.call("POST", f"/api/payments/{rid}/stop")
    await api.until(rid, lambda s: s["state"] in TERMINAL, within=60)


async def _leave_free(ctx: Ctx) -> None:
    """End what the case left open, so that the connector is free for the next session."""
    api, sim, rid = ctx.api, ctx.sim, ctx.rid
    if rid is not None and (await api.state(rid))["state"] not in TERMINAL:
        # Stop, or cancel what has not started.
        await api.call("POST", f"/api/payments/{rid}/stop")
        await api.until(rid, lambda s: s["state"] in TERMINAL, within=30)
    if sim.connector(1).transaction is not None:
        await _until(lambda: sim.connector(1).transaction is None, 10)
        if sim.connector(1).transaction is not None:
            await sim.stop_transaction(1)
    if sim.connector(1).plugged:
        await sim.unplug(1)


async def _until(done: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        if done() or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.05)


# -- Stripe's side


async def _sandbox(api: Api, method: str, path: str, body: Any = None) -> Any:
    async with api.http.request(
        method, f"{api.processes.stripe}/_sandbox{path}", json=body
    ) as response:
        response.raise_for_status()
        return await response.json()


async def _stripe(api: Api, method: str, path: str) -> dict[str, Any]:
    async with api.http.request(
        method,
        f"{api.processes.stripe}{path}",
        headers={"Authorization": f"Bearer {STRIPE_KEY}"},
    ) as response:
        return await response.json()


async def _ledger(api: Api) -> dict[str, dict[str, Any]]:
    return (await _sandbox(api, "GET", "/ledger"))["payment_intents"]


async def _checkout_session(api: Api, rid: str) -> str:
    _, details = await api.call("GET", f"/api/payments/{rid}/details")
    return details["checkoutSessionId"]


async def _intent_of(api: Api, session_id: str) -> str | None:
    """The PaymentIntent of a Checkout Session, from Stripe (the server may not know it)."""
    return (await _stripe(api, "GET", f"/v1/checkout/sessions/{session_id}")).get("payment_intent")


async def _until_released(api: Api, intent_id: str | None) -> tuple[dict[str, Any], float]:
    """The PaymentIntent's ledger entry once its hold is gone (or RELEASE_WITHIN passed)."""
    started = time.monotonic()
    while True:
        entry = (await _ledger(api)).get(intent_id or "", {})
        held = entry.get("amount_held", 0) > 0 or entry.get("status") == "requires_capture"
        waited = time.monotonic() - started
        if intent_id is None or not held or waited > RELEASE_WITHIN:
            return entry, waited
        await asyncio.sleep(0.5)


def _signature(body: str, secret: str = WEBHOOK_SECRET) -> str:
    """Stripe-Signature, as Stripe signs: t=<unix time>,v1=<HMAC-SHA256 of "t.body">."""
    timestamp = int(time.time())
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


async def _send_event(api: Api, event_type: str, obj: dict[str, Any]) -> int:
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
        headers={"Stripe-Signature": _signature(body), "Content-Type": "application/json"},
    ) as response:
        return response.status


def _foreign_session(rid: str, amount: int, currency: str) -> dict[str, Any]:
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


def _foreign_intent(rid: str, amount: int, currency: str, status: str) -> dict[str, Any]:
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
