"""The cluster benchmark in its smoke size: `python -m bench.perf.cluster --quick` (one node
against three, on PostgreSQL, HAProxy in front) runs, prints its table and writes figures
that add up. No performance figure is asserted here (the full run is the command itself).

It needs PostgreSQL and HAProxy, which the project installs (bench.pg.cluster and
bench.haproxy `ensure_installed`): without them, and no way to install them, it skips with
the reason; under CI (CI=true) it fails instead, so that a missing install shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import haproxy
from bench.pg import cluster as pg

ROOT = Path(__file__).resolve().parents[1]
ROWS = (
    "chargers connected / asked",
    "time to connect all (s)",
    "memory per connected charger (kB)",
    "open files per node / limit",
    "profile p50 / p99 / max (ms)",
    "webhook ingestion (events/s)",
    "  stored exactly once",
    "webhook to RemoteStart p50 / p99 (ms)",
    "  webhook on another node",
)


@pytest.fixture(scope="module", autouse=True)
def installed() -> None:
    try:
        pg.ensure_installed()
        haproxy.ensure_installed()
    except (pg.Unavailable, haproxy.Unavailable) as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL and HAProxy are needed under CI: {error}")
        pytest.skip(str(error))


def test_quick_cluster_benchmark(tmp_path: Path) -> None:
    figures = tmp_path / "cluster.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.perf.cluster", "--quick", "--json", str(figures)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # about a minute alone; more on a machine busy with other tests
    )
    print(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    header, *lines = run.stdout.splitlines()
    assert "1 node, PostgreSQL" in header and "3 nodes, PostgreSQL" in header
    for row in ROWS:
        assert any(line.startswith(row) for line in lines), row
    results = json.loads(figures.read_text())
    assert set(results["runs"]) == {"single", "cluster"}
    for key, side in results["runs"].items():
        _check_side(key, side)
    assert results["runs"]["cluster"]["nodes"] == 3


def _check_side(key: str, side: dict[str, Any]) -> None:
    assert side["errors"] == 0, (key, side["first_error"])
    # Every charger connected, to the node its id hashes to.
    assert [node["chargers"] for node in side["per_node"]] == side["expected_per_node"], key
    assert sum(side["expected_per_node"]) == side["chargers"] > 0
    for node in side["per_node"]:
        assert node["chargers"] < node["open_files"] < node["open_files_limit"], (key, node)
        assert node["rss_connected_bytes"] > node["rss_before_bytes"] > 0, (key, node)
    assert side["memory"]["bytes_per_charger"] > 0
    assert side["connect"]["seconds"] > 0
    profile = side["profile"]
    assert profile["errors"] == 0 and profile["messages"] > 0, key
    assert 0 < profile["p50_ms"] <= profile["p99_ms"], key
    ingestion = side["ingestion"]
    assert ingestion["errors"] == 0, (key, ingestion["first_error"])
    assert ingestion["persistence"]["exactly_once"], (key, ingestion["persistence"])
    assert ingestion["answered"] == ingestion["deliveries"] > 0
    assert sum(ingestion["requests_per_node"].values()) >= ingestion["deliveries"]
    confirmation = side["confirmation"]
    assert confirmation["errors"] == 0, (key, confirmation["first_error"])
    assert confirmation["remote_starts"] == confirmation["sessions"] > 0
    # Each webhook's node is known (HAProxy names it), and so is each charger's.
    assert confirmation["nodes"]["known"] == confirmation["sessions"], key
    if side["nodes"] > 1:
        assert confirmation["nodes"]["other_node"] > 0, key
    else:
        assert confirmation["nodes"]["other_node"] == 0, key
