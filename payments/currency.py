"""Currencies as Stripe takes them. Pure: no I/O; every amount is integer minor units.

The rules, from Stripe's "Supported currencies" page (https://docs.stripe.com/currencies):

- Codes are ISO 4217, sent in lowercase. `SUPPORTED` is the set of presentment
  currencies Stripe lists for card payments (which ones a given account may use also
  depends on its country; Stripe has the last word when a session is created).
- Minor units (`exponent`): amounts are integers in the currency's minor unit.
  Two decimals unless listed otherwise: 1000 is 10.00 USD.
  Zero-decimal (`ZERO_DECIMAL`, exponent 0): BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF
  VND VUV XAF XOF XPF; 500 is 500 JPY.
  Three-decimal (`THREE_DECIMAL`, exponent 3): BHD JOD KWD OMR TND; 5124 is 5.124 KWD,
  but Stripe requires the last digit of every amount (payment, capture, refund) to be
  0, so only multiples of 10 can be charged.
- Special cases (`WHOLE_UNITS`, `WHOLE_UNIT_PAYOUTS`):
  ISK and UGX are sent with two decimals that must be 00: 5 ISK is 500, and fractions
  cannot be charged, so only multiples of 100. (Stripe's page also lists UGX among the
  zero-decimal currencies; its special-case entry, which says how to send an amount,
  is the one followed here: a UGX amount is sent in hundredths.)
  HUF and TWD are two-decimal for charges; only payouts must be whole units (multiples
  of 100). This project creates no payouts, so for it they are ordinary two-decimal
  currencies.
- `step`: the smallest increment Stripe accepts in a charge: 10 for three-decimal
  currencies, 100 for ISK and UGX, 1 otherwise. A price per kWh or per minute may be
  finer; what is charged is rounded:
  `round_capture` rounds DOWN to the step, so a driver never pays more than the price;
  `round_hold` rounds UP to the step, so the hold still covers the highest price.
- Minimum charge (`MINIMUM_CHARGE`, minor units): Stripe refuses a charge below the
  minimum of the settlement currency; the table is Stripe's, per currency. For a
  currency missing from it, Stripe converts the amount into the account's settlement
  currency and applies that currency's minimum, which cannot be known here:
  `minimum_charge_amount` then assumes 50 minor units (0.50 of a two-decimal currency).
- Maximum charge (`maximum_charge_amount`): the amount is limited by its number of
  digits. Every payment method Stripe offers takes 8 digits (99,999,999 minor units);
  INR, IDR and COP take 9 (999,999,999, the American Express limit). Card networks
  take more in some currencies, but a Checkout page may be paid by another method, so
  the limit here is the one every method accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType

ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga"}
    | {"pyg", "rwf", "vnd", "vuv", "xaf", "xof", "xpf"}
)
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
# Two decimals on the wire that must be 00: whole units only.
WHOLE_UNITS = frozenset({"isk", "ugx"})
# Charged with two decimals, paid out in whole units only (no effect on charges).
WHOLE_UNIT_PAYOUTS = frozenset({"huf", "twd"})

# Stripe's presentment currencies (cards), plus the three-decimal currencies it offers
# to accounts in the countries that use them.
SUPPORTED = frozenset(
    {
        "usd", "aed", "afn", "all", "amd", "ang", "aoa", "ars", "aud", "awg", "azn", "bam", "bbd",
        "bdt", "bgn", "bhd", "bif", "bmd", "bnd", "bob", "brl", "bsd", "bwp", "byn", "bzd", "cad",
        "cdf", "chf", "clp", "cny", "cop", "crc", "cve", "czk", "djf", "dkk", "dop", "dzd", "egp",
        "etb", "eur", "fjd", "fkp", "gbp", "gel", "gip", "gmd", "gnf", "gtq", "gyd", "hkd", "hnl",
        "htg", "huf", "idr", "ils", "inr", "isk", "jmd", "jod", "jpy", "kes", "kgs", "khr", "kmf",
        "krw", "kwd", "kyd", "kzt", "lak", "lbp", "lkr", "lrd", "lsl", "mad", "mdl", "mga", "mkd",
        "mmk", "mnt", "mop", "mur", "mvr", "mwk", "mxn", "myr", "mzn", "nad", "ngn", "nio", "nok",
        "npr", "nzd", "omr", "pab", "pen", "pgk", "php", "pkr", "pln", "pyg", "qar", "ron", "rsd",
        "rub", "rwf", "sar", "sbd", "scr", "sek", "sgd", "shp", "sle", "sos", "srd", "std", "szl",
        "thb", "tjs", "tnd", "top", "try", "ttd", "twd", "tzs", "uah", "ugx", "uyu", "uzs", "vnd",
        "vuv", "wst", "xaf", "xcd", "xof", "xpf", "yer", "zar", "zmw",
    }
)  # fmt: skip

# Stripe's minimum charge per settlement currency, in minor units.
MINIMUM_CHARGE: Mapping[str, int] = MappingProxyType(
    {
        "usd": 50, "aed": 200, "ars": 50, "aud": 50, "bgn": 100, "brl": 50, "cad": 50,
        "chf": 50, "cop": 50, "czk": 1500, "dkk": 250, "eur": 50, "gbp": 30, "hkd": 400,
        "huf": 17500, "idr": 50, "ils": 50, "inr": 50, "jpy": 50, "krw": 50, "mxn": 1000,
        "myr": 200, "nok": 300, "nzd": 50, "php": 50, "pln": 200, "ron": 200, "rub": 50,
        "sek": 300, "sgd": 50, "thb": 1000, "zar": 50,
    }
)  # fmt: skip
# Assumed for a currency Stripe lists no minimum for (see the module docstring).
ASSUMED_MINIMUM_CHARGE = 50

MAXIMUM_CHARGE = 99_999_999  # 8 digits
_NINE_DIGITS = frozenset({"inr", "idr", "cop"})


def _code(currency: str) -> str:
    return currency.lower()


def is_supported(currency: str) -> bool:
    """Whether Stripe charges in this currency."""
    return _code(currency) in SUPPORTED


def exponent(currency: str) -> int:
    """Digits after the decimal point in Stripe's amounts: 0, 2 or 3."""
    code = _code(currency)
    if code in ZERO_DECIMAL:
        return 0
    return 3 if code in THREE_DECIMAL else 2


