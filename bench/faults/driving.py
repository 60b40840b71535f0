"""Drivers paying and charging over HTTP, patient with a server that may be restarting
(or, behind a load balancer, with a node that dies under a request)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from bench.faults.processes import API_KEY
from simulators.chargepoint import SimulatedCharger

TERMINAL = {
    "Completed",
    "Expired",
    "PaymentFailed",
    "Cancelled",
    "StartRejected",
    "StartTimeout",
    "NeedsReview",
}
CARD = {
    "email": "driver@example.com",
    "cardNumber": "4242 4242 4242 4242",
    "cardExpiry": "12 / 34",
    "cardCvc": "123",
    "billingName": "Fault Run",
}


# What a load balancer answers itself when no node could (HAProxy: an HTML page); csms's own
# answers, refusals included, are JSON.
NO_NODE = {502, 503, 504}


class Unreachable(Exception):
    pass


class _NoNode(Exception):
    """The load balancer answered instead of csms: the node died under the request."""


class Endpoints(Protocol):
    """Where the harness reaches csms (`base`) and the Stripe sandbox (`stripe`): one
    server's ports (Processes), or a load balancer in front of several nodes."""

    @property
    def base(self) -> str: ...

    @property
    def stripe(self) -> str: ...


@dataclass
class Api:
    processes: Endpoints
    http: aiohttp.ClientSession
    patience: float = 90.0

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """The server's answer; connection failures (a restart, a dead node behind the load
        balancer) are retried patiently."""
        deadline = asyncio.get_running_loop().time() + self.patience
        while True:
            try:
                async with self.http.request(
                    method,
                    self.processes.base + path,
                    json=body,
                    headers={"X-API-Key": API_KEY},
                    timeout=aiohttp.ClientTimeout(total=15),
                ) as response:
                    if response.status in NO_NODE and response.content_type != "application/json":
                        raise _NoNode(response.status)
                    return response.status, await response.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, _NoNode):
                if asyncio.get_running_loop().time() > deadline:
                    raise Unreachable(path) from None
                await asyncio.sleep(0.3)

    async def state(self, reservation_id: str) -> dict[str, Any]:
        _, body = await self.call("GET", f"/api/payments/{reservation_id}")
        return body

    async def until(self, reservation_id: str, done: Any, within: float = 60.0) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            current = await self.state(reservation_id)
            if done(current) or asyncio.get_running_loop().time() > deadline:
                return current
            await asyncio.sleep(0.25)


# Seconds a driver waits for a reservation it was never given to stop holding its connector.
STRAY_PATIENCE = 30.0


@dataclass(frozen=True)
class Stray:
    """A reservation holding a connector that no driver of the run was given: the answer to
    the request that created it was lost (its node died under it)."""

    charger_id: str
    seen_at: float  # loop time when a refused driver first found it


@dataclass
class SessionLog:
    reservation_ids: list[str] = field(default_factory=list)
    refused: int = 0  # payment requests refused (busy, unavailable) and retried
    strays: dict[str, Stray] = field(default_factory=dict)  # by reservation id


WhileCharging = Callable[[Api, SimulatedCharger, str], Awaitable[None]]


async def paid_session(
    api: Api,
    sim: SimulatedCharger,
    log: SessionLog,
    energy_wh: int = 1500,
    while_charging: WhileCharging | None = None,
) -> str | None:
    """One driver's whole session on connector 1; returns its reservation id."""
    created = await create_payment(api, sim.charge_point_id, log)
    if created is None:
        return None
    reservation_id = created["reservationId"]
    log.reservation_ids.append(reservation_id)
    # Paying happens on Stripe's side; the way back may find our server down (the
    # webhook still brings the news).
    try:
        async with api.http.post(created["checkoutUrl"], data=CARD, allow_redirects=False):
            pass
    except aiohttp.ClientError:
        return reservation_id
    waiting = await api.until(
        reservation_id, lambda s: s["state"] in {"AwaitingPlug", "StartRequested"} | TERMINAL
    )
    if waiting["state"] in TERMINAL:
        return reservation_id
    await sim.plug_in(1)
    if while_charging is not None:
        started = await api.until(
            reservation_id, lambda s: s["state"] == "Charging" or s["state"] in TERMINAL
        )
        if started["state"] == "Charging":
            await while_charging(api, sim, reservation_id)
    charging = await api.until(
        reservation_id,
        lambda s: s["energyWh"] >= energy_wh or s["state"] in TERMINAL,
        within=90,
    )
    if charging["state"] not in TERMINAL:
        await api.call("POST", f"/api/payments/{reservation_id}/stop")
    await api.until(reservation_id, lambda s: s["state"] in TERMINAL, within=120)
    if sim.connector(1).plugged and sim.connector(1).transaction_id is None:
        await sim.unplug(1)
    return reservation_id


async def create_payment(api: Api, charger_id: str, log: SessionLog) -> dict[str, Any] | None:
    """POST /api/payments until the server takes it; the answer (None: it never did, or a
    stray reservation has held the connector for STRAY_PATIENCE: see `log.strays`)."""
    for _ in range(60):
        status, body = await api.call(
            "POST", "/api/payments", {"chargePointId": charger_id, "connectorId": 1}
        )
        if status == 200 and body.get("status") == "Redirect":
            return body
        log.refused += 1
        if body.get("status") == "ConnectorBusy" and await _held_by_stray(api, charger_id, log):
            return None
        await asyncio.sleep(1.0)  # offline for a moment, busy finishing, or Stripe down
    return None


async def _held_by_stray(api: Api, charger_id: str, log: SessionLog) -> bool:
    """Note the charger's reservations not ended that no driver was given (each driver of a
    run has a charger of its own); whether one has held it for STRAY_PATIENCE already."""
    _, page = await api.call("GET", f"/api/payments?chargerId={charger_id}&limit=500")
    now = asyncio.get_running_loop().time()
    given = set(log.reservation_ids)
    strays = [
        payment["reservationId"]
        for payment in page.get("items", [])
        if payment["state"] not in TERMINAL and payment["reservationId"] not in given
    ]
    for reservation_id in strays:
        log.strays.setdefault(reservation_id, Stray(charger_id, now))
    return any(now - log.strays[r].seen_at > STRAY_PATIENCE for r in strays)
