"""Tariffs and prices. Pure: no I/O, integer minor units, explicit rounding.

A tariff must bound what a session can cost, because the driver's card is authorised
for exactly that bound (the hold) before the charge starts. Durations are billed in
whole minutes (started minutes are not billed), energy to the nearest minor unit
(half up), and every component is capped so that a price never exceeds the hold.

Amounts are ones Stripe takes (`payments.currency`): in a currency with a coarser step
than its minor unit (three-decimal currencies: 10; ISK, UGX: 100) each component of a
price is rounded down to the step, and the hold up. `checked_hold_amount` also refuses
what Stripe would refuse: a currency it does not support, a session fee it cannot
charge, a hold below its minimum charge or above its maximum.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from payments.currency import (
    exponent,
    format_money,
    is_chargeable,
    is_supported,
    maximum_charge_amount,
    minimum_charge,
    round_capture,
    round_hold,
    step,
    to_minor,
)

currency_exponent = exponent  # the name callers know


class TariffError(ValueError):
    """A tariff that cannot be used; `field` names the offending setting."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Tariff:
    currency: str
    price_per_kwh: int = 0  # minor units per kWh
    session_fee: int = 0
    time_fee_per_minute: int = 0
    time_fee_free_minutes: int = 0
    time_fee_max_minutes: int | None = None  # billed minutes at most
    idle_fee_per_minute: int = 0  # after charging ends, while the car stays plugged in
    idle_grace_minutes: int = 0
    idle_fee_max_minutes: int | None = None
    max_energy_wh: int | None = None
    max_duration_minutes: int | None = None
    # VAT included in the prices (they are gross), in hundredths of a percent: 1900 = 19 %.
    # Only shown (the receipt's "incl. VAT" line); it changes no amount.
    tax_rate_basis_points: int = 0

    def __post_init__(self) -> None:
        if len(self.currency) != 3 or not self.currency.isalpha():
            raise TariffError("currency", f"not an ISO 4217 code: {self.currency!r}")
        object.__setattr__(self, "currency", self.currency.lower())
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "currency" or value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise TariffError(f.name, f"must be a whole number >= 0, got {value!r}")
        for name in ("max_energy_wh", "max_duration_minutes"):
            if getattr(self, name) == 0:
                raise TariffError(name, "must be more than 0 when set")
        if self.tax_rate_basis_points > 10000:
            raise TariffError("tax_rate_basis_points", "must be at most 10000 (100 %)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tariff:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise TariffError(sorted(unknown)[0], "unknown tariff setting")
        if "currency" not in data:
            raise TariffError("currency", "is required")
        return cls(**data)


MONEY_FIELDS = ("price_per_kwh", "session_fee", "time_fee_per_minute", "idle_fee_per_minute")


def tariff_from_major_units(currency: str, settings: dict[str, Any]) -> Tariff:
    """A tariff written the way people write prices ("0.35" EUR), checked to be bounded and
    chargeable through Stripe (`checked_hold_amount`)."""
    if len(currency) == 3 and currency.isalpha() and not is_supported(currency):
        raise TariffError("currency", _unsupported(currency))
    values = dict(settings)
    if "tax_rate_percent" in values:
        values["tax_rate_basis_points"] = _basis_points(values.pop("tax_rate_percent"))
    for name in MONEY_FIELDS:
        if name in values:
            try:
                values[name] = to_minor(values[name], currency)
            except ValueError as error:
                raise TariffError(name, str(error)) from None
    tariff = Tariff.from_dict({"currency": currency, **values})
    checked_hold_amount(tariff)
    return tariff


def _basis_points(percent: Any) -> int:
    """ "19" -> 1900, "7.7" -> 770: a percentage with at most two decimals, up to 100."""
    try:
        exact = Decimal(str(percent).strip())
    except ArithmeticError:
        exact = Decimal(-1)
    points = exact * 100
    if not exact.is_finite() or points != points.to_integral_value() or not 0 <= points <= 10000:
        raise TariffError(
            "tax_rate_percent", f"must be a percentage from 0 to 100, got {percent!r}"
        )
    return int(points)


def included_tax(gross: int, basis_points: int) -> int:
    """The VAT inside a gross amount (minor units), half up: 1190 at 19 % -> 190."""
    if not basis_points:
        return 0
    net = Decimal(gross) * 10000 / (10000 + basis_points)
    return int((Decimal(gross) - net).quantize(Decimal(1), ROUND_HALF_UP))


def _unsupported(currency: str) -> str:
    return f"Stripe does not charge in {currency.upper()}"


@dataclass(frozen=True)
class Usage:
    energy_wh: int
    charging_seconds: int  # from the start of the transaction to its stop
    idle_seconds: int = 0  # from the stop to the disconnection


@dataclass(frozen=True)
class Breakdown:
    energy_wh: int  # billed energy (capped at the tariff's maximum)
    energy: int
    session_fee: int
    time_minutes: int
    time_fee: int
    idle_minutes: int
    idle_fee: int

    @property
    def total(self) -> int:
        return self.energy + self.session_fee + self.time_fee + self.idle_fee


def _time_fee_minutes_cap(tariff: Tariff) -> int | None:
    caps = [tariff.time_fee_max_minutes]
    if tariff.max_duration_minutes is not None:
        caps.append(max(0, tariff.max_duration_minutes - tariff.time_fee_free_minutes))
    known = [c for c in caps if c is not None]
    return min(known) if known else None


def hold_amount(tariff: Tariff) -> int:
    """The most a session can cost under `tariff`: the amount to authorise. Refuses unbounded.

    Rounded up to an amount Stripe takes, so that it still covers the highest price."""
    return round_hold(sum(amount for amount, _ in _hold_parts(tariff)), tariff.currency)


def _hold_parts(tariff: Tariff) -> list[tuple[int, str]]:
    """The hold's components, each with the setting that bounds it."""
    parts = [(tariff.session_fee, "session_fee")]
    if tariff.price_per_kwh:
        if tariff.max_energy_wh is None:
            raise TariffError("max_energy_wh", "a price per kWh needs a maximum energy per session")
        parts.append((_energy_cost(tariff, tariff.max_energy_wh), "max_energy_wh"))
    if tariff.time_fee_per_minute:
        cap = _time_fee_minutes_cap(tariff)
        if cap is None:
            raise TariffError(
                "time_fee_max_minutes", "a time fee needs a cap or a maximum session duration"
            )
        binding = (
            "time_fee_max_minutes" if cap == tariff.time_fee_max_minutes else "max_duration_minutes"
        )
        parts.append((tariff.time_fee_per_minute * cap, binding))
    if tariff.idle_fee_per_minute:
        if tariff.idle_fee_max_minutes is None:
            raise TariffError("idle_fee_max_minutes", "an idle fee needs a cap")
        idle = tariff.idle_fee_per_minute * tariff.idle_fee_max_minutes
        parts.append((idle, "idle_fee_max_minutes"))
    return parts


def checked_hold_amount(tariff: Tariff) -> int:
    """The hold, refused unless Stripe would take it: the TariffError names the setting to
    change (for a hold out of Stripe's range, the one that bounds its largest part)."""
    currency = tariff.currency
    if not is_supported(currency):
        raise TariffError("currency", _unsupported(currency))
    if not is_chargeable(tariff.session_fee, currency):
        raise TariffError(
            "session_fee",
            f"{format_money(tariff.session_fee, currency)} cannot be charged: Stripe takes "
            f"{currency.upper()} in steps of {format_money(step(currency), currency)}",
        )
    parts = _hold_parts(tariff)
    hold = hold_amount(tariff)
    if hold == 0:
        return 0  # free: nothing goes to Stripe
    largest = max(parts)[1]
    minimum = minimum_charge(currency)
    if minimum is not None and hold < minimum:
        raise TariffError(
            largest,
            f"the hold {format_money(hold, currency)} is below Stripe's minimum charge "
            f"{format_money(minimum, currency)}: raise this setting so that a session can "
            "cost at least that much",
        )
    maximum = maximum_charge_amount(currency)
    if hold > maximum:
        raise TariffError(
            largest,
            f"the hold {format_money(hold, currency)} is above Stripe's maximum charge "
            f"{format_money(maximum, currency)}: lower this setting",
        )
    return hold


def _energy_cost(tariff: Tariff, energy_wh: int) -> int:
    cost = Decimal(energy_wh) * tariff.price_per_kwh / 1000
    return int(cost.to_integral_value(rounding=ROUND_HALF_UP))


def price(tariff: Tariff, usage: Usage) -> Breakdown:
    """What a session with this usage costs, component by component, never above the hold.

    Each component is rounded down to an amount Stripe takes, so their sum is one too."""
    energy_wh = max(0, usage.energy_wh)
    if tariff.max_energy_wh is not None:
        energy_wh = min(energy_wh, tariff.max_energy_wh)
    minutes = max(0, usage.charging_seconds) // 60
    time_minutes = max(0, minutes - tariff.time_fee_free_minutes)
    cap = _time_fee_minutes_cap(tariff)
    if cap is not None:
        time_minutes = min(time_minutes, cap)
    idle_minutes = max(0, max(0, usage.idle_seconds) // 60 - tariff.idle_grace_minutes)
    if tariff.idle_fee_max_minutes is not None:
        idle_minutes = min(idle_minutes, tariff.idle_fee_max_minutes)
    if not tariff.time_fee_per_minute:
        time_minutes = 0
    if not tariff.idle_fee_per_minute:
        idle_minutes = 0
    currency = tariff.currency
    return Breakdown(
        energy_wh=energy_wh,
        energy=round_capture(_energy_cost(tariff, energy_wh), currency),
        session_fee=round_capture(tariff.session_fee, currency),
        time_minutes=time_minutes,
        time_fee=round_capture(time_minutes * tariff.time_fee_per_minute, currency),
        idle_minutes=idle_minutes,
        idle_fee=round_capture(idle_minutes * tariff.idle_fee_per_minute, currency),
    )


def would_pass_cap(
    tariff: Tariff, energy_wh: int, power_w: int, seconds_to_next_sample: float
) -> bool:
    """Whether the charge must stop now: the next sample would pass the energy cap."""
    if tariff.max_energy_wh is None:
        return False
    projected = energy_wh + max(0, power_w) * seconds_to_next_sample / 3600
    return projected >= tariff.max_energy_wh
