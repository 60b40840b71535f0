"""`csms demo`: the whole product on one laptop, and one paid charging session through it.

The server (with the bundled Stripe sandbox when no key is set) and a simulated charger
run in this process; the demo then does what a driver does, over HTTP: asks to charge,
pays the hold on the Checkout page with a test card, plugs in, charges, stops, and
prints what was held, used, captured and released.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
import orjson

from csms.app import CentralSystem
from csms.config import Config, ConfigError
from payments.pricing import format_money
from simulators.chargepoint import Behaviour, SimulatedCharger

DEMO_CHARGER = "CP-DEMO"
DEMO_USER = "demo"  # the console user `--stay` prints a new password for
TEST_CARD = "4242 4242 4242 4242"


@dataclass(frozen=True)
class DemoSummary:
    reservation_id: str
    charge_point_id: str
    state: str
    currency: str
    hold: int
    energy_wh: int
    captured: int
    released: int
    breakdown: dict[str, int]
    transaction_id: int | None

    def text(self) -> str:
        money = self.currency
        lines = [
            f"Paid charging session {self.reservation_id} on {self.charge_point_id}: {self.state}",
            f"  hold on the card  {format_money(self.hold, money):>14}",
            f"  energy            {self.energy_wh / 1000:>10.3f} kWh",
            f"  captured          {format_money(self.captured, money):>14}",
            f"  released          {format_money(self.released, money):>14}",
            "  breakdown: "
            + ", ".join(
                f"{name} {format_money(self.breakdown[key], money)}"
                for name, key in (
                    ("energy", "energy"),
                    ("session fee", "sessionFee"),
                    ("time fee", "timeFee"),
                    ("idle fee", "idleFee"),
                )
            ),
        ]
        return "\n".join(lines)


class DemoFailed(Exception):
    """The demo's session could not be paid or did not end well: one line says why."""


async def run_demo(config: Config, *, energy_wh: int = 3000, stay: bool = False) -> DemoSummary:
    async with CentralSystem(config) as system:
        await system.chargers.register(DEMO_CHARGER, name="Demo charger", location="Laptop")
        sim = SimulatedCharger(
            f"ws://127.0.0.1:{system.ocpp.port}{config.server.ocpp_path}",
            DEMO_CHARGER,
            connectors=2,
            power_kw=22.0,
            meter_interval=1.0,
            speed=60,
            behaviour=Behaviour(unplug_after_stop=1.0),
        )
        await sim.start()
        key = await system.api_keys.create("demo")
        try:
            summary = await drive_one_session(
                f"http://127.0.0.1:{system.http.port}", key, sim, energy_wh
            )
            if stay:
                password = await _console_login(system)
                print(summary.text(), flush=True)
                print(
                    f"\nStill running: chargers on ws://127.0.0.1:{system.ocpp.port}"
                    f"{config.server.ocpp_path}/{{id}}, HTTP on"
                    f" http://127.0.0.1:{system.http.port}. Ctrl-C stops.\n"
                    f"The operator console: http://127.0.0.1:{system.http.port}/console,"
                    f" user {DEMO_USER}, password {password} (a new one each run).",
                    flush=True,
                )
                await asyncio.Event().wait()
        finally:
            await sim.stop()
    return summary


async def _console_login(system: CentralSystem) -> str:
    """The demo's console user (an admin), with a new password each run: the password."""
    password = secrets.token_urlsafe(12)
    if not await system.users.set_password(DEMO_USER, password):
        await system.users.add(DEMO_USER, "admin", password)
    return password


async def drive_one_session(
    base: str, key: str, sim: SimulatedCharger, energy_wh: int
) -> DemoSummary:
    """What a driver does for one paid session on `sim`'s connector 1, over HTTP at `base`."""
    # The driver's own pages need no key; the JSON API that a front-end calls does.
    async with aiohttp.ClientSession(headers={"X-API-Key": key}) as http:
        created = await _post(http, f"{base}/api/payments", {"chargePointId": sim.charge_point_id})
        if created.get("status") == "Accepted":  # nothing to pay: a free tariff
            raise DemoFailed(
                f"{sim.charge_point_id} charges for free here, and the demo pays a hold: give it"
                " a priced tariff (csms tariffs assign ID CP-DEMO) or remove its free one"
            )
        if created.get("status") != "Redirect":
            raise DemoFailed(f"the payment was not created: {created}")
        reservation = created["reservationId"]
        card = {
            "email": "driver@example.com",
            "cardNumber": TEST_CARD,
            "cardExpiry": "12 / 34",
            "cardCvc": "123",
            "billingName": "Demo Driver",
        }
        async with http.post(created["checkoutUrl"], data=card) as paid:
            if paid.status != 200:
                raise DemoFailed(f"the test card was not accepted: {paid.status}")
        await _until(http, base, reservation, lambda s: s["state"] == "AwaitingPlug")
        await sim.plug_in(1)
        await _until(http, base, reservation, lambda s: s["energyWh"] >= energy_wh, within=120)
        await _post(http, f"{base}/api/payments/{reservation}/stop", {})
        final = await _until(
            http, base, reservation, lambda s: s["state"] in ("Completed", "NeedsReview")
        )
    return DemoSummary(
        reservation_id=reservation,
        charge_point_id=sim.charge_point_id,
        state=final["state"],
        currency=final["currency"],
        hold=final["holdAmount"],
        energy_wh=final["energyWh"],
        captured=final["capturedAmount"],
        released=final["releasedAmount"],
        breakdown=final["breakdown"] or {},
        transaction_id=final["transactionId"],
    )


async def _post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(url, json=body) as response:
        return await response.json()


async def _until(
    http: aiohttp.ClientSession,
    base: str,
    reservation: str,
    done: Any,
    within: float = 60,
) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            async with http.get(f"{base}/api/payments/{reservation}") as response:
                status = await response.json()
            if done(status):
                return status
            if status["stage"] == "failed":
                raise DemoFailed(f"the session failed: {status['failureReason']}")
            await asyncio.sleep(0.25)


def demo_config(config: Config) -> Config:
    """The demo runs on the laptop: the sandbox, never a real Stripe account."""
    if config.stripe.api_key:
        raise ConfigError("stripe.api_key: the demo uses the Stripe sandbox; unset the key")
    return config


def print_summary(summary: DemoSummary, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(asdict(summary), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(summary.text())
