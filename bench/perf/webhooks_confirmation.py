"""Confirmation latency: from a paid session's `checkout.session.completed` webhook going in
to the RemoteStartTransaction reaching the charger, with many chargers connected.

1. csms and the Stripe sandbox start (webhooks_stack); the sandbox delivers no webhook, so
   that the bench's own delivery is csms's only news of each payment.
2. `chargers` chargers connect, boot and report Available; the `sessions` of them that a
   driver will use report Preparing too (the cable is in before the driver pays, so csms
   can start the charge as soon as the payment is confirmed). Then csms is left to settle.
3. Sessions begin at `rate` per second. Each driver goes through the pages like a phone: the
   QR code's start page, Pay, the card form on the sandbox's Checkout page (its redirect
   back is not followed). The bench then takes the sandbox's own event for that payment,
   signs it with csms's webhook secret, reads CLOCK_MONOTONIC (t0) and POSTs it.
4. Between the webhook and the RemoteStart, csms makes one Stripe call: it retrieves the
   Checkout Session with its PaymentIntent expanded (it never trusts the event alone), from
   its outbox runner after answering the webhook. That call is part of the measured path;
   the Stripe calls csms made are counted from its /metrics.
5. Latency = the RemoteStart's arrival at the charger (CLOCK_MONOTONIC, in a charger worker
   process) minus t0.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.perf.proc import cpu_seconds, machine_busy_seconds, raise_open_files_limit, wait_idle
from bench.perf.webhooks_chargers import Fleet, Plan, Report, monotonic
from bench.perf.webhooks_driver import (
    Sandbox,
    StepFailed,
    pay_at_charger,
    pay_on_checkout,
    signature,
)
from bench.perf.webhooks_figures import latency_ms, verdict
from bench.perf.webhooks_stack import Stack, System, gained_since

TARGET_P99_MS = 25.0
# A charger worker holds at most this many sockets, well below the 20,000 open files a
# process may have here.
CHARGERS_PER_WORKER = 5000
# Files csms holds besides its chargers' sockets (database, logs, listeners, Stripe).
SERVER_FILES_MARGIN = 1024
SETTLE_TIMEOUT = 120.0
# How long after the last webhook a RemoteStart may still arrive before it counts as lost.
ARRIVAL_TIMEOUT = 30.0
# Every driver of the run comes from 127.0.0.1, where in the field each comes from their own
# phone: the per-address limit on starting payments (10 in 10 minutes) would refuse them.
DRIVERS_FROM_ONE_ADDRESS = {"CSMS_PAYMENTS_START_LIMIT_COUNT": "1000000"}
# The response header in which a load balancer names the node that answered.
SERVED_BY = "X-Served-By"


@dataclass(frozen=True)
class ConfirmationSettings:
    chargers: int  # connected, booted and idle
    sessions: int  # paid sessions, each on a charger of its own
    rate: float  # sessions begun per second

    @classmethod
    def quick(cls) -> ConfirmationSettings:
        return cls(chargers=200, sessions=20, rate=20.0)

    @classmethod
    def full(cls) -> ConfirmationSettings:
        return cls(chargers=10_000, sessions=200, rate=20.0)

    @property
    def workers(self) -> int:
        return max(1, math.ceil(self.chargers / CHARGERS_PER_WORKER))

    def session_chargers(self) -> list[str]:
        """Spread over the fleet (and so over the workers), one session each."""
        step = self.chargers // self.sessions
        return [charger_id(n * step) for n in range(self.sessions)]


def charger_id(number: int) -> str:
    return f"CNF{number:05d}"


@dataclass
class Delivered:
    """One session from the bench's side: when its webhook went in, or why it did not."""

    charger: str
    t0: float | None = None
    error: str = ""
    # The node that answered the webhook, when a load balancer in front names it.
    served_by: str = ""


@dataclass
class _Sessions:
    delivered: list[Delivered] = field(default_factory=list)
    seconds: float = 0.0
    server_cpu_busy: float = 0.0
    # Cores' worth of CPU taken meanwhile by processes not of this run: noise.
    other_cpu_busy: float = 0.0


