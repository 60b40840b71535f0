"""The scenarios: a fleet of simulated chargers doing paid sessions while something fails."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from bench.faults.driving import (
    TERMINAL,
    Api,
    SessionLog,
    Unreachable,
    WhileCharging,
    paid_session,
)
from bench.faults.ledger import Report, audit_run
from bench.faults.processes import Processes
from bench.faults.stripe_proxy import StripeProxy
from simulators.chargepoint import Behaviour, SimulatedCharger

Chaos = Callable[[Processes, Api, Report, asyncio.Event], Awaitable[None]]
# One session of a scenario's own: (api, charger, log, report, the session's number in the run).
Drive = Callable[[Api, SimulatedCharger, SessionLog, Report, int], Awaitable[None]]

# Short windows, so that sessions broken by a fault end within the run.
FAST_WINDOWS = {
    "CSMS_PAYMENTS_START_WINDOW": "20",
    "CSMS_PAYMENTS_START_REPLY_WINDOW": "10",
    "CSMS_PAYMENTS_SETTLE_AFTER_AVAILABLE": "10",
}


# The fleet's longest wait between two reconnect attempts, in seconds.
RECONNECT_CEILING = 2.0


def unplugs_after_stop(n: int) -> Behaviour:
    """Charger n's behaviour, its own: its drivers unplug soon after the charge stops."""
    return Behaviour(unplug_after_stop=0.3)


async def run_fleet(
    name: str,
    folder: Path,
    chargers: int,
    sessions_each: int,
    *,
    chaos: Chaos | None = None,
    behaviour: Callable[[int], Behaviour] = unplugs_after_stop,
    while_charging: Callable[[int], WhileCharging | None] = lambda _: None,
    clocks: dict[int, list[timedelta]] | None = None,
    database_dir: Path | None = None,
    drive: Drive | None = None,
    env: dict[str, str] | None = None,
    register_wh: float = 0.0,
    stripe_proxy: StripeProxy | None = None,
) -> Report:
    """`chargers` simulated chargers doing `sessions_each` sessions each: paid_session(), or
    `drive` for session number k * chargers + n on charger n; then the audit. With
    `stripe_proxy`, the server reaches Stripe through it."""
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    processes = Processes(folder, FAST_WINDOWS | (env or {}))
    if database_dir is not None:
        processes.database = database_dir / "csms.db"
    report = Report(name)
    processes.start_sandbox()
    if stripe_proxy is not None:
        await stripe_proxy.start(processes.stripe)
        processes.extra_env["CSMS_STRIPE_API_BASE"] = stripe_proxy.url
    processes.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            api = Api(processes, http)
            try:
                await api.call("GET", "/api/chargers")  # waits for the server to be up
            except Unreachable:
                report.server_crashes += 1
                report.notes.append("the server never came up:\n" + processes.tail("server.log"))
                return report
            fleet = Fleet(chargers, sessions_each, behaviour, while_charging, clocks, drive)
            sims = fleet.chargers(processes.ocpp_url, register_wh)
            log = await fleet.drive(
                api,
                sims,
                report,
                lambda stop: chaos(processes, api, report, stop) if chaos else stop.wait(),
            )
            if processes.server is not None and processes.server.poll() is not None:
                report.server_crashes += 1
                report.notes.append(processes.tail("server.log"))
                processes.start_server()
            report.kills = processes.kills
            return await settle_and_audit(api, report, log, sims)
    finally:
        processes.stop()
        if stripe_proxy is not None:
            await stripe_proxy.stop()


