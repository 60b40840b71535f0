"""Helpers for end-to-end payment tests: a driver's HTTP calls and the sandbox's card form."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from typing import Any

import aiohttp

from csms.app import CentralSystem
from simulators.chargepoint import Behaviour, SimulatedCharger
from tests.conftest import API_HEADERS, API_KEY, ocpp_url
from tests.waiting import eventually

# 0.40/kWh, 0.50 per session, at most 5 kWh: a hold of 2.50 EUR. No time or idle fees, so
# the price depends only on the energy the charger reports.
TARIFF = {
    "currency": "eur",
    "price_per_kwh": "0.40",
    "session_fee": "0.50",
    "idle_fee_per_minute": "0",
    "idle_fee_max_minutes": 0,
    "max_energy_wh": 5000,
    "max_duration_minutes": 0,
}

VISA = "4242 4242 4242 4242"
DECLINED = "4000 0000 0000 0002"


@dataclass
class Driver:
    """What a driver's phone (or a front-end acting for it) does over HTTP."""

    system: CentralSystem
    http: aiohttp.ClientSession

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.system.http.port}"

    async def create(
        self, charger: str = "CP-1", connector: int = 1, **extra: Any
    ) -> tuple[int, dict]:
        async with self.http.post(
            f"{self.base}/api/payments",
            json={"chargePointId": charger, "connectorId": connector, **extra},
            headers=API_HEADERS,
        ) as response:
            return response.status, await response.json()

    async def pay(self, checkout_url: str, card: str = VISA) -> aiohttp.ClientResponse:
        """Fill the hosted Checkout form; follows the redirects back to our session page."""
        async with self.http.get(checkout_url) as page:
            assert page.status == 200, await page.text()
        form = {
            "email": "driver@example.com",
            "cardNumber": card,
            "cardExpiry": "12 / 34",
            "cardCvc": "123",
            "billingName": "Test Driver",
        }
        async with self.http.post(checkout_url, data=form) as response:
            await response.read()
            return response

    async def status(self, reservation_id: str) -> dict:
        async with self.http.get(
            f"{self.base}/api/payments/{reservation_id}", headers=API_HEADERS
        ) as response:
            assert response.status == 200
            return await response.json()

    async def post(self, path: str, body: dict | None = None) -> tuple[int, dict]:
        async with self.http.post(
            f"{self.base}{path}", json=body or {}, headers=API_HEADERS
        ) as response:
            return response.status, await response.json()

    async def has_energy(self, reservation_id: str, wh: int = 200) -> bool:
        return (await self.status(reservation_id))["energyWh"] > wh

    async def start_charging(self, sim: SimulatedCharger) -> str:
        """Ask, pay with 4242, plug in connector 1, and charge a little; the reservation id."""
        status, created = await self.create(sim.charge_point_id, 1)
        assert status == 200, created
        reservation_id = created["reservationId"]
        await self.pay(created["checkoutUrl"])
        await self.wait_for_state(reservation_id, "AwaitingPlug")
        await sim.plug_in(1)
        await self.wait_for_state(reservation_id, "Charging")
        await eventually(lambda: self.has_energy(reservation_id))
        return reservation_id

    async def wait_for_state(self, reservation_id: str, *states: str, timeout: float = 15) -> dict:
        seen: dict = {}

        async def reached() -> bool:
            seen.update(await self.status(reservation_id))
            return seen["state"] in states

        try:
            await eventually(reached, timeout)
        except TimeoutError:
            raise AssertionError(f"still {seen.get('state')} ({seen}), wanted {states}") from None
        return seen


def charger(
    system: CentralSystem, charge_point_id: str = "CP-1", speed: float = 600, **behaviour: Any
) -> SimulatedCharger:
    """A simulated charger that charges fast (at speed 600, about 1.8 kWh a second at 11 kW)."""
    return SimulatedCharger(
        ocpp_url(system),
        charge_point_id,
        connectors=2,
        power_kw=11.0,
        meter_interval=0.2,
        speed=speed,
        behaviour=Behaviour(**behaviour),
    )


async def run_cli(system: CentralSystem, *argv: str, key: str = API_KEY) -> tuple[int, str]:
    """`csms ARGV --api <system>` in a process of its own, as an operator runs it; its exit
    code and what it printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "csms",
        *argv,
        "--api",
        f"http://127.0.0.1:{system.http.port}",
        env={**os.environ, "CSMS_API_KEY": key},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def finished_session(driver: Driver, sim: SimulatedCharger) -> tuple[str, str]:
    """A paid session charged on `sim`'s connector 1, stopped and settled, as a driver's
    phone went through it: its reservation id and the token of its pages (the receipt's)."""
    status, created = await driver.create(sim.charge_point_id, 1)
    assert status == 200, created
    reservation_id = created["reservationId"]
    paid = await driver.pay(created["checkoutUrl"])
    token = paid.url.path.removeprefix("/session/")
    await driver.wait_for_state(reservation_id, "AwaitingPlug")
    await sim.plug_in(1)
    await driver.wait_for_state(reservation_id, "Charging")
    await eventually(lambda: driver.has_energy(reservation_id))
    await driver.post(f"/api/payments/{reservation_id}/stop")
    await driver.wait_for_state(reservation_id, "Completed")

    async def settled() -> bool:
        async with driver.http.get(f"{driver.base}/receipt/{token}", allow_redirects=False) as page:
            return page.status == 200

    await eventually(settled, timeout=15)
    return reservation_id, token


async def refund_and_wait(driver: Driver, reservation_id: str, body: dict) -> dict:
    """Refund through the API and wait until Stripe has done it: the refund runs as an
    effect after the answer, so a page read straight after may not show it yet."""
    status, refund = await driver.post(f"/api/payments/{reservation_id}/refunds", body)
    assert status == 201, refund

    async def succeeded() -> bool:
        async with driver.http.get(
            f"{driver.base}/api/payments/{reservation_id}/refunds", headers=API_HEADERS
        ) as response:
            return all(x["status"] == "succeeded" for x in await response.json())

    await eventually(succeeded, timeout=10)
    return refund
