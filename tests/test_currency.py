"""Currency rules as Stripe documents them, and tariffs refused where they come in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from csms.app import CentralSystem
from csms.config import Config, ConfigError, with_overrides
from csms.config_values import default_tariff
from payments import currency
from payments.currency import (
    MINIMUM_CHARGE,
    SUPPORTED,
    exponent,
    format_money,
    is_chargeable,
    is_supported,
    maximum_charge_amount,
    minimum_charge,
    minimum_charge_amount,
    round_capture,
    round_hold,
    step,
    to_minor,
)
from payments.pricing import hold_amount
from tests.test_api_resources import EUR_TARIFF, Client, refusal


@pytest.mark.parametrize(
    ("code", "digits"),
    [
        ("eur", 2),
        ("USD", 2),
        ("jpy", 0),
        ("krw", 0),
        ("xof", 0),
        ("kwd", 3),
        ("bhd", 3),
        ("tnd", 3),
        # Special cases: sent with two decimals (ISK, UGX: always 00).
        ("isk", 2),
        ("ugx", 2),
        ("huf", 2),
        ("twd", 2),
    ],
)
def test_exponent(code: str, digits: int) -> None:
    assert exponent(code) == digits


@pytest.mark.parametrize(
    ("code", "increment"),
    [
        ("eur", 1),
        ("jpy", 1),
        ("huf", 1),
        ("twd", 1),
        ("kwd", 10),
        ("omr", 10),
        ("isk", 100),
        ("ugx", 100),
    ],
)
def test_step_of_a_chargeable_amount(code: str, increment: int) -> None:
    assert step(code) == increment


def test_three_decimal_amounts_end_in_zero() -> None:
    # Stripe's example: 5.124 KWD must be sent as 5120 or 5130.
    assert to_minor("5.124", "kwd") == 5124
    assert not is_chargeable(5124, "kwd")
    assert round_capture(5124, "kwd") == 5120  # the driver never pays more than the price
    assert round_hold(5124, "kwd") == 5130  # the hold still covers it
    assert round_capture(5120, "kwd") == round_hold(5120, "kwd") == 5120
    assert format_money(5120, "kwd") == "5.120 KWD"


def test_isk_and_ugx_are_whole_units_in_hundredths() -> None:
    # Stripe: to charge 5 ISK, send 500; fractions cannot be charged.
    assert to_minor("5", "isk") == 500
    assert to_minor("5", "ugx") == 500
    assert not is_chargeable(550, "isk")
    assert (round_capture(550, "isk"), round_hold(550, "isk")) == (500, 600)
    assert format_money(500, "ugx") == "5.00 UGX"


def test_huf_and_twd_charge_two_decimals() -> None:
    # Whole units only for payouts, which this project does not make.
    assert is_chargeable(1045, "huf") and is_chargeable(80045, "twd")
    assert round_capture(1045, "huf") == 1045


@given(
    amount=st.integers(min_value=0, max_value=10**12),
    code=st.sampled_from(["eur", "jpy", "kwd", "jod", "isk", "ugx", "huf"]),
)
def test_rounding_lands_on_the_nearest_chargeable_amounts(amount: int, code: str) -> None:
    down, up = round_capture(amount, code), round_hold(amount, code)
    assert is_chargeable(down, code) and is_chargeable(up, code)
    assert down <= amount <= up
    assert up - down in ((0,) if is_chargeable(amount, code) else (step(code),))


def test_minimum_charge_for_every_currency_stripe_lists() -> None:
    # Stripe's table, in major units.
    listed = {
        "usd": "0.50", "aed": "2.00", "ars": "0.50", "aud": "0.50", "bgn": "1.00",
        "brl": "0.50", "cad": "0.50", "chf": "0.50", "cop": "0.50", "czk": "15.00",
        "dkk": "2.50", "eur": "0.50", "gbp": "0.30", "hkd": "4.00", "huf": "175.00",
        "idr": "0.50", "ils": "0.50", "inr": "0.50", "jpy": "50", "krw": "50", "mxn": "10",
        "myr": "2.00", "nok": "3.00", "nzd": "0.50", "php": "0.50", "pln": "2.00",
        "ron": "2.00", "rub": "0.50", "sek": "3.00", "sgd": "0.50", "thb": "10", "zar": "0.50",
    }  # fmt: skip
    assert {code: to_minor(amount, code) for code, amount in listed.items()} == MINIMUM_CHARGE
    assert set(MINIMUM_CHARGE) <= SUPPORTED
    assert minimum_charge("CZK") == 1500 and minimum_charge_amount("huf") == 17500


def test_without_a_listed_minimum_one_is_assumed_for_captures() -> None:
    # Stripe applies the settlement currency's minimum after conversion: unknowable here.
    assert minimum_charge("kwd") is None
    assert minimum_charge_amount("kwd") == currency.ASSUMED_MINIMUM_CHARGE == 50


def test_maximum_charge() -> None:
    assert maximum_charge_amount("eur") == 99_999_999  # 8 digits
    assert maximum_charge_amount("JPY") == 99_999_999
    assert maximum_charge_amount("inr") == maximum_charge_amount("idr") == 999_999_999


def test_supported_currencies() -> None:
    for code in ("eur", "USD", "jpy", "kwd", "isk", "ugx", "huf", "twd", "czk", "aed"):
        assert is_supported(code)
    for code in ("xyz", "hrk", "btc", "eu"):
        assert not is_supported(code)
    assert all(len(code) == 3 and code.islower() for code in SUPPORTED)
    assert currency.ZERO_DECIMAL | currency.THREE_DECIMAL | currency.WHOLE_UNITS <= SUPPORTED


# -- refused where tariffs come in: the [tariff] section and the management API


def _config_tariff(**settings: Any) -> Config:
    return with_overrides(Config(), tariff=settings)


@pytest.mark.parametrize(
    ("settings", "named", "words"),
    [
        (dict(currency="xyz"), "tariff.currency", "Stripe does not charge in XYZ"),
        (
            dict(price_per_kwh="0.30", session_fee="0", idle_fee_per_minute="0",
                 max_energy_wh=1000),
            "tariff.max_energy_wh",
            "the hold 0.30 EUR is below Stripe's minimum charge 0.50 EUR",
        ),
        (
            dict(currency="huf", price_per_kwh="100", session_fee="0", idle_fee_per_minute="0",
                 max_energy_wh=1000),
            "tariff.max_energy_wh",
            "the hold 100.00 HUF is below Stripe's minimum charge 175.00 HUF",
        ),
        (
            dict(price_per_kwh="0", session_fee="1000000", idle_fee_per_minute="0"),
            "tariff.session_fee",
            "above Stripe's maximum charge 999,999.99 EUR",
        ),
        (
            dict(currency="kwd", session_fee="0.125"),
            "tariff.session_fee",
            "Stripe takes KWD in steps of 0.010 KWD",
        ),
    ],
)  # fmt: skip
def test_config_tariff_that_stripe_would_refuse(
    settings: dict[str, Any], named: str, words: str
) -> None:
    with pytest.raises(ConfigError, match=named) as refused:
        default_tariff(_config_tariff(**settings))
    assert words in str(refused.value)


def test_config_tariff_in_a_three_decimal_currency() -> None:
    tariff = default_tariff(
        _config_tariff(
            currency="kwd", price_per_kwh="0.123", session_fee="0.150", idle_fee_per_minute="0",
            max_energy_wh=10_500,
        )
    )  # fmt: skip
    # 10.5 kWh x 0.123 = 1.2915 -> 1.292, + 0.150: the hold rounds up to 1.450 KWD.
    assert hold_amount(tariff) == 1450


@pytest.fixture
async def api(csms: CentralSystem) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession() as http:
        yield Client(csms, http)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"currency": "xyz"}, "currency"),
        ({"maxEnergyWh": 500, "timeFeePerMinute": 0, "sessionFee": 0}, "maxEnergyWh"),
        ({"pricePerKwh": 0, "timeFeePerMinute": 0, "sessionFee": 1}, "sessionFee"),
        ({"pricePerKwh": 0, "timeFeePerMinute": 0, "sessionFee": 100_000_000}, "sessionFee"),
        ({"currency": "kwd", "sessionFee": 125}, "sessionFee"),
    ],
)
async def test_api_tariff_that_stripe_would_refuse(
    api: Client, csms: CentralSystem, change: dict[str, Any], field: str
) -> None:
    status, answer = await api.call("POST", "/api/tariffs", {"id": "t", **EUR_TARIFF, **change})
    assert (status, refusal(answer)) == (400, ("invalid", field))
    assert await csms.tariffs.all() == {}


async def test_api_names_stripes_minimum_in_words(api: Client) -> None:
    body = {"id": "t", "currency": "gbp", "sessionFee": 20}
    status, answer = await api.call("POST", "/api/tariffs", body)
    assert status == 400
    assert answer["error"]["message"].startswith(
        "the hold 0.20 GBP is below Stripe's minimum charge 0.30 GBP"
    )
    assert (await api.call("GET", "/api/tariffs/t"))[0] == 404  # nothing was stored


async def test_api_three_decimal_tariff_holds_what_stripe_takes(api: Client) -> None:
    body = {"id": "t", "currency": "kwd", "pricePerKwh": 123, "maxEnergyWh": 10_500}
    created = await api.ok("POST", "/api/tariffs", body)
    assert created["holdAmount"] == 1300  # 1291.5 -> 1292 fils, up to 1.300 KWD
