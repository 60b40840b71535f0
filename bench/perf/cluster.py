"""python -m bench.perf.cluster [--quick] [--nodes N] [--chargers N] [--single-chargers N]
                              [--workers N] [--lease SECONDS] [--json FILE]

The scale of several csms nodes on one PostgreSQL database, side by side with one node in
the same run. Each side is a fresh bench.cluster.LocalCluster (PostgreSQL in a temporary
directory with durable settings, the Stripe sandbox, the `csms serve` nodes, HAProxy in
front with its health checks as deployed; cluster.lease 15 s, the production default, which
is also how often each node reads every connection again) and gets the same measurements:

1. Chargers connected: `chargers` of them (default 100,000 on 6 nodes; 19,000 on the one
   node, the most one process holds under this machine's hard limit of 20,000 open files).
   Each charger connects straight to a node, chosen by hashing its path /ocpp/<id> as
   HAProxy's `balance uri` does (bench.perf.load.spread): one HAProxy process holds at most
   ~10,000 proxied chargers here (two descriptors each, 20,000 open files), so it cannot
   carry 100,000 tunnels; in production several proxy instances share them. The generator
   is as many worker processes as keep each under 15,000 sockets. Reported: the time to
   connect them all, each node's count (from the database) against the hash's, each node's
   RSS before and after and the memory per connected charger, each node's open files
   against its limit, and the nodes' and PostgreSQL's CPU per charger connected (where the
   cluster's presence news shows: every node applies every other node's connect news).
2. The fleet profile at that size (bench.perf.fleet): Heartbeat every 300 s, a tenth of the
   chargers in a transaction sending MeterValues with four measurands every 60 s, after a
   silent stretch; p50/p99 of the replies. Target: p99 < 50 ms.
3. Stripe webhooks through HAProxy (round robin over the nodes), with the fleet still
   connected but paused: ingestion (bench.perf.webhooks_ingestion: signed events, a tenth
   repeats, each distinct event stored exactly once, read from PostgreSQL) and the time from
   checkout.session.completed to RemoteStartTransaction reaching the charger (bench.perf.
   webhooks_confirmation, its chargers connected through HAProxy), with the share of
   sessions whose webhook landed on a node other than the charger's (HAProxy names the node
   that answered in a response header).

The one-node SQLite figures of `python -m bench.perf` (README, "Benchmarks") are shown
beside them for reference. A table at the end; `--json FILE` keeps every figure.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.perf.cluster_report import REFERENCE_SQLITE, table
from bench.perf.cluster_system import BenchCluster, ClusterSystem
from bench.perf.command import finish
from bench.perf.fleet import (
    HANDSHAKES,
    HEARTBEAT_SECONDS,
    METER_SECONDS,
    PORT_SHARE,
    TARGET_P99_MS,
    TRANSACTING_EVERY,
    FleetSettings,
    Window,
    offered_per_s,
    run_window,
    silent_readings,
    source_addresses,
    window_result,
)
from bench.perf.load import WARM, Generator, Load, Outcome, Profile, spread
from bench.perf.measure import charger_ids, window_figures
from bench.perf.proc import (
    cpu_seconds,
    ephemeral_ports,
    open_files,
    open_files_limit,
    raise_open_files_limit,
    rss_bytes,
    wait_idle,
)
from bench.perf.webhooks_confirmation import (
    DRIVERS_FROM_ONE_ADDRESS,
    ConfirmationSettings,
    confirm,
)
from bench.perf.webhooks_ingestion import IngestionSettings, check_persistence, ingest
from bench.perf.webhooks_stack import gained_since

# One generator process holds at most this many chargers' sockets (its limit is 20,000).
CHARGERS_PER_WORKER = 15_000
# The production default: every node reads all connections again this often (resync).
LEASE_SECONDS = 15.0
SETTLE_TIMEOUT = 180.0
# Connecting and booting, at worst.
READY_SECONDS_PER_CHARGER = 0.05
# The longest the webhook measurements may take with the fleet connected.
WEBHOOKS_SECONDS = 1800.0
# A node's files besides its chargers' sockets: listeners, PostgreSQL connections, logs
# (about 12 measured).
NODE_FILES = 200
# HAProxy's health checks as deployed (deploy/haproxy.cfg): every 2 s.
CHECK_INTERVAL_MS = 2000
NODE_ENV = {"CSMS_LOG_LEVEL": "warning", **DRIVERS_FROM_ONE_ADDRESS}


@dataclass(frozen=True)
class ClusterSettings:
    nodes: int
    chargers: int  # on the several nodes
    single_chargers: int  # on the one node; 0: no comparison run
    workers: int  # generator processes; 0: as many as CHARGERS_PER_WORKER asks
    warm_seconds: float
    measure_seconds: float
    silent_seconds: float
    ingestion: IngestionSettings
    confirmation: ConfirmationSettings
    # cluster.lease; each node also reads every connection again this often (its resync).
    lease: float = LEASE_SECONDS

    @classmethod
    def full(cls) -> ClusterSettings:
        # 6 nodes: the fewest that hold 100,000 under 20,000 open files each (~16,700 each,
        # ~3,000 files to spare for the webhook runs, the hash's unevenness, its own files).
        # A charger per session: they connect, through HAProxy, besides the fleet.
        sessions = ConfirmationSettings(chargers=200, sessions=200, rate=20.0)
        return cls(6, 100_000, 19_000, 0, 10.0, 60.0, 10.0, IngestionSettings.full(), sessions)

    @classmethod
    def quick(cls) -> ClusterSettings:
        sessions = ConfirmationSettings(chargers=60, sessions=20, rate=20.0)
        return cls(3, 1500, 500, 0, 1.0, 5.0, 1.0, IngestionSettings.quick(), sessions)

    def fleet_settings(self, workers: int) -> FleetSettings:
        return FleetSettings(
            self.chargers, workers, self.warm_seconds, self.measure_seconds, self.silent_seconds
        )


def generator_workers(chargers: int, asked: int) -> int:
    return asked or max(2, math.ceil(chargers / CHARGERS_PER_WORKER))


def expected_per_node(ids: tuple[str, ...], nodes: int) -> list[int]:
    counts = Counter(spread(charger, nodes) for charger in ids)
    return [counts[n] for n in range(nodes)]


def check_fits(per_node: list[int], webhook_chargers: int) -> None:
    """RuntimeError unless every node can hold its share of the fleet, and at worst every
    charger of the webhook measurements too, under the open-files limit."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    needed = max(per_node) + webhook_chargers + NODE_FILES
    if soft != resource.RLIM_INFINITY and needed > soft:
        raise RuntimeError(
            f"a node would hold {max(per_node):,} chargers of the fleet and up to"
            f" {webhook_chargers:,} of the webhook runs, and a process may open {soft:,}"
            f" files ({NODE_FILES} kept for its own): use more nodes"
        )


