"""The console benchmark (bench.perf.console): its fleet is made of rows the product reads
as its own, and its smoke run reports every figure. No figure's size is asserted here (the
full run is `python -m bench.perf.console`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.perf.console_fleet import CONNECTORS, fill, online_ids
from csms.config_values import migrations
from payments.reservation_model import ACTIVE, State
from payments.reservations_store import ReservationStore
from storage.db import Database
from tests.backends import BACKEND

ROOT = Path(__file__).resolve().parents[1]
TIMINGS = ("live_ms", "overview_ms", "events_first_frame_ms", "api_chargers_ms")


async def test_the_fleet_is_valid_for_the_product(tmp_path: Path, database_url: str) -> None:
    target = database_url or str(tmp_path / "fleet.db")
    fleet = await fill(target, 60)
    db = await Database.open(target, migrations(BACKEND), synchronous="normal")
    try:
        store = ReservationStore(db)
        rows = await db.fetchall("SELECT id, state, charger_id, connector_id FROM reservations")
        assert len(rows) == fleet.reservations > 0
        active = [row for row in rows if State(row["state"]) in ACTIVE]
        assert len(active) == fleet.active_reservations > 0
        # Each row's record is the product's: it decodes, and says what its columns say.
        for row in rows:
            reservation = await store.get(row["id"])
            assert reservation is not None
            assert reservation.state == row["state"]
            assert (reservation.charger_id, reservation.connector_id) == (
                row["charger_id"],
                row["connector_id"],
            )
        # No active session on a charger that connects for real.
        assert not {row["charger_id"] for row in active} & set(online_ids(60))
        held = await store.held_before_start([f"cb{n:05d}" for n in range(60)])
        assert len(held) == sum(row["state"] != State.CHARGING for row in active)
        open_rows = await db.fetchall(
            "SELECT c.status FROM transactions t JOIN connectors c ON c.charger_id ="
            " t.charger_id AND c.connector_id = t.connector_id WHERE t.stopped_at IS NULL"
        )
        assert {row["status"] for row in open_rows} == {"Charging"}
        assert len(open_rows) == fleet.open_transactions
        connectors = await db.fetchone(
            "SELECT COUNT(*) AS n FROM connectors WHERE connector_id > 0"
        )
        assert connectors is not None and connectors["n"] == 60 * CONNECTORS
    finally:
        await db.close()


def test_quick_console_benchmark_reports_every_figure(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.perf.console", "--quick", "--output", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,  # about 20 s alone; more on a machine busy with other tests
    )
    print(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    results = json.loads((tmp_path / "console.json").read_text())
    assert results["backend"] == BACKEND
    assert [size["chargers"] for size in results["sizes"]] == [100]
    for size in results["sizes"]:
        _check_size(size)
    assert "live() ms" in run.stdout and "GET /api/chargers" in run.stdout


def _check_size(size: dict[str, Any]) -> None:
    assert size["seen_chargers"] == size["api_chargers_seen"] == size["chargers"]
    assert size["seen_online"] == size["online"] == size["chargers"] // 10
    assert size["live_values"] > size["fleet"]["connectors"]
    for name in TIMINGS:
        figure = size[name]
        assert figure["runs"] > 0, name
        assert 0 < figure["median_ms"] <= figure["p95_ms"], name
    assert size["first_frame_bytes"] > 0
    assert [window["streams"] for window in size["windows"]] == [0, 1, 10, 50]
    for window in size["windows"]:
        assert window["errors"] == 0, window["first_error"]
        assert window["seconds"] > 0 and window["server_cpu_seconds"] >= 0
        if window["streams"]:
            # Every stream was live through its window: the energy grew, frames came.
            assert window["frames_per_stream_per_s"] > 0, window
    assert set(size["console_cpu_per_s"]) == {"1", "10", "50"}
