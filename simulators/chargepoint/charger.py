"""SimulatedCharger: one OCPP 1.6J charge point, its connection to the CSMS and its driver."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.v16 import call
from ocpp.v16.enums import (
    AuthorizationStatus,
    ChargePointErrorCode,
    ChargePointStatus,
    DiagnosticsStatus,
    FirmwareStatus,
    Measurand,
    ReadingContext,
    Reason,
    RegistrationStatus,
    UnitOfMeasure,
)
from websockets.asyncio.client import ClientConnection

from .behaviour import Behaviour
from .configuration import Configuration
from .connector import Connector, RemoteStart, Reservation, Transaction
from .errors import AuthorizationRejected, ChargerOffline, SimulatorError
from .link import OcppLink
from .security import SecurityFeatures
from .session import BACKOFF_MAX, OcppSession

log = logging.getLogger("simulators.chargepoint")

# Boot retry delay when a Pending/Rejected reply carries no interval.
BOOT_RETRY = 10.0
# How long a Reset keeps the charger off the network.
REBOOT_SECONDS = 1.0
# Duration of each step of a simulated diagnostics upload or firmware update.
STEP_SECONDS = 0.2


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SimulatedCharger(OcppSession):
    """A charge point with `connectors` connectors, driven through this API or by the CSMS.

    Connection handling, offline queueing, start/stop/go_offline/reconnect and the wait
    helpers come from OcppSession. Methods without a leading underscore below "Used by the
    OCPP link" exist for link.py; tests drive the charger through the methods above them.
    """

    def __init__(
        self,
        url: str,
        charge_point_id: str,
        *,
        connectors: int = 1,
        power_kw: float = 11.0,
        meter_interval: float = 10.0,
        energy_unit: str = "Wh",
        speed: float = 1.0,
        behaviour: Behaviour | None = None,
        vendor: str = "Simulator",
        model: str = "SIM-22",
        serial: str = "SIM-0001",
        firmware: str = "1.0.0",
        password: str | None = None,
        clock: Callable[[], datetime] | None = None,
        register_wh: float = 0.0,
        reconnect_ceiling: float = BACKOFF_MAX,
    ) -> None:
        if connectors < 1 or power_kw <= 0 or speed <= 0 or meter_interval < 0:
            raise ValueError("connectors >= 1, power_kw > 0, speed > 0 and meter_interval >= 0")
        if reconnect_ceiling <= 0:
            raise ValueError("reconnect_ceiling > 0")
        if energy_unit not in (UnitOfMeasure.wh, UnitOfMeasure.kwh):
            raise ValueError(f"energy_unit must be Wh or kWh, not {energy_unit!r}")
        super().__init__(url, charge_point_id, reconnect_ceiling=reconnect_ceiling)
        self.energy_unit = energy_unit
        self.speed = speed
        self.behaviour = behaviour or Behaviour()
        self.vendor, self.model, self.serial, self.firmware = vendor, model, serial, firmware
        self._clock = clock or _utc_now
        self.config = Configuration(
            connectors=connectors, meter_interval=meter_interval, password=password
        )
        # Index 0 is the charge point as a whole, as in OCPP.
        self.connectors = [Connector(n, power_kw * 1000) for n in range(connectors + 1)]
        # The meters' lifetime registers at power-on (register_wh).
        for connector in self.connectors[1:]:
            connector.register_wh = register_wh
        # Every transaction begun, in order, kept after it ends (see Transaction).
        self.transactions: list[Transaction] = []

        self.local_list: dict[str, str] = {}
        self.local_list_version = 0
        # chargingProfileId -> (connector id, profile as received, snake_case).
        self.charging_profiles: dict[int, tuple[int, dict[str, Any]]] = {}
        self.diagnostics_status = DiagnosticsStatus.idle
        self.firmware_status = FirmwareStatus.idle
        # The security extension: certificates, log uploads, signed firmware, events.
        self.security = SecurityFeatures(
            charge_point_id, self._call, self._try_call, self.now, self.timestamp, STEP_SECONDS
        )

        self._heartbeat_task: asyncio.Task[None] | None = None
        self._meter_tasks: dict[int, asyncio.Task[None]] = {}

    # The driver and the EV

    def connector(self, connector_id: int) -> Connector:
        """The connector's current state (the meter is brought up to date first)."""
        connector = self._any_connector(connector_id)
        self._accrue(connector)
        return connector

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

    async def send_security_event(self, event_type: str, tech_info: str | None = None) -> None:
        """SecurityEventNotification now (e.g. "TamperDetectionActivated"); raises
        ChargerOffline when not connected, OCPPError when the CSMS refuses it."""
        await self.security.send_event(event_type, tech_info)

    # Observation, for tests

    def transaction(self, transaction_id: int) -> Transaction | None:
        """A transaction of this charger, running or ended, by its (CSMS) id."""
        return next((t for t in self.transactions if t.transaction_id == transaction_id), None)

    async def wait_for_status(
        self,
        connector_id: int,
        status: str,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> None:
        connector = self._any_connector(connector_id)
        await self._wait(
            lambda: connector.status == status, timeout, f"connector {connector_id} {status}"
        )

    # Used by the OCPP link

    def now(self) -> datetime:
        return self._clock()

    def timestamp(self) -> str:
        moment = self._clock().astimezone(UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def connector_with_transaction(self, transaction_id: int) -> Connector | None:
        return next((c for c in self.connectors if c.transaction_id == transaction_id), None)

    def starting(self) -> bool:
        """A transaction runs whose StartTransaction the CSMS has not answered yet."""
        return any(c.transaction_id is not None and c.transaction_id < 0 for c in self.connectors)

    async def connector_for_transaction(
        self,
        transaction_id: int,
        timeout: float = 1.0,  # noqa: ASYNC109
    ) -> Connector | None:
        """The connector running `transaction_id`, waiting up to `timeout` for a
        StartTransaction answer already received to be applied."""
        try:
            await self._wait(
                lambda: self.connector_with_transaction(transaction_id) is not None,
                timeout,
                f"transaction {transaction_id}",
            )
        except TimeoutError:
            return None
        return self.connector_with_transaction(transaction_id)

    def apply_configuration(self, key: str) -> None:
        """Make an accepted ChangeConfiguration take effect."""
        if key == "HeartbeatInterval":
            self._restart_heartbeat()
        elif key == "MeterValueSampleInterval":
            for connector in self.connectors:
                if connector.transaction is not None:
                    self._start_metering(connector)
        elif key == "AuthorizationKey":
            log.info(
                "%s: new AuthorizationKey, used from the next connection", self.charge_point_id
            )

    async def refresh_status(self, connector: Connector) -> None:
        """Move an idle connector to the status its state implies (Reserved, Unavailable...)."""
        if connector.transaction is None:
            await self._set_status(connector, connector.idle_status())

    async def report_statuses(self, connector_id: int | None = None) -> None:
        """StatusNotification for one connector, or all of them, whether changed or not."""
        chosen = self.connectors if connector_id is None else [self.connectors[connector_id]]
        for connector in chosen:
            await self._report_status(connector)

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

    async def reboot(self, reason: Reason) -> None:
        """Reset: stop transactions, go off the network for a moment, then boot again."""
        log.info("%s: rebooting (%s)", self.charge_point_id, reason)
        for connector in self.connectors:
            await self.end_transaction(connector, reason)
            connector.remote_start = None
            connector.reservation = None
            connector.status = connector.idle_status()
        self.booted = False
        await self._drop(REBOOT_SECONDS, abrupt=False)

    async def send_boot_notification(self) -> None:
        reply = await self._try_call(self._boot_notification())
        if reply is not None and reply.status == RegistrationStatus.accepted and reply.interval > 0:
            self.config.set("HeartbeatInterval", reply.interval)
            self._restart_heartbeat()

    async def send_heartbeat(self) -> None:
        await self._try_call(call.Heartbeat())

    async def send_triggered_meter_values(self, connector_id: int | None) -> None:
        chosen = [self.connectors[connector_id]] if connector_id else self.connectors[1:]
        for connector in chosen:
            await self._sample(connector, ReadingContext.trigger)

    async def send_diagnostics_status(self) -> None:
        await self._try_call(call.DiagnosticsStatusNotification(self.diagnostics_status))

    async def send_firmware_status(self) -> None:
        await self._try_call(call.FirmwareStatusNotification(self.firmware_status))

    async def upload_diagnostics(self) -> None:
        """Pretend to upload the diagnostics file (nothing leaves the machine)."""
        self.diagnostics_status = DiagnosticsStatus.uploading
        await self.send_diagnostics_status()
        await asyncio.sleep(STEP_SECONDS)
        self.diagnostics_status = DiagnosticsStatus.uploaded
        await self.send_diagnostics_status()
        self.diagnostics_status = DiagnosticsStatus.idle

    async def update_firmware(self, location: str, retrieve_at: datetime) -> None:
        """Pretend to download and install firmware from `location` at `retrieve_at`."""
        wait = (retrieve_at - self.now()).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)
        log.info("%s: installing firmware from %s", self.charge_point_id, location)
        steps = (
            FirmwareStatus.downloading,
            FirmwareStatus.downloaded,
            FirmwareStatus.installing,
            FirmwareStatus.installed,
        )
        for step in steps:
            self.firmware_status = step
            await self.send_firmware_status()
            if step != FirmwareStatus.installed:
                await asyncio.sleep(STEP_SECONDS)
        self.firmware_status = FirmwareStatus.idle

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

    # Metering

    def _accrue(self, connector: Connector) -> None:
        connector.accrue(time.monotonic(), self.speed, self.behaviour.max_energy_wh)

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

    # Statuses and heartbeats

    async def _set_status(self, connector: Connector, status: str) -> None:
        if connector.status == status:
            return
        log.info(
            "%s: connector %d %s -> %s",
            self.charge_point_id,
            connector.connector_id,
            connector.status,
            status,
        )
        connector.status = status
        self._notify()
        await self._report_status(connector)

    async def _report_status(self, connector: Connector) -> None:
        # Offline the status is only remembered: _come_online() resends what changed.
        if not self._online:
            return
        payload = call.StatusNotification(
            connector_id=connector.connector_id,
            error_code=connector.error_code,
            status=connector.status,
            timestamp=self.timestamp(),
        )
        if await self._try_call(payload) is not None:
            connector.reported_status = payload.status

    def _restart_heartbeat(self) -> None:
        self._heartbeat_task = self.spawn(self._heartbeat_loop())

    async def _heartbeat_loop(self) -> None:
        # Like the meter loop, a replaced loop ends at its next tick.
        me = asyncio.current_task()
        while self._heartbeat_task is me:
            interval = self.config.seconds("HeartbeatInterval")
            if interval <= 0:
                return
            await asyncio.sleep(interval)
            if self._heartbeat_task is me and self._online:
                await self.send_heartbeat()

    # Hooks for OcppSession

    def _new_link(self, ws: ClientConnection) -> OcppLink:
        return OcppLink(self, ws)

    def _password(self) -> str | None:
        return self.config.text("AuthorizationKey") or None

    def _boot_notification(self) -> call.BootNotification:
        return call.BootNotification(
            charge_point_model=self.model,
            charge_point_vendor=self.vendor,
            charge_point_serial_number=self.serial,
            firmware_version=self.firmware,
        )

    async def _boot(self) -> None:
        while True:
            reply = await self._call(self._boot_notification())
            if reply.status == RegistrationStatus.accepted:
                break
            retry = reply.interval if reply.interval > 0 else BOOT_RETRY
            log.info("%s: boot %s, retrying in %s s", self.charge_point_id, reply.status, retry)
            await asyncio.sleep(retry)
        if reply.interval > 0:
            self.config.set("HeartbeatInterval", reply.interval)
        self.booted = True
        # A fresh boot reports every connector.
        for connector in self.connectors:
            connector.reported_status = None
        self._restart_heartbeat()
        self._notify()
        log.info("%s: booted", self.charge_point_id)

    async def _resync(self) -> None:
        for connector in self.connectors:
            if connector.status != connector.reported_status:
                await self._report_status(connector)

    def _transaction_confirmed(self, provisional_id: int, reply: Any) -> None:
        self._assign(provisional_id, reply.transaction_id)
        transaction = self.transaction(reply.transaction_id)
        if transaction is not None:
            transaction.id_tag_status = reply.id_tag_info["status"]
        connector = self.connector_with_transaction(reply.transaction_id)
        if connector is not None and reply.id_tag_info["status"] != AuthorizationStatus.accepted:
            # Started offline for a tag the CSMS now refuses (StopTransactionOnInvalidId).
            self.spawn(self.end_transaction(connector, Reason.de_authorized))

    # Helpers

    def _any_connector(self, connector_id: int) -> Connector:
        if not 0 <= connector_id < len(self.connectors):
            raise ValueError(f"{self.charge_point_id} has no connector {connector_id}")
        return self.connectors[connector_id]

    def _driver_connector(self, connector_id: int) -> Connector:
        if connector_id == 0:
            raise ValueError("connector 0 is the charge point itself; use 1..N")
        return self._any_connector(connector_id)
