"""Operator alerts: money that needs a person, found by a periodic check of the books.

Four kinds, each raised once per subject:

- `needs_review`: a payment in NeedsReview whose hold is still on the card (held, or a
  capture or release under way) for longer than `alerts.review_hold_age`; subject: the
  reservation and the moment it entered review (a second stay in review is a new alert);
- `dispute`: a "dispute opened" line in the money audit log; subject: the dispute;
- `capture_failed`: a "needs review" audit line written by a refused capture (Stripe said
  no to the capture; the hold stays); subject: that audit line;
- `outbox_stuck`: an effect pending in the outbox for longer than
  `alerts.outbox_stuck_after`; subject: the effect.

Other parts of the product add checks of their own as `AlertSource`s (the chargers'
critical security events: csms/alerting.py); their alerts are raised, recorded and
delivered like these.

An alert is a structlog warning (`payments.alert`), a count in the metrics, and a row in
`alerts` whose JSON is POSTed, signed (see `payments.alert_sender`), to
`alerts.webhook_url` when one is set, retried with backoff until the receiver answers
2xx (given up after `MAX_ATTEMPTS`). The check runs in its own task every
`alerts.check_interval` seconds: it reads the books and writes only its own tables, and
a slow or dead receiver delays nothing but the next alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson
import structlog

from payments.alert_sender import DeliveryFailed, WebhookSender
from payments.codec import decode_reservation
from payments.reservation import Hold, State
from storage.clock import to_text, utc_now
from storage.db import Connection, Database
from storage.nodes import Leader, sole_node

log = structlog.get_logger()

NEEDS_REVIEW = "needs_review"
DISPUTE = "dispute"
CAPTURE_FAILED = "capture_failed"
OUTBOX_STUCK = "outbox_stuck"
KINDS = (NEEDS_REVIEW, DISPUTE, CAPTURE_FAILED, OUTBOX_STUCK)

# A hold that is still on the card: no one has captured or released it for good.
LIVE_HOLDS = (Hold.HELD.value, Hold.CAPTURING.value, Hold.RELEASING.value)
MAX_ATTEMPTS = 20  # deliveries of one alert before it is given up (logged as an error)
_AUDIT_MARK = "money_audit"
_BATCH = 100  # stuck effects alerted on, and deliveries tried, per check at most


@dataclass(frozen=True)
class AlertSettings:
    check_interval: float = 60.0
    review_hold_age: float = 3600.0
    outbox_stuck_after: float = 600.0
    retry_base: float = 5.0
    retry_ceiling: float = 900.0


class AlertsObserver(Protocol):
    """What the alerts report for monitoring (implemented by the process's metrics)."""

    def reviews_with_live_hold(self, count: int) -> None:
        """Payments in NeedsReview whose hold is still on the card, as of the last check."""

    def alert_raised(self, kind: str) -> None:
        """One new alert of `kind`."""

    def alert_delivery(self, kind: str, outcome: str) -> None:
        """One delivery attempt: `outcome` is "delivered", "failed" or "given_up"."""


@dataclass(frozen=True)
class Alert:
    id: int
    kind: str
    subject: str
    reservation_id: str | None
    body: dict[str, Any]


@dataclass(frozen=True)
class Candidate:
    """Something that calls for an alert; raised once per `subject`."""

    kind: str
    subject: str
    reservation_id: str | None
    message: str
    details: dict[str, Any]


class AlertSource(Protocol):
    """A further check, run inside the alert check's transactions on the database thread."""

    def due(self, conn: Connection) -> list[Candidate]:
        """What calls for an alert now (read-only: the check's read)."""
        ...

    def raised(self, conn: Connection, candidates: list[Candidate]) -> None:
        """`candidates` (from `due`) are recorded as alerts now, in this same transaction:
        mark them done so that `due` does not return them again."""
        ...


_Found = tuple[AlertSource, list[Candidate]]


class AlertJob:
    def __init__(
        self,
        db: Database,
        settings: AlertSettings,
        sender: WebhookSender | None,
        observer: AlertsObserver | None = None,
        clock: Callable[[], datetime] = utc_now,
        lead: Leader = sole_node,
        sources: Sequence[AlertSource] = (),
    ) -> None:
        self._db = db
        self._sources = tuple(sources)
        self._lead = lead  # checks and deliveries: on one node at a time, cluster-wide
        self.settings = settings
        self._sender = sender
        self._observer = observer
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    # -- running

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="payments-alerts")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._sender is not None:
            await self._sender.close()

    async def _loop(self) -> None:
        while True:
            pause = self.settings.check_interval
            try:
                if await self._lead("alerts"):
                    await self.check()
                    next_delivery = await self.deliver()
                    if next_delivery is not None:
                        pause = min(pause, max(0.0, next_delivery))
            except asyncio.CancelledError:
                raise
            except Exception:
                # The books or the receiver misbehave: try again next time, never crash.
                log.exception("payments.alerts_check_failed")
            await asyncio.sleep(pause)

    # -- raising

    async def check(self) -> list[Alert]:
        """Look at the books once; raise (and record) the alerts not raised before."""
        now = self._clock()
        settings = self.settings
        review_since = now - timedelta(seconds=settings.review_hold_age)
        stuck_since = now - timedelta(seconds=settings.outbox_stuck_after)
        status = "pending" if self._sender is not None else "unsent"

        def look(conn: Connection) -> tuple[int, list[Candidate], int, int, list[_Found]]:
            live, candidates = _reviews(conn, review_since)
            mark, top, lines = _audit_lines(conn)
            found = [(source, source.due(conn)) for source in self._sources]
            extra = [(source, due) for source, due in found if due]
            return live, candidates + lines + _stuck_effects(conn, stuck_since), mark, top, extra

        def record(conn: Connection) -> list[Alert]:
            raised = [
                alert
                for candidate in candidates + [c for _, due in extra for c in due]
                if (alert := _record(conn, candidate, status, now)) is not None
            ]
            for source, due in extra:
                source.raised(conn, due)
            conn.execute(
                "INSERT INTO alert_marks (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (_AUDIT_MARK, top),
            )
            return raised

        # Read first; write only when there is something new (most checks find nothing).
        live, candidates, mark, top, extra = await self._db.read(look)
        new = candidates or extra or top != mark
        raised = await self._db.write(record) if new else []
        if self._observer is not None:
            self._observer.reviews_with_live_hold(live)
        for alert in raised:
            log.warning(
                "payments.alert",
                kind=alert.kind,
                subject=alert.subject,
                reservation_id=alert.reservation_id,
                message=alert.body["message"],
                webhook="queued" if self._sender is not None else "off",
            )
            if self._observer is not None:
                self._observer.alert_raised(alert.kind)
        return raised

    # -- delivering

    async def deliver(self) -> float | None:
        """Try the alerts whose delivery is due; returns the seconds until the next is due
        (None: nothing is waiting)."""
        if self._sender is None:
            return None
        now = self._clock()
        rows = await self._db.fetchall(
            "SELECT id, kind, payload, attempts FROM alerts WHERE status = 'pending'"
            " AND next_attempt_at <= ? ORDER BY id LIMIT ?",
            (to_text(now), _BATCH),
        )
        sender = self._sender
        for row in rows:
            try:
                await sender.send(row["payload"].encode(), f"alert_{row['id']}")
            except DeliveryFailed as failure:
                await self._failed(row["id"], row["kind"], row["attempts"] + 1, str(failure))
            else:
                await self._db.execute(
                    "UPDATE alerts SET status = 'sent', attempts = attempts + 1, sent_at = ?,"
                    " last_error = NULL WHERE id = ?",
                    (to_text(self._clock()), row["id"]),
                )
                log.info("payments.alert_delivered", alert_id=row["id"], kind=row["kind"])
                if self._observer is not None:
                    self._observer.alert_delivery(row["kind"], "delivered")
        following = await self._db.fetchone(
            "SELECT MIN(next_attempt_at) AS at FROM alerts WHERE status = 'pending'"
        )
        if following is None or following["at"] is None:
            return None
        due = datetime.fromisoformat(following["at"])
        return max(0.0, (due - self._clock()).total_seconds())

    async def _failed(self, alert_id: int, kind: str, attempts: int, error: str) -> None:
        now = self._clock()
        if attempts >= MAX_ATTEMPTS:
            await self._db.execute(
                "UPDATE alerts SET status = 'failed', attempts = ?, last_error = ? WHERE id = ?",
                (attempts, error, alert_id),
            )
            log.error("payments.alert_given_up", alert_id=alert_id, kind=kind, error=error)
            outcome = "given_up"
        else:
            delay = min(self.settings.retry_ceiling, self.settings.retry_base * 2 ** (attempts - 1))
            delay *= random.uniform(0.75, 1.25)
            await self._db.execute(
                "UPDATE alerts SET attempts = ?, last_error = ?, next_attempt_at = ? WHERE id = ?",
                (attempts, error, to_text(now + timedelta(seconds=delay)), alert_id),
            )
            log.warning(
                "payments.alert_delivery_failed",
                alert_id=alert_id,
                kind=kind,
                attempts=attempts,
                retry_in=round(delay, 1),
                error=error,
            )
            outcome = "failed"
        if self._observer is not None:
            self._observer.alert_delivery(kind, outcome)

    async def alerts(self) -> list[dict[str, Any]]:
        """Every alert raised so far, oldest first (for the operator and the tests)."""
        rows = await self._db.fetchall("SELECT * FROM alerts ORDER BY id")
        return [dict(row) for row in rows]