def measure_confirmation(
    settings: ConfirmationSettings, folder: Path | None = None
) -> dict[str, Any]:
    """Run the measurement on fresh processes; JSON-able figures (see the module's doc)."""
    if settings.sessions > settings.chargers:
        raise ValueError("each session needs a charger of its own")
    needed = settings.chargers + SERVER_FILES_MARGIN
    if raise_open_files_limit(needed) < needed:  # csms inherits it
        raise RuntimeError(f"the open files limit is below {needed}: raise it (ulimit -n)")
    with tempfile.TemporaryDirectory(prefix="csms-webhooks-") as scratch:
        stack = Stack((folder or Path(scratch)) / "confirmation", DRIVERS_FROM_ONE_ADDRESS)
        try:
            with stack:
                return confirm(stack, settings)
        except RuntimeError as error:
            raise RuntimeError(f"{error}\n{stack.tails()}") from None


def confirm(system: System, settings: ConfirmationSettings) -> dict[str, Any]:
    """Steps 2 to 5 against a running `system`; JSON-able figures."""
    ids = tuple(charger_id(n) for n in range(settings.chargers))
    plugged = frozenset(settings.session_chargers())
    with Fleet(Plan(system.ocpp_url, ids, plugged), settings.workers) as fleet:
        connect_started = time.monotonic()
        fleet.wait_ready(timeout=60 + settings.chargers * 0.05)
        connect_seconds = time.monotonic() - connect_started
        if not wait_idle(system.server_pids, SETTLE_TIMEOUT, quiet=system.idle_share):
            raise RuntimeError(f"csms still busy {SETTLE_TIMEOUT:.0f} s after the chargers booted")
        calls_before = system.stripe_calls()
        sessions = asyncio.run(_run_sessions(system, fleet, settings))
        _wait_arrivals(fleet, system, sum(d.t0 is not None for d in sessions.delivered))
        calls = gained_since(system.stripe_calls(), calls_before)
        holders = system.nodes_of(settings.session_chargers())
        report = fleet.finish()
    return {
        **_result(settings, sessions, report, calls, connect_seconds),
        "nodes": _nodes(sessions, report, holders),
    }


async def _run_sessions(stack: System, fleet: Fleet, settings: ConfirmationSettings) -> _Sessions:
    """Every session, begun at `rate`."""
    sessions = _Sessions()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar()
    ) as http:
        sandbox = Sandbox(http, stack.stripe_base, stack.stripe_key)
        before = _CpuReading.take(stack, fleet)
        tasks = []
        for n, charger in enumerate(settings.session_chargers()):
            await _sleep_until(before.at + n / settings.rate)
            delivered = Delivered(charger)
            sessions.delivered.append(delivered)
            tasks.append(asyncio.create_task(_session(http, stack, sandbox, delivered)))
        await asyncio.gather(*tasks)
        after = _CpuReading.take(stack, fleet)
    sessions.seconds = after.at - before.at
    sessions.server_cpu_busy = (after.server - before.server) / sessions.seconds
    sessions.other_cpu_busy = (
        after.machine - before.machine - (after.ours - before.ours)
    ) / sessions.seconds
    return sessions


@dataclass(frozen=True)
class _CpuReading:
    at: float
    server: float  # csms
    ours: float  # every process of the run: csms, the sandbox, the chargers, this one
    machine: float

    @classmethod
    def take(cls, stack: System, fleet: Fleet) -> _CpuReading:
        server = cpu_seconds(stack.server_pids)
        others = [*stack.helper_pids, *fleet.pids]
        ours = server + sum(cpu_seconds(pid) for pid in others) + time.process_time()
        return cls(time.monotonic(), server, ours, machine_busy_seconds())


