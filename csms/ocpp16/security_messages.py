"""The charger -> central system messages of the OCPP 1.6 security extension
("Improved security for OCPP 1.6-J"): SecurityEventNotification,
SignedFirmwareStatusNotification and LogStatusNotification.

Each is stored and answered at once, as csms/ocpp16/handlers.py does for the others.
SignCertificate is not handled here: it belongs with the certificate authority.
"""

from __future__ import annotations

from typing import Any

import structlog

from csms.clock import normalise_ocpp_time
from csms.ocpp16.dispatch import Handler, Refused
from csms.ocpp16.frames import ErrorCode
from csms.store.security import SecurityEvent, SecurityStore

log = structlog.get_logger()

# The security events the specification marks critical (its appendix "Security Events"):
# a charger pushes these to the central system, which raises an operator alert for each
# (csms/alerting.py). Every other type, the spec's and vendors' own, is stored and listed
# without an alert.
CRITICAL_SECURITY_EVENTS = frozenset(
    {
        "FirmwareUpdated",
        "MemoryExhaustion",
        "ResetOrReboot",
        "SecurityLogWasCleared",
        "SettingSystemTime",
        "StartupOfTheDevice",
        "TamperDetectionActivated",
    }
)

# The rest of the spec's list: stored, listed, no alert.
OTHER_SECURITY_EVENTS = frozenset(
    {
        "AttemptedReplayAttacks",
        "CentralSystemFailedToAuthenticate",
        "FailedToAuthenticateAtCentralSystem",
        "InvalidCentralSystemCertificate",
        "InvalidChargePointCertificate",
        "InvalidFirmwareSignature",
        "InvalidFirmwareSigningCertificate",
        "InvalidMessages",
        "InvalidTLSCipherSuite",
        "InvalidTLSVersion",
        "ReconfigurationOfSecurityParameters",
    }
)

EMPTY: dict[str, Any] = {}
# OCPP's integers are 32-bit signed.
_INT32 = range(-(2**31), 2**31)


def is_critical(event_type: str) -> bool:
    return event_type in CRITICAL_SECURITY_EVENTS


def _timestamp(text: str) -> str:
    # csms.ocpp16.values has checked the range already; this guards what it lets through.
    try:
        return normalise_ocpp_time(text)
    except ValueError:
        raise Refused(
            ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, "timestamp: not a valid date-time"
        ) from None


def _request_id(request: dict[str, Any]) -> int | None:
    request_id = request.get("requestId")
    if request_id is not None and request_id not in _INT32:
        raise Refused(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, "requestId: beyond 32 bits")
    return request_id


class SecurityMessages:
    def __init__(self, store: SecurityStore) -> None:
        self._store = store

    def handlers(self) -> dict[str, Handler]:
        return {
            "LogStatusNotification": self.log_status_notification,
            "SecurityEventNotification": self.security_event_notification,
            "SignedFirmwareStatusNotification": self.signed_firmware_status_notification,
        }

    async def security_event_notification(
        self, charger_id: str, request: dict[str, Any]
    ) -> dict[str, Any]:
        event = SecurityEvent(
            charger_id=charger_id,
            type=request["type"],
            timestamp=_timestamp(request["timestamp"]),
            tech_info=request.get("techInfo"),
            critical=is_critical(request["type"]),
        )
        event_id = await self._store.record_event(event)
        log.info(
            "ocpp.security_event",
            event_id=event_id,
            type=event.type,
            critical=event.critical,
            tech_info=event.tech_info,
        )
        return EMPTY

    async def signed_firmware_status_notification(
        self, charger_id: str, request: dict[str, Any]
    ) -> dict[str, Any]:
        await self._store.record_report(
            charger_id, "firmware", request["status"], _request_id(request)
        )
        log.info(
            "ocpp.signed_firmware_status",
            status=request["status"],
            request_id=request.get("requestId"),
        )
        return EMPTY

    async def log_status_notification(
        self, charger_id: str, request: dict[str, Any]
    ) -> dict[str, Any]:
        await self._store.record_report(charger_id, "log", request["status"], _request_id(request))
        log.info("ocpp.log_status", status=request["status"], request_id=request.get("requestId"))
        return EMPTY
