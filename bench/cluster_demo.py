"""`python3 dev.py cluster`: a local cluster, and one paid session through its load balancer.

Starts PostgreSQL in a temporary directory, three csms nodes, HAProxy in front, the Stripe
sandbox and a few simulated chargers that connect through HAProxy (each lands on the node
its id hashes to). Then pays for one session as a driver would, every request through the
load balancer, prints where everything listens and which node holds which charger, and
keeps running until Ctrl-C (`--once`: stops after the session).

    python -m bench.cluster_demo [--nodes 3] [--chargers 3] [--once] [--folder DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import urllib.request
from pathlib import Path

from bench.cluster import API_KEY, LocalCluster
from csms.demo import drive_one_session
from simulators.chargepoint import Behaviour, SimulatedCharger


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster_demo", description=__doc__)
    parser.add_argument("--nodes", type=int, default=3, help="csms nodes (default 3)")
    parser.add_argument("--chargers", type=int, default=3, help="simulated chargers (default 3)")
    parser.add_argument("--once", action="store_true", help="stop after the paid session")
    parser.add_argument(
        "--folder", type=Path, default=Path(".dev/cluster"), help="where the logs go"
    )
    args = parser.parse_args(argv)
    if args.nodes < 1 or args.chargers < 1:
        parser.error("--nodes and --chargers: at least 1")
    return args


def chargers(cluster: LocalCluster, count: int) -> list[SimulatedCharger]:
    return [
        SimulatedCharger(
            cluster.ocpp_url,
            "CP-DEMO" if n == 1 else f"CP-{n:03d}",
            connectors=2,
            power_kw=22.0,
            meter_interval=1.0,
            speed=60,
            behaviour=Behaviour(unplug_after_stop=1.0),
        )
        for n in range(1, count + 1)
    ]


def where(cluster: LocalCluster) -> str:
    lines = [
        "Load balancer (HAProxy):",
        f"  chargers  {cluster.ocpp_url}/{{id}}",
        f"  HTTP      {cluster.http_url}   (API key: {API_KEY})",
        f"  status    {cluster.stats_url}",
        "Nodes:",
        *(
            f"  {node.name}  {node.ocpp_url}  {node.http_url}  log {node.log}"
            for node in cluster.nodes
        ),
        f"PostgreSQL  {cluster.database_url}",
        f"Stripe sandbox  {cluster.stripe_url}  (its ledger: {cluster.stripe_url}/_sandbox)",
    ]
    return "\n".join(lines)


def holders(cluster: LocalCluster) -> dict[str, str | None]:
    """Which node holds each charger, as the API answers through the load balancer."""
    request = urllib.request.Request(
        f"{cluster.http_url}/api/chargers?limit=100", headers={"X-API-Key": API_KEY}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return {charger["id"]: charger["node"] for charger in json.load(response)["items"]}


async def demo(cluster: LocalCluster, count: int, once: bool) -> None:
    fleet = chargers(cluster, count)
    for sim in fleet:
        await sim.start()
    try:
        summary = await drive_one_session(cluster.http_url, API_KEY, fleet[0], energy_wh=3000)
        print(summary.text(), flush=True)
        print(where(cluster), flush=True)
        print("Chargers:", flush=True)
        for charger_id, node in sorted((await asyncio.to_thread(holders, cluster)).items()):
            print(f"  {charger_id} on {node}", flush=True)
        if not once:
            print("Ctrl-C stops.", flush=True)
            await asyncio.Event().wait()
    finally:
        for sim in fleet:
            await sim.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"Starting PostgreSQL, {args.nodes} nodes, HAProxy and the sandbox...", flush=True)
    try:
        with (
            LocalCluster(args.folder.resolve(), nodes=args.nodes) as cluster,
            contextlib.suppress(KeyboardInterrupt),
        ):
            asyncio.run(demo(cluster, args.chargers, args.once))
    except RuntimeError as error:
        print(f"The cluster did not start: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
