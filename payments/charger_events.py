"""What the chargers report, turned into reservation events: the coordinator's charger half.

The OCPP side calls these (through the composition root) after storing each message and
before answering it, so they must be idempotent: a charger resends what was not answered.
Most messages concern no payment; the coordinator's in-memory index lets them pass without
a query.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from payments import reservation as machine
from payments.coordinator import TAG_PREFIX, Coordinator
from payments.reservation import State
from payments.reservations_store import ReservationStore


class ChargerEventsListener:
    """`ChargerEvents` and `TagAuthority` for the OCPP side, on top of the coordinator."""

    def __init__(self, coordinator: Coordinator, reservations: ReservationStore) -> None:
        self._coordinator = coordinator
        self._reservations = reservations
        self._index = coordinator.index

    async def authorize_tag(
        self, charger_id: str, connector_id: int | None, id_tag: str
    ) -> str | None:
        """Whether a generated tag may start a charge here: "Accepted", "Invalid", or None
        when the tag is not one of ours. Only on its connector, and only once."""
        if not id_tag.startswith(TAG_PREFIX):
            return None
        reservation_id = await self._reservations.find_id("id_tag", id_tag)
        if reservation_id is None:
            return None
        r = await self._reservations.get(reservation_id)
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
        """Links the transaction to its reservation; a transaction the tag was not good
        for (another connector, or after the reservation ended) is stopped remotely."""
        if not id_tag.startswith(TAG_PREFIX):
            return
        reservation_id = await self._reservations.find_id("id_tag", id_tag)
        if reservation_id is None:
            return
        r = await self._reservations.get(reservation_id)
        if r is None:
            return
        event: machine.Event
        if (r.charger_id, r.connector_id) != (charger_id, connector_id):
            event = machine.StrayTransaction(charger_id, transaction_id)
        else:
            event = machine.TransactionStarted(transaction_id, meter_start_wh, started_at)
        await self._coordinator.handle(reservation_id, event, actor="charger")

    async def meter_values(
        self,
        charger_id: str,
        transaction_id: int,
        energy_register_wh: int | None,
        power_w: int | None,
        at: datetime,
    ) -> None:
        reservation_id = self._by_transaction(charger_id, transaction_id)
        if reservation_id is not None:
            await self._coordinator.handle(
                reservation_id,
                machine.MeterReading(energy_register_wh, power_w, at),
                actor="charger",
            )

    async def transaction_stopped(
        self,
        charger_id: str,
        transaction_id: int,
        meter_stop_wh: int,
        stopped_at: datetime,
        readings: Sequence[tuple[datetime, int]] = (),
    ) -> None:
        reservation_id = self._by_transaction(charger_id, transaction_id)
        if reservation_id is not None:
            await self._coordinator.handle(
                reservation_id,
                machine.TransactionStopped(meter_stop_wh, stopped_at, tuple(readings)),
                actor="charger",
            )

    async def charger_changed(
        self, charger_id: str, connector_id: int | None, status_at: datetime | None
    ) -> None:
        """Connected, disconnected (connector None) or a connector's new status."""
        affected = [
            reservation_id
            for (charger, connector), reservation_id in list(self._index.connectors.items())
            if charger == charger_id and connector_id in (None, 0, connector)
        ]
        for reservation_id in affected:
            await self._coordinator.handle(
                reservation_id, machine.ChargerChanged(status_at), actor="charger"
            )

    def _by_transaction(self, charger_id: str, transaction_id: int) -> str | None:
        """The active reservation charging on this transaction of this charger."""
        reservation_id = self._index.transactions.get(transaction_id)
        if reservation_id is None:
            return None
        place = self._index.places.get(reservation_id)
        return reservation_id if place is not None and place[0] == charger_id else None
