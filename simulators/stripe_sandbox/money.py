"""Currencies as Stripe treats them: minor units, zero-decimal currencies, minimum charges.

Amounts are always integers in the currency's smallest unit (cents; yen for JPY), as in
the Stripe API. Formatting exists only for the hosted page and for error messages.
"""

from __future__ import annotations

# https://docs.stripe.com/currencies#zero-decimal
ZERO_DECIMAL = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)
# https://docs.stripe.com/currencies#three-decimal
THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])

# https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts (in minor units)
MINIMUM_CHARGE = {
    "usd": 50, "aed": 200, "aud": 50, "bgn": 100, "brl": 50, "cad": 50, "chf": 50,
    "czk": 1500, "dkk": 250, "eur": 50, "gbp": 30, "hkd": 400, "huf": 17500, "inr": 50,
    "jpy": 50, "mxn": 1000, "myr": 200, "nok": 300, "nzd": 50, "pln": 200, "ron": 200,
    "sek": 300, "sgd": 50, "thb": 1000,
}  # fmt: skip
DEFAULT_MINIMUM = 50
# Stripe's largest amount for a charge: 8 digits.
MAXIMUM_AMOUNT = 99_999_999

_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "inr": "₹", "krw": "₩"}


def exponent(currency: str) -> int:
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def minimum_charge(currency: str) -> int:
    return MINIMUM_CHARGE.get(currency, DEFAULT_MINIMUM)


def major(amount: int, currency: str) -> str:
    """1234, "eur" -> "12.34"; 1234, "jpy" -> "1234"."""
    digits = exponent(currency)
    if digits == 0:
        return str(amount)
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**digits)
    return f"{sign}{whole}.{fraction:0{digits}d}"


def display(amount: int, currency: str) -> str:
    """For people: "€12.34" or "12.34 CHF"."""
    symbol = _SYMBOLS.get(currency)
    if symbol is not None:
        return f"{symbol}{major(amount, currency)}"
    return f"{major(amount, currency)} {currency.upper()}"


def in_message(amount: int, currency: str) -> str:
    """As Stripe writes amounts in error messages: "$0.50 usd", "3.00 sek"."""
    return f"{_SYMBOLS.get(currency, '')}{major(amount, currency)} {currency}"
