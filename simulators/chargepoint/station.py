"""The charge point's state: its connectors, their statuses as the CSMS was told them, its
clock, its configuration and what the CSMS set on it (local list, charging profiles).

`ChargerStation` is the state half of SimulatedCharger (simulators.chargepoint.charger):
the constructor, looking connectors and transactions up, and statuses. A status is only
ever changed through `_set_status`, which notifies waiters and sends StatusNotification
when online; offline it is only remembered, and `_resync` (after a reconnect) sends what
the CSMS was not told. Connector 0 is the charge point as a whole, as in OCPP: a driver's
action names connectors 1..N (`_driver_connector`), the CSMS may name 0.
The connector's own model (power curve, meter, idle status) is simulators.chargepoint.connector;
starting, metering and ending charges is simulators.chargepoint.charging.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ocpp.v16 import call
from ocpp.v16.enums import (
    DiagnosticsStatus,
    FirmwareStatus,
    UnitOfMeasure,
)

from .behaviour import Behaviour
from .configuration import Configuration
from .connector import Connector, Transaction
from .security import SecurityFeatures
from .session import BACKOFF_MAX, OcppSession

log = logging.getLogger("simulators.chargepoint")

# Duration of each step of a simulated diagnostics upload or firmware update.
STEP_SECONDS = 0.2


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ChargerStation(OcppSession):
    """A charge point's connectors and statuses, on top of its OCPP connection."""

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

    # Observation, for tests

    def connector(self, connector_id: int) -> Connector:
        """The connector's current state (the meter is brought up to date first)."""
        connector = self._any_connector(connector_id)
        self._accrue(connector)
        return connector

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

    async def refresh_status(self, connector: Connector) -> None:
        """Move an idle connector to the status its state implies (Reserved, Unavailable...)."""
        if connector.transaction is None:
            await self._set_status(connector, connector.idle_status())

    async def report_statuses(self, connector_id: int | None = None) -> None:
        """StatusNotification for one connector, or all of them, whether changed or not."""
        chosen = self.connectors if connector_id is None else [self.connectors[connector_id]]
        for connector in chosen:
            await self._report_status(connector)

    # Statuses

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

    async def _resync(self) -> None:
        for connector in self.connectors:
            if connector.status != connector.reported_status:
                await self._report_status(connector)

    # The meters

    def _accrue(self, connector: Connector) -> None:
        connector.accrue(time.monotonic(), self.speed, self.behaviour.max_energy_wh)

    # Helpers

    def _any_connector(self, connector_id: int) -> Connector:
        if not 0 <= connector_id < len(self.connectors):
            raise ValueError(f"{self.charge_point_id} has no connector {connector_id}")
        return self.connectors[connector_id]

    def _driver_connector(self, connector_id: int) -> Connector:
        if connector_id == 0:
            raise ValueError("connector 0 is the charge point itself; use 1..N")
        return self._any_connector(connector_id)