# -- the checks (on the database thread, inside the check's transaction)


def _payment(conn: Connection, reservation_id: str | None) -> dict[str, Any]:
    """What an alert says about its payment."""
    if reservation_id is None:
        return {}
    row = conn.execute("SELECT data FROM reservations WHERE id = ?", (reservation_id,)).fetchone()
    if row is None:
        return {"reservationId": reservation_id}
    r = decode_reservation(row["data"])
    return {
        "reservationId": r.id,
        "chargePointId": r.charger_id,
        "connectorId": r.connector_id,
        "state": r.state.value,
        "hold": r.hold.value,
        "holdAmount": r.hold_amount,
        "capturedAmount": r.captured_amount,
        "currency": r.tariff.currency,
        "paymentIntentId": r.payment_intent_id,
        "reason": r.failure_reason,
    }


def _alerted(conn: Connection, subject: str) -> bool:
    return conn.execute("SELECT 1 FROM alerts WHERE subject = ?", (subject,)).fetchone() is not None


def _reviews(conn: Connection, entered_before: datetime) -> tuple[int, list[Candidate]]:
    """How many reviews hold money on a card, and those that have for too long."""
    rows = conn.execute(
        "SELECT r.id, r.updated_at, (SELECT MAX(h.at) FROM reservation_history h"
        "  WHERE h.reservation_id = r.id AND h.to_state = ? AND h.from_state != ?) AS since"
        " FROM reservations r WHERE r.state = ? AND r.hold IN (?, ?, ?)",
        (State.NEEDS_REVIEW.value,) * 3 + LIVE_HOLDS,
    ).fetchall()
    found = []
    limit = to_text(entered_before)
    for row in rows:
        since = row["since"] or row["updated_at"]
        subject = f"{NEEDS_REVIEW}:{row['id']}:{since}"
        if since > limit or _alerted(conn, subject):
            continue
        payment = _payment(conn, row["id"])
        found.append(
            Candidate(
                NEEDS_REVIEW,
                subject,
                row["id"],
                f"in review since {since} with {payment['holdAmount']} {payment['currency']}"
                " still held on the card",
                payment | {"inReviewSince": since},
            )
        )
    return len(rows), found


