"""The operator alerts' job built from the config, and their metrics on the central
system's registry (`csms/metrics.py`).

Besides the payments' own checks (payments/alerts.py), the job raises one alert of kind
`security_event` for each critical security event a charger reports
(csms/ocpp16/security_messages.py, CRITICAL_SECURITY_EVENTS); subject: the event."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from csms.config import Config
from payments.alert_sender import WebhookSender
from payments.alerts import KINDS, AlertJob, AlertSettings, Candidate
from payments.transfers import TransferAlerts
from storage.db import Connection, Database
from storage.nodes import Leader, sole_node


def alert_job(
    config: Config,
    db: Database,
    registry: CollectorRegistry,
    clock: Callable[[], datetime],
    lead: Leader = sole_node,
) -> AlertJob:
    """The [alerts] section as a job (started and stopped next to the effect runner)."""
    settings = config.alerts
    sender = (
        WebhookSender(settings.webhook_url, settings.webhook_secret, settings.webhook_timeout)
        if settings.webhook_url
        else None
    )
    return AlertJob(
        db,
        AlertSettings(
            check_interval=settings.check_interval,
            review_hold_age=settings.review_hold_age,
            outbox_stuck_after=settings.outbox_stuck_after,
            retry_base=settings.retry_base,
            retry_ceiling=settings.retry_ceiling,
        ),
        sender,
        AlertMetrics(registry),
        clock,
        lead,
        sources=[SecurityEventAlerts(), TransferAlerts()],
    )


SECURITY_EVENT = "security_event"
_BATCH = 100  # events alerted on per check at most; the rest at the next check


class SecurityEventAlerts:
    """Implements `payments.alerts.AlertSource`: critical security events not alerted on yet
    (`alert_due`, set when the event is stored)."""

    def due(self, conn: Connection) -> list[Candidate]:
        rows = conn.execute(
            "SELECT id, charger_id, type, timestamp, tech_info, received_at FROM security_events"
            " WHERE alert_due = 1 ORDER BY id LIMIT ?",
            (_BATCH,),
        ).fetchall()
        return [_candidate(dict(row)) for row in rows]

    def raised(self, conn: Connection, candidates: list[Candidate]) -> None:
        for candidate in candidates:
            conn.execute(
                "UPDATE security_events SET alert_due = 0 WHERE id = ?",
                (candidate.details["eventId"],),
            )


def _candidate(event: dict[str, Any]) -> Candidate:
    return Candidate(
        SECURITY_EVENT,
        f"{SECURITY_EVENT}:{event['id']}",
        None,
        f"{event['charger_id']} reported {event['type']} at {event['timestamp']}",
        {
            "eventId": event["id"],
            "chargePointId": event["charger_id"],
            "type": event["type"],
            "timestamp": event["timestamp"],
            "techInfo": event["tech_info"],
            "receivedAt": event["received_at"],
        },
    )


class AlertMetrics:
    """Implements `payments.alerts.AlertsObserver`: in memory only."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._reviews = Gauge(
            "csms_payment_reviews_with_live_hold",
            "Payments in NeedsReview whose hold is still on the card (as of the last check)",
            registry=registry,
        )
        self._raised = Counter(
            "csms_alerts",
            "Operator alerts raised (logged, and sent to alerts.webhook_url when set), by kind",
            ["kind"],
            registry=registry,
        )
        self._deliveries = Counter(
            "csms_alert_deliveries",
            "Alert webhook delivery attempts, by kind and outcome (delivered, failed, given_up)",
            ["kind", "outcome"],
            registry=registry,
        )
        # Shown at 0 from the start, so that a rate has a baseline.
        for kind in (*KINDS, SECURITY_EVENT):
            self._raised.labels(kind)

    def reviews_with_live_hold(self, count: int) -> None:
        self._reviews.set(count)

    def alert_raised(self, kind: str) -> None:
        self._raised.labels(kind).inc()

    def alert_delivery(self, kind: str, outcome: str) -> None:
        self._deliveries.labels(kind, outcome).inc()
