"""Stripe webhook measurements for the performance issue.

    python -m bench.perf.webhooks [--quick] [--only ingestion|confirmation] [--json FILE]

Interface, for `python -m bench.perf` and its report:

    measure_ingestion(IngestionSettings.full() or .quick()) -> dict
        Signed Stripe events POSTed to csms's webhook endpoint by a generator process over 32
        keep-alive connections, a tenth of them exact repeats. Target: >= 2,000 events/s.
        Keys: events_per_s, cpu_us_per_event, latency {count, p50_ms, p90_ms, p99_ms, max_ms},
        errors (every answer but 2xx, or none), persistence {exactly_once, missing,
        unexpected, ...}, mix, stripe_calls_in_window, server_cpu_busy, other_cpu_busy
        (other processes' share of the machine: noise), target {met, verdict}.

    measure_confirmation(ConfirmationSettings.full() or .quick()) -> dict
        Paid sessions with 10,000 chargers connected: from the checkout.session.completed
        webhook going in to RemoteStartTransaction reaching the charger. Target: p99 < 25 ms.
        Keys: latency {count, p50_ms, p90_ms, p99_ms, max_ms}, sessions, remote_starts, errors,
        stripe_calls_per_session, connect_seconds, server_cpu_busy, other_cpu_busy,
        target {met, verdict}.

    measure_all(quick: bool) -> {"ingestion": dict, "confirmation": dict}
    summary(results) -> str: one line per measurement, with its verdict.
    sound(results) -> bool: no error, every event stored exactly once.

Each measurement starts its own csms (as bench/perf/servers.py does: config.toml and
csms_env(), with its Stripe pointed at the sandbox) and Stripe sandbox, as processes on free
ports of 127.0.0.1, and stops them; both take an optional `folder` for their files (default:
a temporary directory). A run that cannot be made raises RuntimeError with the processes'
last log lines. Full: about 2 minutes, most of it connecting 10,000 chargers; quick: about
15 s for both, for CI.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench.perf.command import finish
from bench.perf.webhooks_confirmation import ConfirmationSettings, measure_confirmation
from bench.perf.webhooks_ingestion import IngestionSettings, measure_ingestion

__all__ = [
    "ConfirmationSettings",
    "IngestionSettings",
    "measure_all",
    "measure_confirmation",
    "measure_ingestion",
    "sound",
    "summary",
]

MEASUREMENTS = ("ingestion", "confirmation")


def measure_all(quick: bool, only: tuple[str, ...] = MEASUREMENTS) -> dict[str, Any]:
    results: dict[str, Any] = {}
    if "ingestion" in only:
        size = IngestionSettings.quick() if quick else IngestionSettings.full()
        results["ingestion"] = measure_ingestion(size)
    if "confirmation" in only:
        settings = ConfirmationSettings.quick() if quick else ConfirmationSettings.full()
        results["confirmation"] = measure_confirmation(settings)
    return results


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _ingestion_line(figures: dict[str, Any]) -> str:
    latency, stored = figures["latency"], figures["persistence"]
    return (
        f"webhook ingestion: {figures['events_per_s'] or 0:,.0f} events/s"
        f" ({figures['target']['verdict']}; target {figures['target']['events_per_s']}),"
        f" {figures['cpu_us_per_event'] or 0:,.0f} us server CPU/event,"
        f" p50/p99 {_ms(latency['p50_ms'])}/{_ms(latency['p99_ms'])} ms"
        f" at {figures['settings']['connections']} in flight,"
        f" {figures['errors']} errors,"
        f" {stored['events_stored']}/{stored['distinct_events_sent']} distinct events stored"
        f" ({'exactly once' if stored['exactly_once'] else 'NOT exactly once'})"
    )


def _confirmation_line(figures: dict[str, Any]) -> str:
    latency, settings = figures["latency"], figures["settings"]
    return (
        f"confirmation -> RemoteStart: p50/p99/max {_ms(latency['p50_ms'])}/"
        f"{_ms(latency['p99_ms'])}/{_ms(latency['max_ms'])} ms"
        f" ({figures['target']['verdict']}; target p99 {figures['target']['p99_ms']} ms),"
        f" {figures['remote_starts']}/{figures['sessions']} sessions"
        f" with {settings['chargers']:,} chargers connected, {figures['errors']} errors"
    )


def summary(results: dict[str, Any]) -> str:
    lines = []
    if "ingestion" in results:
        lines.append(_ingestion_line(results["ingestion"]))
    if "confirmation" in results:
        lines.append(_confirmation_line(results["confirmation"]))
    return "\n".join(lines)


def sound(results: dict[str, Any]) -> bool:
    """No error and nothing lost or doubled: the figures describe a correct run."""
    ingestion = results.get("ingestion")
    if ingestion and (ingestion["errors"] or not ingestion["persistence"]["exactly_once"]):
        return False
    confirmation = results.get("confirmation")
    return not (confirmation and confirmation["errors"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.perf.webhooks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--only", choices=MEASUREMENTS, help="run one measurement")
    parser.add_argument("--json", metavar="FILE", type=Path, help="write the figures there")
    args = parser.parse_args(argv)
    only = (args.only,) if args.only else MEASUREMENTS
    return finish(
        "bench.perf.webhooks", lambda: measure_all(args.quick, only), summary, args.json, sound
    )


if __name__ == "__main__":
    sys.exit(main())
