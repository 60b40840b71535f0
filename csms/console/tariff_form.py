"""The console's tariff form: what an operator types, read as the management API's tariff
model, and the preview shown as they type. Pure: no I/O.

The form's fields are named as the API's (`pricePerKwh`, `maxEnergyWh`, ...), so an error
names the same field whichever way a tariff is written. Differences, for people typing:
- money is in major units ("0.35" EUR per kWh), converted exactly to minor units
  (`payments.currency.to_minor`; more decimals than the currency has is refused);
- an empty count is 0 and an empty cap or limit is none (null in the API);
- bands are one line, as config.toml writes them ("Peak mon-fri 07:00-22:00 0.45; ...",
  prices in major units: `payments.bands.bands_from_text`), and the time fee's excluded
  window is "22:00-07:00".
Everything else is the API's: the values go through `csms.api.tariffs.TariffSettings` (or
`NewTariff` with the id) and its `tariff()`, which bounds the cost and checks that Stripe
would take the hold. No rule is written twice.

The preview is the hold a driver would be asked for (`payments.pricing.hold_amount`) and the
price of a sample session (`payments.pricing.price`) of the energy and minutes chosen in the
form, starting at the chosen time of a Wednesday (for bands; wall-clock time, no clock change
that day). An error names the form field to correct.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from csms.api.tariffs import NewTariff, TariffSettings
from csms.console.admin_forms import in_words
from httpapi.errors import ApiError
from payments.bands import BandError, bands_from_text, energy_by_band, seconds_in_window
from payments.currency import exponent, format_money, to_minor
from payments.pricing import Tariff, Usage, hold_amount, price

# Money in major units as typed; the rest whole numbers.
MONEY = ("pricePerKwh", "sessionFee", "timeFeePerMinute", "idleFeePerMinute")
COUNTS = ("timeFeeFreeMinutes", "idleGraceMinutes", "taxRateBasisPoints")
OPTIONAL = ("timeFeeMaxMinutes", "idleFeeMaxMinutes", "maxEnergyWh", "maxDurationMinutes")
# What a sample session is when the form does not say.
SAMPLE = {"sampleKwh": "10", "sampleMinutes": "60", "sampleStart": "18:00"}
# The form's fields in order, with their labels ({currency}: the tariff's currency).
LABELS = {
    "id": "Id (letters, digits, . _ -)",
    "currency": "Currency (ISO 4217, e.g. EUR)",
    "pricePerKwh": "Price per kWh",
    "sessionFee": "Session fee",
    "maxEnergyWh": "Maximum energy per session (Wh)",
    "maxDurationMinutes": "Maximum duration (minutes; empty: none)",
    "timeFeePerMinute": "Time fee per minute",
    "timeFeeFreeMinutes": "Free minutes before the time fee",
    "timeFeeMaxMinutes": "Time fee: most minutes billed (empty: none)",
    "timeFeeExcluded": "No time fee between (HH:MM-HH:MM, e.g. 22:00-07:00)",
    "idleFeePerMinute": "Idle fee per minute (after charging, still plugged in)",
    "idleGraceMinutes": "Idle grace minutes",
    "idleFeeMaxMinutes": "Idle fee: most minutes billed (empty: none)",
    "taxRateBasisPoints": "VAT included, in hundredths of a percent (1900 = 19 %)",
    "bands": "Prices by time of day (e.g. Peak mon-fri 17:00-20:00 0.60; ...)",
    "sampleKwh": "Sample session: energy (kWh)",
    "sampleMinutes": "Sample session: duration (minutes)",
    "sampleStart": "Sample session: start (HH:MM, on a Wednesday)",
    "chargerId": "Charger",
    "connectorId": "Connector (0: every connector)",
}
_SAMPLE_DAY = datetime(2026, 1, 7, tzinfo=UTC)  # a Wednesday
_MOST_SAMPLE_WH = 10_000_000  # 10 MWh
_MOST_SAMPLE_MINUTES = 7 * 24 * 60
_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


class FormError(ValueError):
    """A value the form cannot take; `field` is the form field's name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def form_field(api_field: str) -> str:
    """The form field an API field is typed in: bands[1].pricePerKwh -> bands."""
    head = re.split(r"[.\[]", api_field, maxsplit=1)[0]
    return head or api_field


