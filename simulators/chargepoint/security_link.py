"""The simulated charger's answers to the seven central system -> charger operations of the
OCPP 1.6 security extension. Mixed into OcppLink (link.py), whose rules it follows:
handlers decide the answer and update state; what must be sent afterwards is queued with
`_then` and starts once the answer is on the wire."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ocpp.routing import on
from ocpp.v16 import call_result
from ocpp.v16.enums import (
    Action,
    CertificateSignedStatus,
    CertificateStatus,
    GetInstalledCertificateStatus,
    LogStatus,
    MessageTrigger,
    TriggerMessageStatus,
    UpdateFirmwareStatus,
)

from .certificates import CertificateError, parse_certificate, parse_chain

if TYPE_CHECKING:
    from .charger import SimulatedCharger
    from .connector import Connector

FollowUp = Callable[[], Awaitable[Any]]
# CertificateHashData as the library hands it over (snake_case) -> as on the wire.
_HASH_FIELDS = {
    "hash_algorithm": "hashAlgorithm",
    "issuer_name_hash": "issuerNameHash",
    "issuer_key_hash": "issuerKeyHash",
    "serial_number": "serialNumber",
}


class SecurityOperations:
    if TYPE_CHECKING:
        _charger: SimulatedCharger

        def _then(self, follow_up: FollowUp) -> None: ...

        def _connector(
            self, connector_id: int | None, *, allow_zero: bool = False
        ) -> Connector | None: ...

    @on(Action.certificate_signed)
    def on_certificate_signed(
        self, certificate_chain: str, **_: Any
    ) -> call_result.CertificateSigned:
        security = self._charger.security
        try:
            chain = parse_chain(certificate_chain)
        except CertificateError:
            chain = []
        if not chain or not chain[0].valid_at(security.now()):
            self._then(lambda: security.report_event("InvalidChargePointCertificate"))
            return call_result.CertificateSigned(CertificateSignedStatus.rejected)
        security.certificates.own_chain = chain
        return call_result.CertificateSigned(CertificateSignedStatus.accepted)

    @on(Action.install_certificate)
    def on_install_certificate(
        self, certificate_type: str, certificate: str, **_: Any
    ) -> call_result.InstallCertificate:
        security = self._charger.security
        try:
            parsed = parse_certificate(certificate)
        except CertificateError:
            return call_result.InstallCertificate(CertificateStatus.rejected)
        status = security.certificates.install(certificate_type, parsed, security.now())
        return call_result.InstallCertificate(CertificateStatus(status))

    @on(Action.get_installed_certificate_ids)
    def on_get_installed_certificate_ids(
        self, certificate_type: str, **_: Any
    ) -> call_result.GetInstalledCertificateIds:
        found = self._charger.security.certificates.hash_data(certificate_type)
        if not found:
            return call_result.GetInstalledCertificateIds(GetInstalledCertificateStatus.not_found)
        return call_result.GetInstalledCertificateIds(
            GetInstalledCertificateStatus.accepted, certificate_hash_data=found
        )

    @on(Action.delete_certificate)
    def on_delete_certificate(
        self, certificate_hash_data: dict[str, str], **_: Any
    ) -> call_result.DeleteCertificate:
        wanted = {_HASH_FIELDS[k]: v for k, v in certificate_hash_data.items() if k in _HASH_FIELDS}
        status = self._charger.security.certificates.delete(wanted)
        return call_result.DeleteCertificate(status)

    @on(Action.get_log)
    def on_get_log(
        self, log: dict[str, Any], log_type: str, request_id: int, **_: Any
    ) -> call_result.GetLog:
        charger, security = self._charger, self._charger.security
        # A new request cancels the upload under way, if any.
        busy = security.log_request_id is not None
        stamp = charger.now().strftime("%Y%m%dT%H%M%SZ")
        location = log["remote_location"]
        self._then(lambda: security.upload_log(request_id, log_type, location))
        return call_result.GetLog(
            status=LogStatus.accepted_canceled if busy else LogStatus.accepted,
            filename=f"{charger.charge_point_id}-{log_type}-{stamp}.log",
        )

    @on(Action.signed_update_firmware)
    def on_signed_update_firmware(
        self, request_id: int, firmware: dict[str, Any], **_: Any
    ) -> call_result.SignedUpdateFirmware:
        security = self._charger.security
        try:
            signer = parse_certificate(firmware["signing_certificate"])
        except CertificateError:
            signer = None
        if signer is None or not signer.valid_at(security.now()):
            self._then(lambda: security.report_event("InvalidFirmwareSigningCertificate"))
            return call_result.SignedUpdateFirmware(UpdateFirmwareStatus.invalid_certificate)
        busy = security.firmware_request_id is not None
        retrieve_at = _parse_time(firmware["retrieve_date_time"])
        location = firmware["location"]
        self._then(lambda: security.update_firmware(request_id, location, retrieve_at))
        return call_result.SignedUpdateFirmware(
            UpdateFirmwareStatus.accepted_canceled if busy else UpdateFirmwareStatus.accepted
        )

    @on(Action.extended_trigger_message)
    def on_extended_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ) -> call_result.ExtendedTriggerMessage:
        charger, security = self._charger, self._charger.security
        if connector_id is not None and self._connector(connector_id, allow_zero=True) is None:
            return call_result.ExtendedTriggerMessage(TriggerMessageStatus.rejected)
        triggers: dict[str, FollowUp] = {
            MessageTrigger.boot_notification: charger.send_boot_notification,
            MessageTrigger.heartbeat: charger.send_heartbeat,
            MessageTrigger.status_notification: lambda: charger.report_statuses(connector_id),
            MessageTrigger.meter_values: lambda: charger.send_triggered_meter_values(connector_id),
            # In the extension, these two mean its own notifications.
            MessageTrigger.firmware_status_notification: security.send_firmware_status,
            MessageTrigger.log_status_notification: security.send_log_status,
        }
        trigger = triggers.get(requested_message)
        if trigger is None:  # SignChargePointCertificate: this charger makes no key pair
            return call_result.ExtendedTriggerMessage(TriggerMessageStatus.not_implemented)
        self._then(trigger)
        return call_result.ExtendedTriggerMessage(TriggerMessageStatus.accepted)


def _parse_time(value: str) -> datetime:
    """An OCPP dateTime; one without a UTC offset is taken as UTC."""
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