@dataclass
class Fleet:
    """Simulated chargers FAULT-0, FAULT-1, ..., each doing its sessions one after another."""

    count: int
    sessions_each: int
    behaviour: Callable[[int], Behaviour] = unplugs_after_stop
    while_charging: Callable[[int], WhileCharging | None] = lambda _: None
    clocks: dict[int, list[timedelta]] | None = None
    session: Drive | None = None  # instead of paid_session()

    def chargers(self, ocpp_url: str, register_wh: float = 0.0) -> list[SimulatedCharger]:
        return [
            SimulatedCharger(
                ocpp_url,
                f"FAULT-{n}",
                connectors=1,
                meter_interval=0.5,
                speed=120,
                behaviour=self.behaviour(n),
                clock=_offset_clock(self.clocks[n]) if self.clocks and n in self.clocks else None,
                register_wh=register_wh,
                # The run's time goes 120 times faster: a charger that waits 30 s between
                # attempts stands for one back an hour later, charging all the while.
                reconnect_ceiling=RECONNECT_CEILING,
            )
            for n in range(self.count)
        ]

    async def drive(
        self,
        api: Api,
        sims: list[SimulatedCharger],
        report: Report,
        chaos: Callable[[asyncio.Event], Awaitable[None]],
    ) -> SessionLog:
        """Connect the chargers, run every session while `chaos(stop)` runs; stop it after."""
        await asyncio.gather(*(sim.start() for sim in sims))
        log = SessionLog()
        stop_chaos = asyncio.Event()
        chaos_task = asyncio.create_task(chaos(stop_chaos))
        try:
            await asyncio.gather(
                *(self._sessions(api, n, sim, log, report) for n, sim in enumerate(sims))
            )
        finally:
            stop_chaos.set()
            await chaos_task
        return log

    async def _sessions(
        self, api: Api, n: int, sim: SimulatedCharger, log: SessionLog, report: Report
    ) -> None:
        for k in range(self.sessions_each):
            if self.session is None:
                await paid_session(api, sim, log, while_charging=self.while_charging(n))
            else:
                await self.session(api, sim, log, report, k * self.count + n)


async def settle_and_audit(
    api: Api, report: Report, log: SessionLog, sims: list[SimulatedCharger]
) -> Report:
    """Let every session end and its hold settle, disconnect the chargers, then the audit."""
    for reservation_id in log.reservation_ids:
        await api.until(
            reservation_id,
            lambda s: s["state"] in TERMINAL and s["hold"] not in ("Capturing", "Releasing"),
            within=120,
        )
    await asyncio.gather(*(sim.stop() for sim in sims))
    return await audit_run(api, report, log.reservation_ids, sims)


def _offset_clock(offset: list[timedelta]) -> Callable[[], datetime]:
    """A charger clock that a scenario can move forward (offset[0])."""
    return lambda: datetime.now(UTC) + offset[0]


# -- chaos


async def kill_at_random(
    processes: Processes, api: Api, report: Report, stop: asyncio.Event
) -> None:
    """SIGKILL at a random instant, 1 to 4 s into the server's running life (counted from when
    it answers, however slow this machine is to start it); one kill in four comes during the
    start itself, in the middle of migrations or of resuming the outbox."""
    rng = random.Random(7)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), rng.uniform(1.0, 4.0))
        except TimeoutError:
            processes.kill_server()
            processes.start_server()
            if rng.random() < 0.25:
                await asyncio.sleep(rng.uniform(0.0, 1.0))
                processes.kill_server()
                processes.start_server()
            await api.call("GET", "/healthz")  # patient: waits until it answers


async def stripe_outage(
    processes: Processes, api: Api, report: Report, stop: asyncio.Event, phase: float = 8.0
) -> None:
    """500s, then requests that hang past the client's timeout, then slow answers; then well."""
    faults = f"{processes.stripe}/_sandbox/faults"
    for fault in ({"status": 500}, {"status": "timeout"}, {"delay_seconds": 2.0}):
        async with api.http.post(faults, json={"count": 1_000_000, **fault}) as response:
            response.raise_for_status()
        await asyncio.sleep(phase)
        async with api.http.delete(faults):
            pass
    await stop.wait()


