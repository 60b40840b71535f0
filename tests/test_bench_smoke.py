"""The benchmark harness in its smoke size: the three servers start, take load and report.
No performance figure is asserted here (the full run is `python -m bench.perf`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVERS = {"echo", "bare_ocpp", "csms"}


def test_quick_benchmark_runs_and_writes_results(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.perf", "--quick", "--output", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,  # about 30 s alone; more on a machine busy with other tests
    )
    print(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    results = json.loads((tmp_path / "latest.json").read_text())
    assert set(results["servers"]) == SERVERS
    for key, figures in results["servers"].items():
        assert figures["saturation"]["messages_per_s"] > 0, key
        # Every CALL of the load was answered with a CALLRESULT: the load is valid OCPP.
        for phase in ("memory", "saturation", "latency"):
            assert figures[phase]["errors"] == 0, (key, phase, figures[phase])
    assert len(results["targets"]) == 4
