"""The event orders real drivers, chargers and Stripe produce, end to end: the real server,
a charger that sends exactly the frames chosen here, the Stripe sandbox and the SDK over
127.0.0.1. Each test fails without the behaviour it names."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from csms.app import CentralSystem
from tests.conftest import MakeConfig, ocpp_url
from tests.ocpp_client import RawCharger
from tests.payflow import TARIFF, VISA, Driver
from tests.waiting import eventually

BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}


@pytest.fixture
async def system(make_config: MakeConfig) -> AsyncIterator[CentralSystem]:
    # A stop is asked again only after an hour: what arrives sooner came from the reconnect.
    config = make_config(
        tariff=TARIFF, payments={"minimum_energy_wh": 100, "stop_retry_interval": 3600}
    )
    async with CentralSystem(config) as running:
        yield running


@pytest.fixture
async def driver(system: CentralSystem) -> AsyncIterator[Driver]:
    async with aiohttp.ClientSession() as http:
        yield Driver(system, http)


Connect = Callable[..., Awaitable[RawCharger]]


@pytest.fixture
async def connect(system: CentralSystem) -> AsyncIterator[Connect]:
    """Connects CP-1 (booted, with connector 1's status when given); every connection made
    is closed at the end of the test."""
    async with AsyncExitStack() as connections:

        async def open_one(status: str | None = "Available") -> RawCharger:
            client = await connections.enter_async_context(
                RawCharger.connect(ocpp_url(system), "CP-1")
            )
            if status is not None:
                await client.call("BootNotification", BOOT)
                await _status(client, status)
            return client

        yield open_one


async def _status(client: RawCharger, status: str) -> None:
    await client.call(
        "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": status}
    )


async def _next_call(client: RawCharger, action: str, timeout: float = 10) -> list[Any]:
    """The next CALL from the server (answered Accepted); fails if another one comes."""
    frame = await asyncio.wait_for(client.receive(), timeout)
    assert frame[0] == 2 and frame[2] == action, frame
    await client.send([3, frame[1], {"status": "Accepted"}])
    return frame


def _held(system: CentralSystem) -> int:
    assert system.sandbox is not None
    return sum(entry["amount_held"] for entry in system.sandbox.ledger().values())


async def test_a_payment_made_after_the_reservation_ended_is_released_without_a_webhook(
    system: CentralSystem, driver: Driver, connect: Connect
) -> None:
    assert system.sandbox is not None
    system.sandbox.pause_webhooks()  # the webhook is delayed, or was never configured
    await connect()  # CP-1 online, connector 1 Available
    status, created = await driver.create("CP-1", 1)
    assert status == 200, created
    rid = created["reservationId"]
    # The driver pays in one tab while the server has not heard of it, then the
    # reservation ends (the driver cancels in another tab, or the window runs out).
    await _pay_and_close_the_tab(driver, created["checkoutUrl"])
    assert (await driver.status(rid))["state"] == "PendingPayment"
    assert _held(system) == 250
    code, _ = await driver.post(f"/api/payments/{rid}/cancel")
    assert code == 200
    # Closing the Checkout Session finds it paid: the hold is looked up and released.
    await eventually(lambda: _hold_is(driver, rid, "Released"))
    view = await driver.status(rid)
    assert view["state"] == "Cancelled"
    assert _held(system) == 0
    audit = [a["action"] for a in await system.audit.lines(rid)]
    assert "paid after the reservation ended" in audit and "hold released" in audit


async def _pay_and_close_the_tab(driver: Driver, checkout_url: str) -> None:
    """Pay on the Checkout page, but never come back to the success page."""
    form = {
        "email": "driver@example.com",
        "cardNumber": VISA,
        "cardExpiry": "12 / 34",
        "cardCvc": "123",
        "billingName": "Test Driver",
    }
    async with driver.http.post(checkout_url, data=form, allow_redirects=False) as response:
        assert response.status in (302, 303), await response.text()


async def _hold_is(driver: Driver, rid: str, hold: str) -> bool:
    return (await driver.status(rid))["hold"] == hold


async def test_a_charge_started_after_a_cancel_is_stopped(
    system: CentralSystem, driver: Driver, connect: Connect
) -> None:
    client = await connect()
    status, created = await driver.create("CP-1", 1)
    assert status == 200, created
    rid = created["reservationId"]
    await driver.pay(created["checkoutUrl"])
    await driver.wait_for_state(rid, "AwaitingPlug")
    code, _ = await driver.post(f"/api/payments/{rid}/cancel")
    assert code == 200
    await eventually(lambda: _hold_is(driver, rid, "Released"))
    reservation = await system.reservations.get(rid)
    assert reservation is not None
    # The charger starts anyway with the reservation's tag (a late RemoteStart, a
    # cable plugged in after the driver gave up...).
    answer = await client.call(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": reservation.id_tag,
            "meterStart": 0,
            "timestamp": "2026-11-30T12:00:00Z",
        },
    )
    assert answer["idTagInfo"]["status"] == "Invalid"
    stop = await _next_call(client, "RemoteStopTransaction")
    assert stop[3] == {"transactionId": answer["transactionId"]}
    audit = await system.audit.lines(rid)
    assert "stray transaction stopped" in [a["action"] for a in audit]
    assert (await driver.status(rid))["state"] == "Cancelled"


async def test_a_stop_pressed_while_the_charger_is_offline_is_sent_when_it_is_back(
    system: CentralSystem, driver: Driver, connect: Connect
) -> None:
    client = await connect()
    status, created = await driver.create("CP-1", 1)
    assert status == 200, created
    rid = created["reservationId"]
    await driver.pay(created["checkoutUrl"])
    await driver.wait_for_state(rid, "AwaitingPlug")
    await _status(client, "Preparing")
    start = await _next_call(client, "RemoteStartTransaction")
    reservation = await system.reservations.get(rid)
    assert reservation is not None and start[3]["idTag"] == reservation.id_tag
    answer = await client.call(
        "StartTransaction",
        {"connectorId": 1, "idTag": reservation.id_tag, "meterStart": 1000, "timestamp": _now()},
    )
    await driver.wait_for_state(rid, "Charging")
    await client.connection.close()
    await eventually(lambda: _offline(system))
    code, view = await driver.post(f"/api/payments/{rid}/stop")
    assert code == 200 and view["state"] == "Stopping", view
    await eventually(lambda: _stop_undelivered(system, rid))
    # Back online: the stop arrives at once, not at the next retry an hour later.
    client = await connect(status=None)  # the stop comes before the boot
    stop = await _next_call(client, "RemoteStopTransaction")
    assert stop[3] == {"transactionId": answer["transactionId"]}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


async def _offline(system: CentralSystem) -> bool:
    return system.sessions.get("CP-1") is None


async def _stop_undelivered(system: CentralSystem, rid: str) -> bool:
    reservation = await system.reservations.get(rid)
    return reservation is not None and reservation.stop_undelivered


async def test_a_server_that_died_before_the_link_was_handed_over_frees_the_connector(
    make_config: MakeConfig,
) -> None:
    """The reservation and its checkout were made, then the process died before the driver
    got the link (the coordinator's steps run here without the hand-over). The next driver
    is refused only until the hand-over window has passed: then the connector is free."""
    ahead = [timedelta(0)]
    config = make_config(tariff=TARIFF, payments={"minimum_energy_wh": 100})
    async with (
        CentralSystem(config, clock=lambda: datetime.now(UTC) + ahead[0]) as system,
        RawCharger.connect(ocpp_url(system), "CP-1") as cp,
        aiohttp.ClientSession() as http,
    ):
        await cp.call("BootNotification", BOOT)
        await _status(cp, "Available")
        tariff = await system.payment_service.tariff_for("CP-1", 1)
        stray, _ = await system.coordinator.create("CP-1", 1, tariff, None)
        await system.runner.run_now(stray.id)
        driver = Driver(system, http)
        status, refused = await driver.create("CP-1", 1)
        assert status == 409, refused
        ahead[0] = system.coordinator.policy.handover_window + timedelta(seconds=1)
        await system.coordinator.tick()
        assert (await driver.status(stray.id))["state"] == "Expired"
        status, created = await driver.create("CP-1", 1)
        assert status == 200, created
        # The new one was handed over: it has the whole pending window (longer than the
        # hand-over window), then it frees the connector too.
        pending = timedelta(seconds=system.config.payments.pending_window)
        assert pending > system.coordinator.policy.handover_window
        ahead[0] += pending - timedelta(seconds=10)
        await system.coordinator.tick()
        assert (await driver.status(created["reservationId"]))["state"] == "PendingPayment"
        ahead[0] += timedelta(seconds=11)
        await system.coordinator.tick()
        assert (await driver.status(created["reservationId"]))["state"] == "Expired"
