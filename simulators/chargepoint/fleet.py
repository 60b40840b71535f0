"""Several simulated chargers in one process, each driven through the same simple scenario."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from .charger import SimulatedCharger
from .errors import AuthorizationRejected

log = logging.getLogger("simulators.chargepoint")


@dataclass
class Scenario:
    """What happens after boot; every time is in seconds, None skips that step."""

    # Plug in connector 1 and start a transaction with id_tag this long after boot.
    start_after: float | None = None
    id_tag: str = "SIM-TAG"
    # Stop that transaction (and unplug) this long after it started.
    stop_after: float | None = None
    # Drop the connection once, this long after boot, for offline_for (None: until the end).
    offline_after: float | None = None
    offline_for: float | None = None
    # Plug in connector 1 this long after boot, whatever the central system does (a paid
    # session then starts when the driver has paid: the cable is in, so RemoteStart starts it).
    plug_after: float | None = None


async def play(charger: SimulatedCharger, scenario: Scenario) -> None:
    """Drive one booted charger through `scenario`."""
    steps: list[Coroutine[Any, Any, None]] = []
    if scenario.plug_after is not None:
        steps.append(_plug(charger, scenario.plug_after))
    if scenario.start_after is not None:
        steps.append(_session(charger, scenario, scenario.start_after))
    if scenario.offline_after is not None:
        steps.append(_outage(charger, scenario.offline_after, scenario.offline_for))
    for result in await asyncio.gather(*steps, return_exceptions=True):
        if isinstance(result, Exception):
            log.error("%s: scenario step failed: %r", charger.charge_point_id, result)


async def _plug(charger: SimulatedCharger, after: float) -> None:
    await asyncio.sleep(after)
    await charger.plug_in(1)


async def _session(charger: SimulatedCharger, scenario: Scenario, start_after: float) -> None:
    await asyncio.sleep(start_after)
    try:
        transaction_id = await charger.start_transaction(1, scenario.id_tag)
    except AuthorizationRejected as exc:
        log.warning("%s: %s", charger.charge_point_id, exc)
        return
    log.info("%s: scenario transaction %d running", charger.charge_point_id, transaction_id)
    if scenario.stop_after is None:
        return
    await asyncio.sleep(scenario.stop_after)
    if charger.connector(1).transaction is not None:
        await charger.stop_transaction(1)
    await charger.unplug(1)


async def _outage(charger: SimulatedCharger, after: float, duration: float | None) -> None:
    await asyncio.sleep(after)
    await charger.go_offline(duration)


def fleet_ids(base_id: str, count: int) -> list[str]:
    """`base_id` alone, or `{base_id}-1` .. `{base_id}-{count}` for a fleet."""
    return [base_id] if count == 1 else [f"{base_id}-{n}" for n in range(1, count + 1)]


async def run_fleet(
    chargers: list[SimulatedCharger], scenario: Scenario, stop: asyncio.Event
) -> int:
    """Start every charger, play the scenario on each until `stop` is set; the exit status."""
    results = await asyncio.gather(*(c.start() for c in chargers), return_exceptions=True)
    running: list[SimulatedCharger] = []
    for charger, result in zip(chargers, results, strict=True):
        if isinstance(result, Exception):
            log.error("%s: could not start: %r", charger.charge_point_id, result)
        else:
            running.append(charger)
    if not running:
        return 1
    plays = [asyncio.create_task(play(charger, scenario)) for charger in running]
    await stop.wait()
    for task in plays:
        task.cancel()
    await asyncio.gather(*plays, return_exceptions=True)
    await asyncio.gather(*(charger.stop() for charger in running))
    return 0
