"""Operator alerts: a review whose hold stays on the card, a dispute, a refused capture and a
stuck outbox each raise one alert: a warning line, metrics, and a signed webhook to a
real receiver on 127.0.0.1, retried when it fails, sent once however often the books
are checked (restarts included), and never in the way of the payments."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from csms.app import CentralSystem
from csms.config import ConfigError, with_overrides
from payments.alert_sender import SIGNATURE_HEADER, sign, verify
from simulators.chargepoint import SimulatedCharger
from storage.clock import utc_now
from tests.conftest import API_HEADERS, MakeConfig
from tests.payflow import TARIFF, Driver, charger
from tests.waiting import eventually

SECRET = "alert-secret"


@dataclass
class Receiver:
    """The operator's endpoint: checks every signature, keeps every delivery."""

    fail_first: int = 0  # answer 500 to this many requests first
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    attempts: int = 0
    bad_signatures: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.attempts += 1
        header = request.headers.get(SIGNATURE_HEADER, "")
        if not _signed(header, body, SECRET):
            self.bad_signatures += 1
            return web.Response(status=400)
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=500)
        self.received.append(orjson.loads(body))
        self.headers.append(dict(request.headers))
        return web.Response(status=204)

    def kinds(self) -> list[str]:
        return [alert["kind"] for alert in self.received]


