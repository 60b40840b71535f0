"""MeterValues as facts: every sampled value with its OCPP defaults applied, normalised.

Pure. The energy register becomes integer Wh whether the charger reports Wh or kWh,
power becomes integer W; values that are not numbers (signed data) keep their text
and have no normalised value.

A MeterValue may carry the register several times (Outlet and Inlet, a total and its
phases, two contexts): `readings` picks one value per timestamp by a stated rule (see
`_value`) in which the order of the sampled values never decides, and returns every
timestamp, so that the payments side can follow the register reading by reading.
"""

from __future__ import annotations

from collections.abc import Sequence
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


# Normalised values have at most this many digits (below 2**53: exact as JSON numbers,
# as the database's REAL and BIGINT, however many are added up).
_MAX_DIGITS = 15

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
    # Beyond 15 digits a value is no reading (its text is kept all the same): it could
    # neither be stored as a number nor added up exactly.
    if not number.is_finite() or number.adjusted() > _MAX_DIGITS - 4:
        return None
    if scale is None:
        # Units other than energy and power (A, V, Celsius, Percent...) are kept as they are.
        scale = 1
    return int((number * scale).to_integral_value(rounding=ROUND_HALF_EVEN))


@dataclass(frozen=True, slots=True)
class Reading:
    """The energy register and active power that samples tell, at one time or the latest."""

    energy_wh: int | None
    power_w: int | None
    at: str | None


# Where a register may be read for billing, best first: the Outlet (what the EV got) before
# the Inlet (what the charger drew, its own losses included). EV, Body and Cable values are
# not the charger's meter.
_LOCATIONS = ("Outlet", "Inlet")


def readings(samples: Sequence[Sample]) -> list[Reading]:
    """One reading per timestamp that has an energy register or active power, oldest first."""
    by_time: dict[str, list[Sample]] = {}
    for s in samples:
        by_time.setdefault(s.timestamp, []).append(s)
    found = []
    for timestamp in sorted(by_time):
        at_time = by_time[timestamp]
        energy, power = _value(at_time, ENERGY_REGISTER), _value(at_time, ACTIVE_POWER)
        if energy is not None or power is not None:
            found.append(Reading(energy, power, timestamp))
    return found


def latest_reading(samples: Sequence[Sample]) -> Reading:
    """The newest energy register and the newest power, each from its own newest sample."""
    found = readings(samples)
    return Reading(
        energy_wh=next((r.energy_wh for r in reversed(found) if r.energy_wh is not None), None),
        power_w=next((r.power_w for r in reversed(found) if r.power_w is not None), None),
        at=max((s.timestamp for s in samples), default=None),
    )


def _value(samples: Sequence[Sample], measurand: str) -> int | None:
    """A measurand's value among samples of one timestamp, by a rule in which the order of
    the sampled values never decides:

    1. location: Outlet (also when absent) before Inlet; other locations are not used;
    2. in that location, the total (no phase) before the phases: line-to-neutral values
       (L1, L2, L3 or L1-N, L2-N, L3-N) add up to the total, one value per phase;
    3. several candidates for the same place (another context, unit or a repeat): the
       highest, since a register only grows and a finer unit is not rounded down.
    """
    relevant = [s for s in samples if s.measurand == measurand and s.normalised is not None]
    for location in _LOCATIONS:
        here = [s for s in relevant if s.location == location]
        totals = [s.normalised for s in here if s.phase is None and s.normalised is not None]
        if totals:
            return max(totals)
        per_phase: dict[str, int] = {}
        for s in here:
            if s.phase in _LINE_TO_NEUTRAL and s.normalised is not None:
                phase = s.phase[:2]
                per_phase[phase] = max(per_phase.get(phase, s.normalised), s.normalised)
        if per_phase:
            return sum(per_phase.values())
    return None
