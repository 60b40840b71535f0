"""What the central system does with each charger -> central system message of OCPP 1.6.

Every handler stores what the charger said and answers at once. None of them waits for
the charger or for Stripe: work that needs either is handed on, never awaited here.
"""

from __future__ import annotations

from typing import Any

import structlog

from csms.authorization import Authorizer
from csms.clock import normalise_ocpp_time, parse_ocpp_time
from csms.config import OcppSettings
from csms.ocpp16.dispatch import Handler
from csms.ocpp16.events import ChargerEvents
from csms.ocpp16.live import StatusSink
from csms.ocpp16.metering import latest_reading, parse_meter_values, readings
from csms.ocpp16.refused import RefusedTransactions
from csms.store.chargers import ChargerStore
from csms.store.transactions import StartRequest, StopOutcome, TransactionStore
from storage.clock import now_text, to_text, utc_now

log = structlog.get_logger()

EMPTY: dict[str, Any] = {}

# DataTransfer handlers registered per vendorId; the rest are UnknownVendorId.
VendorHandler = Handler


class ChargerMessages:
    def __init__(
        self,
        settings: OcppSettings,
        chargers: ChargerStore,
        transactions: TransactionStore,
        authorizer: Authorizer,
        live: StatusSink,
        events: ChargerEvents | None = None,
        vendor_handlers: dict[str, VendorHandler] | None = None,
        refused: RefusedTransactions | None = None,
    ) -> None:
        self._settings = settings
        self._chargers = chargers
        self._transactions = transactions
        self._authorizer = authorizer
        self._live = live
        self._events = events
        self._vendor_handlers = vendor_handlers or {}
        self._refused = refused

    def handlers(self) -> dict[str, Handler]:
        return {
            "Authorize": self.authorize,
            "BootNotification": self.boot_notification,
            "DataTransfer": self.data_transfer,
            "DiagnosticsStatusNotification": self.diagnostics_status_notification,
            "FirmwareStatusNotification": self.firmware_status_notification,
            "Heartbeat": self.heartbeat,
            "MeterValues": self.meter_values,
            "StartTransaction": self.start_transaction,
            "StatusNotification": self.status_notification,
            "StopTransaction": self.stop_transaction,
        }

    async def boot_notification(self, charger_id: str, request: dict[str, Any]) -> dict[str, Any]:
        status = await self._chargers.record_boot(charger_id, request)
        # Booted: whatever it was charging before has ended, StopTransaction or not.
        lapsed = await self._transactions.lapse_on_boot(charger_id)
        interval = (
            self._settings.heartbeat_interval
            if status == "Accepted"
            else self._settings.boot_retry_interval
        )
        log.info(
            "ocpp.boot",
            vendor=request["chargePointVendor"],
            model=request["chargePointModel"],
            firmware=request.get("firmwareVersion"),
            registration=status,
            lapsed_transactions=lapsed,
        )
        return {"status": status, "currentTime": now_text(), "interval": interval}

    async def heartbeat(self, charger_id: str, request: dict[str, Any]) -> dict[str, Any]:
        await self._chargers.record_seen(charger_id)
        return {"currentTime": now_text()}

    async def status_notification(self, charger_id: str, request: dict[str, Any]) -> dict[str, Any]:
        await self._chargers.record_status(charger_id, request)
        timestamp = request.get("timestamp")
        at = parse_ocpp_time(timestamp) if timestamp else utc_now()
        connector_id = request["connectorId"]
        self._live.update(charger_id, connector_id, request["status"], to_text(at))
        if connector_id > 0 and request["status"] == "Available":
            # Nothing runs on an available connector (0 is the charger itself, not one).
            await self._transactions.lapse_on_available(charger_id, connector_id, to_text(at))
        if self._events:
            await self._events.charger_changed(charger_id, request["connectorId"], at)
        log.info(
            "ocpp.status",
            connector_id=request["connectorId"],
            status=request["status"],
            error_code=request["errorCode"],
        )
        return EMPTY

    async def authorize(self, charger_id: str, request: dict[str, Any]) -> dict[str, Any]:
        info = await self._authorizer.authorize(charger_id, None, request["idTag"], utc_now())
        log.info("ocpp.authorize", status=info["status"])
        return {"idTagInfo": info}

    async def start_transaction(self, charger_id: str, request: dict[str, Any]) -> dict[str, Any]:
        connector_id = request["connectorId"]
        info = await self._authorizer.authorize(
            charger_id, connector_id, request["idTag"], utc_now()
        )
        started = await self._transactions.start(
            StartRequest(
                charger_id=charger_id,
                connector_id=request["connectorId"],
                id_tag=request["idTag"],
                meter_start_wh=request["meterStart"],
                started_at=normalise_ocpp_time(request["timestamp"]),
                reservation_id=request.get("reservationId"),
            ),
            info["status"],
            reject_concurrent=self._settings.reject_concurrent_tx,
        )
        if self._events:
            await self._events.transaction_started(
                charger_id,
                connector_id,
                request["idTag"],
                started.transaction_id,
                request["meterStart"],
                parse_ocpp_time(request["timestamp"]),
            )
        log.info(
            "ocpp.transaction_started",
            transaction_id=started.transaction_id,
            connector_id=request["connectorId"],
            status=started.id_tag_status,
            duplicate=started.duplicate,
        )
        return {
            "transactionId": started.transaction_id,
            "idTagInfo": {**info, "status": started.id_tag_status},
        }

    async def meter_values(self, charger_id: str, request: dict[str, Any]) -> dict[str, Any]:
        claimed = request.get("transactionId")
        samples = parse_meter_values(request["meterValue"])
        reading = latest_reading(samples)
        linked = await self._transactions.record_meter_values(
            charger_id, request["connectorId"], claimed, samples, reading
        )
        if claimed is not None and linked is None:
            log.warning("ocpp.meter_values_unknown_transaction", transaction_id=claimed)
        if linked is not None and linked.refused and self._refused is not None:
            self._refused.running(charger_id, linked.transaction_id)  # not awaited
        if self._events and linked is not None:
            # Every timestamp in order: payments follow the register reading by reading.
            for each in readings(samples):
                assert each.at is not None
                await self._events.meter_values(
                    charger_id,
                    linked.transaction_id,
                    each.energy_wh,
                    each.power_w,
                    parse_ocpp_time(each.at),
                )
        return EMPTY

    async def stop_transaction(self, charger_id: str, request: dict[str, Any]) -> dict[str, Any]:
        transaction_id = request["transactionId"]
        samples = parse_meter_values(request.get("transactionData", []))
        outcome = await self._transactions.stop(
            charger_id,
            transaction_id,
            meter_stop_wh=request["meterStop"],
            stopped_at=normalise_ocpp_time(request["timestamp"]),
            reason=request.get("reason", "Local"),
            id_tag=request.get("idTag"),
            samples=samples,
        )
        if outcome is StopOutcome.UNKNOWN:
            # Answered all the same: a charger whose StopTransaction is refused resends it forever.
            log.warning("ocpp.stop_unknown_transaction", transaction_id=transaction_id)
        else:
            if outcome is StopOutcome.REFUSED_RAN:
                # Over already, so nothing to stop: the operator should know the charger
                # delivered energy on a start it was told not to make.
                log.warning("ocpp.refused_transaction_ran", transaction_id=transaction_id)
            if self._events:
                await self._events.transaction_stopped(
                    charger_id,
                    transaction_id,
                    request["meterStop"],
                    parse_ocpp_time(request["timestamp"]),
                    readings=[
                        (parse_ocpp_time(each.at), each.energy_wh)
                        for each in readings(samples)
                        if each.at is not None and each.energy_wh is not None
                    ],
                )
            log.info(
                "ocpp.transaction_stopped",
                transaction_id=transaction_id,
                meter_stop_wh=request["meterStop"],
                duplicate=outcome is StopOutcome.ALREADY_STOPPED,
            )
        if "idTag" not in request:
            return EMPTY
        info = await self._authorizer.authorize(charger_id, None, request["idTag"], utc_now())
        return {"idTagInfo": info}

    async def data_transfer(self, charger_id: str, request: dict[str, Any]) -> dict[str, Any]:
        handler = self._vendor_handlers.get(request["vendorId"])
        reply = await handler(charger_id, request) if handler else {"status": "UnknownVendorId"}
        await self._chargers.record_data_transfer(charger_id, request, reply["status"])
        return reply

    async def diagnostics_status_notification(
        self, charger_id: str, request: dict[str, Any]
    ) -> dict[str, Any]:
        await self._chargers.record_diagnostics_status(charger_id, request["status"])
        return EMPTY

    async def firmware_status_notification(
        self, charger_id: str, request: dict[str, Any]
    ) -> dict[str, Any]:
        await self._chargers.record_firmware_status(charger_id, request["status"])
        return EMPTY
