"""`python -m bench.perf.relay` runs (a short run; no timing is asserted): every command,
local and relayed, answered, and the figures printed."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.backends import BACKEND


@pytest.mark.skipif(BACKEND != "postgresql", reason="the relay runs between nodes on PostgreSQL")
def test_the_relay_benchmark_runs() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.perf.relay", "--calls", "40"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    rows = re.findall(
        r"^(local \(on b\)|relayed), (one at a time|20 at once) +p50 +[\d.]+",
        run.stdout,
        re.MULTILINE,
    )
    assert len(rows) == 4, run.stdout
