"""The webhook measurements' own parts: signatures Stripe's SDK accepts, and a stream whose
repeats follow their originals. Their smoke run is in test_bench_smoke."""

from __future__ import annotations

import random

import stripe

from bench.perf.webhooks_driver import signature
from bench.perf.webhooks_events import build_stream, event_id


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
