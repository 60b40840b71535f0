"""The security extension of OCPP 1.6 on a simulated charger: its certificates, its log
uploads and signed firmware updates, and the security events it reports.

`SecurityFeatures` holds the state and sends the charger's side of each flow; the link
(security_link.py) decides the answers to the central system's CALLs and queues these
flows as follow-ups, the way the core operations do (link.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from ocpp.v16 import call
from ocpp.v16.enums import FirmwareStatus, UploadLogStatus

from .certificates import CertificateStore

log = logging.getLogger("simulators.chargepoint")

Send = Callable[[Any], Awaitable[Any]]

# The steps of a signed firmware update that goes well, as SignedFirmwareStatusNotification
# reports them; the charger then reports the security event FirmwareUpdated.
FIRMWARE_STEPS = (
    FirmwareStatus.downloading,
    FirmwareStatus.downloaded,
    FirmwareStatus.signature_verified,
    FirmwareStatus.installing,
    FirmwareStatus.installed,
)
LOG_STEPS = (UploadLogStatus.uploading, UploadLogStatus.uploaded)


class SecurityFeatures:
    """`call` sends a CALL and returns the reply (raising when offline or refused);
    `try_call` does the same but only logs a failure; `step` is the pause between two
    steps of an upload or an update."""

    def __init__(
        self,
        charge_point_id: str,
        call: Send,
        try_call: Send,
        clock: Callable[[], datetime],
        timestamp: Callable[[], str],
        step: float,
    ) -> None:
        self._id = charge_point_id
        self._call = call
        self._try_call = try_call
        self._clock = clock
        self._timestamp = timestamp
        self._step = step
        self.certificates = CertificateStore()
        self.log_status = UploadLogStatus.idle
        self.log_request_id: int | None = None
        self.firmware_status = FirmwareStatus.idle
        self.firmware_request_id: int | None = None
        # Every security event reported, in order: (type, techInfo).
        self.events: list[tuple[str, str | None]] = []

    def now(self) -> datetime:
        return self._clock()

    async def send_event(self, event_type: str, tech_info: str | None = None) -> Any:
        """SecurityEventNotification now; raises ChargerOffline (or the CALLERROR) if it
        does not go through."""
        self.events.append((event_type, tech_info))
        log.info("%s: security event %s", self._id, event_type)
        return await self._call(
            call.SecurityEventNotification(
                type=event_type, timestamp=self._timestamp(), tech_info=tech_info
            )
        )

    async def report_event(self, event_type: str, tech_info: str | None = None) -> None:
        """A security event the charger raises itself: a failure is only logged."""
        self.events.append((event_type, tech_info))
        await self._try_call(
            call.SecurityEventNotification(
                type=event_type, timestamp=self._timestamp(), tech_info=tech_info
            )
        )

    async def send_log_status(self) -> None:
        await self._try_call(
            call.LogStatusNotification(status=self.log_status, request_id=self.log_request_id)
        )

    async def send_firmware_status(self) -> None:
        await self._try_call(
            call.SignedFirmwareStatusNotification(
                status=self.firmware_status, request_id=self.firmware_request_id
            )
        )

    async def upload_log(self, request_id: int, log_type: str, location: str) -> None:
        """Pretend to upload the log to `location` (nothing leaves the machine)."""
        log.info("%s: uploading %s to %s", self._id, log_type, location)
        self.log_request_id = request_id
        for status in LOG_STEPS:
            self.log_status = status
            await self.send_log_status()
            if status != LOG_STEPS[-1]:
                await asyncio.sleep(self._step)
        self.log_status, self.log_request_id = UploadLogStatus.idle, None

    async def update_firmware(self, request_id: int, location: str, retrieve_at: datetime) -> None:
        """Pretend to download, verify and install signed firmware from `location`."""
        wait = (retrieve_at - self._clock()).total_seconds()
        self.firmware_request_id = request_id
        if wait > 0:
            self.firmware_status = FirmwareStatus.download_scheduled
            await self.send_firmware_status()
            await asyncio.sleep(wait)
        log.info("%s: installing signed firmware from %s", self._id, location)
        for status in FIRMWARE_STEPS:
            self.firmware_status = status
            await self.send_firmware_status()
            if status != FIRMWARE_STEPS[-1]:
                await asyncio.sleep(self._step)
        self.firmware_status, self.firmware_request_id = FirmwareStatus.idle, None
        await self.report_event("FirmwareUpdated", f"from {location}"[:255])
