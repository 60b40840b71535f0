"""Money, numbers and moments as a language writes them (Babel, from CLDR's data).

Amounts stay integer minor units until shown: the number of decimals is the currency's own
in Stripe's amounts (`payments.currency.exponent`), so 500 JPY is "¥500" and 1234 EUR cents
"€12.34" in English, "12,34 €" in German.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from babel import Locale
from babel.dates import format_date, format_time, get_datetime_format
from babel.numbers import NumberPattern, format_decimal

from payments.currency import exponent


@lru_cache(maxsize=16)
def _locale(language: str) -> Locale:
    return Locale.parse(language)


@lru_cache(maxsize=64)
def _money_pattern(language: str, digits: int) -> NumberPattern:
    # A copy: Babel shares the locale's parsed pattern between callers.
    pattern = copy.copy(_locale(language).currency_formats["standard"])
    pattern.frac_prec = (digits, digits)
    return pattern


class Formats:
    def __init__(self, language: str) -> None:
        self.language = language
        self._locale = _locale(language)

    def money(self, minor: int, currency: str) -> str:
        """Integer minor units with the currency's symbol, as the language writes them."""
        digits = exponent(currency)
        major = Decimal(minor).scaleb(-digits)
        return _money_pattern(self.language, digits).apply(
            major, self._locale, currency=currency.upper(), currency_digits=False
        )

    def number(self, value: Decimal | int | float, digits: int) -> str:
        """A number with exactly `digits` decimals, halves rounded up: 1234.5, 2 ->
        "1,234.50" / "1.234,50"."""
        exact = Decimal(str(value)).quantize(Decimal(1).scaleb(-digits), ROUND_HALF_UP)
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(exact, format=pattern, locale=self._locale)

    def energy(self, wh: int, digits: int = 2) -> str:
        """Watt-hours as a number of kilowatt-hours: 12345, 3 -> "12.345" / "12,345"."""
        return self.number(Decimal(wh).scaleb(-3), digits)

    def kwh(self, wh: int, digits: int = 2) -> str:
        """Watt-hours as kilowatt-hours, the unit after the number."""
        return f"{self.energy(wh, digits)} kWh"

    def kw(self, watts: float) -> str:
        return f"{self.number(Decimal(str(watts)) / 1000, 1)} kW"

    def power_limit(self, kw: float) -> str:
        """A connector's maximum power in kW, without trailing zeros: 22 -> "22", 7.4 ->
        "7.4" / "7,4"."""
        return format_decimal(Decimal(str(kw)), format="#,##0.##", locale=self._locale)

    def energy_limit(self, wh: int) -> str:
        """A tariff's energy cap in kWh, without trailing zeros: 20000 -> "20", 7500 -> "7.5"."""
        return format_decimal(Decimal(wh).scaleb(-3), format="#,##0.###", locale=self._locale)

    def moment(self, when: datetime, zone: tzinfo = UTC) -> str:
        """Date and time in `zone`, named by its abbreviation: "Mar 5, 2026, 2:07 PM UTC",
        "05.03.2026, 15:07 CET"."""
        local = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(zone)
        date = format_date(local, "medium", locale=self._locale)
        time = format_time(local, "short", tzinfo=zone, locale=self._locale)
        both = get_datetime_format("medium", locale=self._locale)
        return f"{both.replace('{1}', date).replace('{0}', time)} {local.tzname() or zone}"
