"""`python3 dev.py cluster` (python -m bench.cluster_demo --once): PostgreSQL, three nodes
behind HAProxy, the sandbox and simulated chargers start on this machine, one session is
paid through the load balancer, and everything stops and is cleaned up."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.backends import BACKEND


@pytest.mark.skipif(BACKEND != "postgresql", reason="a cluster runs on PostgreSQL")
def test_the_local_cluster_pays_a_session_through_the_load_balancer(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.cluster_demo", "--once", "--folder", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    out = run.stdout
    assert re.search(r"Paid charging session res_\w+ on CP-DEMO: Completed", out), out
    captured = re.search(r"captured +(\d+\.\d\d) EUR", out)
    assert captured is not None and float(captured[1]) > 0, out
    nodes = re.findall(r"^  (CP-\S+) on (node\d)$", out, re.MULTILINE)
    assert sorted(charger for charger, _ in nodes) == ["CP-002", "CP-003", "CP-DEMO"], out
    assert {f"node{i}.log" for i in (1, 2, 3)} <= {p.name for p in tmp_path.iterdir()}
    # Everything it printed as listening has stopped: nodes, proxy, sandbox, PostgreSQL.
    ports = [int(port) for port in re.findall(r"127\.0\.0\.1:(\d+)", out)]
    assert len(ports) >= 10, out
    for port in ports:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
