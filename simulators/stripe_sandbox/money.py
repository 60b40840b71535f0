"""Currencies as Stripe treats them: minor units, decimals, steps, minimum charges.

Amounts are always integers in the currency's smallest unit, as in the Stripe API
(https://docs.stripe.com/currencies):

- two-decimal currencies (the default): 1099 is 10.99 EUR;
- zero-decimal currencies: 500 is 500 JPY;
- three-decimal currencies (BHD, JOD, KWD, OMR, TND): 5120 is 5.120 KWD, and Stripe's
  payment partners need the last digit to be 0, for PaymentIntents, refunds and disputes
  alike: the amount must be a multiple of 10;
- the special cases: ISK and UGX became zero-decimal but stay two-decimal in the API
  with a fraction that is always 00 (500 is 5 ISK; 550 is refused), while HUF and TWD
  are zero-decimal for payouts only and charge two-decimal amounts as usual.

The minimum charge is the one of Stripe's table for the currency. For a currency without
a row, Stripe converts the charge to the account's settlement currency and applies that
minimum; the sandbox does no conversion and asks for 50 minor units.
"""

from __future__ import annotations

from .errors import StripeError, invalid_request

# https://docs.stripe.com/currencies#zero-decimal, without UGX: its special case (below)
# is the rule that governs a charge.
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
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)
THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])
# https://docs.stripe.com/currencies#special-cases: two decimals in the API, whole units only.
WHOLE_UNITS_ONLY = frozenset(["isk", "ugx"])

# https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts (in minor units):
# every row of Stripe's table.
MINIMUM_CHARGE = {
    "usd": 50, "aed": 200, "aud": 50, "bgn": 100, "brl": 50, "cad": 50, "chf": 50,
    "czk": 1500, "dkk": 250, "eur": 50, "gbp": 30, "hkd": 400, "huf": 17500, "inr": 50,
    "jpy": 50, "mxn": 1000, "myr": 200, "nok": 300, "nzd": 50, "pln": 200, "ron": 200,
    "sek": 300, "sgd": 50, "thb": 1000,
}  # fmt: skip
DEFAULT_MINIMUM = 50
# Stripe's largest amount for a charge in most currencies: 8 digits.
MAXIMUM_AMOUNT = 99_999_999

_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "inr": "₹", "krw": "₩"}
# How Stripe writes amounts of these currencies (its minimum-charge table, and the same
# form in its errors: "must add up to at least 175.00 Ft huf"): (before, after).
_WRITTEN = {
    "aed": ("", " د.إ"),
    "aud": ("$", ""),
    "bgn": ("лв", ""),
    "brl": ("R$", ""),
    "cad": ("$", ""),
    "chf": ("", " Fr"),
    "czk": ("", "Kč"),
    "dkk": ("", "-kr."),
    "hkd": ("$", ""),
    "huf": ("", " Ft"),
    "mxn": ("$", ""),
    "myr": ("RM ", ""),
    "nok": ("", "-kr."),
    "nzd": ("$", ""),
    "pln": ("", " zł"),
    "ron": ("lei", ""),
    "sek": ("", "-kr."),
    "sgd": ("$", ""),
    "thb": ("฿", ""),
}


def exponent(currency: str) -> int:
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def step(currency: str) -> int:
    """The smallest chargeable amount step: 10 for three-decimal, 100 for ISK/UGX, else 1."""
    if currency in THREE_DECIMAL:
        return 10
    if currency in WHOLE_UNITS_ONLY:
        return 100
    return 1


def minimum_charge(currency: str) -> int:
    return MINIMUM_CHARGE.get(currency, DEFAULT_MINIMUM)


def check_step(amount: int, currency: str, param: str) -> None:
    """Refuse an amount the currency cannot carry, as Stripe does (status 400)."""
    if amount % step(currency) == 0:
        return
    raise step_error(currency, param)


def step_error(currency: str, param: str) -> StripeError:
    code = currency.upper()
    if currency in WHOLE_UNITS_ONLY:
        # Stripe's own words (support.stripe.com, "Deprecation of fractional ISK charges").
        return invalid_request(
            f"Invalid amount. Currency {code} has become effectively zero-decimal and charged "
            "amounts must be evenly divisible by 100. See "
            "https://stripe.com/docs/currencies#special-cases for more information.",
            param=param,
            code="invalid_charge_amount_no_decimal_compatible",
        )
    return invalid_request(
        f"Invalid amount. {code} is a three-decimal currency and its amounts must end in 0 "
        "(be evenly divisible by 10). See https://stripe.com/docs/currencies#three-decimal "
        "for more information.",
        param=param,
        code="invalid_charge_amount",
    )


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
    """As Stripe writes amounts in error messages: "$0.50 usd", "175.00 Ft huf", "3.00 xyz"."""
    before, after = _WRITTEN.get(currency, (_SYMBOLS.get(currency, ""), ""))
    return f"{before}{major(amount, currency)}{after} {currency}"
