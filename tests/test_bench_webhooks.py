"""The webhook measurements in their smoke size: they run against the real server and count
right. No performance figure is asserted here (the full run is `python -m bench.perf.webhooks`).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import stripe

from bench.perf.webhooks_driver import signature
from bench.perf.webhooks_events import build_stream, event_id

ROOT = Path(__file__).resolve().parents[1]


def test_signature_is_what_the_stripe_sdk_verifies() -> None:
    payload = b'{\n  "id": "evt_1",\n  "type": "charge.captured"\n}'
    header = signature(payload, "whsec_test", 1_700_000_000)
    stripe.WebhookSignature.verify_header(payload.decode(), header, "whsec_test", tolerance=None)


def test_stream_repeats_come_after_their_originals() -> None:
    templates = [{"id": f"evt_t{n}", "type": "charge.captured"} for n in range(5)]
    stream = build_stream(templates, 200, 0.1, "s", random.Random(7), originals=True)
    assert len(stream.deliveries) == 200
    assert stream.repeats == 20
    # First come the templates under their own ids, then the copies in the order they were
    # made: no repeat was placed before its original.
    first_seen = list(dict.fromkeys(delivery.event_id for delivery in stream.deliveries))
    copies = [event_id("s", n) for n in range(len(templates), 180)]
    assert first_seen == [template["id"] for template in templates] + copies


def test_quick_webhook_measurements_count_right(tmp_path: Path) -> None:
    output = tmp_path / "webhooks.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.perf.webhooks", "--quick", "--json", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,  # about 15 s alone; more on a machine busy with other tests
    )
    print(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    results = json.loads(output.read_text())

    ingestion = results["ingestion"]
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

    confirmation = results["confirmation"]
    sessions = confirmation["settings"]["sessions"]
    assert confirmation["errors"] == 0, confirmation["first_error"]
    assert confirmation["sessions"] == confirmation["webhooks_delivered"] == sessions
    assert confirmation["remote_starts"] == confirmation["latency"]["count"] == sessions
    assert confirmation["remote_starts_repeated"] == 0
    assert 0 < confirmation["latency"]["p50_ms"] <= confirmation["latency"]["p99_ms"]