def chargers_sources(per_node: list[int], total: int) -> tuple[str, ...]:
    """Source addresses when one node's chargers would take more than PORT_SHARE of a
    destination's ephemeral ports; a bound source port is then taken for every destination,
    so the addresses are counted for all the chargers."""
    if max(per_node) <= ephemeral_ports() * PORT_SHARE:
        return ()
    return source_addresses(total)


def measure_cluster(
    nodes: int,
    chargers: int,
    settings: ClusterSettings,
    folder: Path,
    progress: Callable[[str], object],
) -> dict[str, Any]:
    """Every figure of one side (`nodes` nodes, `chargers` chargers), JSON-able."""
    ids = charger_ids("f", chargers)
    per_node = expected_per_node(ids, nodes)
    check_fits(per_node, settings.ingestion.sessions + settings.confirmation.chargers)
    workers = generator_workers(chargers, settings.workers)
    progress(f"{nodes} node(s): starting PostgreSQL, the sandbox, the nodes and HAProxy")
    with BenchCluster(
        folder / f"{nodes}-nodes",
        nodes,
        extra_env=NODE_ENV,
        lease=settings.lease,
        check_interval_ms=CHECK_INTERVAL_MS,
    ) as cluster:
        system = ClusterSystem(cluster)
        try:
            return {
                "nodes": nodes,
                "node_names": [node.name for node in cluster.nodes],
                "generator_workers": workers,
                "expected_per_node": per_node,
                **_measure(system, ids, workers, settings, progress),
            }
        except RuntimeError as error:
            raise RuntimeError(f"{error}\n{system.tails()}") from None


