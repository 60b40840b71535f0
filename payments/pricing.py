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

Tariffs by time of day (`payments.bands`): energy is priced part by part, the energy outside
every band at `price_per_kwh` and each band's at its own price, each part half up and rounded
down to what Stripe takes; the hold counts the most energy at the highest of these prices.
Per-part rounding could pass that by a minor unit a part (only at the energy cap): then the
excess comes off the last parts, so a price never exceeds the hold. The time fee skips the
minutes inside `time_fee_excluded` (the caller measures them: `Usage.time_fee_seconds`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from payments.bands import Band, BandError, Window, check_bands, check_window
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
from payments.split import SplitError, SplitRule

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
    # Prices by time of day (payments.bands); the rest of the time is at price_per_kwh.
    bands: tuple[Band, ...] = ()
    time_fee_excluded: Window | None = None  # no time fee inside it (every day)
    # How the money of sessions under this tariff is shared with the site's owner; it
    # overrides the site's rule (payments.split). None: the site's rule applies. Prices,
    # the hold and receipts do not depend on it.
    split: SplitRule | None = None

    def __post_init__(self) -> None:
        if len(self.currency) != 3 or not self.currency.isalpha():
            raise TariffError("currency", f"not an ISO 4217 code: {self.currency!r}")
        object.__setattr__(self, "currency", self.currency.lower())
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _NOT_COUNTS or value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise TariffError(f.name, f"must be a whole number >= 0, got {value!r}")
        for name in ("max_energy_wh", "max_duration_minutes"):
            if getattr(self, name) == 0:
                raise TariffError(name, "must be more than 0 when set")
        if self.tax_rate_basis_points > 10000:
            raise TariffError("tax_rate_basis_points", "must be at most 10000 (100 %)")
        self._check_bands()
        self._check_split()

    def _check_split(self) -> None:
        rule = self.split
        if rule is None or isinstance(rule, SplitRule):
            return
        if not isinstance(rule, dict):
            raise TariffError("split", "must be a table of split settings")
        try:
            object.__setattr__(self, "split", SplitRule.from_dict(dict(rule)))
        except SplitError as error:
            raise TariffError(f"split.{error.field}", error.message) from None
        except TypeError:
            raise TariffError("split", "not a split rule") from None

    def _check_bands(self) -> None:
        bands = tuple(b if isinstance(b, Band) else _band(b) for b in self.bands or ())
        window = self.time_fee_excluded
        if isinstance(window, dict):
            window = Window(**window)
        object.__setattr__(self, "bands", bands)
        object.__setattr__(self, "time_fee_excluded", window)
        try:
            check_bands(bands)
            if window is not None:
                check_window(window)
        except BandError as error:
            raise TariffError(error.field, error.message) from None

    @property
    def highest_price_per_kwh(self) -> int:
        return max((self.price_per_kwh, *(b.price_per_kwh for b in self.bands)))

    def part_price(self, part: int) -> int:
        """The price per kWh of an energy part: 0 outside every band, i + 1 in bands[i]."""
        return self.bands[part - 1].price_per_kwh if part else self.price_per_kwh

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


_NOT_COUNTS = ("currency", "bands", "time_fee_excluded", "split")


def _band(data: object) -> Band:
    if not isinstance(data, dict):
        raise TariffError("bands", "each band must be a table of start, end, price_per_kwh")
    values = dict(data)
    if "days" in values:
        values["days"] = tuple(values["days"])
    try:
        return Band(**values)
    except TypeError as error:
        raise TariffError("bands", str(error)) from None


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
    if values.get("bands"):
        values["bands"] = [_minor_band(b, i, currency) for i, b in enumerate(values["bands"])]
    tariff = Tariff.from_dict({"currency": currency, **values})
    checked_hold_amount(tariff)
    return tariff


def _minor_band(band: Any, index: int, currency: str) -> Any:
    """A band with its price in major units ("0.45") as one in minor units."""
    if not isinstance(band, dict) or "price_per_kwh" not in band:
        return band  # refused by the Tariff, naming it
    try:
        return {**band, "price_per_kwh": to_minor(band["price_per_kwh"], currency)}
    except ValueError as error:
        raise TariffError(f"bands[{index}].price_per_kwh", str(error)) from None


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
    # Energy by part of a tariff with bands (index 0: outside every band, i + 1: bands[i]);
    # empty: all of it outside. Whatever of energy_wh they miss is outside every band.
    band_energy_wh: tuple[int, ...] = ()
    # The charging seconds the time fee counts (outside its excluded window); None: all.
    time_fee_seconds: int | None = None


@dataclass(frozen=True)
class BandCharge:
    """One part of the energy's price: `part` 0 outside every band, i + 1 in bands[i]."""

    part: int
    energy_wh: int
    price_per_kwh: int
    amount: int


@dataclass(frozen=True)
class Breakdown:
    energy_wh: int  # billed energy (capped at the tariff's maximum)
    energy: int
    session_fee: int
    time_minutes: int
    time_fee: int
    idle_minutes: int
    idle_fee: int
    bands: tuple[BandCharge, ...] = ()  # the energy by part, for a tariff with bands

    @property
    def total(self) -> int:
        return self.energy + self.session_fee + self.time_fee + self.idle_fee

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Breakdown:
        bands = tuple(BandCharge(**b) for b in data.get("bands") or ())
        return cls(**{**data, "bands": bands})


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
    if tariff.highest_price_per_kwh:
        if tariff.max_energy_wh is None:
            raise TariffError("max_energy_wh", "a price per kWh needs a maximum energy per session")
        cost = _energy_cost(tariff.highest_price_per_kwh, tariff.max_energy_wh)
        parts.append((cost, "max_energy_wh"))
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


def _energy_cost(price_per_kwh: int, energy_wh: int) -> int:
    cost = Decimal(energy_wh) * price_per_kwh / 1000
    return int(cost.to_integral_value(rounding=ROUND_HALF_UP))


def band_charges(tariff: Tariff, energy_wh: int, parts: tuple[int, ...]) -> tuple[BandCharge, ...]:
    """The billed `energy_wh` priced part by part (rules in the module docstring)."""
    energy = list(parts[: len(tariff.bands) + 1])
    energy += [0] * (len(tariff.bands) + 1 - len(energy))
    energy[0] += max(0, energy_wh - sum(energy))  # counted before bands were kept
    for i in reversed(range(len(energy))):  # above the billed energy: off the last parts
        excess = sum(energy) - energy_wh
        energy[i] -= min(energy[i], max(0, excess))
    currency = tariff.currency
    amounts = [
        round_capture(_energy_cost(tariff.part_price(i), wh), currency)
        for i, wh in enumerate(energy)
    ]
    ceiling = round_capture(_energy_cost(tariff.highest_price_per_kwh, energy_wh), currency)
    for i in reversed(range(len(amounts))):
        amounts[i] -= min(amounts[i], max(0, sum(amounts) - ceiling))
    return tuple(
        BandCharge(i, wh, tariff.part_price(i), amounts[i]) for i, wh in enumerate(energy) if wh
    )


def price(tariff: Tariff, usage: Usage) -> Breakdown:
    """What a session with this usage costs, component by component, never above the hold.

    Each component is rounded down to an amount Stripe takes, so their sum is one too."""
    energy_wh = max(0, usage.energy_wh)
    if tariff.max_energy_wh is not None:
        energy_wh = min(energy_wh, tariff.max_energy_wh)
    seconds = usage.charging_seconds if usage.time_fee_seconds is None else usage.time_fee_seconds
    minutes = max(0, seconds) // 60
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
    bands = band_charges(tariff, energy_wh, usage.band_energy_wh) if tariff.bands else ()
    return Breakdown(
        energy_wh=energy_wh,
        energy=sum(b.amount for b in bands)
        if tariff.bands
        else round_capture(_energy_cost(tariff.price_per_kwh, energy_wh), currency),
        session_fee=round_capture(tariff.session_fee, currency),
        time_minutes=time_minutes,
        time_fee=round_capture(time_minutes * tariff.time_fee_per_minute, currency),
        idle_minutes=idle_minutes,
        idle_fee=round_capture(idle_minutes * tariff.idle_fee_per_minute, currency),
        bands=bands,
    )


def would_pass_cap(
    tariff: Tariff, energy_wh: int, power_w: int, seconds_to_next_sample: float
) -> bool:
    """Whether the charge must stop now: the next sample would pass the energy cap."""
    if tariff.max_energy_wh is None:
        return False
    projected = energy_wh + max(0, power_w) * seconds_to_next_sample / 3600
    return projected >= tariff.max_energy_wh