def _whole(form: Mapping[str, str], name: str, optional: bool) -> int | None:
    text = (form.get(name) or "").strip()
    if not text:
        return None if optional else 0
    if not re.fullmatch(r"[0-9]{1,12}", text):
        raise FormError(name, f"a whole number, got {text[:20]!r}")
    return int(text)


def _money(form: Mapping[str, str], name: str, currency: str) -> int:
    text = (form.get(name) or "").strip()
    if not text:
        return 0
    if not re.fullmatch(r"[0-9]{1,10}(\.[0-9]{1,6})?", text):
        raise FormError(name, f"an amount in {currency.upper()} like 0.35, got {text[:20]!r}")
    try:
        return to_minor(text, currency)
    except ValueError as error:
        raise FormError(name, str(error)) from None


def api_settings(form: Mapping[str, str], split: dict[str, Any] | None = None) -> dict[str, Any]:
    """The form's values as the API's tariff body (camelCase, minor units)."""
    currency = (form.get("currency") or "").strip().lower()
    if not re.fullmatch(r"[a-z]{3}", currency):
        raise FormError("currency", f"an ISO 4217 code such as EUR, got {currency[:20]!r}")
    body: dict[str, Any] = {"currency": currency}
    for name in MONEY:
        body[name] = _money(form, name, currency)
    for name in COUNTS:
        body[name] = _whole(form, name, optional=False)
    for name in OPTIONAL:
        body[name] = _whole(form, name, optional=True)
    try:
        bands = bands_from_text(form.get("bands") or "")
    except BandError as error:
        raise FormError("bands", f"{error.field}: {error.message}") from None
    body["bands"] = [_band(band, i, currency) for i, band in enumerate(bands)]
    body["timeFeeExcluded"] = _window(form.get("timeFeeExcluded") or "")
    if split is not None:
        body["split"] = split
    return body


def _band(band: dict[str, object], index: int, currency: str) -> dict[str, object]:
    try:
        minor = to_minor(str(band["price_per_kwh"]), currency)
    except ValueError as error:
        raise FormError("bands", f"bands[{index}].pricePerKwh: {error}") from None
    return {**band, "price_per_kwh": minor}


def _window(text: str) -> dict[str, str] | None:
    if not text.strip():
        return None
    start, dash, end = text.strip().partition("-")
    if not dash:
        raise FormError("timeFeeExcluded", f"a span HH:MM-HH:MM, got {text[:20]!r}")
    return {"start": start.strip(), "end": end.strip()}


def _checked(model: type[TariffSettings], body: dict[str, Any]) -> tuple[TariffSettings, Tariff]:
    """The body through the API's model and its tariff rules; FormError naming the field."""
    try:
        settings = model.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        name = ".".join(str(part) for part in first["loc"])
        field = form_field(name)
        message = in_words(first) if name == field else f"{name}: {in_words(first)}"
        raise FormError(field, message) from None
    try:
        return settings, settings.tariff()
    except ApiError as error:
        field = error.field or "currency"
        message = error.message if "." not in field else f"{field}: {error.message}"
        raise FormError(form_field(field), message) from None


def tariff_of(form: Mapping[str, str], split: dict[str, Any] | None = None) -> Tariff:
    """The tariff typed in the form, as the API would take it."""
    return _checked(TariffSettings, api_settings(form, split))[1]


def new_tariff_of(form: Mapping[str, str]) -> tuple[str, Tariff]:
    """A new tariff's id and settings, as the API's create would take them."""
    body = {**api_settings(form), "id": (form.get("id") or "").strip()}
    settings, tariff = _checked(NewTariff, body)
    assert isinstance(settings, NewTariff)
    return settings.id, tariff


@dataclass(frozen=True)
class Sample:
    energy_wh: int
    minutes: int
    start: str  # HH:MM on a Wednesday


