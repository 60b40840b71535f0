"""Prometheus metrics of one central system, served at `/metrics`.

Each `CentralSystem` has its own registry (tests run many in one process). The parts that
record (the OCPP dispatcher, the Stripe gateway, the webhook handler) only bump counters
and histograms in memory; what lives in the database (reservations, the outbox) is
counted when Prometheus scrapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import choose_encoder

from payments.reconcile import ACTING, Kind
from payments.reservation import State
from storage.clock import utc_now
from storage.db import Database

# Seconds, in steps suited to handlers that take a millisecond or a few (a SQLite commit).
HANDLER_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
# Stripe answers in tens to hundreds of milliseconds; the SDK's timeout is 20 s by default.
STRIPE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0)


class Metrics:
    """The registry and its instruments; implements `payments.observe.PaymentsObserver`."""

    def __init__(
        self,
        db: Database,
        connected: Callable[[], list[str]],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._db = db
        self._clock = clock
        self.registry = CollectorRegistry()
        registry = self.registry
        ProcessCollector(registry=registry)
        registry.register(_DatabaseCollector(db))
        Gauge(
            "csms_chargers_connected", "Chargers with an open OCPP connection", registry=registry
        ).set_function(lambda: len(connected()))
        self._messages = Counter(
            "csms_ocpp_messages",
            "CALLs received from chargers, by action and result (ok or the CALLERROR code)",
            ["action", "result"],
            registry=registry,
        )
        self._handler_seconds = Histogram(
            "csms_ocpp_handler_seconds",
            "Time to handle a valid CALL from a charger, by action",
            ["action"],
            buckets=HANDLER_BUCKETS,
            registry=registry,
        )
        self._stripe_calls = Counter(
            "csms_stripe_calls",
            "Stripe API requests, by operation and outcome (ok, unavailable, rejected)",
            ["operation", "outcome"],
            registry=registry,
        )
        self._stripe_seconds = Histogram(
            "csms_stripe_call_seconds",
            "Stripe API request latency (the SDK's own retries included), by operation",
            ["operation"],
            buckets=STRIPE_BUCKETS,
            registry=registry,
        )
        self._webhooks = Counter(
            "csms_stripe_webhooks",
            "Stripe webhook events received, by type and what was done with them",
            ["type", "applied"],
            registry=registry,
        )
        self._reconcile_findings = Counter(
            "csms_reconcile_findings",
            "Reconciliation findings (our books against Stripe), by kind and outcome"
            " (applied, reported, failed)",
            ["kind", "outcome"],
            registry=registry,
        )
        for kind in Kind:  # every kind shown from the start, so that an alert sees it rise
            self._reconcile_findings.labels(kind.value, "applied" if kind in ACTING else "reported")
        self._reconcile_runs = Counter(
            "csms_reconcile_runs",
            "Reconciliation runs, by outcome (ok, unavailable: Stripe could not be listed, failed)",
            ["outcome"],
            registry=registry,
        )
        self._reconcile_last_ok = Gauge(
            "csms_reconcile_last_success_timestamp_seconds",
            "When the last reconciliation run completed (Unix time; 0: none yet)",
            registry=registry,
        )
        self._reservations = Gauge(
            "csms_reservations", "Reservations by state", ["state"], registry=registry
        )
        self._outbox_pending = Gauge(
            "csms_outbox_pending_effects", "Effects waiting in the outbox", registry=registry
        )
        self._outbox_oldest = Gauge(
            "csms_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending effect (0 when none is pending)",
            registry=registry,
        )

    # -- recording (hot paths: in memory only)

    def ocpp_message(self, action: str, result: str, seconds: float | None = None) -> None:
        """One CALL answered; `seconds` is the handler's time when a handler ran."""
        self._messages.labels(action, result).inc()
        if seconds is not None:
            self._handler_seconds.labels(action).observe(seconds)

    def stripe_call(self, operation: str, outcome: str, seconds: float) -> None:
        self._stripe_calls.labels(operation, outcome).inc()
        self._stripe_seconds.labels(operation).observe(seconds)

    def webhook(self, event_type: str, applied: str) -> None:
        self._webhooks.labels(event_type, applied).inc()

    def reconcile_finding(self, kind: str, outcome: str) -> None:
        self._reconcile_findings.labels(kind, outcome).inc()

    def reconcile_run(self, outcome: str, seconds: float) -> None:
        self._reconcile_runs.labels(outcome).inc()
        if outcome == "ok":
            self._reconcile_last_ok.set(self._clock().timestamp())

    # -- scraping

    async def exposition(self, accept: str) -> tuple[bytes, str]:
        """The current metrics in the format the scraper asked for, with its content type."""
        await self._count_from_database()
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type

    async def _count_from_database(self) -> None:
        rows = await self._db.fetchall(
            "SELECT state, COUNT(*) AS n FROM reservations GROUP BY state"
        )
        outbox = await self._db.fetchone(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM effects WHERE status = 'pending'"
        )
        assert outbox is not None
        # Every state is shown, 0 included, so that a state that empties drops to 0.
        counts = dict.fromkeys((state.value for state in State), 0)
        counts.update({row["state"]: row["n"] for row in rows})
        # No await from here on: a concurrent scrape never sees the gauge half set.
        self._reservations.clear()
        for state, n in counts.items():
            self._reservations.labels(state).set(n)
        self._outbox_pending.set(outbox["n"])
        age = 0.0
        if outbox["oldest"] is not None:
            oldest = datetime.fromisoformat(outbox["oldest"])
            age = max(0.0, (self._clock() - oldest).total_seconds())
        self._outbox_oldest.set(age)


class _DatabaseCollector:
    """Group commit at work: how many units of work the SQLite commits carried."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(
            "csms_db_commits", "SQLite transactions committed", value=self._db.commits
        )
        yield CounterMetricFamily(
            "csms_db_writes",
            "Units of work committed (a message's or a payment transition's writes)",
            value=self._db.writes,
        )
