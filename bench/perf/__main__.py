"""python -m bench.perf [--quick] [--output DIR] [--workers N]

Three servers, one after the other, on this machine with the same load generator:
(a) a raw websockets echo server, (b) a bare central system on the `ocpp` library,
(c) this project's server (`python -m csms serve`) with its real configuration.
Then csms alone at scale: a fleet of as many chargers as one process may hold
(bench.perf.fleet), and Stripe webhooks (bench.perf.webhooks). Prints the side-by-side
table and every target's verdict; writes <timestamp>.json, latest.json and latest.png
(with matplotlib) to bench/results/.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.perf import report
from bench.perf.fleet import FleetSettings, measure_fleet
from bench.perf.measure import Settings, measure_server, transacting_chargers
from bench.perf.proc import raise_open_files_limit
from bench.perf.servers import ROOT, SPECS, Server, Spec
from bench.perf.webhooks import measure_all
from bench.perf.webhooks import sound as webhooks_sound

# Files a server holds open besides its chargers' sockets (database, logs, listeners...).
FILES_MARGIN = 1024


def _machine() -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "websockets": version("websockets"),
        "ocpp": version("ocpp"),
        "commit": commit,
    }


def _summary(label: str, figures: dict[str, Any]) -> str:
    saturation, latency = figures["saturation"], figures["latency"]
    return (
        f"{label}: {saturation['messages_per_s']:,.0f} msg/s,"
        f" {saturation['cpu_us_per_message'] or 0:,.1f} us CPU/msg,"
        f" p99 {latency['p99_ms'] or 0:.2f} ms at {latency['offered_per_s']:g} msg/s,"
        f" {figures['memory']['bytes_per_charger'] / 1e3:.1f} kB/charger"
    )


def _measure(spec: Spec, folder: Path, settings: Settings) -> dict[str, Any]:
    load_average = os.getloadavg()
    with Server(spec, folder, transacting_chargers(settings)) as server:
        try:
            figures = measure_server(server, settings)
        except RuntimeError as error:
            raise RuntimeError(f"{error}\n{server.tail()}") from None
    return {
        "label": spec.label,
        "load_average_before": load_average,
        "config": server.settings,
        **figures,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument(
        "--output",
        metavar="DIR",
        type=Path,
        default=ROOT / "bench" / "results",
        help="where to write the results (default: bench/results)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=max(1, (os.cpu_count() or 2) - 1),
        help="load generator processes (default: one per core but the server's)",
    )
    args = parser.parse_args()
    settings = (Settings.quick if args.quick else Settings.full)(args.workers)
    # The servers inherit this limit: each holds a socket per idle charger.
    needed = settings.idle_chargers + FILES_MARGIN
    if raise_open_files_limit(needed) < needed:
        print(f"the open files limit is below {needed}: raise it (ulimit -n)", file=sys.stderr)
        return 2
    started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    servers: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="csms-perf-") as folder:
        for spec in SPECS:
            try:
                servers[spec.key] = _measure(spec, Path(folder), settings)
            except RuntimeError as error:
                print(f"{spec.label}: {error}", file=sys.stderr)
                return 1
            print(_summary(spec.label, servers[spec.key]), flush=True)
    try:
        fleet = measure_fleet(
            FleetSettings.quick() if args.quick else FleetSettings.full(),
            progress=lambda step: print(f"fleet: {step}", flush=True),
        )
        print("fleet: done", flush=True)
        webhooks = measure_all(args.quick)
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1
    results = report.build(
        started_at, args.quick, _machine(), settings.as_dict(), servers, fleet, webhooks
    )
    path = report.write(results, args.output)
    print()
    print(report.table(results))
    print()
    print(f"results: {path} and {args.output / 'latest.json'}")
    print(report.plot(results, args.output / "latest.png"))
    # A run with errors, or with events lost or doubled, measured something else.
    return 0 if webhooks_sound(webhooks) and not fleet["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
