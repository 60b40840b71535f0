"""Kill -9 the server between the steps of a paid session, restart it, and check the money
against the Stripe sandbox's own ledger: the session ends, captured exactly once.

The server and the sandbox run as separate processes (the sandbox must outlive the
server it is paid through); the charger is the simulator, which reconnects by itself.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from simulators.chargepoint import Behaviour, SimulatedCharger
from tests.conftest import API_HEADERS, API_KEY
from tests.payflow import VISA
from tests.waiting import eventually

SECRET = "whsec_crash_test"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Processes:
    def __init__(self, tmp_path: Path) -> None:
        self.ocpp_port, self.http_port, self.stripe_port = (_free_port() for _ in range(3))
        self.base = f"http://127.0.0.1:{self.http_port}"
        self.stripe = f"http://127.0.0.1:{self.stripe_port}"
        self.database = tmp_path / "csms.db"
        self.logs = tmp_path
        self.server: subprocess.Popen[bytes] | None = None
        self.sandbox: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CSMS_SERVER_OCPP_HOST": "127.0.0.1",
            "CSMS_SERVER_OCPP_PORT": str(self.ocpp_port),
            "CSMS_SERVER_HTTP_HOST": "127.0.0.1",
            "CSMS_SERVER_HTTP_PORT": str(self.http_port),
            "CSMS_DATABASE_PATH": str(self.database),
            "CSMS_OCPP_UNKNOWN_CHARGERS": "accept",
            "CSMS_OCPP_CALL_TIMEOUT": "3",
            "CSMS_STRIPE_API_KEY": "sk_test_crash",
            "CSMS_STRIPE_API_BASE": self.stripe,
            "CSMS_STRIPE_WEBHOOK_SECRETS": SECRET,
            "CSMS_STRIPE_TIMEOUT": "3",
            "CSMS_PAYMENTS_TICK_INTERVAL": "0.2",
            "CSMS_PAYMENTS_RETRY_BASE": "0.1",
            "CSMS_PAYMENTS_RETRY_CEILING": "1",
            "CSMS_PAYMENTS_MINIMUM_ENERGY_WH": "100",
            "CSMS_PAYMENTS_STOP_RETRY_INTERVAL": "2",
            "CSMS_TARIFF_PRICE_PER_KWH": "0.40",
            "CSMS_TARIFF_SESSION_FEE": "0.50",
            "CSMS_TARIFF_IDLE_FEE_PER_MINUTE": "0",
            "CSMS_TARIFF_IDLE_FEE_MAX_MINUTES": "0",
            "CSMS_TARIFF_MAX_ENERGY_WH": "20000",
            "CSMS_LOG_LEVEL": "info",
            "CSMS_API_KEYS": API_KEY,
        }

    def start_sandbox(self) -> None:
        self.sandbox = subprocess.Popen(
            [
                sys.executable, "-m", "simulators.stripe_sandbox",
                "--port", str(self.stripe_port),
                "--webhook-url", f"{self.base}/api/stripe/webhook",
                "--webhook-secret", SECRET,
            ],
            stdout=(self.logs / "sandbox.log").open("ab"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def start_server(self) -> None:
        self.server = subprocess.Popen(
            [sys.executable, "-m", "csms", "serve"],
            env=self._env(),
            stdout=(self.logs / "server.log").open("ab"),
            stderr=subprocess.STDOUT,
        )

    def kill_server(self) -> None:
        assert self.server is not None
        self.server.send_signal(signal.SIGKILL)
        self.server.wait(timeout=10)
        self.restarts += 1

    def stop(self) -> None:
        for process in (self.server, self.sandbox):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    running = Processes(tmp_path)
    running.start_sandbox()
    running.start_server()
    try:
        yield running
    finally:
        running.stop()
        # Shown by pytest only when the test failed: what the processes said.
        for name in ("server.log", "sandbox.log"):
            lines = (tmp_path / name).read_text(errors="replace").splitlines()
            print(f"--- last lines of {name} ---", *lines[-40:], sep="\n")


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


KILL_POINTS = ["after_create", "after_payment", "after_plug", "while_charging", "after_stop"]


@pytest.mark.parametrize("kill_at", KILL_POINTS)
async def test_killed_between_steps_loses_nothing_and_captures_once(
    processes: Processes, http: aiohttp.ClientSession, kill_at: str
) -> None:
    await eventually(lambda: _up(http, f"{processes.base}/healthz"), timeout=20)
    await eventually(lambda: _up(http, f"{processes.stripe}/_sandbox"), timeout=20)
    sim = SimulatedCharger(
        f"ws://127.0.0.1:{processes.ocpp_port}/ocpp",
        "CP-1",
        connectors=1,
        meter_interval=0.5,
        speed=60,
        behaviour=Behaviour(unplug_after_stop=0.2),
    )
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

        form = {
            "email": "d@example.com",
            "cardNumber": VISA,
            "cardExpiry": "12/34",
            "cardCvc": "123",
            "billingName": "D",
        }
        # Paid on Stripe's page; the way back may hit a server that is down: the webhook
        # still reports the payment.
        async with http.post(created["checkoutUrl"], data=form, allow_redirects=False) as paid:
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
    assert processes.restarts == 1


async def _energy_over(
    http: aiohttp.ClientSession, processes: Processes, rid: str, wh: int
) -> bool:
    try:
        return (await _state(http, processes, rid))["energyWh"] > wh
    except aiohttp.ClientError:
        return False
