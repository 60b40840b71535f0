"""MeterValues as facts: every sampled value with its OCPP defaults applied, normalised.

Pure. The energy register becomes integer Wh whether the charger reports Wh or kWh,
power becomes integer W; values that are not numbers (signed data) keep their text
and have no normalised value.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from csms.clock import normalise_ocpp_time

ENERGY_REGISTER = "Energy.Active.Import.Register"
ACTIVE_POWER = "Power.Active.Import"

# Multipliers to the base unit (Wh for energy, W for power, var for reactive power).
_UNIT_SCALE = {
    "Wh": 1,
    "kWh": 1000,
    "varh": 1,
    "kvarh": 1000,
    "W": 1,
    "kW": 1000,
    "var": 1,
    "kvar": 1000,
}


_LINE_TO_NEUTRAL = frozenset({"L1", "L2", "L3", "L1-N", "L2-N", "L3-N"})


@dataclass(frozen=True, slots=True)
class Sample:
    timestamp: str
    measurand: str
    phase: str | None
    unit: str
    context: str
    location: str
    format: str
    value: str
    normalised: int | None  # Wh, W, varh or var; None when the value is not a plain number


def parse_meter_values(meter_values: list[dict[str, Any]]) -> list[Sample]:
    """Flatten MeterValue[] into samples, with the defaults OCPP 1.6 section 7.43 defines."""
    samples = []
    for meter_value in meter_values:
        timestamp = normalise_ocpp_time(meter_value["timestamp"])
        for sampled in meter_value["sampledValue"]:
            measurand = sampled.get("measurand", ENERGY_REGISTER)
            unit = sampled.get("unit", "Wh")
            value_format = sampled.get("format", "Raw")
            samples.append(
                Sample(
                    timestamp=timestamp,
                    measurand=measurand,
                    phase=sampled.get("phase"),
                    unit=unit,
                    context=sampled.get("context", "Sample.Periodic"),
                    location=sampled.get("location", "Outlet"),
                    format=value_format,
                    value=sampled["value"],
                    normalised=_normalise(sampled["value"], unit)
                    if value_format == "Raw"
                    else None,
                )
            )
    return samples


def _normalise(text: str, unit: str) -> int | None:
    scale = _UNIT_SCALE.get(unit)
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    if scale is None:
        # Units other than energy and power (A, V, Celsius, Percent...) are kept as they are.
        scale = 1
    return int((number * scale).to_integral_value(rounding=ROUND_HALF_EVEN))


@dataclass(frozen=True, slots=True)
class Reading:
    """The latest energy register and active power that a batch of samples tells."""

    energy_wh: int | None
    power_w: int | None
    at: str | None


def latest_reading(samples: list[Sample]) -> Reading:
    return Reading(
        energy_wh=_latest_total(samples, ENERGY_REGISTER),
        power_w=_latest_total(samples, ACTIVE_POWER),
        at=max((s.timestamp for s in samples), default=None),
    )


def _latest_total(samples: list[Sample], measurand: str) -> int | None:
    """The newest value of a measurand: the total (no phase) or, failing that, the phases' sum."""
    relevant = [
        s
        for s in samples
        if s.measurand == measurand and s.normalised is not None and s.location != "EV"
    ]
    if not relevant:
        return None
    newest = max(s.timestamp for s in relevant)
    at_newest = [s for s in relevant if s.timestamp == newest]
    totals = [s.normalised for s in at_newest if s.phase is None]
    if totals:
        return totals[-1]
    # Line-to-neutral phase values add up to the total; take one value per phase.
    per_phase = {s.phase[:2]: s.normalised for s in at_newest if s.phase in _LINE_TO_NEUTRAL}
    return sum(per_phase.values()) if per_phase else None