def _signed(header: str, body: bytes, secret: str) -> bool:
    """The check a receiver makes, written out as the README documents it."""
    match = re.fullmatch(r"t=(\d+),v1=([0-9a-f]{64})", header)
    if match is None:
        return False
    t, v1 = match.groups()
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, v1) and abs(time.time() - int(t)) < 300


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    target = Receiver()
    app = web.Application()
    app.router.add_post("/alerts", target.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield target, f"http://127.0.0.1:{port}/alerts"
    await runner.cleanup()


class Clock:
    """Real time plus an offset that a test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utc_now() + self.offset


def alert_config(make_config: MakeConfig, url: str, **alerts: Any) -> Any:
    settings = {
        "check_interval": 0.1,
        "review_hold_age": 0.0,
        "outbox_stuck_after": 3600.0,
        "webhook_url": url,
        "webhook_secret": SECRET,
        "retry_base": 0.05,
        "retry_ceiling": 0.2,
    } | alerts
    return make_config(tariff=TARIFF, payments={"minimum_energy_wh": 100}, alerts=settings)


@dataclass
class Running:
    system: CentralSystem
    driver: Driver
    sim: SimulatedCharger


@asynccontextmanager
async def running(config: Any, clock: Callable[[], datetime] = utc_now) -> AsyncIterator[Running]:
    async with CentralSystem(config, clock=clock) as system, aiohttp.ClientSession() as http:
        sim = charger(system, unplug_after_stop=0.1)
        await sim.start()
        try:
            yield Running(system, Driver(system, http), sim)
        finally:
            await sim.stop()


async def capture_refused(run: Running) -> str:
    """A charge whose capture Stripe refuses: NeedsReview, the hold still on the card."""
    rid = await run.driver.start_charging(run.sim)
    r = await run.system.reservations.get(rid)
    assert r is not None and r.payment_intent_id and run.system.sandbox is not None
    run.system.sandbox.fail_next(
        1, 400, path=f"/v1/payment_intents/{r.payment_intent_id}/capture", method="POST"
    )
    await run.driver.post(f"/api/payments/{rid}/stop")
    await run.driver.wait_for_state(rid, "NeedsReview")
    return rid


async def metrics(run: Running) -> str:
    async with run.driver.http.get(f"{run.driver.base}/metrics") as response:
        return await response.text()


def sample(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


async def soon(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async def holds() -> bool:
        return condition()

    await eventually(holds, timeout)


# -- the signature


def test_the_signature_is_stripes_scheme() -> None:
    body = b'{"kind":"dispute"}'
    header = sign(SECRET, 1_700_000_000, body)
    mac = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={mac}"
    assert verify(header, body, SECRET, now=1_700_000_010)
    assert not verify(header, body + b" ", SECRET, now=1_700_000_010)
    assert not verify(header, body, "other", now=1_700_000_010)
    assert not verify(header, body, SECRET, now=1_700_000_000 + 301)  # too old: a replay
    assert not verify("v1=" + mac, body, SECRET)


def test_a_url_needs_a_secret(make_config: MakeConfig) -> None:
    with pytest.raises(ConfigError, match=r"alerts\.webhook_secret"):
        with_overrides(make_config(), alerts={"webhook_url": "https://ops.example.com/hook"})


# -- the alerts, end to end


async def test_a_refused_capture_alerts_once_signed_and_retried(
    make_config: MakeConfig, receiver: tuple[Receiver, str]
) -> None:
    target, url = receiver
    target.fail_first = 2  # the receiver is down at first: the alerts come again later
    config = alert_config(make_config, url)
    async with running(config) as run:
        rid = await capture_refused(run)

        await soon(lambda: sorted(target.kinds()) == ["capture_failed", "needs_review"])
        assert target.bad_signatures == 0 and target.attempts >= 4
        by_kind = {alert["kind"]: alert for alert in target.received}
        failed, review = by_kind["capture_failed"], by_kind["needs_review"]
        assert failed["reservationId"] == review["reservationId"] == rid
        assert "Injected fault" in failed["message"]
        assert review["details"]["hold"] == "Held"
        assert review["details"]["holdAmount"] == 250
        assert review["details"]["currency"] == "eur"
        assert review["details"]["paymentIntentId"].startswith("pi_")
        assert {h["Csms-Alert-Id"] for h in target.headers} == {
            failed["id"],
            review["id"],
        }

        # Checked many more times: nothing is sent twice.
        await asyncio.sleep(0.6)
        assert len(target.received) == 2
        stored = await run.system.alerts.alerts()
        assert [(a["kind"], a["status"]) for a in stored] == [
            ("capture_failed", "sent"),
            ("needs_review", "sent"),
        ] or [(a["kind"], a["status"]) for a in stored] == [
            ("needs_review", "sent"),
            ("capture_failed", "sent"),
        ]
        assert sum(a["attempts"] for a in stored) >= 3

        text = await metrics(run)
        assert sample(text, "csms_payment_reviews_with_live_hold") == 1
        assert sample(text, 'csms_alerts_total{kind="needs_review"}') == 1
        assert sample(text, 'csms_alerts_total{kind="capture_failed"}') == 1
        assert sample(text, 'csms_alerts_total{kind="dispute"}') == 0
        delivered = 'csms_alert_deliveries_total{kind="needs_review",outcome="delivered"}'
        assert sample(text, delivered) == 1

        # Released in review: no hold is live any more.
        status, _ = await run.driver.post(f"/api/payments/{rid}/review/release")
        assert status == 200

        async def no_live_hold() -> bool:
            return sample(await metrics(run), "csms_payment_reviews_with_live_hold") == 0

        await eventually(no_live_hold)

    # After a restart over the same database, nothing is sent again.
    async with running(config) as run:
        await asyncio.sleep(0.5)
        assert len(target.received) == 2
        assert len(await run.system.alerts.alerts()) == 2


async def test_a_review_alerts_only_after_the_hold_age(
    make_config: MakeConfig, receiver: tuple[Receiver, str]
) -> None:
    target, url = receiver
    clock = Clock()
    config = alert_config(make_config, url, review_hold_age=3600.0)
    async with running(config, clock) as run:
        rid = await capture_refused(run)
        await soon(lambda: target.kinds() == ["capture_failed"])

        async def counted() -> bool:
            return sample(await metrics(run), "csms_payment_reviews_with_live_hold") == 1

        await eventually(counted)
        await asyncio.sleep(0.3)
        assert target.kinds() == ["capture_failed"]  # in review, but not for an hour yet

        clock.offset = timedelta(seconds=3601)
        await soon(lambda: target.kinds() == ["capture_failed", "needs_review"])
        review = target.received[1]
        assert review["reservationId"] == rid
        assert "still held on the card" in review["message"]


async def test_a_dispute_alerts(make_config: MakeConfig, receiver: tuple[Receiver, str]) -> None:
    target, url = receiver
    async with running(alert_config(make_config, url)) as run:
        rid = await run.driver.start_charging(run.sim)
        await run.driver.post(f"/api/payments/{rid}/stop")
        await run.driver.wait_for_state(rid, "Completed")
        r = await run.system.reservations.get(rid)
        assert r is not None and r.payment_intent_id and run.system.sandbox is not None
        dispute = run.system.sandbox.create_dispute(r.payment_intent_id)

        await soon(lambda: target.kinds() == ["dispute"])
        alert = target.received[0]
        assert alert["reservationId"] == rid
        assert alert["subject"] == f"dispute:{dispute['id']}"
        assert alert["details"]["disputedAmount"] == dispute["amount"] == r.captured_amount
        await asyncio.sleep(0.3)
        assert target.kinds() == ["dispute"]
        # The operator sees it through the API too, with its delivery.
        async with run.driver.http.get(
            f"{run.driver.base}/api/alerts", headers=API_HEADERS
        ) as response:
            assert response.status == 200
            (listed,) = await response.json()
        assert (listed["kind"], listed["subject"], listed["status"]) == (
            "dispute",
            f"dispute:{dispute['id']}",
            "sent",
        )
        assert listed["body"]["details"]["disputedAmount"] == dispute["amount"]
        assert listed["message"]


async def test_a_stuck_outbox_alerts_and_payments_go_on(
    make_config: MakeConfig, receiver: tuple[Receiver, str]
) -> None:
    target, url = receiver
    config = alert_config(make_config, url, outbox_stuck_after=0.3)
    async with running(config) as run:
        rid = await run.driver.start_charging(run.sim)
        r = await run.system.reservations.get(rid)
        assert r is not None and r.payment_intent_id and run.system.sandbox is not None
        # Stripe answers 500 to every capture for a while: the Capture effect stays pending.
        run.system.sandbox.fail_next(
            1000, 500, path=f"/v1/payment_intents/{r.payment_intent_id}/capture", method="POST"
        )
        await run.driver.post(f"/api/payments/{rid}/stop")
        await soon(lambda: "outbox_stuck" in target.kinds(), timeout=15)
        alert = next(a for a in target.received if a["kind"] == "outbox_stuck")
        assert alert["reservationId"] == rid
        assert alert["details"]["effect"] == "Capture"
        assert alert["details"]["pendingSince"] <= alert["createdAt"]

        run.system.sandbox.clear_faults()
        done = await run.driver.wait_for_state(rid, "Completed", timeout=30)
        assert done["capturedAmount"] > 0
        assert target.kinds().count("outbox_stuck") == 1


async def test_a_dead_receiver_never_holds_up_the_payments(make_config: MakeConfig) -> None:
    # Nothing listens there: every delivery fails, and is retried later.
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    config = alert_config(make_config, f"http://127.0.0.1:{port}/alerts")
    async with running(config) as run:
        rid = await capture_refused(run)

        async def retried() -> bool:
            stored = await run.system.alerts.alerts()
            return len(stored) == 2 and all(a["attempts"] >= 2 for a in stored)

        await eventually(retried)
        stored = await run.system.alerts.alerts()
        assert {a["status"] for a in stored} == {"pending"}
        assert all(a["last_error"] for a in stored)
        # Meanwhile money still moves: the review is settled at once.
        status, view = await run.driver.post(f"/api/payments/{rid}/review/retry-capture")
        assert status == 200, view
        await run.driver.wait_for_state(rid, "Completed")


async def test_without_a_url_alerts_are_logged_and_counted(
    make_config: MakeConfig, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(
        tariff=TARIFF,
        payments={"minimum_energy_wh": 100},
        alerts={"check_interval": 0.1, "review_hold_age": 0.0},
    )
    async with running(config) as run:
        rid = await capture_refused(run)

        async def raised() -> bool:
            return len(await run.system.alerts.alerts()) == 2

        await eventually(raised)
        stored = await run.system.alerts.alerts()
        assert {a["status"] for a in stored} == {"unsent"}
        assert sample(await metrics(run), 'csms_alerts_total{kind="needs_review"}') == 1
    warnings = [
        record.msg
        for record in caplog.records
        if isinstance(record.msg, dict) and record.msg.get("event") == "payments.alert"
    ]
    assert sorted((w["kind"], w["reservation_id"], w["level"]) for w in warnings) == [
        ("capture_failed", rid, "warning"),
        ("needs_review", rid, "warning"),
    ]