def _measure(
    system: ClusterSystem,
    ids: tuple[str, ...],
    workers: int,
    settings: ClusterSettings,
    progress: Callable[[str], object],
) -> dict[str, Any]:
    transacting = ids[::TRANSACTING_EVERY]
    warm = _warm_ids(len(system.server_pids))
    system.register_tags([*warm, *transacting])
    _warm_up(system, warm, settings.warm_seconds)
    settled_before = _settle(system, quiet=0.05 * len(system.server_pids))
    rss_before = [rss_bytes(pid) for pid in system.server_pids]
    load = _fleet_load(system, settings, ids, frozenset(transacting), workers)
    progress(f"connecting {len(ids):,} chargers to {len(system.server_pids)} node(s)")
    with Generator(load, workers) as generator:
        connect = _connect(system, generator, len(ids))
        progress(
            f"{connect['connected']:,} connected ({connect['failed']:,} failed)"
            f" in {connect['seconds']:.0f} s; settling"
        )
        settled_after = _settle(system, quiet=_busy_quiet(len(ids)))
        nodes = _nodes(system, rss_before)
        silent = _silent(system, generator, settings.silent_seconds)
        offered = offered_per_s(connect["connected"], 1.0)
        progress(f"profile window: {offered:,.0f} msg/s offered")
        profile = _profile(system, generator, settings.fleet_settings(workers))
        generator.set_pace(0.0)  # the fleet stays connected, silent, through the webhooks
        system.idle_share = max(0.05, 1.5 * silent["server_cpu_busy"] + 0.05)
        progress("webhook ingestion through HAProxy")
        ingestion = _ingestion(system, settings.ingestion)
        progress("webhook to RemoteStart through HAProxy")
        confirmation = confirm(system, settings.confirmation)
        progress("stopping the transactions and disconnecting")
        outcome = generator.finish()
    system.check_alive()
    return {
        "chargers": len(ids),
        "transacting": len(transacting),
        "source_addresses": list(load.source_addresses),
        "settled": {"before": settled_before, "connected": settled_after},
        "connect": connect,
        "per_node": nodes,
        "memory": _memory(nodes),
        "silent": silent,
        "profile": _profile_result(*profile, connect["connected"], outcome),
        "ingestion": ingestion,
        "confirmation": confirmation,
        "errors": outcome.errors,
        "first_error": outcome.first_error,
    }


def _warm_ids(nodes: int) -> list[str]:
    """One charger id per node, each hashing to its node."""
    found: dict[int, str] = {}
    for candidate in charger_ids("w", 100 * nodes):
        found.setdefault(spread(candidate, nodes), candidate)
    return [found[n] for n in range(nodes)]


def _warm_up(system: ClusterSystem, ids: list[str], seconds: float) -> None:
    """A charger per node runs transactions, so that imports, compiled schemas and caches
    exist before the memory is read (bench.perf.measure.warm_up, on every node)."""
    load = Load(system.ocpp_url, tuple(ids), endpoints=system.endpoints)
    with Generator(load, 1) as generator:
        generator.wait_ready(30 + len(ids))
        generator.set_phase(WARM)
        time.sleep(max(1.0, seconds))
        generator.finish()
    system.check_alive()


