"""SimulatedCharger: one OCPP 1.6J charge point, its connection to the CSMS and its driver.

This module is the OCPP messaging of the charger beyond transactions: booting (retrying a
Pending or Rejected BootNotification), heartbeats, what the CSMS's operations set in motion
(a configuration change taking effect, Reset, TriggerMessage's messages, the diagnostics
upload and firmware update, both simulated), and the hooks OcppSession calls. The
charger's state is simulators.chargepoint.station, its charging model
simulators.chargepoint.charging; the operations the CSMS calls are answered in
simulators.chargepoint.link.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from ocpp.v16 import call
from ocpp.v16.enums import (
    DiagnosticsStatus,
    FirmwareStatus,
    ReadingContext,
    Reason,
    RegistrationStatus,
)
from websockets.asyncio.client import ClientConnection

from .charging import ChargingModel
from .link import OcppLink
from .station import STEP_SECONDS

log = logging.getLogger("simulators.chargepoint")

# Boot retry delay when a Pending/Rejected reply carries no interval.
BOOT_RETRY = 10.0
# How long a Reset keeps the charger off the network.
REBOOT_SECONDS = 1.0


class SimulatedCharger(ChargingModel):
    """A charge point with `connectors` connectors, driven through this API or by the CSMS.

    Connection handling, offline queueing, start/stop/go_offline/reconnect and the wait
    helpers come from OcppSession; connectors and statuses from ChargerStation; the driver,
    transactions and metering from ChargingModel. In each of these modules, the methods
    without a leading underscore under "Used by the OCPP link" exist for link.py; tests
    drive the charger through the others.
    """

    async def send_security_event(self, event_type: str, tech_info: str | None = None) -> None:
        """SecurityEventNotification now (e.g. "TamperDetectionActivated"); raises
        ChargerOffline when not connected, OCPPError when the CSMS refuses it."""
        await self.security.send_event(event_type, tech_info)

    # Used by the OCPP link

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

    # Heartbeats

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