def sample_of(form: Mapping[str, str]) -> Sample:
    values = {name: (form.get(name) or default).strip() for name, default in SAMPLE.items()}
    try:
        kwh = Decimal(values["sampleKwh"])
    except InvalidOperation:
        kwh = Decimal(-1)
    if not kwh.is_finite() or not 0 <= kwh * 1000 <= _MOST_SAMPLE_WH:
        raise FormError("sampleKwh", "kWh from 0 to 10000, like 10 or 7.5")
    if not re.fullmatch(r"[0-9]{1,5}", values["sampleMinutes"]):
        raise FormError("sampleMinutes", "whole minutes, like 60")
    minutes = int(values["sampleMinutes"])
    if minutes > _MOST_SAMPLE_MINUTES:
        raise FormError("sampleMinutes", f"at most {_MOST_SAMPLE_MINUTES} minutes (a week)")
    if not _TIME.fullmatch(values["sampleStart"]):
        raise FormError("sampleStart", "a time HH:MM, like 18:00")
    return Sample(int(kwh * 1000), minutes, values["sampleStart"])


def sample_usage(tariff: Tariff, sample: Sample) -> Usage:
    """The sample as metered: its energy spread evenly over its minutes, from its start."""
    hours, minutes = (int(part) for part in sample.start.split(":"))
    start = _SAMPLE_DAY + timedelta(hours=hours, minutes=minutes)
    end = start + timedelta(minutes=sample.minutes)
    parts: tuple[int, ...] = ()
    if tariff.bands:
        parts = energy_by_band(sample.energy_wh, tariff.bands, UTC, start, end)
    excluded = None
    if tariff.time_fee_excluded is not None:
        excluded = seconds_in_window(tariff.time_fee_excluded, UTC, start, end)
    seconds = sample.minutes * 60
    return Usage(
        energy_wh=sample.energy_wh,
        charging_seconds=seconds,
        band_energy_wh=parts,
        time_fee_seconds=None if excluded is None else seconds - excluded,
    )


def preview(form: Mapping[str, str], split: dict[str, Any] | None = None) -> dict[str, Any]:
    """The hold and the sample's price as JSON for the form, or the field to correct:
    {"ok": true, "hold": ..., "sample": {...}} or {"ok": false, "field", "message"}."""
    try:
        tariff = tariff_of(form, split)
        sample = sample_of(form)
    except FormError as error:
        return {"ok": False, "field": error.field, "message": error.message}
    currency = tariff.currency
    hold = hold_amount(tariff)
    cost = price(tariff, sample_usage(tariff, sample))
    return {
        "ok": True,
        "currency": currency,
        "hold": hold,
        "holdText": format_money(hold, currency),
        "sample": {
            "energyWh": sample.energy_wh,
            "billedWh": cost.energy_wh,
            "minutes": sample.minutes,
            "start": sample.start,
            "energy": cost.energy,
            "sessionFee": cost.session_fee,
            "timeFee": cost.time_fee,
            "total": cost.total,
            "totalText": format_money(cost.total, currency),
        },
    }


def major(minor: int, currency: str) -> str:
    """Minor units as the form shows them: 35, "eur" -> "0.35"."""
    digits = exponent(currency)
    return f"{Decimal(minor).scaleb(-digits):.{digits}f}"


def form_of(tariff: Tariff) -> dict[str, str]:
    """A stored tariff as the form's values, to edit it."""
    values = {"currency": tariff.currency.upper()}
    for name in MONEY:
        values[name] = major(getattr(tariff, _snake(name)), tariff.currency)
    for name in (*COUNTS, *OPTIONAL):
        value = getattr(tariff, _snake(name))
        values[name] = "" if value is None else str(value)
    values["bands"] = "; ".join(
        " ".join(
            part
            for part in (
                band.name,
                ",".join(band.days),
                f"{band.start}-{band.end}",
                major(band.price_per_kwh, tariff.currency),
            )
            if part
        )
        for band in tariff.bands
    )
    window = tariff.time_fee_excluded
    values["timeFeeExcluded"] = f"{window.start}-{window.end}" if window else ""
    return values


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)
