"""The benchmark harness in its smoke size: the three servers start, take load and report;
the fleet connects and runs the target's profile; the webhook measurements count right.
No performance figure is asserted here (the full run is `python -m bench.perf`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.perf.fleet import FleetSettings

ROOT = Path(__file__).resolve().parents[1]
SERVERS = {"echo", "bare_ocpp", "csms"}


def test_quick_benchmark_runs_and_writes_results(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.perf", "--quick", "--output", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,  # about a minute alone; more on a machine busy with other tests
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
    assert len(results["targets"]) == 10
    assert all(target["value"] is not None for target in results["targets"])
    _check_fleet(results["fleet"])
    _check_ingestion(results["webhooks"]["ingestion"])
    _check_confirmation(results["webhooks"]["confirmation"])
    assert "50,000" in run.stdout and "webhook ingestion" in run.stdout


def _check_fleet(fleet: dict[str, Any]) -> None:
    # As many as the quick settings ask for at most, and why not the target's 50,000.
    assert 0 < fleet["chargers"] <= FleetSettings.quick().max_chargers
    assert fleet["limited_by"]
    assert fleet["errors"] == 0, fleet["first_error"]
    assert fleet["memory"]["bytes_per_charger"] > 0
    for name, window in fleet["windows"].items():
        assert window["errors"] == 0, name
        assert window["messages"] > 0, name
        assert window["p99_ms"] is not None, name


def _check_ingestion(ingestion: dict[str, Any]) -> None:
    assert ingestion["errors"] == 0, ingestion["first_error"]
    assert ingestion["warm_up_errors"] == 0
    assert ingestion["answered"] == ingestion["deliveries"] == ingestion["settings"]["events"]
    assert set(ingestion["statuses"]) == {"200"}
    assert ingestion["mix"]["repeats"] > 0
    assert ingestion["mix"]["session_events"] > 0 and ingestion["mix"]["other_events"] > 0
    stored = ingestion["persistence"]
    assert stored["exactly_once"], stored
    assert stored["events_stored"] == stored["distinct_events_sent"] > 0
    assert stored["audit_lines_found"] == stored["audit_lines_expected"] > 0
    assert ingestion["latency"]["count"] == ingestion["deliveries"]
    assert ingestion["events_per_s"] > 0 and ingestion["cpu_us_per_event"] > 0


def _check_confirmation(confirmation: dict[str, Any]) -> None:
    sessions = confirmation["settings"]["sessions"]
    assert confirmation["errors"] == 0, confirmation["first_error"]
    assert confirmation["sessions"] == confirmation["webhooks_delivered"] == sessions
    assert confirmation["remote_starts"] == confirmation["latency"]["count"] == sessions
    assert confirmation["remote_starts_repeated"] == 0
    assert 0 < confirmation["latency"]["p50_ms"] <= confirmation["latency"]["p99_ms"]
