"""Applies events to reservations: load, transition, then save state and effects in one commit.

Events come from the payment API, Stripe webhooks, the chargers (through the composition
root), the effect runner and the clock. Whatever their source and however often they
arrive, each goes through `handle`, which is the only writer of reservations.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from payments import reservation as machine
from payments.codec import event_name
from payments.observe import PaymentsObserver
from payments.ports import ChargerControl
from payments.pricing import Tariff, hold_amount
from payments.refunds import RefundRecord, RefundStore
from payments.reservation import (
    ChargerFacts,
    Decision,
    Event,
    Hold,
    Policy,
    Reservation,
    State,
    next_deadline,
    transition,
)
from payments.store import PaymentStore, PendingEffect
from storage.clock import utc_now

log = structlog.get_logger()

# Generated OCPP idTags start with this, so that charger lookups can skip other tags fast.
TAG_PREFIX = "PAY"
_TAG_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: readable in logs


def new_id_tag() -> str:
    """A CiString20 idTag: PAY + 16 random characters (80 bits)."""
    return TAG_PREFIX + "".join(secrets.choice(_TAG_ALPHABET) for _ in range(16))


# A transition as committed: the decision, and the effects it queued in the outbox.
Committed = tuple[Decision, list[PendingEffect]]


@dataclass(frozen=True)
class WebhookContext:
    event_id: str
    event_type: str


class ActiveIndex:
    """Which connectors and transactions have an active reservation, in memory.

    Most OCPP messages concern no payment; this lets them pass without a query. The
    coordinator is the only writer of reservations, so it keeps the index true: loaded at
    start-up, updated after every commit.
    """

    def __init__(self) -> None:
        self.connectors: dict[tuple[str, int], str] = {}
        self.transactions: dict[int, str] = {}

    def update(self, r: Reservation) -> None:
        key = (r.charger_id, r.connector_id)
        if r.active:
            self.connectors[key] = r.id
            if r.transaction_id is not None:
                self.transactions[r.transaction_id] = r.id
            return
        if self.connectors.get(key) == r.id:
            del self.connectors[key]
        if r.transaction_id is not None and self.transactions.get(r.transaction_id) == r.id:
            del self.transactions[r.transaction_id]


class RefundRefused(Exception):
    """The refund cannot be made: nothing captured, or more than what is left."""


class Coordinator:
    def __init__(
        self,
        store: PaymentStore,
        refunds: RefundStore,
        chargers: ChargerControl,
        policy: Policy,
        *,
        payment_window: float,
        clock: Callable[[], datetime] = utc_now,
        observer: PaymentsObserver | None = None,
    ) -> None:
        self.store = store
        self.refunds = refunds
        self._chargers = chargers
        self.policy = policy
        self._payment_window = payment_window
        self.clock = clock
        self.observer = observer  # for the webhook handler, which reaches payments through here
        self._effects_committed: Callable[[Sequence[PendingEffect]], None] = lambda _: None
        self.index = ActiveIndex()

    async def load(self) -> None:
        """Build the index of active reservations (at start-up)."""
        for r in await self.store.active_reservations():
            self.index.update(r)

    def on_effects(self, committed: Callable[[Sequence[PendingEffect]], None]) -> None:
        """`committed` is told of the effects each commit queued (none: look in the outbox)."""
        self._effects_committed = committed

    def facts(self, charger_id: str, connector_id: int) -> ChargerFacts:
        return ChargerFacts(
            online=self._chargers.is_online(charger_id),
            connector_status=self._chargers.connector_status(charger_id, connector_id),
        )

    # -- creating a reservation

    async def create(
        self, charger_id: str, connector_id: int, tariff: Tariff, email: str | None
    ) -> tuple[Reservation, str]:
        """Insert a reservation and its first effect; returns it with the driver's token.

        Raises sqlite3.IntegrityError when the connector already has an active reservation.
        """
        now = self.clock()
        r = Reservation(
            id="res_" + secrets.token_hex(12),
            charger_id=charger_id,
            connector_id=connector_id,
            id_tag=new_id_tag(),
            tariff=tariff,
            hold_amount=hold_amount(tariff),
            created_at=now,
            payment_deadline=now + timedelta(seconds=self._payment_window),
        )
        token = secrets.token_urlsafe(24)
        facts = self.facts(charger_id, connector_id)
        if r.hold_amount == 0:
            decision = machine.free_session(r, facts, now, self.policy)
        else:
            decision = Decision(r, (machine.CreateCheckout(),))

        def insert(conn: sqlite3.Connection) -> None:
            self.store.insert(conn, r, token, email)
            self._persist(conn, r, decision, "Created", now)
            self.store.audit(
                conn,
                now,
                "driver",
                "reservation created",
                r.id,
                r.hold_amount,
                tariff.currency,
                detail=f"{charger_id}/{connector_id}",
            )

        await self.store.db.write(insert)
        # Not handed over: the driver's request carries out the first effect (run_now).
        self._after_commit(decision, ())
        log.info(
            "payments.created",
            reservation_id=r.id,
            charge_point_id=charger_id,
            connector_id=connector_id,
            hold=r.hold_amount,
            currency=tariff.currency,
        )
        return decision.reservation, token

    # -- applying events

    async def handle(
        self,
        reservation_id: str,
        event: Event,
        *,
        effect_id: int | None = None,
        webhook: WebhookContext | None = None,
        actor: str = "system",
    ) -> Reservation | None:
        """Apply one event. With `effect_id`, the effect it reports on is marked done in the
        same commit; with `webhook`, the Stripe event is recorded there too and a repeat of
        it changes nothing. Returns the reservation as it is now (None: no such one)."""
        now = self.clock()

        def apply(conn: sqlite3.Connection) -> tuple[Reservation | None, Committed | None]:
            r = self.store.load(conn, reservation_id)
            if webhook is not None and not self.store.record_webhook(
                conn, webhook.event_id, webhook.event_type, reservation_id, event_name(event), now
            ):
                log.info(
                    "payments.webhook_duplicate",
                    event_id=webhook.event_id,
                    reservation_id=reservation_id,
                )
                return r, None
            if r is None:
                return None, None
            if effect_id is not None and not self.store.effect_done(
                conn, effect_id, event_name(event), now
            ):
                return r, None  # this effect's result was applied already
            decision = transition(
                r, event, self.facts(r.charger_id, r.connector_id), now, self.policy
            )
            queued = self._persist(conn, r, decision, event_name(event), now)
            self._audit(conn, r, decision.reservation, event, actor, now)
            self._settle_refund(conn, r, event, now)
            return decision.reservation, (decision, queued)

        reservation, committed = await self.store.db.write(apply)
        if committed is not None:
            self._after_commit(*committed)
        return reservation

    async def request_refund(
        self, reservation_id: str, refund_id: str, amount: int | None, reason: str, actor: str
    ) -> RefundRecord:
        """Refund `amount` (None: all that is left) of a captured payment, once per refund id.

        The same refund id asked again returns the first request's refund: a retried
        request refunds once. Raises RefundRefused, changing nothing, when it cannot be.
        """
        now = self.clock()

        def request(conn: sqlite3.Connection) -> tuple[RefundRecord | None, Committed | None]:
            existing = self.refunds.find(conn, refund_id)
            if existing is not None:
                return existing, None
            r = self.store.load(conn, reservation_id)
            assert r is not None
            wanted = r.refundable if amount is None else amount
            if wanted <= 0 or wanted > r.refundable:
                raise RefundRefused(
                    f"at most {r.refundable} can be refunded"
                    if r.hold is Hold.CAPTURED
                    else "only a captured payment can be refunded"
                )
            event = machine.RefundRequested(refund_id, wanted)
            decision = transition(
                r, event, self.facts(r.charger_id, r.connector_id), now, self.policy
            )
            self.refunds.add(conn, refund_id, r.id, wanted, reason, actor, now)
            queued = self._persist(conn, r, decision, event_name(event), now)
            self.store.audit(
                conn, now, actor, "refund requested", r.id, wanted, r.tariff.currency, None, reason
            )
            return self.refunds.find(conn, refund_id), (decision, queued)

        record, committed = await self.store.db.write(request)
        if committed is not None:
            self._after_commit(*committed)
        assert record is not None
        return record

    def _settle_refund(
        self, conn: sqlite3.Connection, r: Reservation, event: Event, now: datetime
    ) -> None:
        """A refund's outcome, recorded with the transition that reports it."""
        match event:
            case machine.RefundSucceeded(refund_id, amount, stripe_refund_id):
                self.refunds.settle(
                    conn, refund_id, stripe_refund_id=stripe_refund_id, failure=None, now=now
                )
                self.store.audit(
                    conn,
                    now,
                    "stripe",
                    "refunded",
                    r.id,
                    amount,
                    r.tariff.currency,
                    stripe_refund_id,
                )
            case machine.RefundFailed(refund_id, amount, reason):
                self.refunds.settle(conn, refund_id, stripe_refund_id=None, failure=reason, now=now)
                self.store.audit(
                    conn,
                    now,
                    "stripe",
                    "refund failed",
                    r.id,
                    amount,
                    r.tariff.currency,
                    None,
                    reason,
                )

    def _persist(
        self,
        conn: sqlite3.Connection,
        before: Reservation,
        decision: Decision,
        event: str,
        now: datetime,
    ) -> list[PendingEffect]:
        """Save the transition and queue its effects; returns the effects queued."""
        after = decision.reservation
        self.store.save(conn, before, after, event, next_deadline(after, self.policy), now)
        queued = [self.store.add_effect(conn, after.id, effect, now) for effect in decision.effects]
        if before.state != after.state:
            log.info(
                "payments.transition",
                reservation_id=after.id,
                cause=event,
                state=after.state.value,
                previous=before.state.value,
                hold=after.hold.value,
                reason=after.failure_reason,
            )
        return [pending for pending in queued if pending is not None]

    def _after_commit(self, decision: Decision, queued: Sequence[PendingEffect]) -> None:
        self.index.update(decision.reservation)
        if decision.effects:
            self._effects_committed(queued)

    def _audit(
        self,
        conn: sqlite3.Connection,
        before: Reservation,
        after: Reservation,
        event: Event,
        actor: str,
        now: datetime,
    ) -> None:
        """One audit line for each movement of money and each cancellation."""
        currency = after.tariff.currency
        lines: list[tuple[str, int | None, str | None]] = []
        if before.hold is Hold.NONE and after.hold is not Hold.NONE and after.payment_intent_id:
            lines.append(("hold confirmed", after.hold_amount, after.payment_intent_id))
        if before.checkout_session_id is None and after.checkout_session_id:
            lines.append(("checkout created", after.hold_amount, after.checkout_session_id))
        if before.hold is not Hold.CAPTURED and after.hold is Hold.CAPTURED:
            lines.append(("captured", after.captured_amount, after.payment_intent_id))
        if before.hold is not Hold.RELEASED and after.hold is Hold.RELEASED:
            released = after.hold_amount
            lines.append(("hold released", released, after.payment_intent_id))
        if before.hold is not Hold.LOST and after.hold is Hold.LOST:
            lines.append(("hold cancelled by stripe", after.hold_amount, after.payment_intent_id))
        if isinstance(event, machine.Cancel) and before.state != after.state:
            lines.append((f"cancelled by {event.by}", None, None))
        if after.state is State.NEEDS_REVIEW and before.state is not State.NEEDS_REVIEW:
            lines.append(("needs review", None, after.payment_intent_id))
        for action, amount, stripe_id in lines:
            self.store.audit(
                conn,
                now,
                actor,
                action,
                after.id,
                amount,
                currency,
                stripe_id,
                after.failure_reason,
            )

    async def record_webhook(
        self,
        webhook: WebhookContext,
        reservation_id: str | None,
        audit: str | None,
        amount: int | None,
        stripe_id: str | None,
    ) -> bool:
        """Keep a Stripe event that changes no state (refunds, disputes); False if seen."""
        now = self.clock()

        def record(conn: sqlite3.Connection) -> bool:
            fresh = self.store.record_webhook(
                conn, webhook.event_id, webhook.event_type, reservation_id, "recorded", now
            )
            if fresh and audit:
                self.store.audit(
                    conn, now, "stripe", audit, reservation_id, amount, None, stripe_id
                )
            return fresh

        return await self.store.db.write(record)

    # -- what the chargers report (called by the OCPP side, through the composition root)

    async def authorize_tag(
        self, charger_id: str, connector_id: int | None, id_tag: str
    ) -> str | None:
        """Whether a generated tag may start a charge here: "Accepted", "Invalid", or None
        when the tag is not one of ours. Only on its connector, and only once."""
        if not id_tag.startswith(TAG_PREFIX):
            return None
        reservation_id = await self.store.find_id("id_tag", id_tag)
        if reservation_id is None:
            return None
        r = await self.store.get(reservation_id)
        assert r is not None
        allowed = (
            r.state in (State.AUTHORISED, State.AWAITING_PLUG, State.START_REQUESTED)
            and r.charger_id == charger_id
            and connector_id in (None, r.connector_id)
            and r.transaction_id is None
        )
        return "Accepted" if allowed else "Invalid"

    async def transaction_started(
        self,
        charger_id: str,
        connector_id: int,
        id_tag: str,
        transaction_id: int,
        meter_start_wh: int,
        started_at: datetime,
    ) -> None:
        if not id_tag.startswith(TAG_PREFIX):
            return
        reservation_id = await self.store.find_id("id_tag", id_tag)
        if reservation_id is None:
            return
        r = await self.store.get(reservation_id)
        if r is None or (r.charger_id, r.connector_id) != (charger_id, connector_id):
            return
        await self.handle(
            reservation_id,
            machine.TransactionStarted(transaction_id, meter_start_wh, started_at),
            actor="charger",
        )

    async def meter_values(
        self,
        charger_id: str,
        transaction_id: int,
        energy_register_wh: int | None,
        power_w: int | None,
        at: datetime,
    ) -> None:
        reservation_id = await self._by_transaction(charger_id, transaction_id)
        if reservation_id is not None:
            await self.handle(
                reservation_id,
                machine.MeterReading(energy_register_wh, power_w, at),
                actor="charger",
            )

    async def transaction_stopped(
        self, charger_id: str, transaction_id: int, meter_stop_wh: int, stopped_at: datetime
    ) -> None:
        reservation_id = await self._by_transaction(charger_id, transaction_id)
        if reservation_id is not None:
            await self.handle(
                reservation_id,
                machine.TransactionStopped(meter_stop_wh, stopped_at),
                actor="charger",
            )

    async def charger_changed(
        self, charger_id: str, connector_id: int | None, status_at: datetime | None
    ) -> None:
        """Connected, disconnected (connector None) or a connector's new status."""
        affected = [
            reservation_id
            for (charger, connector), reservation_id in list(self.index.connectors.items())
            if charger == charger_id and connector_id in (None, 0, connector)
        ]
        for reservation_id in affected:
            await self.handle(reservation_id, machine.ChargerChanged(status_at), actor="charger")

    async def _by_transaction(self, charger_id: str, transaction_id: int) -> str | None:
        reservation_id = self.index.transactions.get(transaction_id)
        if reservation_id is None:
            return None
        r = await self.store.get(reservation_id)
        return reservation_id if r is not None and r.charger_id == charger_id else None

    # -- time

    async def tick(self) -> int:
        """Wake the reservations whose next deadline has passed; returns how many."""
        due = await self.store.waking(self.clock())
        for reservation_id in due:
            await self.handle(reservation_id, machine.Tick())
        return len(due)