async def webhook_storm(
    processes: Processes, api: Api, report: Report, stop: asyncio.Event
) -> None:
    async with api.http.post(
        f"{processes.stripe}/_sandbox/webhooks", json={"duplicates": 10, "shuffle": True}
    ) as response:
        response.raise_for_status()
    await stop.wait()


async def locked_database(
    processes: Processes, api: Api, report: Report, stop: asyncio.Event
) -> None:
    """Another process holds the database's write lock for longer than the busy timeout."""
    while not stop.is_set():
        await asyncio.sleep(3.0)
        await asyncio.to_thread(_hold_lock, processes.database, 7.0)
    integrity = await asyncio.to_thread(_integrity, processes.database)
    if integrity != "ok":
        report.lost += 1
        report.notes.append(f"integrity_check: {integrity}")


def full_disk(mount: Path) -> Chaos:
    """The database's disk fills up (a small tmpfs), then grows again: writes fail with a
    clear error meanwhile, and everything recovers afterwards."""

    async def chaos(processes: Processes, api: Api, report: Report, stop: asyncio.Event) -> None:
        await asyncio.sleep(2.0)
        filler = mount / "filler"
        await asyncio.to_thread(_fill, filler)
        await asyncio.sleep(6.0)  # sessions go on against a full disk
        await asyncio.to_thread(filler.unlink, missing_ok=True)
        await asyncio.to_thread(
            subprocess.run, ["mount", "-o", "remount,size=256m", str(mount)], check=True
        )
        await stop.wait()
        integrity = await asyncio.to_thread(_integrity, processes.database)
        if integrity != "ok":
            report.lost += 1
            report.notes.append(f"integrity_check: {integrity}")

    return chaos


def _fill(path: Path) -> None:
    """Take every free byte of the file system (already full: even the file cannot be made,
    and there is nothing left to take)."""
    try:
        with path.open("wb") as out:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
    except OSError:
        pass


def mount_small_disk(where: Path) -> bool:
    """A 16 MB tmpfs for the database; False when this machine does not allow mounting."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(where)], capture_output=True
    )
    return done.returncode == 0


def unmount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _hold_lock(path: Path, seconds: float) -> None:
    import time

    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)
        conn.execute("COMMIT")
    finally:
        conn.close()


def _integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


# -- charger faults, one kind per charger (by its number modulo 4)


def misbehaving(n: int) -> Behaviour:
    # Charger kind 1 never answers RemoteStartTransaction.
    return Behaviour(unplug_after_stop=0.3, ignore_remote_start=n % 4 == 1)


def charger_fault(clocks: dict[int, list[timedelta]]) -> Callable[[int], WhileCharging | None]:
    def pick(n: int) -> WhileCharging | None:
        kind = n % 4
        if kind == 0:
            return _offline_for_an_hour(clocks[n])
        if kind == 2:
            return _reboot
        if kind == 3:
            return _hold_cancelled
        return None

    return pick


def _offline_for_an_hour(offset: list[timedelta]) -> WhileCharging:
    async def fault(api: Api, sim: SimulatedCharger, reservation_id: str) -> None:
        await sim.go_offline()
        await asyncio.sleep(1.0)
        await sim.stop_transaction(1)  # queued, sent on reconnection
        offset[0] += timedelta(hours=1)  # ... an hour later by the charger's clock
        await sim.reconnect(timeout=30)

    return fault


async def _reboot(api: Api, sim: SimulatedCharger, reservation_id: str) -> None:
    await api.call("POST", f"/api/chargers/{sim.charge_point_id}/commands/Reset", {"type": "Hard"})
    await sim.wait_online(30)


async def _hold_cancelled(api: Api, sim: SimulatedCharger, reservation_id: str) -> None:
    _, details = await api.call("GET", f"/api/payments/{reservation_id}/details")
    async with api.http.post(
        f"{api.processes.stripe}/_sandbox/payment_intents/{details['paymentIntentId']}/cancel",
        json={"reason": "expired"},
    ):
        pass
