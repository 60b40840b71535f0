"""One connector: its OCPP state, the simulated EV's power curve and the energy meter."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from ocpp.v16.datatypes import MeterValue, SampledValue
from ocpp.v16.enums import (
    ChargePointErrorCode,
    ChargePointStatus,
    Location,
    Measurand,
    Phase,
    ReadingContext,
    UnitOfMeasure,
)

VOLTAGE = 230.0
PHASES = (Phase.l1, Phase.l2, Phase.l3)
# The EV arrives at 20 % state of charge.
ARRIVAL_SOC = 20.0
# Energy the EV needs when Behaviour.max_energy_wh is unset (a 60 kWh pack from 20 %), for SoC.
NOMINAL_NEED_WH = 48_000.0
# Constant power up to 80 % of the energy the EV takes, then a taper towards 0...
TAPER_FROM = 0.8
# ...that stops shrinking at 5 % of full power, so the battery does get full in finite time.
TAPER_FLOOR = 0.05
# Meter anomalies (Connector.meter_anomaly): how far the register falls back ("down") and
# how far it leaps ("jump": gigawatt-hours, past what a 32-bit integer holds).
METER_DOWN_WH = 2_000
METER_JUMP_WH = 5_000_000_000
METER_ANOMALIES = ("down", "reset", "jump")


def power_at(delivered_wh: float, max_power_w: float, capacity_wh: float | None) -> float:
    """Power the EV draws once `delivered_wh` went in; `capacity_wh` None means it never fills."""
    if capacity_wh is None:
        return max_power_w
    if delivered_wh >= capacity_wh:
        return 0.0
    taper_start = TAPER_FROM * capacity_wh
    if delivered_wh < taper_start:
        return max_power_w
    share = (capacity_wh - delivered_wh) / (capacity_wh - taper_start)
    return max_power_w * max(share, TAPER_FLOOR)


def charge(
    delivered_wh: float, hours: float, max_power_w: float, capacity_wh: float | None
) -> float:
    """Energy delivered after `hours` more charging, integrating power_at() exactly."""
    if capacity_wh is None:
        return delivered_wh + max_power_w * hours
    if delivered_wh >= capacity_wh:
        return delivered_wh
    taper_start = TAPER_FROM * capacity_wh
    energy = delivered_wh
    if energy < taper_start:
        until_taper = (taper_start - energy) / max_power_w
        if hours <= until_taper:
            return energy + max_power_w * hours
        energy, hours = taper_start, hours - until_taper
    # In the taper dE/dt is proportional to the energy still missing: an exponential approach.
    span = capacity_wh - taper_start
    rate = max_power_w / span
    floor_gap = TAPER_FLOOR * span
    gap = capacity_wh - energy
    if gap > floor_gap:
        until_floor = math.log(gap / floor_gap) / rate
        if hours <= until_floor:
            return capacity_wh - gap * math.exp(-rate * hours)
        gap, hours = floor_gap, hours - until_floor
    return min(capacity_wh, capacity_wh - gap + TAPER_FLOOR * max_power_w * hours)


@dataclass
class Transaction:
    """One transaction, kept after it ends (SimulatedCharger.transactions) so that a test can
    hold the energy the EV really took against what the CSMS billed."""

    # Negative (provisional) while started offline and not yet known to the CSMS.
    transaction_id: int
    id_tag: str
    meter_start_wh: int
    begin: MeterValue
    # Energy the EV really took, whatever the meter says.
    delivered_wh: float = 0.0
    connector_id: int = 0
    # The rises between the register readings sent to the CSMS (meterStart, MeterValues,
    # meterStop), added up: what a CSMS that reads every sample could bill.
    reported_wh: int = 0
    last_reading_wh: int | None = None
    # None while the transaction runs; set when its StopTransaction is sent or queued.
    meter_stop_wh: int | None = None
    stop_reason: str | None = None
    # The CSMS's idTagInfo.status for the StartTransaction; None until it answered.
    id_tag_status: str | None = None
    # Meter anomalies that happened during the transaction, in order.
    anomalies: list[str] = field(default_factory=list)
    # time.monotonic() at the start and at the stop.
    started_at: float = 0.0
    stopped_at: float | None = None

    @property
    def running(self) -> bool:
        return self.meter_stop_wh is None

    def report(self, register_wh: int) -> None:
        """A register reading went out: count its rise over the previous one."""
        previous = self.meter_start_wh if self.last_reading_wh is None else self.last_reading_wh
        if register_wh > previous:
            self.reported_wh += register_wh - previous
        self.last_reading_wh = register_wh


@dataclass
class Reservation:
    reservation_id: int
    id_tag: str
    parent_id_tag: str | None
    expires: datetime

    def admits(self, id_tag: str) -> bool:
        return id_tag in (self.id_tag, self.parent_id_tag)


@dataclass
class RemoteStart:
    """An accepted RemoteStartTransaction waiting for the cable."""

    id_tag: str


@dataclass
class Connector:
    connector_id: int
    max_power_w: float
    status: str = ChargePointStatus.available
    # Last status the CSMS acknowledged; a different current one is resent after a reconnect.
    reported_status: str | None = None
    plugged: bool = False
    # The cable is still in after a session ended: Finishing until the driver unplugs.
    finished: bool = False
    operative: bool = True
    error_code: str = ChargePointErrorCode.no_error
    # ChangeAvailability received during a transaction, applied when it ends.
    scheduled_operative: bool | None = None
    # Set while a local start waits for Authorize/StartTransaction, so nothing else claims it.
    starting: bool = False
    register_wh: float = 0.0
    power_w: float = 0.0
    transaction: Transaction | None = None
    reservation: Reservation | None = None
    remote_start: RemoteStart | None = None
    _accrued_at: float | None = field(default=None, repr=False)

    @property
    def transaction_id(self) -> int | None:
        return self.transaction.transaction_id if self.transaction else None

    @property
    def id_tag(self) -> str | None:
        return self.transaction.id_tag if self.transaction else None

    @property
    def energy_wh(self) -> int:
        return round(self.register_wh)

    @property
    def busy(self) -> bool:
        return self.transaction is not None or self.starting or self.remote_start is not None

    def idle_status(self) -> str:
        """The status without a transaction, from faults, availability, reservation and cable."""
        if self.error_code != ChargePointErrorCode.no_error:
            return ChargePointStatus.faulted
        if not self.operative:
            return ChargePointStatus.unavailable
        if self.reservation is not None:
            return ChargePointStatus.reserved
        if self.plugged and self.finished:
            return ChargePointStatus.finishing
        if self.plugged or self.remote_start is not None:
            return ChargePointStatus.preparing
        return ChargePointStatus.available

    def begin(self, transaction: Transaction, now: float) -> None:
        self.transaction = transaction
        self._accrued_at = now

    def end(self) -> Transaction | None:
        transaction, self.transaction = self.transaction, None
        self.power_w = 0.0
        self._accrued_at = None
        return transaction

    def accrue(self, now: float, speed: float, capacity_wh: float | None) -> None:
        """Advance the meter to wall-clock `now` (monotonic seconds), `speed` times faster."""
        if self.transaction is None or self._accrued_at is None:
            return
        hours = max(0.0, now - self._accrued_at) * speed / 3600
        self._accrued_at = now
        before = self.transaction.delivered_wh
        after = charge(before, hours, self.max_power_w, capacity_wh)
        self.transaction.delivered_wh = after
        self.register_wh += after - before
        self.power_w = power_at(after, self.max_power_w, capacity_wh)

    def meter_anomaly(self, kind: str) -> None:
        """The meter misreads from now on: its register falls back by METER_DOWN_WH ("down"),
        starts again from 0 ("reset") or leaps by METER_JUMP_WH ("jump"). The energy the EV
        takes is not affected."""
        if kind == "down":
            self.register_wh = max(0.0, self.register_wh - METER_DOWN_WH)
        elif kind == "reset":
            self.register_wh = 0.0
        elif kind == "jump":
            self.register_wh += METER_JUMP_WH
        else:
            raise ValueError(f"meter anomaly must be one of {METER_ANOMALIES}, not {kind!r}")
        if self.transaction is not None:
            self.transaction.anomalies.append(kind)

    def soc(self, capacity_wh: float | None) -> float:
        delivered = self.transaction.delivered_wh if self.transaction else 0.0
        need = capacity_wh or NOMINAL_NEED_WH
        return min(100.0, ARRIVAL_SOC + (100.0 - ARRIVAL_SOC) * delivered / need)

    def sample(
        self,
        timestamp: str,
        context: ReadingContext,
        measurands: list[str],
        energy_unit: str,
        capacity_wh: float | None,
    ) -> MeterValue:
        """A MeterValue with the requested measurands, as the meter reads them now."""
        values: list[SampledValue] = []

        def add(
            value: str,
            measurand: Measurand,
            unit: UnitOfMeasure,
            location: Location = Location.outlet,
            phase: Phase | None = None,
        ) -> None:
            values.append(
                SampledValue(
                    value=value,
                    context=context,
                    measurand=measurand,
                    phase=phase,
                    location=location,
                    unit=unit,
                )
            )

        if Measurand.energy_active_import_register in measurands:
            if energy_unit == UnitOfMeasure.kwh:
                add(
                    f"{self.register_wh / 1000:.3f}",
                    Measurand.energy_active_import_register,
                    UnitOfMeasure.kwh,
                )
            else:
                add(str(self.energy_wh), Measurand.energy_active_import_register, UnitOfMeasure.wh)
        if Measurand.power_active_import in measurands:
            add(f"{self.power_w:.1f}", Measurand.power_active_import, UnitOfMeasure.w)
        if Measurand.current_import in measurands:
            amps = f"{self.power_w / (VOLTAGE * len(PHASES)):.1f}"
            for phase in PHASES:
                add(amps, Measurand.current_import, UnitOfMeasure.a, phase=phase)
        # State of charge only exists while an EV is charging.
        if Measurand.soc in measurands and self.transaction is not None:
            add(
                f"{self.soc(capacity_wh):.0f}",
                Measurand.soc,
                UnitOfMeasure.percent,
                location=Location.ev,
            )
        return MeterValue(timestamp=timestamp, sampled_value=values)