def _fleet_load(
    system: ClusterSystem,
    settings: ClusterSettings,
    ids: tuple[str, ...],
    transacting: frozenset[str],
    workers: int,
) -> Load:
    nodes = len(system.server_pids)
    per_node = expected_per_node(ids, nodes)
    windows = settings.silent_seconds + settings.warm_seconds + settings.measure_seconds
    return Load(
        system.ocpp_url,
        ids,
        profile=Profile(HEARTBEAT_SECONDS, METER_SECONDS, transacting),
        # HANDSHAKES under way in all, as for one node: the nodes share two cores, and a
        # handshake waiting longer than 10 s is dropped by its node (websockets' open_timeout).
        handshakes=max(1, HANDSHAKES // workers),
        source_addresses=chargers_sources(per_node, len(ids)),
        endpoints=system.endpoints,
        deadline_seconds=_ready_timeout(len(ids)) + 2 * SETTLE_TIMEOUT + windows
        + WEBHOOKS_SECONDS,
    )  # fmt: skip


def _ready_timeout(chargers: int) -> float:
    return 60 + chargers * READY_SECONDS_PER_CHARGER


def _busy_quiet(chargers: int) -> float:
    """Settled with a fleet connected: never idle, since every node pings each of its
    connections every 30 s (about 12 % of a core for 19,000 on one node)."""
    return 0.3 + chargers * 1e-5


def _settle(system: ClusterSystem, quiet: float) -> bool:
    """Let the nodes finish what the last connections started; False if they did not."""
    return wait_idle(system.server_pids, SETTLE_TIMEOUT, window=1.0, quiet=quiet)


def _connect(system: ClusterSystem, generator: Generator, chargers: int) -> dict[str, Any]:
    nodes_before, postgres_before = cpu_seconds(system.server_pids), system.postgres_cpu_seconds()
    started = time.monotonic()
    # A charger that fails is counted, not fatal: at 100,000 the run reports how many.
    generator.wait_ready(_ready_timeout(chargers), tolerate_failures=True)
    seconds = time.monotonic() - started
    nodes_cpu = cpu_seconds(system.server_pids) - nodes_before
    postgres_cpu = system.postgres_cpu_seconds() - postgres_before
    return {
        "seconds": seconds,
        "per_s": generator.ready() / seconds,
        "connected": generator.ready(),
        "failed": generator.errors(),
        "nodes_cpu_ms_per_charger": nodes_cpu / chargers * 1e3,
        "postgres_cpu_ms_per_charger": postgres_cpu / chargers * 1e3,
        "generator_cpu_ms_per_charger": generator.cpu_seconds() / chargers * 1e3,
    }


def _nodes(system: ClusterSystem, rss_before: list[int]) -> list[dict[str, Any]]:
    counts = system.chargers_per_node()
    return [
        {
            "name": node.name,
            "chargers": counts[node.name],
            "rss_before_bytes": before,
            "rss_connected_bytes": rss_bytes(pid),
            "open_files": open_files(pid),
            "open_files_limit": open_files_limit(pid),
        }
        for node, pid, before in zip(
            system.cluster.nodes, system.server_pids, rss_before, strict=True
        )
    ]


def _memory(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """Per charger connected (the database's count)."""
    chargers = max(1, sum(node["chargers"] for node in nodes))
    grown = sum(n["rss_connected_bytes"] - n["rss_before_bytes"] for n in nodes)
    return {
        "rss_before_bytes": sum(n["rss_before_bytes"] for n in nodes),
        "rss_connected_bytes": sum(n["rss_connected_bytes"] for n in nodes),
        "bytes_per_charger": grown / chargers,
    }


def _silent(system: ClusterSystem, generator: Generator, seconds: float) -> dict[str, Any]:
    postgres_before = system.postgres_cpu_seconds()
    start, end = silent_readings(system, generator, seconds)
    return {
        **window_figures(start, end, []),
        "postgres_cpu_busy": (system.postgres_cpu_seconds() - postgres_before)
        / (end.at - start.at),
    }


def _profile(
    system: ClusterSystem, generator: Generator, fleet: FleetSettings
) -> tuple[Window, float]:
    """The profile's window, and PostgreSQL's CPU share over it and its warm-up."""
    postgres_before, at = system.postgres_cpu_seconds(), time.perf_counter()
    window = run_window(system, generator, fleet, 1, 1.0)
    return window, (system.postgres_cpu_seconds() - postgres_before) / (time.perf_counter() - at)


def _profile_result(
    window: Window, postgres_busy: float, chargers: int, outcome: Outcome
) -> dict[str, Any]:
    """Once the generator has finished: the workers hand their reply times over then."""
    return {
        **window_result(window, chargers, outcome.windows.get(window.number, [])),
        "postgres_cpu_busy": postgres_busy,
        "target_p99_ms": TARGET_P99_MS,
    }


def _ingestion(system: ClusterSystem, settings: IngestionSettings) -> dict[str, Any]:
    before, postgres_before = _proxied_requests(system), system.postgres_counts()
    figures, streams = ingest(system, settings)
    after = _proxied_requests(system)
    return {
        **figures,
        "persistence": check_persistence(system, streams),
        # Requests HAProxy sent each node during the run (the driver's pages and API too).
        "requests_per_node": {name: after[name] - before.get(name, 0) for name in after},
        # Deadlocks between the nodes' transactions, over the whole ingestion run.
        "postgres": gained_since(system.postgres_counts(), postgres_before),
    }


def _proxied_requests(system: ClusterSystem) -> dict[str, int]:
    """HAProxy's count of HTTP requests sent to each node so far (its stats page as CSV)."""
    with urllib.request.urlopen(f"{system.cluster.stats_url};csv", timeout=10) as response:
        lines = response.read().decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]
    return {
        row["svname"]: int(row["stot"] or 0)
        for row in rows
        if row.get("pxname") == "http_nodes" and row["svname"] not in ("FRONTEND", "BACKEND")
    }


def _machine() -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with open("/proc/meminfo") as meminfo:
        total_kb = int(meminfo.readline().split()[1])
    return {
        "cpus": len(os.sched_getaffinity(0)),
        "memory_bytes": total_kb * 1024,
        "open_files_limit": soft,
        "open_files_hard_limit": hard,
        "ephemeral_ports": ephemeral_ports(),
    }


def run(settings: ClusterSettings, progress: Callable[[str], object]) -> dict[str, Any]:
    raise_open_files_limit(1 << 30)  # to the hard limit: the nodes inherit it
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "settings": asdict(settings),
        "machine": _machine(),
        "reference_sqlite": REFERENCE_SQLITE,
        "runs": {},
        "failed": {},
    }
    sides = [(1, settings.single_chargers)] if settings.single_chargers else []
    sides.append((settings.nodes, settings.chargers))
    with tempfile.TemporaryDirectory(prefix="csms-perf-cluster-") as folder:
        for nodes, chargers in sides:
            key = "single" if (nodes, chargers) == sides[0] and len(sides) > 1 else "cluster"
            try:
                results["runs"][key] = measure_cluster(
                    nodes, chargers, settings, Path(folder), progress
                )
            except RuntimeError as error:  # the other side's figures still stand
                progress(f"{nodes} node(s): failed: {str(error)[:300]}")
                results["failed"][key] = {"nodes": nodes, "chargers": chargers, "error": str(error)}
    return results


