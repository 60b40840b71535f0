"""Payments: the one entry point for money that every front end calls.

The JSON API, the driver's pages, the operator routes, the CLI (through the API) and the
reconciler all go through this service instead of reaching into each other: starting a
session, confirming, cancelling and stopping it, refunds, reviews, Stripe's webhooks, and
reading payments. Each method says who acted (`actor`), which the audit log records: the
driver, the system, or the API key's name.

Contract: a refused request raises (`SessionRefused`, `RefundRefused`, `ReviewRefused`)
and changes nothing; everything else goes through the coordinator, so through the state
machine, the outbox and the audit log, in one commit per change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from payments import reservation as machine
from payments.audit_log import AuditLog
from payments.coordinator import Coordinator
from payments.outbox import Outbox
from payments.ports import ChargerControl, ChargerInfo
from payments.pricing import Tariff, TariffError, hold_amount
from payments.refunds import RefundRecord, RefundStore
from payments.reservation import Reservation, State
from payments.reservations_store import ReservationStore
from payments.runner import EffectRunner
from payments.split import SplitError, SplitRule
from payments.tariff_store import TariffStore
from payments.webhooks import WebhookOutcome, apply_webhook
from storage.db import Conflict

log = structlog.get_logger()

# Connector statuses in which a new session may begin.
_FREE_STATUSES = frozenset({"Available", "Preparing"})


class SessionRefused(Exception):
    """Why a charging session cannot begin: `status` as the API names it, and details."""

    def __init__(self, http_status: int, status: str, detail: str) -> None:
        super().__init__(detail)
        self.http_status = http_status
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class PaymentRecord:
    """A payment with everything an operator looks at."""

    reservation: Reservation
    history: list[dict[str, Any]]
    effects: list[dict[str, Any]]
    audit: list[dict[str, Any]]
    refunds: list[RefundRecord]


class Payments:
    def __init__(
        self,
        reservations: ReservationStore,
        outbox: Outbox,
        tariffs: TariffStore,
        audit: AuditLog,
        refunds: RefundStore,
        coordinator: Coordinator,
        runner: EffectRunner,
        chargers: ChargerControl,
        default_tariff: Tariff,
        time_zone: str = "UTC",
    ) -> None:
        self._reservations = reservations
        self._outbox = outbox
        self._tariffs = tariffs
        self._audit = audit
        self._refunds = refunds
        self._coordinator = coordinator
        self._runner = runner
        self._chargers = chargers
        self._default_tariff = default_tariff
        # The operator's zone: a session on a charger without one of its own is priced in it.
        self._time_zone = time_zone

    @property
    def clock(self) -> Callable[[], datetime]:
        return self._coordinator.clock

    # -- the charger a driver stands at

    def is_online(self, charger_id: str) -> bool:
        return self._chargers.is_online(charger_id)

    def connector_status(self, charger_id: str, connector_id: int) -> str | None:
        return self._chargers.connector_status(charger_id, connector_id)

    async def charger_info(self, charger_id: str) -> ChargerInfo | None:
        return await self._chargers.charger_info(charger_id)

    async def tariff_for(self, charger_id: str, connector_id: int) -> Tariff:
        return await self._tariffs.for_connector(charger_id, connector_id) or self._default_tariff

    async def busy_reason(self, charger_id: str, connector_id: int) -> str | None:
        status = self._chargers.connector_status(charger_id, connector_id)
        if status is None:
            return "the connector has not reported its status"
        if status not in _FREE_STATUSES:
            return f"the connector is {status}"
        if await self._chargers.open_transaction(charger_id, connector_id) is not None:
            return "a charging session is in progress"
        if await self._reservations.active_on(charger_id, connector_id) is not None:
            return "reserved by another driver"
        return None

    async def held_before_start(self, charger_ids: list[str]) -> dict[tuple[str, int], str]:
        """(charger, connector) -> the reservation holding it while its payment is pending
        or its charge not yet begun: the connector is reserved, though it may report
        Available. What the management API reports as Reserved."""
        return await self._reservations.held_before_start(charger_ids)

    async def holding(self, charger_id: str, connector_id: int) -> Reservation | None:
        """The reservation that holds the connector now, if any."""
        return await self._reservations.active_on(charger_id, connector_id)

    # -- a session, from the driver's side

    async def start_session(
        self, charger_id: str, connector_id: int, email: str | None, *, locale: str | None = None
    ) -> tuple[Reservation, str]:
        """Check the connector, then create the reservation and its checkout (shown in
        `locale`, the driver's language; None: Stripe picks).

        Raises SessionRefused when the session cannot begin; nothing is left behind then.
        Should the process die on the way, the reservation expires with the short hand-over
        window (`Policy.handover_window`) and frees its connector.
        """
        if not self._chargers.is_online(charger_id):
            raise SessionRefused(404, "ChargerOffline", f"{charger_id} is not connected")
        busy = await self.busy_reason(charger_id, connector_id)
        if busy:
            raise SessionRefused(409, "ConnectorBusy", busy)
        tariff = await self.tariff_for(charger_id, connector_id)
        try:
            hold_amount(tariff)
        except TariffError as error:
            log.error("payments.bad_tariff", charge_point_id=charger_id, error=str(error))
            raise SessionRefused(503, "PaymentsUnavailable", "no usable tariff") from None
        info = await self._chargers.charger_info(charger_id)
        payee = _payee(info, charger_id, tariff)
        try:
            r, token = await self._coordinator.create(
                charger_id,
                connector_id,
                tariff,
                email,
                locale,
                (info or {}).get("name"),
                (info or {}).get("time_zone") or self._time_zone,
                payee=payee,
            )
        except Conflict:
            # Another driver won the race for this connector.
            raise SessionRefused(409, "ConnectorBusy", "reserved by another driver") from None
        if r.state is not State.PENDING_PAYMENT:
            return r, token  # free: no payment needed
        await self._runner.run_now(r.id, give_up_when_unavailable=True)
        created = await self._reservations.get(r.id)
        assert created is not None
        if created.checkout_url is None:
            # Stripe could not be reached: close the reservation so nothing stays half made.
            await self._coordinator.handle(r.id, machine.Cancel("system"))
            raise SessionRefused(503, "PaymentsUnavailable", "try again in a minute")
        # Committed before the driver gets the link. A process that dies before this line
        # leaves a reservation nobody can pay: it expires with the short hand-over window.
        handed = await self._coordinator.hand_over(r.id, r.created_at)
        if handed is None or handed.state is not State.PENDING_PAYMENT:
            raise SessionRefused(503, "PaymentsUnavailable", "try again in a minute")
        return handed, token

    async def confirm(self, reservation_id: str, actor: str) -> Reservation:
        """The driver is back from Checkout: verify the payment now, for an immediate answer."""
        await self._coordinator.handle(reservation_id, machine.PaymentCompleted(), actor=actor)
        await self._runner.run_now(reservation_id)
        return await self._existing(reservation_id)

    async def cancel(self, reservation_id: str, actor: str) -> Reservation:
        """Cancel before the charge started (the hold is released); the reservation as it is
        after: a session that has started stays as it was."""
        by = "driver" if actor == "driver" else "operator"
        after = await self._coordinator.handle(reservation_id, machine.Cancel(by), actor=actor)
        assert after is not None
        return after

    async def stop(self, reservation_id: str, actor: str) -> Reservation:
        """Stop the charge, or cancel a session that has not started."""
        by = "driver" if actor == "driver" else "operator"
        after = await self._coordinator.handle(
            reservation_id, machine.StopRequested(by), actor=actor
        )
        assert after is not None
        return after

    # -- operators

    async def refund(
        self, reservation_id: str, refund_id: str, amount: int | None, reason: str, actor: str
    ) -> RefundRecord:
        """Raises RefundRefused (coordinator) when it cannot be; once per refund id."""
        return await self._coordinator.request_refund(
            reservation_id, refund_id, amount, reason, actor=actor
        )

    async def review(
        self, reservation_id: str, action: machine.ReviewAction, actor: str
    ) -> Reservation:
        """An operator's way out of a review; the Stripe call it asks for gets its first try
        before the answer. Raises ReviewRefused (coordinator), changing nothing."""
        await self._coordinator.review(reservation_id, action, actor)
        await self._runner.run_now(reservation_id)
        return await self._existing(reservation_id)

    # -- Stripe

    async def webhook(self, event: dict[str, Any]) -> WebhookOutcome:
        return await apply_webhook(self._coordinator, self._reservations, event)

    # -- reading

    async def get(self, reservation_id: str) -> Reservation | None:
        return await self._reservations.get(reservation_id)

    async def by_token(self, token: str) -> Reservation | None:
        """The driver's reservation, from the token in their link or cookie."""
        found = await self._reservations.find_id("token", token)
        return await self._reservations.get(found) if found else None

    async def row(self, reservation_id: str) -> dict[str, Any] | None:
        return await self._reservations.row(reservation_id)

    async def page(
        self,
        *,
        state: str | None,
        charger_id: str | None,
        since: str | None,
        until: str | None,
        before: tuple[str, str] | None,
        limit: int,
    ) -> list[Reservation]:
        return await self._reservations.page(
            state=state,
            charger_id=charger_id,
            since=since,
            until=until,
            before=before,
            limit=limit,
        )

    async def record(self, reservation_id: str) -> PaymentRecord | None:
        r = await self._reservations.get(reservation_id)
        if r is None:
            return None
        return PaymentRecord(
            reservation=r,
            history=await self._reservations.history(reservation_id),
            effects=await self._outbox.of_reservation(reservation_id),
            audit=await self._audit.lines(reservation_id),
            refunds=await self._refunds.of_reservation(reservation_id),
        )

    async def refunds_of(self, reservation_id: str) -> list[RefundRecord]:
        return await self._refunds.of_reservation(reservation_id)

    async def _existing(self, reservation_id: str) -> Reservation:
        r = await self._reservations.get(reservation_id)
        assert r is not None, reservation_id
        return r


def _payee(
    info: ChargerInfo | None, charger_id: str, tariff: Tariff
) -> tuple[str, SplitRule] | None:
    """Who shares the session's money, snapshot at its start: the site's owner, by the
    tariff's split rule when it has one, else the site's. No owner, or no rule: the operator
    keeps everything. A site rule that cannot be used refuses the session (nothing is
    charged under a split nobody meant); a tariff's rule was checked when it was stored."""
    site = (info or {}).get("site")
    if not site or not site.get("owner_id"):
        return None
    if tariff.split is not None:
        return str(site["owner_id"]), tariff.split
    if not site.get("split"):
        return None
    try:
        rule = SplitRule.from_dict(dict(site["split"] or {}))
    except (SplitError, TypeError) as error:
        log.error("payments.bad_split", charge_point_id=charger_id, error=str(error))
        raise SessionRefused(503, "PaymentsUnavailable", "no usable revenue split") from None
    return str(site["owner_id"]), rule