def step(currency: str) -> int:
    """The smallest increment of a chargeable amount, in minor units."""
    code = _code(currency)
    if code in THREE_DECIMAL:
        return 10
    return 100 if code in WHOLE_UNITS else 1


def is_chargeable(amount: int, currency: str) -> bool:
    """Whether Stripe takes this many minor units as an amount (the step; not the limits)."""
    return amount % step(currency) == 0


def round_capture(amount: int, currency: str) -> int:
    """Down to an amount Stripe takes: what is captured never exceeds the price."""
    return amount - amount % step(currency)


def round_hold(amount: int, currency: str) -> int:
    """Up to an amount Stripe takes: the hold still covers the highest price."""
    return -(-amount // step(currency)) * step(currency)


def minimum_charge(currency: str) -> int | None:
    """Stripe's minimum charge in this currency, or None where Stripe lists none."""
    return MINIMUM_CHARGE.get(_code(currency))


def minimum_charge_amount(currency: str) -> int:
    """The amount below which a capture is not attempted: Stripe's minimum, or the assumed one."""
    listed = minimum_charge(currency)
    return ASSUMED_MINIMUM_CHARGE if listed is None else listed


def maximum_charge_amount(currency: str) -> int:
    """The largest amount every payment method takes in this currency."""
    return 999_999_999 if _code(currency) in _NINE_DIGITS else MAXIMUM_CHARGE


def to_minor(amount: str | Decimal | int, currency: str) -> int:
    """A price in major units ("0.35" EUR, "50" JPY) as integer minor units; exact or refused."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise ValueError(f"not a number: {amount!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a number: {amount!r}")
    minor = value.scaleb(exponent(currency))
    if minor != minor.to_integral_value():
        raise ValueError(f"{amount} {currency.upper()} has more decimals than the currency")
    return int(minor)


def format_money(minor: int, currency: str) -> str:
    """`1234, "eur"` -> "12.34 EUR"; `500, "jpy"` -> "500 JPY"; `5120, "kwd"` -> "5.120 KWD"."""
    digits = exponent(currency)
    major = Decimal(minor).scaleb(-digits)
    return f"{major:,.{digits}f} {currency.upper()}"
