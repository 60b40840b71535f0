"""The charging model: the driver and the EV at a connector, the transactions they make and
the meter sampled while they run.

`ChargingModel` adds to ChargerStation (simulators.chargepoint.station) what a driver does
(plug in, present a tag, stop, unplug), what a fault does to a charge, remote starts and
reservations waiting for a cable or a tag, and StartTransaction, MeterValues and
StopTransaction with their readings. A transaction is recorded in `transactions` when it
begins, with a negative provisional id while the CSMS has not answered (offline, the
outbox keeps it and `_assign` puts the CSMS's id everywhere once it comes); it stays there
after it ends. A tag the CSMS refuses ends the transaction when StopTransactionOnInvalidId
says so. Metering runs one loop per transaction at MeterValueSampleInterval; a loop that
was replaced or whose transaction ended stops at its next tick.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.v16 import call
from ocpp.v16.enums import (
    AuthorizationStatus,
    ChargePointErrorCode,
    ChargePointStatus,
    Measurand,
    ReadingContext,
    Reason,
)

from .connector import Connector, RemoteStart, Reservation, Transaction
from .errors import AuthorizationRejected, ChargerOffline, SimulatorError
from .station import ChargerStation

log = logging.getLogger("simulators.chargepoint")


class ChargingModel(ChargerStation):
    """A charge point whose connectors charge EVs in transactions."""

    # The driver and the EV

    async def plug_in(self, connector_id: int) -> None:
        """Cable in: Preparing, or the transaction of a remote start waiting for the cable."""
        connector = self._driver_connector(connector_id)
        if connector.plugged:
            return
        connector.plugged = True
        log.info("%s: connector %d plugged in", self.charge_point_id, connector_id)
        if connector.remote_start is not None and connector.transaction is None:
            await self._start_remote(connector)
        elif connector.transaction is None:
            await self.refresh_status(connector)

    async def unplug(self, connector_id: int) -> None:
        """Cable out: a running transaction stops with EVDisconnected."""
        connector = self._driver_connector(connector_id)
        if not connector.plugged:
            return
        connector.plugged = False
        connector.finished = False
        log.info("%s: connector %d unplugged", self.charge_point_id, connector_id)
        if connector.transaction is not None:
            await self.end_transaction(connector, Reason.ev_disconnected)
        else:
            await self.refresh_status(connector)

    async def start_transaction(
        self, connector_id: int, id_tag: str, *, authorize: bool = True
    ) -> int:
        """A driver presents `id_tag` (plugging in first if needed): Authorize, StartTransaction.

        Returns the transaction id: the CSMS's, or a negative provisional one while offline.
        Raises AuthorizationRejected when the idTag is not Accepted. `authorize=False` starts
        without asking, like a charger that trusts a tag it has seen before.
        """
        connector = self._driver_connector(connector_id)
        if connector.busy:
            raise SimulatorError(f"connector {connector_id} is busy")
        if connector.idle_status() in (ChargePointStatus.unavailable, ChargePointStatus.faulted):
            raise SimulatorError(f"connector {connector_id} is {connector.idle_status()}")
        if connector.reservation is not None and not connector.reservation.admits(id_tag):
            raise SimulatorError(f"connector {connector_id} is reserved for another idTag")
        connector.starting = True
        try:
            await self.plug_in(connector_id)
            if authorize:
                await self._authorize(id_tag)
            return await self._begin_transaction(connector, id_tag)
        finally:
            connector.starting = False

    async def stop_transaction(self, connector_id: int, reason: str = Reason.local) -> None:
        """Stop the running transaction; the cable stays in (Finishing)."""
        connector = self._driver_connector(connector_id)
        if connector.transaction is None:
            raise SimulatorError(f"no transaction on connector {connector_id}")
        await self.end_transaction(connector, Reason(reason))

    async def meter_anomaly(self, connector_id: int, kind: str) -> None:
        """The meter misreads mid-transaction ("down", "reset" or "jump", see
        Connector.meter_anomaly): a sample goes out just before and just after, so the CSMS
        sees both sides of the step."""
        connector = self._driver_connector(connector_id)
        if connector.transaction is None:
            raise SimulatorError(f"no transaction on connector {connector_id}")
        await self._sample(connector, ReadingContext.sample_periodic)
        connector.meter_anomaly(kind)
        log.info(
            "%s: connector %d meter anomaly %s: register now %d Wh",
            self.charge_point_id,
            connector_id,
            kind,
            connector.energy_wh,
        )
        await self._sample(connector, ReadingContext.sample_periodic)

    async def send_meter_values(self, connector_id: int) -> None:
        """One periodic sample now, instead of waiting for MeterValueSampleInterval."""
        await self._sample(self._driver_connector(connector_id), ReadingContext.sample_periodic)

    async def fault(
        self, connector_id: int, error_code: str = ChargePointErrorCode.internal_error
    ) -> None:
        """A hardware fault: Faulted, stopping a running transaction (reason Other)."""
        connector = self._any_connector(connector_id)
        connector.error_code = ChargePointErrorCode(error_code)
        if connector.transaction is not None:
            await self.end_transaction(connector, Reason.other)
        else:
            await self.refresh_status(connector)

    async def clear_fault(self, connector_id: int) -> None:
        connector = self._any_connector(connector_id)
        connector.error_code = ChargePointErrorCode.no_error
        await self.refresh_status(connector)

    # Used by the OCPP link

    async def follow_remote_start(self, connector: Connector, request: RemoteStart) -> None:
        """After accepting a RemoteStart: start now if plugged, else wait for the cable."""
        if connector.remote_start is not request:
            return
        if connector.plugged:
            await self._start_remote(connector)
            return
        await self.refresh_status(connector)
        if self.behaviour.plug_after is not None:
            self.spawn(self._driver_plugs_in(connector, request, self.behaviour.plug_after))
        self.spawn(self._expire_remote_start(connector, request))

    async def hold_reservation(self, connector: Connector, reservation: Reservation) -> None:
        await self.refresh_status(connector)
        self.spawn(self._expire_reservation(connector, reservation))

    async def end_transaction(self, connector: Connector, reason: Reason) -> None:
        """StopTransaction with the Begin/End readings; Finishing while the cable is in."""
        transaction = connector.transaction
        if transaction is None:
            return
        self._accrue(connector)
        timestamp = self.timestamp()
        end = self._reading(connector, timestamp, ReadingContext.transaction_end)
        transaction.meter_stop_wh = connector.energy_wh
        transaction.report(connector.energy_wh)
        transaction.stop_reason = reason
        transaction.stopped_at = time.monotonic()
        connector.end()
        connector.finished = connector.plugged
        if connector.scheduled_operative is not None:
            connector.operative, connector.scheduled_operative = connector.scheduled_operative, None
        payload = call.StopTransaction(
            meter_stop=connector.energy_wh,
            timestamp=timestamp,
            transaction_id=transaction.transaction_id,
            reason=reason,
            # Only a driver stopping with their card identifies themself.
            id_tag=transaction.id_tag if reason == Reason.local else None,
            transaction_data=[transaction.begin, end],
        )
        log.info(
            "%s: connector %d transaction %d stopped (%s) at %d Wh",
            self.charge_point_id,
            connector.connector_id,
            transaction.transaction_id,
            reason,
            connector.energy_wh,
        )
        try:
            await self._tx_call(payload)
        except (OCPPError, TimeoutError) as exc:
            # The session is over locally either way.
            log.warning("%s: StopTransaction failed: %r", self.charge_point_id, exc)
        await self.refresh_status(connector)
        if connector.plugged and self.behaviour.unplug_after_stop is not None:
            self.spawn(self._driver_unplugs(connector, self.behaviour.unplug_after_stop))

    # Transactions

    async def _authorize(self, id_tag: str) -> None:
        local = self.local_list.get(id_tag) if self.config.flag("LocalAuthListEnabled") else None
        status: str | None = None
        if self.config.flag("LocalPreAuthorize") and local == AuthorizationStatus.accepted:
            status = local
        elif self._online:
            try:
                reply = await self._call(call.Authorize(id_tag))
                status = reply.id_tag_info["status"]
            except ChargerOffline:
                pass
        if status is None:
            # Offline (LocalAuthorizeOffline): the local list decides,
            # then AllowOfflineTxForUnknownId.
            unknown = (
                AuthorizationStatus.accepted
                if self.config.flag("AllowOfflineTxForUnknownId")
                else AuthorizationStatus.invalid
            )
            status = local or unknown
        if status != AuthorizationStatus.accepted:
            raise AuthorizationRejected(id_tag, status)

    async def _start_remote(self, connector: Connector) -> None:
        """Start the pending remote start's transaction, without Authorize."""
        request, connector.remote_start = connector.remote_start, None
        if request is None:
            return
        connector.starting = True
        try:
            await self._begin_transaction(connector, request.id_tag)
        finally:
            connector.starting = False

    async def _begin_transaction(self, connector: Connector, id_tag: str) -> int:
        reservation_id = None
        if connector.reservation is not None and connector.reservation.admits(id_tag):
            reservation_id, connector.reservation = connector.reservation.reservation_id, None
        timestamp = self.timestamp()
        begin = self._reading(connector, timestamp, ReadingContext.transaction_begin)
        meter_start = connector.energy_wh
        provisional_id = self._outbox.provisional_id()
        connector.finished = False
        transaction = Transaction(
            provisional_id,
            id_tag,
            meter_start,
            begin,
            connector_id=connector.connector_id,
            started_at=time.monotonic(),
        )
        self.transactions.append(transaction)
        connector.begin(transaction, time.monotonic())
        self._accrue(connector)
        payload = call.StartTransaction(
            connector_id=connector.connector_id,
            id_tag=id_tag,
            meter_start=meter_start,
            timestamp=timestamp,
            reservation_id=reservation_id,
        )
        try:
            reply = await self._tx_call(payload, provisional_id)
        except (OCPPError, TimeoutError):
            transaction.stop_reason, transaction.stopped_at = "NotStarted", time.monotonic()
            connector.end()
            await self.refresh_status(connector)
            raise
        if reply is not None:
            self._assign(provisional_id, reply.transaction_id)
            transaction.id_tag_status = reply.id_tag_info["status"]
        transaction_id = transaction.transaction_id
        log.info(
            "%s: connector %d transaction %s started for %s",
            self.charge_point_id,
            connector.connector_id,
            transaction_id,
            id_tag,
        )
        accepted = reply is None or reply.id_tag_info["status"] == AuthorizationStatus.accepted
        if not accepted and self.config.flag("StopTransactionOnInvalidId"):
            await self.end_transaction(connector, Reason.de_authorized)
        else:
            await self._set_status(connector, ChargePointStatus.charging)
            self._start_metering(connector)
        return transaction_id

    def _assign(self, provisional_id: int, transaction_id: int) -> None:
        self._outbox.assign(provisional_id, transaction_id)
        # The running transaction is in the history too, so this covers it.
        for transaction in self.transactions:
            if transaction.transaction_id == provisional_id:
                transaction.transaction_id = transaction_id
        self._notify()

    async def _driver_plugs_in(
        self, connector: Connector, request: RemoteStart, delay: float
    ) -> None:
        await asyncio.sleep(delay)
        if connector.remote_start is request:
            await self.plug_in(connector.connector_id)

    async def _driver_unplugs(self, connector: Connector, delay: float) -> None:
        await asyncio.sleep(delay)
        # Only if the cable is still in from that session (no new one started meanwhile).
        if connector.finished:
            await self.unplug(connector.connector_id)

    async def _expire_remote_start(self, connector: Connector, request: RemoteStart) -> None:
        await asyncio.sleep(self.config.seconds("ConnectionTimeOut"))
        if connector.remote_start is request:
            log.info("%s: no cable within ConnectionTimeOut", self.charge_point_id)
            connector.remote_start = None
            await self.refresh_status(connector)

    async def _expire_reservation(self, connector: Connector, reservation: Reservation) -> None:
        await asyncio.sleep(max(0.0, (reservation.expires - self.now()).total_seconds()))
        if connector.reservation is reservation:
            connector.reservation = None
            await self.refresh_status(connector)

    def _transaction_confirmed(self, provisional_id: int, reply: Any) -> None:
        self._assign(provisional_id, reply.transaction_id)
        transaction = self.transaction(reply.transaction_id)
        if transaction is not None:
            transaction.id_tag_status = reply.id_tag_info["status"]
        connector = self.connector_with_transaction(reply.transaction_id)
        if connector is not None and reply.id_tag_info["status"] != AuthorizationStatus.accepted:
            # Started offline for a tag the CSMS now refuses (StopTransactionOnInvalidId).
            self.spawn(self.end_transaction(connector, Reason.de_authorized))

    # Metering

    def _reading(self, connector: Connector, timestamp: str, context: ReadingContext) -> Any:
        return connector.sample(
            timestamp,
            context,
            self.config.measurands("StopTxnSampledData"),
            self.energy_unit,
            self.behaviour.max_energy_wh,
        )

    async def _sample(self, connector: Connector, context: ReadingContext) -> None:
        self._accrue(connector)
        # A full battery suspends charging (and a bigger max_energy_wh resumes it).
        if connector.transaction is not None:
            if connector.status == ChargePointStatus.charging and connector.power_w == 0:
                await self._set_status(connector, ChargePointStatus.suspended_ev)
            elif connector.status == ChargePointStatus.suspended_ev and connector.power_w > 0:
                await self._set_status(connector, ChargePointStatus.charging)
        value = connector.sample(
            self.timestamp(),
            context,
            self.config.measurands("MeterValuesSampledData"),
            self.energy_unit,
            self.behaviour.max_energy_wh,
        )
        payload = call.MeterValues(
            connector_id=connector.connector_id,
            meter_value=[value],
            transaction_id=connector.transaction_id,
        )
        if connector.transaction is not None:
            measurands = self.config.measurands("MeterValuesSampledData")
            if Measurand.energy_active_import_register in measurands:
                connector.transaction.report(connector.energy_wh)
            await self._tx_call(payload)
        else:
            await self._try_call(payload)

    def _start_metering(self, connector: Connector) -> None:
        interval = self.config.seconds("MeterValueSampleInterval")
        if connector.transaction is None or interval <= 0:
            self._meter_tasks.pop(connector.connector_id, None)
            return
        task = self.spawn(self._meter_loop(connector, connector.transaction, interval))
        self._meter_tasks[connector.connector_id] = task

    async def _meter_loop(
        self, connector: Connector, transaction: Transaction, interval: float
    ) -> None:
        # Not cancelled when replaced: it notices at its next tick, so no reply is ever orphaned.
        me = asyncio.current_task()
        while True:
            await asyncio.sleep(interval)
            if (
                connector.transaction is not transaction
                or self._meter_tasks.get(connector.connector_id) is not me
            ):
                return
            try:
                anomaly = self._anomaly_due(connector, transaction)
                if anomaly is not None:
                    await self.meter_anomaly(connector.connector_id, anomaly)
                else:
                    await self._sample(connector, ReadingContext.sample_periodic)
            except (OCPPError, TimeoutError) as exc:
                log.warning("%s: MeterValues failed: %r", self.charge_point_id, exc)

    def _anomaly_due(self, connector: Connector, transaction: Transaction) -> str | None:
        """Behaviour.meter_anomaly: once per transaction, after meter_anomaly_at_wh went in."""
        kind = self.behaviour.meter_anomaly
        if kind is None or transaction.anomalies:
            return None
        self._accrue(connector)
        return kind if transaction.delivered_wh >= self.behaviour.meter_anomaly_at_wh else None
