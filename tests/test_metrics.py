"""Prometheus metrics at /metrics, read back with prometheus_client's own parser: OCPP
messages, chargers, reservations, the outbox, Stripe calls and webhooks. Also the log
context that payment lines carry."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from csms.app import SANDBOX_WEBHOOK_SECRET, CentralSystem
from payments.stripe_gateway import StripeRejected
from tests.conftest import MakeConfig, ocpp_url
from tests.ocpp_client import RawCharger
from tests.payflow import TARIFF, Driver, charger
from tests.waiting import eventually

BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}


class Scrape:
    """One scrape of /metrics: samples by name and labels."""

    def __init__(self, text: str) -> None:
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, frozenset(labels.items())))

    def labels(self, name: str, label: str) -> set[str]:
        return {dict(key)[label] for (sample, key) in self.samples if sample == name}


async def scrape(http: aiohttp.ClientSession, system: CentralSystem) -> Scrape:
    # No X-API-Key: /metrics is outside /api/, for scrapers.
    async with http.get(f"http://127.0.0.1:{system.http.port}/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        return Scrape(await response.text())


@pytest.fixture
async def system(make_config: MakeConfig) -> AsyncIterator[CentralSystem]:
    config = make_config(tariff=TARIFF, payments={"minimum_energy_wh": 100})
    async with CentralSystem(config) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_ocpp_messages_by_action_and_result(
    system: CentralSystem, http: aiohttp.ClientSession
) -> None:
    assert (await scrape(http, system)).value("csms_chargers_connected") == 0
    async with RawCharger.connect(ocpp_url(system), "CP-RAW") as raw:
        await raw.call("BootNotification", BOOT)
        await raw.call("Heartbeat", {})
        await raw.call("Heartbeat", {})
        assert (await raw.call_raw("MadeUpAction", {}))[2] == "NotImplemented"
        assert (await raw.call_raw("Reset", {"type": "Hard"}))[2] == "NotSupported"
        missing_model = {"chargePointVendor": "V"}
        assert (await raw.call_raw("BootNotification", missing_model))[2] == "ProtocolError"
        seen = await scrape(http, system)
    assert seen.value("csms_chargers_connected") == 1
    messages = "csms_ocpp_messages_total"
    assert seen.value(messages, action="BootNotification", result="ok") == 1
    assert seen.value(messages, action="Heartbeat", result="ok") == 2
    assert seen.value(messages, action="BootNotification", result="ProtocolError") == 1
    assert seen.value(messages, action="Reset", result="NotSupported") == 1
    # A charger cannot make up label values: actions outside OCPP 1.6 are "unknown".
    assert seen.value(messages, action="unknown", result="NotImplemented") == 1
    assert "MadeUpAction" not in seen.labels(messages, "action")
    # Latency only for the CALLs a handler ran for, in buckets from half a millisecond up.
    latency = "csms_ocpp_handler_seconds"
    assert seen.value(f"{latency}_count", action="BootNotification") == 1
    assert seen.value(f"{latency}_count", action="Heartbeat") == 2
    assert seen.value(f"{latency}_bucket", action="Heartbeat", le="+Inf") == 2
    assert seen.value(f"{latency}_bucket", action="Heartbeat", le="0.0005") is not None
    assert 0 < (seen.value(f"{latency}_sum", action="Heartbeat") or 0) < 1
    assert seen.value(f"{latency}_count", action="Reset") is None
    # Every handled message was written; a commit carries one write or more.
    commits, writes = seen.value("csms_db_commits_total"), seen.value("csms_db_writes_total")
    assert commits is not None and writes is not None and 0 < commits <= writes

    async def disconnected() -> bool:
        return (await scrape(http, system)).value("csms_chargers_connected") == 0

    await eventually(disconnected)


async def test_a_paid_session_in_the_metrics(
    system: CentralSystem, http: aiohttp.ClientSession
) -> None:
    driver = Driver(system, http)
    sim = charger(system, unplug_after_stop=0.1)
    await sim.start()
    try:
        _, created = await driver.create()
        rid = created["reservationId"]
        during = await scrape(http, system)
        await driver.pay(created["checkoutUrl"])
        await driver.wait_for_state(rid, "AwaitingPlug")
        await sim.plug_in(1)
        await driver.wait_for_state(rid, "Charging")
        charging = await scrape(http, system)
        await eventually(lambda: driver.has_energy(rid))
        await driver.post(f"/api/payments/{rid}/stop")
        done = await driver.wait_for_state(rid, "Completed")
        assert done["capturedAmount"] > 0
    finally:
        await sim.stop()
    assert during.value("csms_chargers_connected") == 1
    assert during.value("csms_reservations", state="PendingPayment") == 1
    assert charging.value("csms_reservations", state="Charging") == 1
    assert charging.value("csms_reservations", state="PendingPayment") == 0
    # The simulator's own messages were counted too.
    assert charging.value("csms_ocpp_messages_total", action="StartTransaction", result="ok") == 1

    # The sandbox delivers its webhooks in the background.
    async def webhooks_counted() -> bool:
        seen = await scrape(http, system)
        return bool(seen.labels("csms_stripe_webhooks_total", "type"))

    await eventually(webhooks_counted)
    after = await scrape(http, system)
    assert after.value("csms_reservations", state="Completed") == 1
    assert after.labels("csms_reservations", "state") >= {
        "PendingPayment",
        "Charging",
        "Completed",
        "NeedsReview",
    }
    others = sum(
        value
        for (name, labels), value in after.samples.items()
        if name == "csms_reservations" and ("state", "Completed") not in labels
    )
    assert others == 0
    assert after.value("csms_outbox_pending_effects") == 0
    assert after.value("csms_outbox_oldest_pending_age_seconds") == 0
    calls = "csms_stripe_calls_total"
    assert after.value(calls, operation="checkout.create", outcome="ok") == 1
    assert (after.value(calls, operation="checkout.retrieve", outcome="ok") or 0) >= 1
    assert after.value(calls, operation="payment_intent.capture", outcome="ok") == 1
    assert after.value("csms_stripe_call_seconds_count", operation="payment_intent.capture") == 1
    assert after.labels(calls, "outcome") == {"ok"}
    webhook_types = after.labels("csms_stripe_webhooks_total", "type")
    assert "checkout.session.completed" in webhook_types
    completed = after.value(
        "csms_stripe_webhooks_total", type="checkout.session.completed", applied="PaymentCompleted"
    )
    assert completed == 1


async def test_outbox_backlog_during_a_stripe_outage(
    make_config: MakeConfig, http: aiohttp.ClientSession
) -> None:
    # No retries inside the SDK: each failed capture is counted as the runner makes it.
    config = make_config(
        tariff=TARIFF, payments={"minimum_energy_wh": 100}, stripe={"max_network_retries": 0}
    )
    async with CentralSystem(config) as system:
        outage = await _capture_during_an_outage(system, http)
        after = await scrape(http, system)
    assert outage.value("csms_outbox_pending_effects") == 1
    assert outage.value("csms_reservations", state="Settling") == 1
    calls = "csms_stripe_calls_total"
    failed = outage.value(calls, operation="payment_intent.capture", outcome="unavailable")
    assert failed is not None and failed >= 1
    assert outage.value(calls, operation="payment_intent.capture", outcome="ok") is None
    assert after.value("csms_outbox_pending_effects") == 0
    assert after.value("csms_outbox_oldest_pending_age_seconds") == 0
    assert after.value(calls, operation="payment_intent.capture", outcome="ok") == 1


async def _capture_during_an_outage(system: CentralSystem, http: aiohttp.ClientSession) -> Scrape:
    """A paid charge whose capture fails until Stripe is back; the scrape during the outage."""
    assert system.sandbox is not None
    driver = Driver(system, http)
    sim = charger(system, unplug_after_stop=0.1)
    await sim.start()
    try:
        rid = await driver.start_charging(sim)
        # Stripe is down for captures: the capture effect waits in the outbox.
        system.sandbox.fail_next(10_000, 500, path="/v1/payment_intents", method="POST")
        await driver.post(f"/api/payments/{rid}/stop")
        await driver.wait_for_state(rid, "Settling")

        async def backlog_ages() -> bool:
            seen = await scrape(http, system)
            return (seen.value("csms_outbox_oldest_pending_age_seconds") or 0) > 0.2

        await eventually(backlog_ages)
        outage = await scrape(http, system)
        system.sandbox.clear_faults()
        await driver.wait_for_state(rid, "Completed", timeout=30)
    finally:
        await sim.stop()
    return outage


async def test_stripe_rejections_and_webhook_types_are_counted(
    system: CentralSystem, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(StripeRejected):
        await system.gateway.capture("pi_does_not_exist", 100, "capture:test:100")
    for event_id, event_type in (("evt_1", "made.up.type"), ("evt_2", "refund.created")):
        body = orjson.dumps({"id": event_id, "type": event_type, "data": {"object": {}}})
        async with http.post(
            f"http://127.0.0.1:{system.http.port}/api/stripe/webhook",
            data=body,
            headers={"Stripe-Signature": _signed(body), "Content-Type": "application/json"},
        ) as response:
            assert response.status == 200
    seen = await scrape(http, system)
    calls = "csms_stripe_calls_total"
    assert seen.value(calls, operation="payment_intent.capture", outcome="rejected") == 1
    webhooks = "csms_stripe_webhooks_total"
    assert seen.value(webhooks, type="refund.created", applied="recorded") == 1
    # Types we do not know share one label value: no sender makes up label values.
    assert seen.value(webhooks, type="other", applied="ignored") == 1
    assert "made.up.type" not in seen.labels(webhooks, "type")


def _signed(body: bytes) -> str:
    timestamp = int(time.time())
    digest = hmac.new(
        SANDBOX_WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    )
    return f"t={timestamp},v1={digest.hexdigest()}"


async def test_payment_log_lines_name_their_reservation_and_webhook_lines_their_event(
    make_config: MakeConfig, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    # Read where the lines end up, the standard library's logging: structlog's own
    # capture misses loggers cached before another test configured logging again.
    caplog.set_level(logging.INFO)
    config = make_config(
        tariff=TARIFF, payments={"minimum_energy_wh": 100}, stripe={"max_network_retries": 0}
    )
    async with CentralSystem(config) as system:
        await _capture_during_an_outage(system, http)
        await eventually(lambda: _all_delivered(system))
    lines = [record.msg for record in caplog.records if isinstance(record.msg, dict)]
    rid = next(line["reservation_id"] for line in lines if line["event"] == "payments.created")
    payment_lines = [line for line in lines if line["event"].startswith(("payments.", "stripe."))]
    events = {line["event"] for line in payment_lines}
    # The gateway's lines too, logged while the runner carries out the capture.
    assert {"payments.transition", "payments.effect_retry", "stripe.unavailable"} <= events
    # Events about objects whose ids are not stored (yet), such as payment_intent.created
    # before the payment is verified, match no reservation: they are ignored, and say so.
    ignored = [line for line in payment_lines if line.get("applied") == "ignored"]
    assert all(line["reservation_id"] is None for line in ignored)
    named = [line for line in payment_lines if line not in ignored]
    assert [line for line in named if line.get("reservation_id") != rid] == []
    webhook_lines = [line for line in lines if "webhook" in line["event"]]
    assert webhook_lines
    assert [line for line in webhook_lines if not line.get("event_id")] == []


async def _all_delivered(system: CentralSystem) -> bool:
    assert system.sandbox is not None
    deliveries = system.sandbox.deliveries()
    return bool(deliveries) and all(d.get("delivered") for d in deliveries)