def _audit_lines(conn: Connection) -> tuple[int, int, list[Candidate]]:
    """Disputes and refused captures written to the audit log since the last check: the
    last line read before, the last one read now, and the alerts they call for."""
    mark_row = conn.execute(
        "SELECT value FROM alert_marks WHERE name = ?", (_AUDIT_MARK,)
    ).fetchone()
    mark = mark_row["value"] if mark_row else 0
    top = conn.execute("SELECT COALESCE(MAX(id), 0) AS id FROM money_audit").fetchone()["id"]
    top = min(top, mark + 10_000)  # a long backlog is read over several checks
    rows = conn.execute(
        "SELECT a.* FROM money_audit a WHERE a.id > ? AND a.id <= ? AND (a.action = ?"
        " OR (a.action = ? AND EXISTS (SELECT 1 FROM reservation_history h"
        "  WHERE h.reservation_id = a.reservation_id AND h.at = a.at AND h.event = ?)))"
        " ORDER BY a.id",
        (mark, top, "dispute opened", "needs review", "CaptureRejected"),
    ).fetchall()
    found = []
    for line in rows:
        payment = _payment(conn, line["reservation_id"])
        if line["action"] == "dispute opened":
            subject = line["stripe_id"] or f"audit:{line['id']}"
            details = payment | {
                "disputeId": line["stripe_id"],
                "disputedAmount": line["amount"],
                "disputeCurrency": line["currency"] or payment.get("currency"),
                "at": line["at"],
            }
            found.append(
                Candidate(
                    DISPUTE,
                    f"{DISPUTE}:{subject}",
                    line["reservation_id"],
                    f"the cardholder disputed {line['amount']} of the payment",
                    details,
                )
            )
        else:
            details = payment | {"reason": line["detail"], "at": line["at"]}
            found.append(
                Candidate(
                    CAPTURE_FAILED,
                    f"{CAPTURE_FAILED}:{line['id']}",
                    line["reservation_id"],
                    f"Stripe refused the capture: {line['detail']}",
                    details,
                )
            )
    return mark, top, found


