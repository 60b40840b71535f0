"""The OCPP session over one WebSocket connection: answers the 19 CSMS-initiated operations
of OCPP 1.6, and (security_link.py) the 7 of its security extension.

Handlers only decide the answer and update state. Anything that must send a message
(a StatusNotification, the message TriggerMessage asked for...) is queued as a follow-up
and started once the answer is on the wire: the library handles one incoming message at a
time, so awaiting a call() inside a handler would deadlock, and OCPP wants e.g. the
TriggerMessage answer before the triggered message.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ocpp.exceptions import OCPPError
from ocpp.messages import MessageType, unpack
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import (
    Action,
    AvailabilityStatus,
    AvailabilityType,
    CancelReservationStatus,
    ChargePointErrorCode,
    ChargingProfilePurposeType,
    ChargingProfileStatus,
    ChargingRateUnitType,
    ClearCacheStatus,
    ClearChargingProfileStatus,
    ConfigurationStatus,
    DataTransferStatus,
    GetCompositeScheduleStatus,
    MessageTrigger,
    Reason,
    RemoteStartStopStatus,
    ReservationStatus,
    ResetStatus,
    ResetType,
    TriggerMessageStatus,
    UnlockStatus,
    UpdateStatus,
    UpdateType,
)

from .connector import PHASES, VOLTAGE, Connector, RemoteStart, Reservation
from .security_link import SecurityOperations

if TYPE_CHECKING:
    from .charger import SimulatedCharger

log = logging.getLogger("simulators.chargepoint")

# Seconds to wait for the CSMS to answer a CALL.
RESPONSE_TIMEOUT = 30


class _RedactAuthorizationKey(logging.Filter):
    """Keeps the password a CSMS sets with ChangeConfiguration(AuthorizationKey) out of the logs."""

    _VALUE = re.compile(r"""(["']value["']\s*:\s*)["'][^"']*["']""")

    def filter(self, record: logging.LogRecord) -> bool:
        if "AuthorizationKey" in record.getMessage():
            record.msg, record.args = self._VALUE.sub(r'\1"***"', record.getMessage()), None
        return True


# Every frame in and out, logged by the ocpp library at INFO.
WIRE_LOG = logging.getLogger("simulators.chargepoint.wire")
WIRE_LOG.addFilter(_RedactAuthorizationKey())

FollowUp = Callable[[], Awaitable[Any]]


class OcppLink(SecurityOperations, ChargePoint):
    """The charger's side of one connection; a reconnect gets a fresh link."""

    def __init__(self, charger: SimulatedCharger, connection: Any) -> None:
        super().__init__(
            charger.charge_point_id, connection, response_timeout=RESPONSE_TIMEOUT, logger=WIRE_LOG
        )
        self._charger = charger
        # Resolved when this connection is gone, so calls waiting for a reply give up at once.
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._follow_ups: list[FollowUp] = []
        # The library runs an action's "_after_action" hook right after sending the answer.
        for handlers in self.route_map.values():
            handlers["_after_action"] = self._start_follow_ups

    async def route_message(self, raw_msg: str) -> None:
        try:
            msg = unpack(raw_msg)
        except OCPPError:
            await super().route_message(raw_msg)  # logs and drops it
            return
        if msg.message_type_id == MessageType.Call:
            self._follow_ups.clear()
            self._charger.record_call(msg.action, msg.payload)
            if (
                msg.action == Action.remote_start_transaction
                and self._charger.behaviour.ignore_remote_start
            ):
                log.warning("%s: leaving RemoteStartTransaction unanswered", self.id)
                return
        try:
            await super().route_message(raw_msg)
        finally:
            # The answer could not be sent (the connection dropped): what the charger
            # accepted, it still does, as a real one would (its messages wait in the queue).
            if self._follow_ups:
                self._start_follow_ups()

    def _then(self, follow_up: FollowUp) -> None:
        self._follow_ups.append(follow_up)

    def _start_follow_ups(self, **_payload: Any) -> None:
        follow_ups, self._follow_ups = self._follow_ups, []
        if follow_ups:
            self._charger.spawn(_in_order(follow_ups))

    def _connector(self, connector_id: int | None, *, allow_zero: bool = False) -> Connector | None:
        lowest = 0 if allow_zero else 1
        if connector_id is None or not lowest <= connector_id < len(self._charger.connectors):
            return None
        return self._charger.connectors[connector_id]

    # Core profile

    @on(Action.change_availability)
    def on_change_availability(
        self, connector_id: int, type: str, **_: Any
    ) -> call_result.ChangeAvailability:
        target = self._connector(connector_id, allow_zero=True)
        if target is None:
            return call_result.ChangeAvailability(AvailabilityStatus.rejected)
        operative = type == AvailabilityType.operative
        targets = self._charger.connectors if connector_id == 0 else [target]
        scheduled = False
        for connector in targets:
            if connector.transaction is not None and connector.operative != operative:
                # Never cut a running session: switch when it ends.
                connector.scheduled_operative = operative
                scheduled = True
                continue
            # A newer request replaces one still waiting for a transaction to end.
            connector.scheduled_operative = None
            connector.operative = operative
            if not operative:
                connector.remote_start = None
            self._then(lambda c=connector: self._charger.refresh_status(c))
        status = AvailabilityStatus.scheduled if scheduled else AvailabilityStatus.accepted
        return call_result.ChangeAvailability(status)

    @on(Action.change_configuration)
    def on_change_configuration(
        self, key: str, value: str, **_: Any
    ) -> call_result.ChangeConfiguration:
        status = self._charger.config.change(key, value)
        if status == ConfigurationStatus.accepted:
            self._charger.apply_configuration(self._charger.config.canonical(key) or key)
        return call_result.ChangeConfiguration(status)

    @on(Action.clear_cache)
    def on_clear_cache(self, **_: Any) -> call_result.ClearCache:
        # AuthorizationCacheEnabled is false: there is nothing to clear.
        return call_result.ClearCache(ClearCacheStatus.accepted)

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **_: Any) -> call_result.DataTransfer:
        return call_result.DataTransfer(DataTransferStatus.unknown_vendor_id)

    @on(Action.get_configuration)
    def on_get_configuration(
        self, key: list[str] | None = None, **_: Any
    ) -> call_result.GetConfiguration:
        known, unknown = self._charger.config.report(key)
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on(Action.remote_start_transaction)
    def on_remote_start_transaction(
        self,
        id_tag: str,
        connector_id: int | None = None,
        charging_profile: dict | None = None,
        **_: Any,
    ) -> call_result.RemoteStartTransaction:
        connector = self._remote_start_connector(id_tag, connector_id)
        if connector is None:
            return call_result.RemoteStartTransaction(RemoteStartStopStatus.rejected)
        request = RemoteStart(id_tag)
        connector.remote_start = request
        if charging_profile is not None:
            self._charger.charging_profiles[charging_profile["charging_profile_id"]] = (
                connector.connector_id,
                charging_profile,
            )
        self._then(lambda: self._charger.follow_remote_start(connector, request))
        return call_result.RemoteStartTransaction(RemoteStartStopStatus.accepted)

    def _remote_start_connector(self, id_tag: str, connector_id: int | None) -> Connector | None:
        """The connector a remote start may use, or None to reject it."""
        behaviour = self._charger.behaviour
        if behaviour.reject_remote_start:
            return None
        if connector_id is None:
            # None given: the one reserved for this driver, else one with a cable, else a free one.
            free = [c for c in self._charger.connectors[1:] if self._can_remote_start(c, id_tag)]
            free.sort(key=lambda c: (c.reservation is None, not c.plugged))
            connector = free[0] if free else None
        else:
            connector = self._connector(connector_id)
            if connector is None or not self._can_remote_start(connector, id_tag):
                return None
        if (
            connector is not None
            and not connector.plugged
            and not behaviour.accept_remote_start_without_plug
        ):
            return None
        return connector

    @staticmethod
    def _can_remote_start(connector: Connector, id_tag: str) -> bool:
        return (
            connector.operative
            and connector.error_code == ChargePointErrorCode.no_error
            and not connector.busy
            and (connector.reservation is None or connector.reservation.admits(id_tag))
        )

    @on(Action.remote_stop_transaction)
    async def on_remote_stop_transaction(
        self, transaction_id: int, **_: Any
    ) -> call_result.RemoteStopTransaction:
        connector = self._charger.connector_with_transaction(transaction_id)
        if connector is None and self._charger.starting():
            # The StartTransaction answer that names this transaction may have been read just
            # before this CALL and not be applied yet: a charger applies its frames in order.
            connector = await self._charger.connector_for_transaction(transaction_id)
        if connector is None:
            return call_result.RemoteStopTransaction(RemoteStartStopStatus.rejected)
        self._then(lambda: self._charger.end_transaction(connector, Reason.remote))
        return call_result.RemoteStopTransaction(RemoteStartStopStatus.accepted)

    @on(Action.reset)
    def on_reset(self, type: str, **_: Any) -> call_result.Reset:
        reason = Reason.hard_reset if type == ResetType.hard else Reason.soft_reset
        self._then(lambda: self._charger.reboot(reason))
        return call_result.Reset(ResetStatus.accepted)

    @on(Action.unlock_connector)
    def on_unlock_connector(self, connector_id: int, **_: Any) -> call_result.UnlockConnector:
        connector = self._connector(connector_id)
        if connector is None:
            return call_result.UnlockConnector(UnlockStatus.not_supported)
        if connector.transaction is not None:
            self._then(lambda: self._charger.end_transaction(connector, Reason.unlock_command))
        return call_result.UnlockConnector(UnlockStatus.unlocked)

    # Firmware management profile

    @on(Action.get_diagnostics)
    def on_get_diagnostics(self, location: str, **_: Any) -> call_result.GetDiagnostics:
        stamp = self._charger.now().strftime("%Y%m%dT%H%M%SZ")
        self._then(self._charger.upload_diagnostics)
        return call_result.GetDiagnostics(file_name=f"{self._charger.charge_point_id}-{stamp}.log")

    @on(Action.update_firmware)
    def on_update_firmware(
        self, location: str, retrieve_date: str, **_: Any
    ) -> call_result.UpdateFirmware:
        retrieve_at = _parse_time(retrieve_date)
        self._then(lambda: self._charger.update_firmware(location, retrieve_at))
        return call_result.UpdateFirmware()

    # Local auth list management profile

    @on(Action.get_local_list_version)
    def on_get_local_list_version(self, **_: Any) -> call_result.GetLocalListVersion:
        return call_result.GetLocalListVersion(self._charger.local_list_version)

    @on(Action.send_local_list)
    def on_send_local_list(
        self,
        list_version: int,
        update_type: str,
        local_authorization_list: list[dict] | None = None,
        **_: Any,
    ) -> call_result.SendLocalList:
        charger = self._charger
        if update_type == UpdateType.differential and list_version <= charger.local_list_version:
            return call_result.SendLocalList(UpdateStatus.version_mismatch)
        if update_type == UpdateType.full:
            charger.local_list.clear()
        for entry in local_authorization_list or []:
            info = entry.get("id_tag_info")
            if info is None:
                # A differential entry without idTagInfo removes the tag.
                charger.local_list.pop(entry["id_tag"], None)
            else:
                charger.local_list[entry["id_tag"]] = info["status"]
        charger.local_list_version = list_version
        return call_result.SendLocalList(UpdateStatus.accepted)

    # Reservation profile

    @on(Action.reserve_now)
    def on_reserve_now(
        self,
        connector_id: int,
        expiry_date: str,
        id_tag: str,
        reservation_id: int,
        parent_id_tag: str | None = None,
        **_: Any,
    ) -> call_result.ReserveNow:
        # ReserveConnectorZeroSupported is false.
        connector = self._connector(connector_id)
        if connector is None:
            return call_result.ReserveNow(ReservationStatus.rejected)
        if connector.error_code != ChargePointErrorCode.no_error:
            return call_result.ReserveNow(ReservationStatus.faulted)
        if not connector.operative:
            return call_result.ReserveNow(ReservationStatus.unavailable)
        current = connector.reservation
        if (
            connector.busy
            or connector.plugged
            or (current and current.reservation_id != reservation_id)
        ):
            return call_result.ReserveNow(ReservationStatus.occupied)
        expires = _parse_time(expiry_date)
        reservation = Reservation(reservation_id, id_tag, parent_id_tag, expires)
        connector.reservation = reservation
        self._then(lambda: self._charger.hold_reservation(connector, reservation))
        return call_result.ReserveNow(ReservationStatus.accepted)

    @on(Action.cancel_reservation)
    def on_cancel_reservation(self, reservation_id: int, **_: Any) -> call_result.CancelReservation:
        for connector in self._charger.connectors:
            if connector.reservation and connector.reservation.reservation_id == reservation_id:
                connector.reservation = None
                self._then(lambda c=connector: self._charger.refresh_status(c))
                return call_result.CancelReservation(CancelReservationStatus.accepted)
        return call_result.CancelReservation(CancelReservationStatus.rejected)

    # Smart charging profile: profiles are stored and reported, the simulated EV ignores them.

    @on(Action.set_charging_profile)
    def on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict, **_: Any
    ) -> call_result.SetChargingProfile:
        connector = self._connector(connector_id, allow_zero=True)
        purpose = cs_charging_profiles["charging_profile_purpose"]
        if (
            connector is None
            or (
                purpose == ChargingProfilePurposeType.charge_point_max_profile and connector_id != 0
            )
            or (purpose == ChargingProfilePurposeType.tx_profile and connector.transaction is None)
        ):
            return call_result.SetChargingProfile(ChargingProfileStatus.rejected)
        profiles = self._charger.charging_profiles
        # A profile with the same purpose and stack level on the connector is replaced.
        for profile_id, (where, profile) in list(profiles.items()):
            if where == connector_id and (
                profile["charging_profile_purpose"],
                profile["stack_level"],
            ) == (
                purpose,
                cs_charging_profiles["stack_level"],
            ):
                del profiles[profile_id]
        profiles[cs_charging_profiles["charging_profile_id"]] = (connector_id, cs_charging_profiles)
        return call_result.SetChargingProfile(ChargingProfileStatus.accepted)

    @on(Action.clear_charging_profile)
    def on_clear_charging_profile(
        self,
        id: int | None = None,
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
        **_: Any,
    ) -> call_result.ClearChargingProfile:
        profiles = self._charger.charging_profiles
        matching = [
            profile_id
            for profile_id, (where, profile) in profiles.items()
            if (id is None or profile_id == id)
            and (connector_id is None or where == connector_id)
            and charging_profile_purpose in (None, profile["charging_profile_purpose"])
            and stack_level in (None, profile["stack_level"])
        ]
        for profile_id in matching:
            del profiles[profile_id]
        status = (
            ClearChargingProfileStatus.accepted if matching else ClearChargingProfileStatus.unknown
        )
        return call_result.ClearChargingProfile(status)

    @on(Action.get_composite_schedule)
    def on_get_composite_schedule(
        self, connector_id: int, duration: int, charging_rate_unit: str | None = None, **_: Any
    ) -> call_result.GetCompositeSchedule:
        connector = self._connector(connector_id, allow_zero=True)
        if connector is None:
            return call_result.GetCompositeSchedule(GetCompositeScheduleStatus.rejected)
        unit = charging_rate_unit or ChargingRateUnitType.watts
        # The highest stack level on this connector (or the whole charger) wins; else full power.
        relevant = [
            p for where, p in self._charger.charging_profiles.values() if where in (0, connector_id)
        ]
        if relevant:
            schedule = max(relevant, key=lambda p: p["stack_level"])["charging_schedule"]
            periods = [
                {
                    "start_period": p["start_period"],
                    "limit": _in_unit(p["limit"], schedule["charging_rate_unit"], unit),
                }
                for p in schedule["charging_schedule_period"]
            ]
        else:
            periods = [
                {
                    "start_period": 0,
                    "limit": _in_unit(connector.max_power_w, ChargingRateUnitType.watts, unit),
                }
            ]
        return call_result.GetCompositeSchedule(
            status=GetCompositeScheduleStatus.accepted,
            connector_id=connector_id,
            schedule_start=self._charger.timestamp(),
            charging_schedule={
                "duration": duration,
                "charging_rate_unit": unit,
                "charging_schedule_period": periods,
            },
        )

    # Remote trigger profile

    @on(Action.trigger_message)
    def on_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ) -> call_result.TriggerMessage:
        charger = self._charger
        if connector_id is not None and self._connector(connector_id, allow_zero=True) is None:
            return call_result.TriggerMessage(TriggerMessageStatus.rejected)
        triggers: dict[str, FollowUp] = {
            MessageTrigger.boot_notification: charger.send_boot_notification,
            MessageTrigger.heartbeat: charger.send_heartbeat,
            MessageTrigger.status_notification: lambda: charger.report_statuses(connector_id),
            MessageTrigger.meter_values: lambda: charger.send_triggered_meter_values(connector_id),
            MessageTrigger.diagnostics_status_notification: charger.send_diagnostics_status,
            MessageTrigger.firmware_status_notification: charger.send_firmware_status,
        }
        # Schema validation already refused anything else (LogStatusNotification...) with a
        # CALLERROR, so every valid request is implemented.
        self._then(triggers[requested_message])
        return call_result.TriggerMessage(TriggerMessageStatus.accepted)


def _parse_time(value: str) -> datetime:
    """An OCPP dateTime; one without a UTC offset is taken as UTC."""
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _in_unit(limit: float, unit: str, wanted: str) -> float:
    """A charging limit converted between W and A (three phases at 230 V)."""
    # Limits arrive as Decimal: the library parses SetChargingProfile floats that way.
    limit = float(limit)
    if unit == wanted:
        return limit
    watts_per_amp = VOLTAGE * len(PHASES)
    converted = (
        limit * watts_per_amp if wanted == ChargingRateUnitType.watts else limit / watts_per_amp
    )
    return round(converted, 1)


async def _in_order(follow_ups: list[FollowUp]) -> None:
    for follow_up in follow_ups:
        await follow_up()
