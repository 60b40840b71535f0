"""The fault-injection runs in their CI size: every scenario, a small fleet, counts checked
against the whole of the Stripe sandbox's ledger and the energy the simulated chargers
delivered (the long run is `python -m bench.faults`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from bench.faults.__main__ import SCENARIOS
from bench.faults.adversarial import CASES

MUST_BE_ZERO = (
    "lost 0",
    "double captures 0",
    "unreleased holds 0",
    "orphan holds 0",
    "unbilled Wh 0",
    "free charging 0",
    "failed checks 0",
    "crashes 0",
)
CASE = re.compile(r"  adversarial: case (\S+) +passed (\d+)  failed (\d+)(?: \((\d+) without)?")


@pytest.mark.sqlite_only(reason="the fault runs start csms processes on SQLite files")
def test_fault_runs_lose_nothing() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.faults", "--quick", "--chargers", "2", "--sessions", "2"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(run.stdout)
    lines = run.stdout.splitlines()
    summary = [line for line in lines if line.split(" ", 1)[0] in SCENARIOS]
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert [line.split(" ", 1)[0] for line in summary] == list(SCENARIOS)
    assert "all clean" in lines[-1]
    for line in summary:
        for count in MUST_BE_ZERO:
            assert count in line, line
        # Every scenario really ran sessions (the full disk needs root, as CI has, to mount).
        if os.geteuid() == 0 or not line.startswith("disk-full"):
            assert "sessions    0" not in line, line
    # Every adversarial case ran, and produced its awkward order of events at least once.
    cases = [m for m in map(CASE.match, lines) if m]
    assert sorted(case[1] for case in cases) == sorted(name for name, _ in CASES), lines
    for case in cases:
        assert int(case[2]) > int(case[4] or 0), case[0]
