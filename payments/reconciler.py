"""Reconciliation, the job: list what Stripe holds, compare it with our books, act.

Every `interval` seconds (and on demand: `csms reconcile`, `POST /api/reconcile`) a run:

1. reads our books first: the reservations created in the window (and a day before it,
   for the Checkout Sessions that lead into it) and every one still holding money;
2. lists Stripe's Checkout Sessions, PaymentIntents, charges, refunds and disputes
   created since the start of the window, every page (Stripe is the source of truth);
3. loads the reservations and refunds the listing names or points to that step 1 did
   not read (so that a name not found really does not exist here);
4. compares (`payments.reconcile.compare`, pure, every rule in its docstring);
5. tells each reservation what Stripe says, through the state machine and the outbox
   only: `coordinator.apply_finding(reservation, event, key)`. The key
   is recorded in the commit of the transition, in the table of Stripe event ids, so a
   second reconciler running at the same time (another node, a command during a
   scheduled run) applies each finding once; a finding whose key was recorded before the
   run is not handed over again;
6. reports: one structlog line per run and per finding worth a look, a counter per
   finding kind, and the summary (`ReconcileReport`) for the command and the API. The
   money audit lines are the transitions' own, written in the same commit, with the
   actor "reconciler".

Our books are read before Stripe is listed, so Stripe is always the newer side: what a
run finds is Stripe ahead of our books (a fact the machine absorbs, even when our own
effect reported it meanwhile), never our books ahead of a stale listing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from payments.codec import decode_reservation, event_name
from payments.coordinator import Coordinator
from payments.reconcile import (
    Books,
    Finding,
    Kind,
    StripeCharge,
    StripeDispute,
    StripeIntent,
    StripeRefund,
    StripeSession,
    StripeSnapshot,
    compare,
)
from payments.refunds import RefundRecord
from payments.reservation import Hold, Reservation
from payments.stripe_gateway import StripeGateway, StripeRejected, StripeUnavailable
from storage.clock import to_text
from storage.db import Connection, Database
from storage.nodes import Leader, sole_node

log = structlog.get_logger()

ACTOR = "reconciler"
# A Checkout Session lives at most 24 hours: the sessions of a window's PaymentIntents
# were created at most that long before it.
SESSION_LIFETIME = timedelta(hours=24)
# The first scheduled run after a start, at the latest: a restart is when it matters most.
FIRST_RUN_AFTER = 60.0
# Values per SQL statement when looking ids up.
_CHUNK = 500
# The hold states in which our books say money is still held at Stripe.
_HOLDING = (Hold.HELD.value, Hold.CAPTURING.value, Hold.RELEASING.value)
# What a report lists, in this order.
RESOURCES = ("checkout_sessions", "payment_intents", "charges", "refunds", "disputes")

# Outcomes of a finding.
APPLIED = "applied"  # handed to the state machine with its dedupe key
ALREADY_APPLIED = "already_applied"  # its key was recorded by an earlier run
REPORTED = "reported"  # for a person: nothing proves what to do
FAILED = "failed"  # handing it over failed; the next run tries again


class ReconcileObserver(Protocol):
    """What the job reports for monitoring (implemented by `csms.metrics.Metrics`)."""

    def reconcile_finding(self, kind: str, outcome: str) -> None: ...

    def reconcile_run(self, outcome: str, seconds: float) -> None: ...


@dataclass(frozen=True)
class Outcome:
    finding: Finding
    outcome: str


@dataclass(frozen=True)
class ReconcileReport:
    since: datetime
    started_at: datetime
    finished_at: datetime
    listed: dict[str, int | None]  # per resource; None: Stripe would not list it
    reservations: int  # our reservations compared
    outcomes: tuple[Outcome, ...]

    def counts(self) -> dict[str, int]:
        """Findings per kind, those settled by an earlier run left out."""
        counted = Counter(
            o.finding.kind.value for o in self.outcomes if o.outcome != ALREADY_APPLIED
        )
        return {kind.value: counted[kind.value] for kind in Kind if counted[kind.value]}

    def total(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes if o.outcome == outcome)

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "listed": dict(self.listed),
            "reservations": self.reservations,
            "counts": self.counts(),
            "applied": self.total(APPLIED),
            "reported": self.total(REPORTED),
            "failed": self.total(FAILED),
            "already_applied": self.total(ALREADY_APPLIED),
            "findings": [
                {
                    "kind": o.finding.kind.value,
                    "reservation_id": o.finding.reservation_id,
                    "stripe_id": o.finding.stripe_id,
                    "amount": o.finding.amount,
                    "currency": o.finding.currency or None,
                    "detail": o.finding.detail,
                    "action": event_name(o.finding.event) if o.finding.event else None,
                    "outcome": o.outcome,
                }
                for o in self.outcomes
            ],
        }


class Reconciler:
    def __init__(
        self,
        gateway: StripeGateway,
        coordinator: Coordinator,
        db: Database,
        *,
        interval: float,
        window: timedelta,
        observer: ReconcileObserver | None = None,
        clock: Callable[[], datetime] | None = None,
        lead: Leader = sole_node,
    ) -> None:
        self._gateway = gateway
        # More to do after each scheduled run, on the node that leads only (owners'
        # accounts read again, accrued shares swept): `run_after`.
        self.after_run: list[Callable[[], Awaitable[object]]] = []
        self._lead = lead  # the scheduled runs: on one node at a time, cluster-wide
        self._coordinator = coordinator
        self._db = db  # our books: read-only queries of the payments tables
        self.interval = interval
        self.window = window
        self._observer = observer
        self._clock = clock or coordinator.clock
        self._lock = asyncio.Lock()  # one run at a time in this process
        # Further comparisons (owners' transfers: payments.reconcile_transfers), each
        # giving the findings of the window that starts at its argument.
        self.sources: list[Callable[[datetime], Awaitable[list[Finding]]]] = []
        self._task: asyncio.Task[None] | None = None

    def now(self) -> datetime:
        return self._clock()

    # -- the schedule

    def start(self) -> None:
        """Run every `interval` seconds (0: only on demand)."""
        if self.interval > 0:
            self._task = asyncio.create_task(self._loop(), name="reconciler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        pause = min(self.interval, FIRST_RUN_AFTER)
        while True:
            await asyncio.sleep(pause)
            pause = self.interval
            # A failure is logged and counted by run(); the next run tries again.
            with contextlib.suppress(Exception):
                if await self._lead("reconcile"):
                    await self.run()
                    await self.run_after()

    async def run_after(self) -> None:
        """The jobs of `after_run`, in order, each whatever the others did (a failure is
        logged; the next scheduled run tries again)."""
        for job in self.after_run:
            try:
                await job()
            except Exception:
                log.exception("reconcile.after_run_failed", job=getattr(job, "__qualname__", ""))

    # -- one run

    async def run(self, since: datetime | None = None) -> ReconcileReport:
        """Reconcile the objects created since `since` (default: the window before now).

        Raises StripeUnavailable or StripeRejected when Stripe cannot be listed: then
        nothing was compared and nothing was done.
        """
        async with self._lock:
            started = time.perf_counter()
            outcome = "failed"
            try:
                report = await self._run(since)
                outcome = "ok"
                return report
            except (StripeUnavailable, StripeRejected) as error:
                outcome = "unavailable"
                log.warning("payments.reconcile_failed", error=str(error)[:300])
                raise
            except Exception:
                log.exception("payments.reconcile_failed")
                raise
            finally:
                if self._observer is not None:
                    self._observer.reconcile_run(outcome, time.perf_counter() - started)

    async def _run(self, since: datetime | None) -> ReconcileReport:
        started_at = self._clock()
        since = since or started_at - self.window
        reservations = await self._reservations_before(since - SESSION_LIFETIME)
        snapshot, listed = await self._list(since)
        reservations |= await self._reservations_named(snapshot, reservations)
        refunds = await self._refunds_of(
            r.id for r in reservations.values() if r.hold is Hold.CAPTURED
        )
        books = [Books.of(r, refunds.get(r.id, ())) for r in reservations.values()]
        findings = compare(books, snapshot)
        for source in self.sources:
            findings += await source(since)
        recorded = await self._recorded([f.key for f in findings if f.key])
        outcomes = [await self._act(f, recorded) for f in findings]
        report = ReconcileReport(
            since, started_at, self._clock(), listed, len(books), tuple(outcomes)
        )
        log.info(
            "payments.reconciled",
            since=to_text(since),
            listed=listed,
            reservations=len(books),
            findings=report.counts(),
            applied=report.total(APPLIED),
            reported=report.total(REPORTED),
            failed=report.total(FAILED),
        )
        return report

    async def _act(self, finding: Finding, recorded: set[str]) -> Outcome:
        bound = log.bind(
            kind=finding.kind.value,
            reservation_id=finding.reservation_id,
            stripe_id=finding.stripe_id,
            amount=finding.amount,
            currency=finding.currency or None,
            detail=finding.detail,
        )
        if finding.event is None or finding.reservation_id is None or finding.key is None:
            outcome = REPORTED
            if finding.kind in (Kind.ORPHAN_HOLD, Kind.ORPHAN_PAYMENT):
                bound.error("payments.reconcile_orphan")  # money at Stripe nobody here owns
            else:
                bound.warning("payments.reconcile_reported")
        elif finding.key in recorded:
            outcome = ALREADY_APPLIED
        else:
            try:
                applied = await self._coordinator.apply_finding(
                    finding.reservation_id, finding.event, finding.key, actor=ACTOR
                )
            except Exception:
                bound.exception("payments.reconcile_action_failed")
                outcome = FAILED
            else:
                # Not applied: another reconciler (another node) recorded the key first.
                outcome = APPLIED if applied else ALREADY_APPLIED
                bound.info("payments.reconcile_applied", action=event_name(finding.event))
        if self._observer is not None and outcome != ALREADY_APPLIED:
            self._observer.reconcile_finding(finding.kind.value, outcome)
        return Outcome(finding, outcome)

    # -- Stripe

    async def _list(self, since: datetime) -> tuple[StripeSnapshot, dict[str, int | None]]:
        start = int(since.timestamp())
        sessions_start = int((since - SESSION_LIFETIME).timestamp())
        gateway = self._gateway
        sessions = await gateway.list_created("checkout_sessions", sessions_start)
        intents = await gateway.list_created("payment_intents", start)
        charges = await gateway.list_created("charges", start)
        refunds = await gateway.list_created("refunds", start)
        disputes: list[dict[str, Any]] | None
        try:
            disputes = await gateway.list_created("disputes", start)
        except StripeRejected as refused:
            # Then a disputed charge goes to review instead (see payments.reconcile).
            log.warning("payments.reconcile_disputes_unlisted", error=refused.message[:200])
            disputes = None
        snapshot = StripeSnapshot(
            since=start,
            sessions=[StripeSession.of(x) for x in sessions],
            intents=[StripeIntent.of(x) for x in intents],
            charges=[StripeCharge.of(x) for x in charges],
            refunds=[StripeRefund.of(x) for x in refunds],
            disputes=[StripeDispute.of(x) for x in disputes or ()],
        )
        listed = dict(
            zip(
                RESOURCES,
                (
                    len(sessions),
                    len(intents),
                    len(charges),
                    len(refunds),
                    None if disputes is None else len(disputes),
                ),
                strict=True,
            )
        )
        return snapshot, listed

    # -- our books (read-only queries of the payments tables)

    async def _reservations_before(self, created_since: datetime) -> dict[str, Reservation]:
        holding = ", ".join(f"'{hold}'" for hold in _HOLDING)
        rows = await self._db.fetchall(
            f"SELECT data FROM reservations WHERE created_at >= ? OR hold IN ({holding})",
            (to_text(created_since),),
        )
        return {r.id: r for r in (decode_reservation(row["data"]) for row in rows)}

    async def _reservations_named(
        self, snapshot: StripeSnapshot, known: dict[str, Reservation]
    ) -> dict[str, Reservation]:
        """Reservations the listing names or points to that are not in `known`."""
        names = sorted(snapshot.named_reservations() - known.keys())
        ids = sorted(snapshot.stripe_ids())

        def find(conn: Connection) -> dict[str, Reservation]:
            found: dict[str, Reservation] = {}
            for column, values in (
                ("id", names),
                ("checkout_session_id", ids),
                ("payment_intent_id", ids),
            ):
                for chunk in _chunks(values):
                    marks = ", ".join("?" * len(chunk))
                    rows = conn.execute(
                        f"SELECT data FROM reservations WHERE {column} IN ({marks})", chunk
                    )
                    for row in rows:
                        r = decode_reservation(row["data"])
                        if r.id not in known:
                            found[r.id] = r
            return found

        return await self._db.read(find)

    async def _refunds_of(self, reservation_ids: Iterable[str]) -> dict[str, list[RefundRecord]]:
        wanted = sorted(set(reservation_ids))

        def find(conn: Connection) -> dict[str, list[RefundRecord]]:
            found: dict[str, list[RefundRecord]] = {}
            for chunk in _chunks(wanted):
                marks = ", ".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT * FROM refunds WHERE reservation_id IN ({marks})", chunk
                )
                for row in rows:
                    found.setdefault(row["reservation_id"], []).append(RefundRecord.of(row))
            return found

        return await self._db.read(find)

    async def _recorded(self, keys: Sequence[str]) -> set[str]:
        """The dedupe keys recorded already (with the Stripe event ids)."""

        def find(conn: Connection) -> set[str]:
            found: set[str] = set()
            for chunk in _chunks(list(keys)):
                marks = ", ".join("?" * len(chunk))
                rows = conn.execute(f"SELECT id FROM webhook_events WHERE id IN ({marks})", chunk)
                found.update(row["id"] for row in rows)
            return found

        return await self._db.read(find) if keys else set()


def _chunks(values: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), _CHUNK):
        yield list(values[start : start + _CHUNK])