async def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def _session(
    http: aiohttp.ClientSession, stack: System, sandbox: Sandbox, delivered: Delivered
) -> None:
    """A driver pays at the charger; then Stripe's webhook, delivered by the bench."""
    try:
        checkout_url = await pay_at_charger(http, stack.base, delivered.charger)
        session_id = await pay_on_checkout(http, checkout_url)
        event = await sandbox.event("checkout.session.completed", session_id)
        body = orjson.dumps(event, option=orjson.OPT_INDENT_2)  # as Stripe sends it
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature(body, stack.webhook_secret, int(time.time())),
        }
        t0 = monotonic()
        async with http.post(
            f"{stack.base}/api/stripe/webhook", data=body, headers=headers
        ) as answer:
            await answer.read()
            delivered.served_by = answer.headers.get(SERVED_BY, "")
            if not 200 <= answer.status < 300:
                raise StepFailed(f"webhook: HTTP {answer.status}: {(await answer.text())[:200]}")
        delivered.t0 = t0
    except (StepFailed, aiohttp.ClientError, TimeoutError) as error:
        delivered.error = f"{delivered.charger}: {error!r}"[:300]


def _wait_arrivals(fleet: Fleet, stack: System, expected: int) -> None:
    give_up = time.monotonic() + ARRIVAL_TIMEOUT
    while fleet.remote_starts() < expected and time.monotonic() < give_up:
        stack.check_alive()
        time.sleep(0.05)


def _result(
    settings: ConfirmationSettings,
    sessions: _Sessions,
    report: Report,
    calls: dict[str, int],
    connect_seconds: float,
) -> dict[str, Any]:
    latencies = []
    errors = [d.error for d in sessions.delivered if d.error]
    for delivered in sessions.delivered:
        arrivals = report.remote_starts.get(delivered.charger, [])
        if delivered.t0 is None:
            continue
        if not arrivals:
            errors.append(f"{delivered.charger}: no RemoteStartTransaction arrived")
            continue
        latencies.append(arrivals[0] - delivered.t0)
    repeated = sum(len(times) > 1 for times in report.remote_starts.values())
    figures = latency_ms(latencies)
    confirmed = sum(d.t0 is not None for d in sessions.delivered)
    return {
        "settings": asdict(settings),
        "connect_seconds": connect_seconds,
        "sessions": len(sessions.delivered),
        "webhooks_delivered": confirmed,
        "remote_starts": figures["count"],
        "latency": figures,
        "sessions_seconds": sessions.seconds,
        "server_cpu_busy": sessions.server_cpu_busy,
        "other_cpu_busy": sessions.other_cpu_busy,
        # Per confirmed session: csms's Stripe calls, by operation (checkout.create comes from
        # the driver's Pay, checkout.retrieve from the confirmation being verified).
        "stripe_calls_per_session": {op: count / max(1, confirmed) for op, count in calls.items()},
        "remote_starts_repeated": repeated,
        "unexpected_calls": report.unexpected_calls,
        "charger_errors": report.errors,
        "errors": len(errors) + report.errors,
        "first_error": (errors[:1] or [report.first_error])[0],
        "target": {
            "p99_ms": f"< {TARGET_P99_MS:g}",
            **verdict(figures["p99_ms"], TARGET_P99_MS, at_least=False),
        },
    }


def _nodes(sessions: _Sessions, report: Report, holders: dict[str, str]) -> dict[str, Any]:
    """Where each webhook landed against where its charger was connected (several nodes
    only): the share that csms had to relay to another node, and the latency of each kind."""
    elsewhere: list[float] = []
    same: list[float] = []
    for delivered in sessions.delivered:
        arrivals = report.remote_starts.get(delivered.charger, [])
        holder = holders.get(delivered.charger)
        if delivered.t0 is None or not arrivals or not holder or not delivered.served_by:
            continue
        latency = arrivals[0] - delivered.t0
        (same if holder == delivered.served_by else elsewhere).append(latency)
    known = len(same) + len(elsewhere)
    return {
        "known": known,
        "other_node": len(elsewhere),
        "other_node_share": len(elsewhere) / known if known else None,
        "latency_other_node": latency_ms(elsewhere),
        "latency_same_node": latency_ms(same),
    }