def _stuck_effects(conn: Connection, created_before: datetime) -> list[Candidate]:
    rows = conn.execute(
        "SELECT id, reservation_id, kind, attempts, last_error, created_at, next_attempt_at"
        " FROM effects e WHERE status = 'pending' AND created_at <= ? AND NOT EXISTS"
        " (SELECT 1 FROM alerts WHERE subject = ? || e.id) ORDER BY id LIMIT ?",
        (to_text(created_before), f"{OUTBOX_STUCK}:", _BATCH),
    ).fetchall()
    return [
        Candidate(
            OUTBOX_STUCK,
            f"{OUTBOX_STUCK}:{row['id']}",
            row["reservation_id"],
            f"{row['kind']} pending since {row['created_at']} after {row['attempts']} attempts",
            _payment(conn, row["reservation_id"])
            | {
                "effectId": row["id"],
                "effect": row["kind"],
                "attempts": row["attempts"],
                "lastError": row["last_error"],
                "pendingSince": row["created_at"],
                "nextAttemptAt": row["next_attempt_at"],
            },
        )
        for row in rows
    ]


def _record(conn: Connection, candidate: Candidate, status: str, now: datetime) -> Alert | None:
    """Insert the alert unless its subject was alerted on before; None then."""
    cursor = conn.execute(
        "INSERT INTO alerts (kind, subject, reservation_id, payload, status, next_attempt_at,"
        " created_at) VALUES (?, ?, ?, '{}', ?, ?, ?) ON CONFLICT (subject) DO NOTHING"
        " RETURNING id",
        (
            candidate.kind,
            candidate.subject,
            candidate.reservation_id,
            status,
            to_text(now),
            to_text(now),
        ),
    )
    inserted = cursor.fetchone()
    if inserted is None:  # alerted on before
        return None
    alert_id = inserted["id"]
    body = {
        "id": f"alert_{alert_id}",
        "kind": candidate.kind,
        "subject": candidate.subject,
        "message": candidate.message,
        "createdAt": to_text(now),
        "reservationId": candidate.reservation_id,
        "details": candidate.details,
    }
    conn.execute(
        "UPDATE alerts SET payload = ? WHERE id = ?", (orjson.dumps(body).decode(), alert_id)
    )
    return Alert(alert_id, candidate.kind, candidate.subject, candidate.reservation_id, body)
