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
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench.faults import adversarial_steps as steps
from bench.faults.adversarial_steps import Ctx, Webhooks
from bench.faults.driving import TERMINAL, Api, SessionLog
from bench.faults.ledger import ROUNDING_WH, Report
from bench.faults.stripe_proxy import StripeProxy
from simulators.chargepoint import AuthorizationRejected, SimulatedCharger, Transaction

# Production-like: a server that only retries RemoteStop on this timer stops a charger
# that comes back online this late.
ENV = {"CSMS_PAYMENTS_STOP_RETRY_INTERVAL": "30"}
# Chargers start with a lifetime register, as real ones do, so that "down" and "reset" differ.
LIFETIME_WH = 1_234_567
ANOMALY_AT_WH = 1000  # the meter misreads once this much went in
EXPIRE_DELAY = 2.0  # Stripe's slow answer to the server's expiry of a cancelled Checkout
CONFIRM_WITHIN = 10.0  # a paid session must have left PendingPayment by then
FREE_AFTER = 4.0  # a charger still charging this long after a refused start charges free
OFFLINE_FOR = 3.0
STOP_AT_ONCE = 2.0  # seconds from reconnection to the charge stopping
# How long after the confirm the payment goes in, one race each (then one race held).
CONFIRM_OFFSETS = (0.0, 0.005, 0.02)
BEFORE_START = {"Authorised", "AwaitingPlug", "StartRequested"}


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
        await steps.leave_free(ctx)

    return drive


# -- the cases


async def late_cancel(ctx: Ctx) -> None:
    await _late_payment(ctx, "late-cancel", paused=False)


async def late_cancel_paused(ctx: Ctx) -> None:
    await _late_payment(ctx, "late-cancel-paused", paused=True)


async def _late_payment(ctx: Ctx, name: str, *, paused: bool) -> None:
    api = ctx.api
    created = await steps.create(ctx)
    if created is None:
        return ctx.report.case(name, False, f"{ctx.sim.charge_point_id}: no session created")
    rid, url = created["reservationId"], created["checkoutUrl"]
    session_id = await steps.checkout_session(api, rid)
    # Stripe is slow to expire the Checkout Session, so the driver's payment gets in first.
    await steps.sandbox(
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
        paid = await steps.pay(api, url, follow=False)
        intent_id = await steps.intent_of(api, session_id)
        entry, waited = await steps.until_released(api, intent_id)
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
    created = await steps.create(ctx)
    if created is None:
        return ctx.report.case(name, False, f"{ctx.sim.charge_point_id}: no session created")
    rid, url = created["reservationId"], created["checkoutUrl"]
    session_id = await steps.checkout_session(api, rid)
    async with ctx.webhooks.held(paused=False):
        # The Checkout Session's window passes at Stripe (as at its expires_at).
        await steps.stripe(api, "POST", f"/v1/checkout/sessions/{session_id}/expire")
        paid = await steps.pay(api, url, follow=True)
        state = await api.until(rid, lambda s: s["state"] in TERMINAL, within=15)
    intent_id = await steps.intent_of(api, session_id)
    entry = (await steps.ledger(api)).get(intent_id or "", {})
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
            created = await steps.create(ctx)
            if created is None:
                return ctx.report.case(name, False, f"{ctx.sim.charge_point_id}: no session")
            rid, url = created["reservationId"], created["checkoutUrl"]
            session_id = await steps.checkout_session(api, rid)
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
        await steps.charge(ctx, rid)


async def _race(api: Api, rid: str, url: str, session_id: str, offset: float) -> str:
    async def paying() -> int:
        await asyncio.sleep(offset)
        # Back from Checkout to our success page, which confirms too.
        return await steps.pay(api, url, follow=True)

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
    paid, success_url = await steps.pay_and_back(api, url)
    back = asyncio.create_task(steps.get(api, success_url)) if success_url else None
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
    created = await steps.create(ctx)
    if created is None:
        return ctx.report.case(name, False, f"{ctx.sim.charge_point_id}: no session created")
    rid, url = created["reservationId"], created["checkoutUrl"]
    hold, currency = created["maxAmount"], created["currency"]
    # Another Checkout Session for the same reservation expires, its payment fails...
    answers = [
        await steps.send_event(
            api, "checkout.session.expired", steps.foreign_session(rid, hold, currency)
        ),
        await steps.send_event(
            api, "checkout.session.async_payment_failed", steps.foreign_session(rid, hold, currency)
        ),
    ]
    await steps.pay(api, url, follow=True)
    state = await api.until(rid, lambda s: s["state"] in BEFORE_START | TERMINAL)
    if state["state"] in BEFORE_START:

        async def while_charging() -> None:
            # ... and another PaymentIntent with our reservation id is cancelled, authorised.
            for status in ("canceled", "requires_capture"):
                intent = steps.foreign_intent(rid, hold, currency, status)
                event = (
                    "payment_intent.canceled"
                    if status == "canceled"
                    else ("payment_intent.amount_capturable_updated")
                )
                answers.append(await steps.send_event(api, event, intent))

        await steps.charge(ctx, rid, while_charging=while_charging)
    final = await api.until(rid, lambda s: s["state"] in TERMINAL, within=30)
    _, details = await api.call("GET", f"/api/payments/{rid}/details")
    intent_id = details.get("paymentIntentId")
    entry = (await steps.ledger(api)).get(intent_id or "", {})
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
            paid = await steps.create_and_pay(ctx, name, BEFORE_START | TERMINAL)
            if paid is None:
                return
            rid, state = paid
            if state in BEFORE_START:
                await steps.charge(ctx, rid)
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
    paid = await steps.create_and_pay(ctx, name, BEFORE_START | TERMINAL)
    if paid is None:
        return None
    rid, state = paid
    if state not in BEFORE_START:
        return ctx.report.case(name, False, f"{rid}: inconclusive, not paid ({state})")
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
            await steps.until(lambda: not running.running, FREE_AFTER)
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
    paid = await steps.create_and_pay(ctx, name, BEFORE_START | TERMINAL)
    if paid is None:
        return None
    rid, state = paid
    if state not in BEFORE_START:
        return ctx.report.case(name, False, f"{rid}: inconclusive, not paid ({state})")
    await sim.plug_in(1)
    state = await api.until(rid, lambda s: s["state"] == "Charging" or s["state"] in TERMINAL)
    t = sim.connector(1).transaction
    if state["state"] != "Charging" or t is None:
        return ctx.report.case(name, False, f"{rid}: inconclusive, never charged ({state})")
    await steps.until(lambda: sim.connector(1).transaction is None or t.delivered_wh >= 500, 30)
    await sim.go_offline()
    await asyncio.sleep(0.5)  # the server notices the connection is gone
    stopped, body = await api.call("POST", f"/api/payments/{rid}/stop")
    await asyncio.sleep(OFFLINE_FOR)
    sim.connector(1)  # brings the meter up to date
    before, back = t.delivered_wh, time.monotonic()
    await sim.reconnect(timeout=30)
    await steps.until(lambda: not t.running, 10)
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