def sound(results: dict[str, Any]) -> bool:
    """No error, every event stored once, every charger where the hash put it."""
    if results["failed"]:
        return False
    for figures in results["runs"].values():
        if figures["errors"] or figures["ingestion"]["errors"]:
            return False
        if not figures["ingestion"]["persistence"]["exactly_once"]:
            return False
        if figures["confirmation"]["errors"]:
            return False
        if sum(n["chargers"] for n in figures["per_node"]) != figures["chargers"]:
            return False
    return True


def _tell(step: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {step}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.perf.cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="3 nodes x 500 chargers, ~1 min")
    parser.add_argument("--nodes", type=int, help="csms nodes of the cluster side")
    parser.add_argument("--chargers", type=int, help="chargers on the cluster side")
    parser.add_argument(
        "--single-chargers", type=int, help="chargers on the one-node side (0: skip it)"
    )
    parser.add_argument("--workers", type=int, help="generator processes (default: by size)")
    parser.add_argument(
        "--lease",
        type=float,
        help=f"the nodes' cluster.lease, and so their resync period (default {LEASE_SECONDS:g})",
    )
    parser.add_argument("--json", metavar="FILE", type=Path, help="write every figure there")
    args = parser.parse_args(argv)
    settings = ClusterSettings.quick() if args.quick else ClusterSettings.full()
    chosen = {
        "nodes": args.nodes,
        "chargers": args.chargers,
        "single_chargers": args.single_chargers,
        "workers": args.workers,
        "lease": args.lease,
    }
    settings = replace(settings, **{k: v for k, v in chosen.items() if v is not None})
    return finish("bench.perf.cluster", lambda: run(settings, _tell), table, args.json, sound)


if __name__ == "__main__":
    sys.exit(main())
