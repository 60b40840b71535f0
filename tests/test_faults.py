"""The fault-injection runs in their CI size: every scenario, a small fleet, counts checked
against the Stripe sandbox's ledger (the long run is `python -m bench.faults`)."""

from __future__ import annotations

import os
import subprocess
import sys


def test_fault_runs_lose_nothing() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.faults", "--quick", "--chargers", "2", "--sessions", "2"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(run.stdout)
    summary = [line for line in run.stdout.splitlines() if "sessions" in line]
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert len(summary) == 7  # six scenarios and the total
    assert "all clean" in summary[-1]
    for line in summary[:-1]:
        assert "lost 0" in line and "double captures 0" in line and "unreleased holds 0" in line
        assert "crashes 0" in line
        # Every scenario really ran sessions (the full disk needs root, as CI has, to mount).
        if os.geteuid() == 0 or not line.startswith("disk-full"):
            assert "sessions    0" not in line, line
