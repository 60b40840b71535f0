"""The fleet measurement in its smoke size against csms: chargers connect, run the target's
profile and the 50,000-charger message rate without an error, and the figures are there.
No performance figure is asserted here (the full run is `python -m bench.perf.fleet`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.perf.fleet import FleetSettings

ROOT = Path(__file__).resolve().parents[1]


def test_quick_fleet_connects_and_measures(tmp_path: Path) -> None:
    output = tmp_path / "fleet.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.perf.fleet", "--quick", "--json", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,  # about 20 s alone; more on a machine busy with other tests
    )
    print(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    results = json.loads(output.read_text())
    # As many as the quick settings ask for at most, and why not the target's 50,000.
    assert 0 < results["chargers"] <= FleetSettings.quick().max_chargers
    assert results["limited_by"]
    assert results["errors"] == 0, results["first_error"]
    assert results["memory"]["bytes_per_charger"] > 0
    for name, window in results["windows"].items():
        assert window["errors"] == 0, name
        assert window["messages"] > 0, name
        assert window["p99_ms"] is not None, name
    assert "50,000" in run.stdout
