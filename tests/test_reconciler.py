"""Reconciliation end to end: the real server, simulated charger, Stripe sandbox and SDK over
127.0.0.1. Stripe's side is changed behind the server's back (webhooks paused, actions
in the sandbox's "dashboard"), then `csms reconcile` or `POST /api/reconcile` brings our
books in line. Also: a refund repeated after Stripe forgot its idempotency key."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from csms.app import CentralSystem
from payments.reconciler import Reconciler
from tests.conftest import MakeConfig
from tests.payflow import TARIFF, VISA, Driver, charger, run_cli
from tests.waiting import eventually

# A hold of 2.50 EUR; the price depends only on the energy (see test_payments_e2e).
# No scheduled runs: each test reconciles when it means to.
PAYMENTS = {"minimum_energy_wh": 100, "reconcile_interval": 0}


@pytest.fixture
async def system(make_config: MakeConfig) -> AsyncIterator[CentralSystem]:
    async with CentralSystem(make_config(tariff=TARIFF, payments=PAYMENTS)) as running:
        yield running


@pytest.fixture
async def driver(system: CentralSystem) -> AsyncIterator[Driver]:
    async with aiohttp.ClientSession() as http:
        yield Driver(system, http)


def _sandbox(system: CentralSystem):  # type: ignore[no-untyped-def]
    assert system.sandbox is not None
    return system.sandbox


async def _pay_and_leave(driver: Driver, checkout_url: str) -> None:
    """Pay on the Checkout page and close the browser: no redirect back to csms."""
    form = {
        "email": "driver@example.com",
        "cardNumber": VISA,
        "cardExpiry": "12 / 34",
        "cardCvc": "123",
        "billingName": "Test Driver",
    }
    async with driver.http.post(checkout_url, data=form, allow_redirects=False) as response:
        assert response.status in (302, 303), await response.text()


async def _late_payment(system: CentralSystem, driver: Driver) -> tuple[str, str]:
    """A reservation cancelled while its Checkout page stays open (closing it fails), paid
    afterwards with webhooks paused: a hold at Stripe that our books know nothing of.
    Returns the reservation and its PaymentIntent."""
    sandbox = _sandbox(system)
    status, created = await driver.create()
    assert status == 200, created
    rid = created["reservationId"]
    sandbox.pause_webhooks()
    # Stripe refuses to expire the session for the rest of the test.
    sandbox.fail_next(100_000, 503, path="/v1/checkout/sessions/", method="POST")
    status, _ = await driver.post(f"/api/payments/{rid}/cancel")
    assert status == 200
    await _pay_and_leave(driver, created["checkoutUrl"])
    reservation = await system.reservations.get(rid)
    assert reservation is not None and reservation.checkout_session_id
    session = sandbox.get(reservation.checkout_session_id)
    pi = session["payment_intent"]
    assert sandbox.get(pi)["status"] == "requires_capture"
    view = await driver.status(rid)
    assert (view["state"], view["hold"]) == ("Cancelled", "None")
    return rid, pi


async def _audit(system: CentralSystem, rid: str) -> list[tuple[str, str, int | None, str | None]]:
    return [
        (line["actor"], line["action"], line["amount"], line["stripe_id"])
        for line in await system.audit.lines(rid)
    ]


async def test_a_late_payment_after_cancel_is_released_by_csms_reconcile(
    system: CentralSystem, driver: Driver
) -> None:
    sim = charger(system)
    await sim.start()
    try:
        rid, pi = await _late_payment(system, driver)
        code, out = await run_cli(system, "reconcile", "--since", "2h")
        assert code == 0, out
        assert "late_payment" in out and rid in out and pi in out and "2.50 EUR" in out
        assert "late_payment 1: 1 applied, 0 reported, 0 failed." in out
        await eventually(lambda: _hold_is(driver, rid, "Released"))
    finally:
        await sim.stop()
    ledger = _sandbox(system).ledger()[pi]
    assert (ledger["amount_released"], ledger["amount_captured"]) == (250, 0)
    audit = await _audit(system, rid)
    assert ("reconciler", "hold confirmed", 250, pi) in audit
    assert ("reconciler", "paid after the reservation ended", 250, pi) in audit
    assert [a for a in audit if a[1] == "hold released"] == [("system", "hold released", 250, pi)]
    # Once released, Stripe and our books agree.
    code, out = await run_cli(system, "reconcile", "--json")
    assert code == 0, out
    summary = json.loads(out)
    assert (summary["counts"], summary["applied"], summary["findings"]) == ({}, 0, [])
    assert summary["listed"]["payment_intents"] >= 1


async def _hold_is(driver: Driver, rid: str, hold: str) -> bool:
    return (await driver.status(rid))["hold"] == hold


async def test_the_route_releases_a_late_payment_and_counts_it(
    system: CentralSystem, driver: Driver
) -> None:
    sim = charger(system)
    await sim.start()
    try:
        rid, pi = await _late_payment(system, driver)
        status, summary = await driver.post("/api/reconcile", {"since": "1h"})
        assert status == 200, summary
        assert summary["counts"] == {"late_payment": 1}
        [finding] = summary["findings"]
        assert finding == {
            "kind": "late_payment",
            "reservationId": rid,
            "stripeId": pi,
            "amount": 250,
            "currency": "eur",
            "detail": finding["detail"],
            "action": "PaymentAuthorised",
            "outcome": "applied",
        }
        await eventually(lambda: _hold_is(driver, rid, "Released"))
    finally:
        await sim.stop()
    async with driver.http.get(f"{driver.base}/metrics") as response:
        metrics = await response.text()
    assert 'csms_reconcile_findings_total{kind="late_payment",outcome="applied"} 1.0' in metrics
    assert 'csms_reconcile_runs_total{outcome="ok"} 1.0' in metrics


async def test_the_scheduled_job_releases_a_late_payment_on_its_own(
    make_config: MakeConfig,
) -> None:
    config = make_config(tariff=TARIFF, payments={**PAYMENTS, "reconcile_interval": 0.3})
    async with CentralSystem(config) as system, aiohttp.ClientSession() as http:
        driver = Driver(system, http)
        sim = charger(system)
        await sim.start()
        try:
            rid, pi = await _late_payment(system, driver)
            await eventually(lambda: _hold_is(driver, rid, "Released"), timeout=10)
        finally:
            await sim.stop()
        assert _sandbox(system).ledger()[pi]["amount_released"] == 250
        assert ("reconciler", "paid after the reservation ended", 250, pi) in await _audit(
            system, rid
        )


async def test_a_capture_and_a_refund_made_in_the_dashboard_are_recorded_and_audited(
    system: CentralSystem, driver: Driver
) -> None:
    sandbox = _sandbox(system)
    sim = charger(system, unplug_after_stop=0.1)
    await sim.start()
    try:
        rid = await driver.start_charging(sim)
        reservation = await system.reservations.get(rid)
        assert reservation is not None and reservation.payment_intent_id
        pi = reservation.payment_intent_id
        sandbox.pause_webhooks()  # csms hears nothing of what follows
        sandbox.capture_payment_intent(pi, 180)
        refund = sandbox.refund_payment_intent(pi, 50)
        status, summary = await driver.post("/api/reconcile")
        assert status == 200, summary
        assert summary["counts"] == {"captured_elsewhere": 1, "refunded_elsewhere": 1}
        assert [
            (f["kind"], f["stripeId"], f["amount"], f["outcome"]) for f in summary["findings"]
        ] == [
            ("captured_elsewhere", pi, 180, "applied"),
            ("refunded_elsewhere", refund["id"], 50, "applied"),
        ]
        # Nothing is left to capture: the charge is stopped, and a person looks at it.
        view = await driver.wait_for_state(rid, "NeedsReview")
    finally:
        await sim.stop()
    assert (view["hold"], view["capturedAmount"]) == ("Captured", 180)
    after = await system.reservations.get(rid)
    assert after is not None and after.refunded_amount == 50
    audit = await _audit(system, rid)
    assert ("reconciler", "captured at stripe", 180, pi) in audit
    assert ("reconciler", "refunded at stripe", 50, refund["id"]) in audit
    assert any(a[1] == "needs review" for a in audit)
    # A second run applies nothing again.
    status, again = await driver.post("/api/reconcile")
    assert (status, again["applied"], again["counts"]) == (200, 0, {})
    after = await system.reservations.get(rid)
    assert after is not None and after.refunded_amount == 50
    ledger = sandbox.ledger()[pi]
    assert (ledger["amount_captured"], ledger["amount_refunded"]) == (180, 50)


async def test_a_dispute_opened_while_webhooks_were_lost_is_found(
    system: CentralSystem, driver: Driver
) -> None:
    _, pi = await _completed(system, driver)
    rid = (await system.reservations.find_for_stripe([pi])) or ""
    sandbox = _sandbox(system)
    sandbox.pause_webhooks()
    dispute = sandbox.create_dispute(pi)
    status, summary = await driver.post("/api/reconcile")
    assert status == 200, summary
    after = await system.reservations.get(rid)
    assert after is not None
    if summary["listed"]["disputes"] is None:
        # A Stripe that lists no disputes: the disputed charge goes to review.
        assert summary["counts"] == {"review": 1}
        assert after.state.value == "NeedsReview" and "disputed" in (after.failure_reason or "")
    else:
        assert summary["counts"] == {"dispute_opened": 1}
        assert after.disputed_amount == dispute["amount"]
        audit = await _audit(system, rid)
        assert ("reconciler", "dispute opened", dispute["amount"], dispute["id"]) in audit


async def test_two_reconcilers_at_once_apply_each_finding_once(
    system: CentralSystem, driver: Driver
) -> None:
    sandbox = _sandbox(system)
    sim = charger(system, unplug_after_stop=0.1)
    await sim.start()
    try:
        rid = await driver.start_charging(sim)
        await driver.post(f"/api/payments/{rid}/stop")
        done = await driver.wait_for_state(rid, "Completed")
    finally:
        await sim.stop()
    reservation = await system.reservations.get(rid)
    assert reservation is not None and reservation.payment_intent_id
    pi = reservation.payment_intent_id
    sandbox.pause_webhooks()
    refund = sandbox.refund_payment_intent(pi, 40)
    # Another node's reconciler: the same database and Stripe, a job of its own.
    first = system.reconciler
    second = Reconciler(
        system.gateway, system.coordinator, system.db, interval=0, window=first.window
    )
    # Both have looked and found the refund unrecorded before either acts.
    both_looked = asyncio.Barrier(2)
    for reconciler in (first, second):
        looked = reconciler._recorded

        async def recorded_then_wait(keys, looked=looked):  # type: ignore[no-untyped-def]
            found = await looked(keys)
            await both_looked.wait()
            return found

        reconciler._recorded = recorded_then_wait  # type: ignore[method-assign]
    try:
        reports = await asyncio.gather(first.run(), second.run())
    finally:
        del first._recorded
    # One of them applied it; the other found its key recorded in the same table.
    outcomes = sorted(o.outcome for report in reports for o in report.outcomes)
    assert outcomes == ["already_applied", "applied"]
    assert {o.finding.stripe_id for report in reports for o in report.outcomes} == {refund["id"]}
    after = await system.reservations.get(rid)
    assert after is not None and after.refunded_amount == 40
    audit = await _audit(system, rid)
    assert audit.count(("reconciler", "refunded at stripe", 40, refund["id"])) == 1
    assert done["capturedAmount"] > 40


# --- refunds beyond Stripe's 24-hour idempotency horizon


async def _completed(system: CentralSystem, driver: Driver) -> tuple[str, str]:
    sim = charger(system, unplug_after_stop=0.1)
    await sim.start()
    try:
        rid = await driver.start_charging(sim)
        await driver.post(f"/api/payments/{rid}/stop")
        await driver.wait_for_state(rid, "Completed")
    finally:
        await sim.stop()
    reservation = await system.reservations.get(rid)
    assert reservation is not None and reservation.payment_intent_id
    return rid, reservation.payment_intent_id


async def test_a_refund_repeated_after_stripe_forgot_its_key_refunds_once(
    system: CentralSystem, driver: Driver
) -> None:
    sandbox = _sandbox(system)
    _, pi = await _completed(system, driver)
    gateway = system.gateway
    first = await gateway.refund(
        pi, 30, "meter fault", "refund:rf_horizon", request_id="rf_horizon"
    )
    assert sandbox.get(first)["metadata"]["refund_request_id"] == "rf_horizon"
    sandbox.advance_clock(25 * 3600)  # Stripe no longer knows the idempotency key
    again = await gateway.refund(
        pi, 30, "meter fault", "refund:rf_horizon", request_id="rf_horizon", attempts=1
    )
    assert again == first
    assert sandbox.ledger()[pi]["amount_refunded"] == 30
    # A different request is a different refund.
    other = await gateway.refund(
        pi, 20, "goodwill", "refund:rf_other", request_id="rf_other", attempts=1
    )
    assert other != first
    assert sandbox.ledger()[pi]["amount_refunded"] == 50


async def test_a_refund_whose_answer_was_lost_refunds_once_a_day_later(
    make_config: MakeConfig,
) -> None:
    config = make_config(
        tariff=TARIFF,
        payments={**PAYMENTS, "retry_base": 3.0, "retry_ceiling": 5.0},
        stripe={"timeout": 1.0, "max_network_retries": 0},
    )
    async with CentralSystem(config) as system, aiohttp.ClientSession() as http:
        driver = Driver(system, http)
        sandbox = _sandbox(system)
        rid, pi = await _completed(system, driver)
        # Stripe makes the refund, but its answer never arrives.
        sandbox.fail_next(1, "timeout", path="/v1/refunds", method="POST", after_processing=True)
        status, refund = await driver.post(
            f"/api/payments/{rid}/refunds", {"amount": 30, "reason": "meter fault"}
        )
        assert status == 201, refund

        async def tried_once() -> bool:
            effects = await system.outbox.of_reservation(rid)
            return any(e["kind"] == "Refund" and e["attempts"] >= 1 for e in effects)

        await eventually(tried_once, timeout=10)
        sandbox.advance_clock(25 * 3600)  # the retry comes after Stripe forgot the key

        async def settled() -> bool:
            records = await system.refunds.of_reservation(rid)
            return records[0].status != "pending"

        await eventually(settled, timeout=15)
        [record] = await system.refunds.of_reservation(rid)
        assert record.status == "succeeded"
        assert sandbox.ledger()[pi]["amount_refunded"] == 30
        assert sandbox.get(record.stripe_refund_id)["metadata"]["refund_request_id"] == record.id
