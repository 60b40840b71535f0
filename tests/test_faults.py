"""The fault-injection runs in their CI size: every scenario on one csms process, a small
fleet, counts checked against the whole of the Stripe sandbox's ledger and the energy the
simulated chargers delivered (the long run is `python -m bench.faults`). The scenario on
several nodes, node-kill, has its own test: tests/test_node_kill.py."""

from __future__ import annotations

import os

import pytest

from bench.faults.__main__ import SCENARIOS
from bench.faults.adversarial import CASES
from tests.fault_runs import quick_run

ONE_PROCESS = tuple(name for name in SCENARIOS if name != "node-kill")


@pytest.mark.sqlite_only(reason="the fault runs start csms processes on SQLite files")
def test_fault_runs_lose_nothing() -> None:
    run = quick_run(ONE_PROCESS)
    run.assert_clean()
    for line in run.summary:
        # Every scenario really ran sessions (the full disk needs root, as CI has, to mount).
        if os.geteuid() == 0 or not line.startswith("disk-full"):
            assert "sessions    0" not in line, line
    # Every adversarial case ran, and produced its awkward order of events at least once.
    cases = run.cases("adversarial")
    assert sorted(cases) == sorted(name for name, _ in CASES), run.lines
    for name, (passed, _, idle) in cases.items():
        assert passed > idle, name
