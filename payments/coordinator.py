"""Applies events to reservations: load, transition, then save state and effects in one commit.

Events come from the payment API, Stripe webhooks, the chargers (through the composition
root), the effect runner and the clock. Whatever their source and however often they
arrive, each goes through `handle`, which is the only writer of reservations.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from payments import reservation as machine
from payments.active_index import ActiveIndex, IndexEntry
from payments.audit_log import AuditLog
from payments.codec import event_name
from payments.observe import PaymentsObserver
from payments.outbox import Outbox, PendingEffect
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
    transition,
)
from payments.reservations_store import ReservationStore
from payments.split import SplitRule
from payments.transfer_records import record as record_transfer
from payments.units import audit_transition, persist, settle_refund
from storage.clock import utc_now
from storage.db import Connection

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


class RefundRefused(Exception):
    """The refund cannot be made: nothing captured, or more than what is left."""


class ReviewRefused(Exception):
    """An operator's action on a review does not apply; the message says why."""


class Coordinator:
    def __init__(
        self,
        reservations: ReservationStore,
        outbox: Outbox,
        audit: AuditLog,
        refunds: RefundStore,
        chargers: ChargerControl,
        policy: Policy,
        *,
        payment_window: float,
        clock: Callable[[], datetime] = utc_now,
        observer: PaymentsObserver | None = None,
    ) -> None:
        self.reservations = reservations
        self.outbox = outbox
        self.audit = audit
        self.refunds = refunds
        self._db = reservations.db  # one database: the stores' writes share a commit
        self._chargers = chargers
        self.policy = policy
        self._payment_window = payment_window
        self.clock = clock
        self.observer = observer  # for the webhook handler, which reaches payments through here
        self._effects_committed: Callable[[Sequence[PendingEffect]], None] = lambda _: None
        self._changed: Callable[[IndexEntry], None] = lambda _: None
        self.index = ActiveIndex()

    async def load(self) -> None:
        """Bring the index of active reservations up to date with the database (at start-up,
        and whenever another node's news may have been missed)."""
        known = self.index.known()
        self.index.resync(await self.reservations.active_entries(), known)

    async def hand_over(self, reservation_id: str, created_at: datetime) -> Reservation | None:
        """The Checkout link is on its way to the driver: the whole payment window."""
        deadline = created_at + timedelta(seconds=self._payment_window)
        return await self.handle(reservation_id, machine.CheckoutHandedOver(deadline))

    def on_changed(self, changed: Callable[[IndexEntry], None]) -> None:
        """`changed` is told of each reservation this node commits, for the other nodes'
        indexes."""
        self._changed = changed

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
        self,
        charger_id: str,
        connector_id: int,
        tariff: Tariff,
        email: str | None,
        locale: str | None = None,
        charger_name: str | None = None,
        time_zone: str | None = None,
        payee: tuple[str, SplitRule] | None = None,
    ) -> tuple[Reservation, str]:
        """Insert a reservation and its first effect; returns it with the driver's token.
        `locale`: the language Checkout is shown in; `charger_name`: what its line item
        calls the charger; `time_zone`: the IANA zone its tariff's times of day are read in;
        `payee`: the site's owner and split rule (None: no owner).

        Raises Conflict when the connector already has an active reservation.
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
            # Short until the link reaches the driver: hand_over gives the whole window.
            payment_deadline=now
            + min(self.policy.handover_window, timedelta(seconds=self._payment_window)),
            time_zone=time_zone,
            owner_id=payee[0] if payee else None,
            split=payee[1] if payee else None,
        )
        token = secrets.token_urlsafe(24)
        facts = self.facts(charger_id, connector_id)
        if r.hold_amount == 0:
            decision = machine.free_session(r, facts, now, self.policy)
        else:
            decision = Decision(r, (machine.CreateCheckout(locale, charger_name),))

        reservations, outbox, audit = self.reservations, self.outbox, self.audit
        policy = self.policy

        def insert(conn: Connection) -> None:
            reservations.insert(conn, r, token, email)
            persist(reservations, outbox, policy, conn, r, decision, "Created", now)
            audit.write(
                conn,
                now,
                "driver",
                "reservation created",
                r.id,
                r.hold_amount,
                tariff.currency,
                detail=f"{charger_id}/{connector_id}",
            )

        await self._db.write(insert)
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
        reservation, _ = await self._handle(reservation_id, event, effect_id, webhook, actor)
        return reservation

    async def apply_finding(
        self, reservation_id: str, event: Event, key: str, actor: str = "reconciler"
    ) -> bool:
        """Apply what reconciliation found, once: `key` is recorded with the transition (in
        the table of Stripe's event ids), so of two reconcilers at the same time, on one
        node or two, one applies it. True when this call applied it."""
        webhook = WebhookContext(key, "reconcile")
        _, applied = await self._handle(reservation_id, event, None, webhook, actor)
        return applied

    async def _handle(
        self,
        reservation_id: str,
        event: Event,
        effect_id: int | None,
        webhook: WebhookContext | None,
        actor: str,
    ) -> tuple[Reservation | None, bool]:
        place = await self._place(reservation_id)
        if place is None and webhook is None:
            return None, False
        now = self.clock()
        # Read here, on the event loop: the unit of work below touches only its arguments.
        facts = self.facts(*place) if place else ChargerFacts(online=False, connector_status=None)
        return await self._apply(reservation_id, event, facts, now, effect_id, webhook, actor)

    async def _apply(
        self,
        reservation_id: str,
        event: Event,
        facts: ChargerFacts,
        now: datetime,
        effect_id: int | None,
        webhook: WebhookContext | None,
        actor: str,
    ) -> tuple[Reservation | None, bool]:
        """One unit of work for the event; whether it made a transition."""
        reservations, outbox, audit = self.reservations, self.outbox, self.audit
        policy, refunds = self.policy, self.refunds

        def apply(conn: Connection) -> tuple[Reservation | None, Committed | None]:
            r = reservations.load(conn, reservation_id)
            if webhook is not None and not audit.record_webhook(
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
            if effect_id is not None and not outbox.done(conn, effect_id, event_name(event), now):
                return r, None  # this effect's result was applied already
            decision = transition(r, event, facts, now, policy)
            queued = persist(
                reservations, outbox, policy, conn, r, decision, event_name(event), now
            )
            audit_transition(audit, conn, r, decision.reservation, event, actor, now)
            settle_refund(audit, refunds, conn, r, event, now)
            record_transfer(audit, conn, r, decision.reservation, event, actor, now)
            return decision.reservation, (decision, queued)

        reservation, committed = await self._db.write(apply)
        if committed is not None:
            self._after_commit(*committed)
        return reservation, committed is not None

    async def review(
        self, reservation_id: str, action: machine.ReviewAction, actor: str
    ) -> Reservation:
        """An operator's way out of NeedsReview: retry the capture, release the hold, or
        resolve with a note. Raises ReviewRefused, changing nothing, when it does not apply."""
        place = await self._place(reservation_id)
        if place is None:
            raise ReviewRefused("no such payment")
        facts, now = self.facts(*place), self.clock()
        reservations, outbox, audit = self.reservations, self.outbox, self.audit
        policy = self.policy

        def act(conn: Connection) -> tuple[Reservation, Committed]:
            r = reservations.load(conn, reservation_id)
            assert r is not None
            refusal = machine.review_refusal(r, action, policy, now)
            if refusal is not None:
                raise ReviewRefused(refusal)
            decision = transition(r, action, facts, now, policy)
            queued = persist(
                reservations, outbox, policy, conn, r, decision, event_name(action), now
            )
            audit_transition(audit, conn, r, decision.reservation, action, actor, now)
            return decision.reservation, (decision, queued)

        reservation, committed = await self._db.write(act)
        self._after_commit(*committed)
        return reservation

    async def _place(self, reservation_id: str) -> tuple[str, int] | None:
        """The reservation's charger and connector (they never change): from memory for
        active reservations, else one read."""
        place = self.index.places.get(reservation_id)
        return place or await self.reservations.place(reservation_id)

    async def request_refund(
        self, reservation_id: str, refund_id: str, amount: int | None, reason: str, actor: str
    ) -> RefundRecord:
        """Refund `amount` (None: all that is left) of a captured payment, once per refund id.

        The same refund id asked again returns the first request's refund: a retried
        request refunds once. Raises RefundRefused, changing nothing, when it cannot be.
        """
        place = await self._place(reservation_id)
        if place is None:
            raise RefundRefused("no such payment")
        facts, now = self.facts(*place), self.clock()
        reservations, outbox, audit = self.reservations, self.outbox, self.audit
        policy, refunds = self.policy, self.refunds

        def request(conn: Connection) -> tuple[RefundRecord | None, Committed | None]:
            existing = refunds.find(conn, refund_id)
            if existing is not None:
                return existing, None
            r = reservations.load(conn, reservation_id)
            assert r is not None
            wanted = r.refundable if amount is None else amount
            if wanted <= 0 or wanted > r.refundable:
                raise RefundRefused(
                    f"at most {r.refundable} can be refunded"
                    if r.hold is Hold.CAPTURED
                    else "only a captured payment can be refunded"
                )
            event = machine.RefundRequested(refund_id, wanted)
            decision = transition(r, event, facts, now, policy)
            refunds.add(conn, refund_id, r.id, wanted, reason, actor, now)
            queued = persist(
                reservations, outbox, policy, conn, r, decision, event_name(event), now
            )
            audit.write(
                conn, now, actor, "refund requested", r.id, wanted, r.tariff.currency, None, reason
            )
            return refunds.find(conn, refund_id), (decision, queued)

        record, committed = await self._db.write(request)
        if committed is not None:
            self._after_commit(*committed)
        assert record is not None
        return record

    def _after_commit(self, decision: Decision, queued: Sequence[PendingEffect]) -> None:
        entry = IndexEntry.of(decision.reservation)
        self.index.apply(entry)
        self._changed(entry)
        if decision.effects:
            self._effects_committed(queued)

    async def record_webhook(
        self,
        webhook: WebhookContext,
        reservation_id: str | None,
        audit: str | None,
        amount: int | None,
        stripe_id: str | None,
    ) -> bool:
        """Keep a Stripe event that changes no state (refunds, disputes); False if seen."""
        now, audit_log = self.clock(), self.audit

        def record(conn: Connection) -> bool:
            fresh = audit_log.record_webhook(
                conn, webhook.event_id, webhook.event_type, reservation_id, "recorded", now
            )
            if fresh and audit:
                audit_log.write(conn, now, "stripe", audit, reservation_id, amount, None, stripe_id)
            return fresh

        return await self._db.write(record)

    # -- time

    async def tick(self) -> int:
        """Wake the reservations whose next deadline has passed; returns how many."""
        due = await self.reservations.waking(self.clock())
        for reservation_id in due:
            await self.handle(reservation_id, machine.Tick())
        return len(due)
