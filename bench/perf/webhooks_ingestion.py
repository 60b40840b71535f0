"""Webhook ingestion: signed Stripe events per second that csms verifies, de-duplicates and
stores, at saturation, and what each costs its process in CPU.

1. csms and the Stripe sandbox start (webhooks_stack); `sessions` chargers connect and idle.
2. Activity on the Stripe account, which the sandbox records as events: a driver pays for a
   session at each charger (through the payment API), and another product makes
   `other_sales` sales, captured, some refunded, some disputed.
3. Warm-up: every one of those events once under its own id (the sessions' confirmations
   make csms verify each payment with Stripe, so that the sessions are paid before the
   window), then copies; csms is then left to finish its background work.
4. The window: `events` deliveries, a tenth of them exact repeats, pre-signed, POSTed over
   `connections` keep-alive connections; server CPU read from /proc around it.
5. csms stops (a cluster's database is read once its nodes are idle instead); its database
   must hold every distinct event exactly once, and one audit line per distinct refund or
   dispute event.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.perf.proc import cpu_seconds, machine_busy_seconds, wait_idle
from bench.perf.webhooks_chargers import Fleet, Plan, monotonic
from bench.perf.webhooks_driver import Sandbox, pay_by_api, pay_on_checkout
from bench.perf.webhooks_events import Stream, build_stream, is_session_event
from bench.perf.webhooks_figures import latency_ms, verdict
from bench.perf.webhooks_post import Outcome, Poster, Target
from bench.perf.webhooks_stack import Stack, System, gained_since

TARGET_EVENTS_PER_S = 2000.0
IDLE_TIMEOUT = 60.0
READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class IngestionSettings:
    sessions: int  # paid charging sessions (one idle charger each) whose events are templates
    other_sales: int  # sales by another product on the same Stripe account
    warm_events: int  # deliveries before the window (at least every template once)
    events: int  # deliveries in the window, repeats included
    repeat_share: float = 0.10
    connections: int = 32  # requests in flight at once
    processes: int = 1  # generator processes
    seed: int = 1

    @classmethod
    def quick(cls) -> IngestionSettings:
        return cls(sessions=4, other_sales=2, warm_events=200, events=1500)

    @classmethod
    def full(cls) -> IngestionSettings:
        return cls(sessions=40, other_sales=20, warm_events=2000, events=20000)


def measure_ingestion(settings: IngestionSettings, folder: Path | None = None) -> dict[str, Any]:
    """Run the measurement on fresh processes; JSON-able figures (see the module's doc)."""
    with tempfile.TemporaryDirectory(prefix="csms-webhooks-") as scratch:
        stack = Stack((folder or Path(scratch)) / "ingestion")
        try:
            with stack:
                figures, streams = ingest(stack, settings)
            # csms has stopped: its database is complete.
            return {**figures, "persistence": check_persistence(stack, streams)}
        except RuntimeError as error:
            raise RuntimeError(f"{error}\n{stack.tails()}") from None


def ingest(system: System, settings: IngestionSettings) -> tuple[dict[str, Any], list[Stream]]:
    """Steps 1 to 4 against a running `system`: the figures, and the streams delivered, for
    `check_persistence` once everything they started is stored."""
    chargers = tuple(f"ING{n}" for n in range(settings.sessions))
    with Fleet(Plan(system.ocpp_url, chargers), workers=1) as fleet:
        fleet.wait_ready(READY_TIMEOUT)
        templates = asyncio.run(_account_activity(system, settings, chargers))
        rng = random.Random(settings.seed)
        warm = build_stream(
            templates, settings.warm_events, settings.repeat_share, "warm", rng, originals=True
        )
        window = build_stream(templates, settings.events, settings.repeat_share, "win", rng)
        warm_outcome = _deliver(system, warm, settings)
        _settle(system, "warm-up")
        calls_before, database_before = system.stripe_calls(), system.database_counts()
        figures = _window(system, window, settings)
        _settle(system, "window")  # what the window started is part of its work
        calls = gained_since(system.stripe_calls(), calls_before)
        database = gained_since(system.database_counts(), database_before)
        fleet_report = fleet.finish()
    return {
        "settings": asdict(settings),
        "mix": _mix(window),
        **figures,
        "warm_up_errors": warm_outcome.errors,
        "charger_errors": fleet_report.errors,
        "stripe_calls_in_window": calls,
        # Database commits in the window, and the units of work they carried (group commit).
        "database_in_window": database,
        "target": {
            "events_per_s": f">= {TARGET_EVENTS_PER_S:g}",
            **verdict(figures["events_per_s"], TARGET_EVENTS_PER_S, at_least=True),
        },
    }, [warm, window]


async def _account_activity(
    stack: System, settings: IngestionSettings, chargers: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Paid sessions and other sales on the sandbox; every event it recorded, oldest first."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        for charger in chargers:
            checkout_url = await pay_by_api(http, stack.base, stack.api_key, charger)
            await pay_on_checkout(http, checkout_url)
        sandbox = Sandbox(http, stack.stripe_base, stack.stripe_key)
        for n in range(settings.other_sales):
            await sandbox.other_sale(n, refund=n % 2 == 0, dispute=n % 4 == 0)
        return await sandbox.all_events()


def _settle(stack: System, after: str) -> None:
    """Let csms finish what the last events started (verifying payments with Stripe)."""
    if not wait_idle(stack.server_pids, IDLE_TIMEOUT, quiet=stack.idle_share):
        raise RuntimeError(f"csms still busy {IDLE_TIMEOUT:.0f} s after the {after}")


def _deliver(stack: System, stream: Stream, settings: IngestionSettings) -> Outcome:
    target = Target(stack.http_port, stack.webhook_secret)
    with Poster(stream, target, settings.connections, settings.processes) as poster:
        poster.wait_ready(READY_TIMEOUT)
        poster.go()
        outcome = poster.wait_done(timeout=600)
    stack.check_alive()
    return outcome


def _window(stack: System, stream: Stream, settings: IngestionSettings) -> dict[str, Any]:
    target = Target(stack.http_port, stack.webhook_secret)
    server = stack.server_pids
    with Poster(stream, target, settings.connections, settings.processes) as poster:
        poster.wait_ready(READY_TIMEOUT)
        cpu_before, machine_before, at_before = (
            cpu_seconds(server),
            machine_busy_seconds(),
            monotonic(),
        )
        poster.go()
        outcome = poster.wait_done(timeout=600)
        cpu_after, machine_after, at_after = (
            cpu_seconds(server),
            machine_busy_seconds(),
            monotonic(),
        )
    stack.check_alive()
    seconds = outcome.ended - outcome.started
    answered = len(outcome.latencies)
    server_cpu = cpu_after - cpu_before
    generator_cpu = outcome.cpu_seconds
    wall = at_after - at_before
    return {
        "deliveries": len(stream.deliveries),
        "sent": outcome.sent,
        "answered": answered,
        "seconds": seconds,
        "events_per_s": answered / seconds if seconds > 0 else None,
        "server_cpu_seconds": server_cpu,
        "cpu_us_per_event": server_cpu / answered * 1e6 if answered else None,
        # Below ~0.9, csms waited (on its disk, or on the generator) rather than worked.
        "server_cpu_busy": server_cpu / wall,
        "generator_cpu_busy": generator_cpu / wall,
        "other_cpu_busy": (machine_after - machine_before - server_cpu - generator_cpu) / wall,
        "latency": latency_ms(outcome.latencies),
        "statuses": {str(status): count for status, count in sorted(outcome.statuses.items())},
        "applied": dict(outcome.applied.most_common()),
        "errors": outcome.errors,
        "first_error": outcome.first_error,
    }


def _mix(stream: Stream) -> dict[str, Any]:
    distinct = len(stream.distinct())
    return {
        "distinct_events": distinct,
        "repeats": stream.repeats,
        "session_events": stream.for_sessions(),
        "other_events": distinct - stream.for_sessions(),
        "types": dict(stream.types().most_common()),
        "templates": len(stream.templates),
        "session_templates": sum(is_session_event(t) for t in stream.templates),
    }


def check_persistence(stack: System, streams: list[Stream]) -> dict[str, Any]:
    """Every distinct event stored once (webhook_events' key is the event id, so a row per
    id is once), none lost, none made up; and one audit line per distinct audited event."""
    expected: set[str] = set()
    audit_expected: dict[str, int] = {}
    for stream in streams:
        expected.update(stream.distinct())
        for stripe_id, lines in stream.audit_lines().items():
            audit_expected[stripe_id] = audit_expected.get(stripe_id, 0) + lines
    stored = stack.stored_event_ids()
    audit_found = stack.audit_lines()
    audit_wrong = {
        stripe_id: (lines, audit_found.get(stripe_id, 0))
        for stripe_id, lines in audit_expected.items()
        if audit_found.get(stripe_id, 0) != lines
    }
    missing = expected - stored
    unexpected = stored - expected
    return {
        "distinct_events_sent": len(expected),
        "events_stored": len(stored),
        "missing": len(missing),
        "unexpected": len(unexpected),
        "audit_lines_expected": sum(audit_expected.values()),
        "audit_lines_found": sum(audit_found.get(s, 0) for s in audit_expected),
        "audit_mismatches": len(audit_wrong),
        "exactly_once": not missing and not unexpected and not audit_wrong,
    }
