"""python -m bench.perf.fleet [--quick] [--chargers N] [--workers N] [--json FILE]

The fleet measurement of the performance target: 50,000 chargers connected to csms at once,
each sending a Heartbeat every 300 s, and the 10 % of them in a transaction MeterValues with
four measurands every 60 s, with p99 latency under 50 ms and under 30 kB of server memory per
connected charger.

One server process holds one socket per charger, so it connects as many chargers as the
server's open-files limit allows, up to 50,000, and says how many and why not more. Then:

- memory: the server's RSS before the fleet connected and after, per connected charger;
- silent: the server's CPU while the fleet is connected and sends nothing (keep-alive pings);
- profile: the target's per-charger profile, at the connected count;
- target_rate: the message rate 50,000 chargers would offer (about 250 msg/s), offered by the
  connected ones at intervals shorter by 50,000 / connected.

Every charger starts its intervals at a random point of them (no thundering herd); the
transacting ones start their transaction while connecting and stop it at the end.
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench.perf.command import finish
from bench.perf.load import MEASURE, WARM, Generator, Load, Profile
from bench.perf.measure import Reading, Watched, charger_ids, warm_up, window_figures
from bench.perf.proc import (
    ephemeral_ports,
    open_files_limit,
    raise_open_files_limit,
    rss_bytes,
    wait_idle,
)
from bench.perf.servers import CSMS, Server

TARGET_CHARGERS = 50_000
HEARTBEAT_SECONDS = 300.0
METER_SECONDS = 60.0
TRANSACTING_EVERY = 10  # every tenth charger is in a transaction
TARGET_P99_MS = 50.0
TARGET_BYTES_PER_CHARGER = 30_000

# Files the server holds besides its chargers' sockets: database, logs, listeners...
FILES_MARGIN = 1000
# Handshakes in progress at once, all workers together: below the listen backlog of the
# server's socket (asyncio's default, 100), so that no connection attempt is dropped.
HANDSHAKES = 64
# The chargers take at most this share of one source address's ephemeral ports; the rest is
# for everything else on the machine.
PORT_SHARE = 0.5
# Connecting and booting, at worst: each charger costs the server a few commits.
READY_SECONDS_PER_CHARGER = 0.05
SETTLE_TIMEOUT = 120.0
# Settled after connecting: well below the full core the connections took, though never idle,
# since the server pings every connection periodically (12 % of a core for 19,000 here).
FLEET_QUIET = 0.5


@dataclass(frozen=True)
class FleetSettings:
    max_chargers: int  # fewer if the server's open-files limit allows fewer
    workers: int  # load generator processes, among which the sockets are shared
    warm_seconds: float  # the load before each window, and the warm-up's length
    measure_seconds: float  # each of the profile and target_rate windows
    silent_seconds: float

    @classmethod
    def full(cls, workers: int = 2) -> FleetSettings:
        return cls(TARGET_CHARGERS, workers, 10.0, 60.0, 10.0)

    @classmethod
    def quick(cls, workers: int = 2) -> FleetSettings:
        # Enough chargers for about twenty messages in the profile window.
        return cls(1000, workers, 1.0, 4.0, 1.0)


@dataclass(frozen=True)
class FleetSize:
    chargers: int
    open_files_hard_limit: int | None  # None: unlimited
    limited_by: str  # why not TARGET_CHARGERS; empty if the target is met


def fleet_size(max_chargers: int) -> FleetSize:
    """Raises this process's open-files limit as far as it goes (the server inherits it) and
    says how many chargers one server process can hold."""
    raise_open_files_limit(TARGET_CHARGERS + FILES_MARGIN)
    soft, hard = (
        None if limit == resource.RLIM_INFINITY else limit
        for limit in resource.getrlimit(resource.RLIMIT_NOFILE)
    )
    by_files = TARGET_CHARGERS if soft is None else max(0, soft - FILES_MARGIN)
    chargers = min(TARGET_CHARGERS, max_chargers, by_files)
    if chargers == TARGET_CHARGERS:
        reason = ""
    elif chargers == by_files:
        reason = (
            f"one socket per charger and the server's open-files limit is {soft:,}"
            f" (hard limit {hard:,}), {FILES_MARGIN:,} of them kept for its other files"
        )
    else:
        reason = f"the settings cap the fleet at {max_chargers:,}"
    return FleetSize(chargers, hard, reason)


def source_addresses(chargers: int) -> tuple[str, ...]:
    """Loopback addresses for the chargers to connect from, when 127.0.0.1's ephemeral ports
    are too few; none (the kernel's choice) when they suffice."""
    needed = math.ceil(chargers / (ephemeral_ports() * PORT_SHARE))
    if needed <= 1:
        return ()
    return tuple(f"127.0.0.{n}" for n in range(1, needed + 1))


def offered_per_s(chargers: int, pace: float) -> float:
    transacting = math.ceil(chargers / TRANSACTING_EVERY)
    return pace * (chargers / HEARTBEAT_SECONDS + transacting / METER_SECONDS)


@dataclass(frozen=True)
class Window:
    number: int  # the generator keeps the window's reply times under it
    pace: float
    start: Reading
    end: Reading
    errors: int


def measure_fleet(
    settings: FleetSettings, progress: Callable[[str], object] = lambda _: None
) -> dict[str, Any]:
    """Every figure of the fleet measurement against csms, JSON-able; `progress` is told of
    each step as it starts (a full run takes minutes)."""
    size = fleet_size(settings.max_chargers)
    if size.chargers < 1:
        raise RuntimeError(f"no charger can connect: {size.limited_by}")
    ids = charger_ids("f", size.chargers)
    transacting = ids[::TRANSACTING_EVERY]
    with (
        tempfile.TemporaryDirectory(prefix="csms-fleet-") as folder,
        Server(CSMS, Path(folder), [*charger_ids("w", 1), *transacting]) as server,
    ):
        try:
            figures = _measure(server, settings, ids, frozenset(transacting), progress)
        except RuntimeError as error:
            raise RuntimeError(f"{error}\n{server.tail()}") from None
        server_limit = open_files_limit(server.pid)
    return {
        "settings": asdict(settings),
        "target": {
            "chargers": TARGET_CHARGERS,
            "heartbeat_seconds": HEARTBEAT_SECONDS,
            "meter_seconds": METER_SECONDS,
            "transacting_share": 1 / TRANSACTING_EVERY,
            "p99_ms": TARGET_P99_MS,
            "bytes_per_charger": TARGET_BYTES_PER_CHARGER,
        },
        "chargers": size.chargers,
        "transacting": len(transacting),
        "limited_by": size.limited_by,
        "server_open_files_limit": server_limit,
        "open_files_hard_limit": size.open_files_hard_limit,
        "config": server.settings,
        **figures,
        "verdicts": _verdicts(size.chargers, figures),
    }


def _measure(
    server: Server,
    settings: FleetSettings,
    ids: tuple[str, ...],
    transacting: frozenset[str],
    progress: Callable[[str], object],
) -> dict[str, Any]:
    progress(f"csms (pid {server.pid}) started; warming up")
    warm_up(server, settings.warm_seconds)
    _settle(server, quiet=0.05)
    rss_before = rss_bytes(server.pid)
    load = _fleet_load(server, settings, ids, transacting)
    progress(f"connecting {len(ids):,} chargers")
    with Generator(load, settings.workers) as generator:
        started = time.monotonic()
        generator.wait_ready(_ready_timeout(len(ids)))
        connect_seconds = time.monotonic() - started
        _settle(server, quiet=FLEET_QUIET)
        rss_connected = rss_bytes(server.pid)
        silent = silent_readings(server, generator, settings.silent_seconds)
        windows: dict[str, Window] = {}
        paces = {"profile": 1.0, "target_rate": TARGET_CHARGERS / len(ids)}
        for number, (name, pace) in enumerate(paces.items(), start=1):
            progress(f"{name} window: {offered_per_s(len(ids), pace):,.0f} msg/s offered")
            windows[name] = run_window(server, generator, settings, number, pace)
        progress("stopping the transactions and disconnecting")
        outcome = generator.finish()
    server.check_alive()
    return {
        "source_addresses": list(load.source_addresses),
        "connect": {"seconds": connect_seconds, "per_s": len(ids) / connect_seconds},
        "memory": {
            "rss_before_bytes": rss_before,
            "rss_connected_bytes": rss_connected,
            "bytes_per_charger": (rss_connected - rss_before) / len(ids),
        },
        "silent": window_figures(*silent, []),
        "windows": {
            name: window_result(window, len(ids), outcome.windows.get(window.number, []))
            for name, window in windows.items()
        },
        # The whole run, the transactions' stops and the disconnections included.
        "errors": outcome.errors,
        "first_error": outcome.first_error,
    }


def _fleet_load(
    server: Server, settings: FleetSettings, ids: tuple[str, ...], transacting: frozenset[str]
) -> Load:
    windows_seconds = settings.silent_seconds + 2 * (
        settings.warm_seconds + settings.measure_seconds
    )
    return Load(
        server.url,
        ids,
        profile=Profile(HEARTBEAT_SECONDS, METER_SECONDS, transacting),
        handshakes=max(1, HANDSHAKES // settings.workers),
        source_addresses=source_addresses(len(ids)),
        deadline_seconds=_ready_timeout(len(ids)) + 2 * SETTLE_TIMEOUT + windows_seconds + 60,
    )


def _ready_timeout(chargers: int) -> float:
    return 30 + chargers * READY_SECONDS_PER_CHARGER


def _settle(server: Server, quiet: float) -> None:
    """Let the server finish what the last connections or departures started."""
    if not wait_idle(server.pid, SETTLE_TIMEOUT, quiet=quiet):
        raise RuntimeError(f"csms still busy {SETTLE_TIMEOUT:.0f} s after the load")


def silent_readings(
    server: Watched, generator: Generator, seconds: float
) -> tuple[Reading, Reading]:
    """Readings around a stretch where the connected chargers wait for the load to start."""
    start = Reading.take(server, generator)
    time.sleep(seconds)
    return start, Reading.take(server, generator)


def run_window(
    server: Watched, generator: Generator, settings: FleetSettings, number: int, pace: float
) -> Window:
    generator.set_pace(pace)
    generator.set_phase(WARM)
    time.sleep(settings.warm_seconds)
    errors_before = generator.errors()
    start = Reading.take(server, generator)
    generator.set_phase(MEASURE, window=number)
    time.sleep(settings.measure_seconds)
    end = Reading.take(server, generator)
    generator.set_phase(WARM)
    server.check_alive()
    return Window(number, pace, start, end, generator.errors() - errors_before)


def window_result(window: Window, chargers: int, latencies: list[float]) -> dict[str, Any]:
    return {
        "chargers": chargers,
        "pace": window.pace,
        "heartbeat_seconds": HEARTBEAT_SECONDS / window.pace,
        "meter_seconds": METER_SECONDS / window.pace,
        "offered_per_s": offered_per_s(chargers, window.pace),
        **window_figures(window.start, window.end, latencies),
        "errors": window.errors,
    }


def _verdicts(chargers: int, figures: dict[str, Any]) -> dict[str, bool]:
    windows = figures["windows"]
    return {
        "chargers_connected": chargers >= TARGET_CHARGERS,
        "memory_per_charger": figures["memory"]["bytes_per_charger"] < TARGET_BYTES_PER_CHARGER,
        **{
            f"p99_{name}": (window["p99_ms"] is not None and window["p99_ms"] < TARGET_P99_MS)
            for name, window in windows.items()
        },
    }


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def summary(results: dict[str, Any]) -> str:
    """A few lines for people: what connected, the figures, and the verdicts."""
    chargers, verdicts = results["chargers"], results["verdicts"]
    connect, memory = results["connect"], results["memory"]
    lines = [
        f"csms fleet: {chargers:,} chargers connected of the target's {TARGET_CHARGERS:,}"
        + (f" ({results['limited_by']})" if results["limited_by"] else ""),
        f"  connect: {connect['seconds']:.0f} s ({connect['per_s']:,.0f} chargers/s),"
        f" {results['transacting']:,} in a transaction",
        f"  memory: {memory['bytes_per_charger'] / 1e3:.1f} kB per connected charger"
        f" (RSS {memory['rss_before_bytes'] / 1e6:.0f} MB before,"
        f" {memory['rss_connected_bytes'] / 1e6:.0f} MB connected)",
        f"  silent: server CPU {results['silent']['server_cpu_busy']:.1%} busy"
        " with the fleet connected and sending nothing",
    ]
    for name, window in results["windows"].items():
        lines.append(
            f"  {name}: {window['offered_per_s']:,.0f} msg/s offered"
            f" (Heartbeat every {window['heartbeat_seconds']:.3g} s, MeterValues every"
            f" {window['meter_seconds']:.3g} s): {window['messages_per_s']:,.1f} msg/s,"
            f" p50 {_figure(window['p50_ms'])} / p99 {_figure(window['p99_ms'])}"
            f" / max {_figure(window['max_ms'])} ms,"
            f" {_figure(window['cpu_us_per_message'])} us CPU/msg,"
            f" server CPU {window['server_cpu_busy']:.0%} busy, {window['errors']} errors"
        )
    lines += [
        f"  errors over the whole run: {results['errors']}"
        + (f" (first: {results['first_error']})" if results["first_error"] else ""),
        "targets:",
        f"  {TARGET_CHARGERS:,} chargers connected: {_met(verdicts['chargers_connected'])}"
        f" ({chargers:,})",
        f"  < {TARGET_BYTES_PER_CHARGER / 1e3:.0f} kB per charger:"
        f" {_met(verdicts['memory_per_charger'])}",
        *(
            f"  p99 < {TARGET_P99_MS:.0f} ms, {name}: {_met(verdicts[f'p99_{name}'])}"
            for name in results["windows"]
        ),
    ]
    return "\n".join(lines)


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _tell(step: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {step}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf.fleet", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--chargers", type=int, help="connect at most this many chargers")
    parser.add_argument("--workers", type=int, default=2, help="load generator processes")
    parser.add_argument("--json", metavar="FILE", type=Path, help="write every figure there")
    args = parser.parse_args()
    settings = (FleetSettings.quick if args.quick else FleetSettings.full)(args.workers)
    if args.chargers is not None:
        settings = replace(settings, max_chargers=args.chargers)
    return finish("fleet", lambda: measure_fleet(settings, progress=_tell), summary, args.json)


if __name__ == "__main__":
    sys.exit(main())
