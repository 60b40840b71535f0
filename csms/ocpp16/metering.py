"""MeterValues as facts: every sampled value with its OCPP defaults applied, normalised.

Pure. A sample's `normalised` value is exact (a Decimal, never rounded): energy in Wh or
varh and power in W or var whether the charger reports them in those units or in kWh,
kvarh, kW or kvar; every other measurand in its own unit (A, V, Hz, Celsius, Percent...).
Values that are not plain numbers (signed data, text) keep their text and have no
normalised value.

What billing reads (`readings`) is integer Wh and W: the exact value rounded half to even,
as it always was.

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

# Powers of ten to the base unit (Wh for energy, W for power, var for reactive power).
_UNIT_SCALE = {
    "Wh": 0,
    "kWh": 3,
    "varh": 0,
    "kvarh": 3,
    "W": 0,
    "kW": 3,
    "var": 0,
    "kvar": 3,
}

# A number of more than 10^30 or with more than 60 decimals is no reading: text such as
# 1E-999999 would take a million digits to write out.
_LARGEST_POWER = 30
_MOST_DECIMALS = 60

# The unit of a sample that names none, by measurand (OCPP 1.6, 7.31 Measurand and 7.45
# UnitOfMeasure). Frequency has no UnitOfMeasure in 1.6: the specification says its values
# are in hertz. RPM is in revolutions per minute. A power factor has no unit.
_DEFAULT_UNITS: dict[str, str | None] = {
    "Current.Export": "A",
    "Current.Import": "A",
    "Current.Offered": "A",
    "Energy.Active.Export.Register": "Wh",
    "Energy.Active.Import.Register": "Wh",
    "Energy.Reactive.Export.Register": "varh",
    "Energy.Reactive.Import.Register": "varh",
    "Energy.Active.Export.Interval": "Wh",
    "Energy.Active.Import.Interval": "Wh",
    "Energy.Reactive.Export.Interval": "varh",
    "Energy.Reactive.Import.Interval": "varh",
    "Frequency": "Hz",
    "Power.Active.Export": "W",
    "Power.Active.Import": "W",
    "Power.Factor": None,
    "Power.Offered": "W",
    "Power.Reactive.Export": "var",
    "Power.Reactive.Import": "var",
    "RPM": "RPM",
    "SoC": "Percent",
    "Temperature": "Celsius",
    "Voltage": "V",
}


# Normalised values have at most this many digits (below 2**53: exact as JSON numbers,
# as the database's REAL and BIGINT, however many are added up).
_MAX_DIGITS = 15

_LINE_TO_NEUTRAL = frozenset({"L1", "L2", "L3", "L1-N", "L2-N", "L3-N"})


def default_unit(measurand: str) -> str | None:
    """The unit OCPP 1.6 gives a sample of `measurand` that names none."""
    return _DEFAULT_UNITS.get(measurand)


@dataclass(frozen=True, slots=True)
class Sample:
    timestamp: str
    measurand: str
    phase: str | None
    unit: str | None  # as sent, else the measurand's default; None: the measurand has none
    context: str
    location: str
    format: str
    value: str
    normalised: Decimal | None  # exact; None when the value is not a plain number

    @property
    def rounded(self) -> int | None:
        """The normalised value as billing reads it: rounded half to even."""
        if self.normalised is None:
            return None
        return int(self.normalised.to_integral_value(rounding=ROUND_HALF_EVEN))

    @property
    def key(self) -> tuple[str, str, str | None, str, str, str | None, str]:
        """What tells this sample apart from others of its charger, connector and transaction:
        a sample sent again with the same key is the same sample. The value and its unit are
        part of it, so that two values a charger gave for one place and time are both kept."""
        return (
            self.timestamp,
            self.measurand,
            self.phase,
            self.location,
            self.context,
            self.unit,
            self.value,
        )


def parse_meter_values(meter_values: list[dict[str, Any]]) -> list[Sample]:
    """Flatten MeterValue[] into samples, with the defaults OCPP 1.6 section 7.43 defines."""
    samples = []
    for meter_value in meter_values:
        timestamp = normalise_ocpp_time(meter_value["timestamp"])
        for sampled in meter_value["sampledValue"]:
            measurand = sampled.get("measurand", ENERGY_REGISTER)
            unit = sampled.get("unit", default_unit(measurand))
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
                    normalised=normalise(sampled["value"], unit, value_format),
                )
            )
    return samples


def normalise(text: str, unit: str | None, value_format: str | None = "Raw") -> Decimal | None:
    """The exact value of `text` in the unit's base unit (kWh to Wh...), or in the unit
    itself when it has no other; None when it is not a plain, finite, sensible number."""
    if value_format != "Raw":
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    # Beyond 15 digits a value is no reading (its text is kept all the same): it could
    # neither be stored as a number nor added up exactly.
    if not number.is_finite() or number.adjusted() > _MAX_DIGITS - 4:
        return None
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite
    if exponent < -_MOST_DECIMALS or number.adjusted() > _LARGEST_POWER:
        return None
    # Scaled by a power of ten exactly: no context precision, no rounding.
    return Decimal((sign, digits, exponent + _UNIT_SCALE.get(unit or "", 0)))


def decimal_text(value: Decimal) -> str:
    """Plain decimal notation, every digit kept: 1.5000, 2250, 0.0015 (never 1.5E+3)."""
    return "0" if value.is_zero() and value.is_signed() else f"{value:f}"


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
    relevant = [(s, s.rounded) for s in samples if s.measurand == measurand]
    for location in _LOCATIONS:
        here = [(s, rounded) for s, rounded in relevant if s.location == location]
        totals = [rounded for s, rounded in here if s.phase is None and rounded is not None]
        if totals:
            return max(totals)
        per_phase: dict[str, int] = {}
        for s, rounded in here:
            if s.phase in _LINE_TO_NEUTRAL and rounded is not None:
                phase = s.phase[:2]
                per_phase[phase] = max(per_phase.get(phase, rounded), rounded)
        if per_phase:
            return sum(per_phase.values())
    return None
