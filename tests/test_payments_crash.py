"""Kill -9 the server between the steps of a paid session, restart it, and check the money
against the Stripe sandbox's own ledger: the session ends, captured exactly once.

The server and the sandbox run as separate processes (the sandbox must outlive the
server it is paid through); the charger is the simulator, which reconnects by itself.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from bench.faults.processes import API_KEY, Processes
from simulators.chargepoint import Behaviour, SimulatedCharger
from tests.payflow import VISA
from tests.waiting import eventually

API_HEADERS = {"X-API-Key": API_KEY}


@pytest.fixture
def processes(tmp_path: Path, database_url: str) -> Iterator[Processes]:
    running = Processes(tmp_path, database_url=database_url)
    running.start_sandbox()
    running.start_server()
    try:
        yield running
    finally:
        running.stop()
        # Shown by pytest only when the test failed: what the processes said.
        for name in ("server.log", "sandbox.log"):
            print(f"--- last lines of {name} ---", running.tail(name), sep="\n")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _up(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(url) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def _restart(processes: Processes, http: aiohttp.ClientSession) -> None:
    processes.kill_server()
    processes.start_server()
    await eventually(lambda: _up(http, f"{processes.base}/healthz"), timeout=20)


async def _state(http: aiohttp.ClientSession, processes: Processes, rid: str) -> dict:
    async with http.get(f"{processes.base}/api/payments/{rid}", headers=API_HEADERS) as response:
        return await response.json()


async def _until_state(
    http: aiohttp.ClientSession, processes: Processes, rid: str, *states: str
) -> dict:
    seen: dict = {}

    async def reached() -> bool:
        try:
            seen.update(await _state(http, processes, rid))
        except aiohttp.ClientError:
            return False  # the server is restarting
        return seen.get("state") in states

    await eventually(reached, timeout=40)
    return seen


CARD = {
    "email": "d@example.com",
    "cardNumber": VISA,
    "cardExpiry": "12/34",
    "cardCvc": "123",
    "billingName": "D",
}


def _simulator(processes: Processes) -> SimulatedCharger:
    return SimulatedCharger(
        f"ws://127.0.0.1:{processes.ocpp_port}/ocpp",
        "CP-1",
        connectors=1,
        meter_interval=0.5,
        speed=60,
        behaviour=Behaviour(unplug_after_stop=0.2),
    )


KILL_POINTS = ["after_create", "after_payment", "after_plug", "while_charging", "after_stop"]


@pytest.mark.parametrize("kill_at", KILL_POINTS)
async def test_killed_between_steps_loses_nothing_and_captures_once(
    processes: Processes, http: aiohttp.ClientSession, kill_at: str
) -> None:
    await eventually(lambda: _up(http, f"{processes.base}/healthz"), timeout=20)
    await eventually(lambda: _up(http, f"{processes.stripe}/_sandbox"), timeout=20)
    sim = _simulator(processes)
    await sim.start()
    try:
        async with http.post(
            f"{processes.base}/api/payments",
            json={"chargePointId": "CP-1", "connectorId": 1},
            headers=API_HEADERS,
        ) as response:
            created = await response.json()
        assert created["status"] == "Redirect", created
        rid = created["reservationId"]
        if kill_at == "after_create":
            await _restart(processes, http)
            await sim.wait_online(30)

        # Paid on Stripe's page; the way back may hit a server that is down: the webhook
        # still reports the payment.
        async with http.post(created["checkoutUrl"], data=CARD, allow_redirects=False) as paid:
            assert paid.status in (302, 303), await paid.text()
        if kill_at == "after_payment":
            await _restart(processes, http)
            await sim.wait_online(30)

        await _until_state(http, processes, rid, "AwaitingPlug")
        await sim.plug_in(1)
        if kill_at == "after_plug":
            await _restart(processes, http)
            await sim.wait_online(30)

        await _until_state(http, processes, rid, "Charging")
        await eventually(lambda: _energy_over(http, processes, rid, 500), timeout=30)
        if kill_at == "while_charging":
            await _restart(processes, http)
            await sim.wait_online(30)

        async with http.post(
            f"{processes.base}/api/payments/{rid}/stop", headers=API_HEADERS
        ) as stopped:
            assert stopped.status == 200
        if kill_at == "after_stop":
            await _restart(processes, http)

        done = await _until_state(http, processes, rid, "Completed")
    finally:
        await sim.stop()

    async with http.get(f"{processes.stripe}/_sandbox/ledger") as response:
        ledger = (await response.json())["payment_intents"]
    assert len(ledger) == 1
    (intent,) = ledger.values()
    assert intent["capture_requests"] == 1
    assert intent["amount_captured"] == done["capturedAmount"] > 0
    energy = done["breakdown"]["energyWh"]
    assert done["capturedAmount"] == round(energy * 40 / 1000 + 1e-9) + 50
    assert processes.kills == 1


async def _energy_over(
    http: aiohttp.ClientSession, processes: Processes, rid: str, wh: int
) -> bool:
    try:
        return (await _state(http, processes, rid))["energyWh"] > wh
    except aiohttp.ClientError:
        return False


async def test_sigterm_parks_a_capture_under_way_and_the_next_start_finishes_it(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    processes = Processes(tmp_path, {"CSMS_SERVER_SHUTDOWN_TIMEOUT": "1"})
    processes.start_sandbox()
    processes.start_server()
    try:
        await eventually(lambda: _up(http, f"{processes.base}/healthz"), timeout=20)
        await eventually(lambda: _up(http, f"{processes.stripe}/_sandbox"), timeout=20)
        sim = _simulator(processes)
        await sim.start()
        try:
            async with http.post(
                f"{processes.base}/api/payments",
                json={"chargePointId": "CP-1"},
                headers=API_HEADERS,
            ) as response:
                created = await response.json()
            rid = created["reservationId"]
            async with http.post(created["checkoutUrl"], data=CARD, allow_redirects=False):
                pass
            await _until_state(http, processes, rid, "AwaitingPlug")
            await sim.plug_in(1)
            await _until_state(http, processes, rid, "Charging")
            await eventually(lambda: _energy_over(http, processes, rid, 300), timeout=30)
            # Stripe answers the capture slowly: it is under way when SIGTERM comes.
            async with http.post(
                f"{processes.stripe}/_sandbox/faults",
                json={"count": 1, "delay_seconds": 4, "path": "/v1/payment_intents"},
            ):
                pass
            async with http.post(f"{processes.base}/api/payments/{rid}/stop", headers=API_HEADERS):
                pass
            await _until_state(http, processes, rid, "Settling")
            started = asyncio.get_running_loop().time()
            # In a thread: the simulated charger in this loop must answer the server's close.
            code = await asyncio.to_thread(processes.kill_server, signal.SIGTERM)
            took = asyncio.get_running_loop().time() - started
            assert code == 0
            assert took < 1 + 5, f"shutdown took {took:.1f} s"
            processes.start_server()
            done = await _until_state(http, processes, rid, "Completed")
        finally:
            await sim.stop()
        async with http.get(f"{processes.stripe}/_sandbox/ledger") as response:
            (intent,) = (await response.json())["payment_intents"].values()
        assert intent["capture_requests"] == 1
        assert intent["amount_captured"] == done["capturedAmount"] > 0
        # The slow capture did not finish within the shutdown time: it was parked.
        assert "payments.effects_parked" in processes.tail("server.log", 400)
    finally:
        processes.stop()
