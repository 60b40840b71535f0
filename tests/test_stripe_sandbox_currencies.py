"""Currencies as Stripe documents them (https://docs.stripe.com/currencies): minimum
charges, three-decimal currencies, and the special cases ISK, UGX, HUF and TWD."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
import stripe

from simulators.stripe_sandbox import money
from tests import test_stripe_sandbox as base
from tests.test_stripe_sandbox import authorised_session, create_session

# The fixtures of the sandbox's main tests.
receiver, sandbox, client, browser = base.receiver, base.sandbox, base.client, base.browser


def items(currency: str, unit_amount: int, quantity: int = 1) -> list[dict[str, Any]]:
    return [
        {
            "price_data": {
                "currency": currency,
                "unit_amount": unit_amount,
                "product_data": {"name": "Charging session"},
            },
            "quantity": quantity,
        }
    ]


# Stripe's table, in minor units: https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts
STRIPE_MINIMUMS = {
    "usd": 50, "aed": 200, "aud": 50, "bgn": 100, "brl": 50, "cad": 50, "chf": 50,
    "czk": 1500, "dkk": 250, "eur": 50, "gbp": 30, "hkd": 400, "huf": 17500, "inr": 50,
    "jpy": 50, "mxn": 1000, "myr": 200, "nok": 300, "nzd": 50, "pln": 200, "ron": 200,
    "sek": 300, "sgd": 50, "thb": 1000,
}  # fmt: skip


def test_every_currency_of_stripes_minimum_table_is_known() -> None:
    assert money.MINIMUM_CHARGE == STRIPE_MINIMUMS


@pytest.mark.parametrize("currency", sorted(STRIPE_MINIMUMS))
async def test_minimum_charge_per_currency(client: stripe.StripeClient, currency: str) -> None:
    minimum = STRIPE_MINIMUMS[currency]

    session = await create_session(client, line_items=items(currency, minimum))
    assert (session.amount_total, session.currency) == (minimum, currency)
    with pytest.raises(stripe.InvalidRequestError) as error:
        await create_session(client, line_items=items(currency, minimum - 1))
    assert error.value.param == "line_items"
    assert "must add up to at least" in error.value.user_message


@pytest.mark.parametrize(
    ("currency", "written"),
    [
        ("huf", "175.00 Ft huf"),
        ("czk", "15.00Kč czk"),
        ("aed", "2.00 د.إ aed"),
        ("bgn", "лв1.00 bgn"),
        ("usd", "$0.50 usd"),
        ("jpy", "¥50 jpy"),
    ],
)
async def test_minimum_is_written_as_stripe_writes_it(
    client: stripe.StripeClient, currency: str, written: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as error:
        await create_session(client, line_items=items(currency, 10))
    assert error.value.user_message.endswith(f"must add up to at least {written}")


@pytest.mark.parametrize("currency", ["bhd", "jod", "kwd", "omr", "tnd"])
async def test_three_decimal_amounts_must_end_in_zero(
    client: stripe.StripeClient, browser: aiohttp.ClientSession, currency: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as error:
        await create_session(client, line_items=items(currency, 5124))
    assert (error.value.http_status, error.value.code) == (400, "invalid_charge_amount")
    assert error.value.param == "line_items[0][price_data][unit_amount]"

    _, intent = await authorised_session(client, browser, line_items=items(currency, 5120))
    assert (intent.amount, intent.currency) == (5120, currency)
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.payment_intents.capture_async(intent.id, params={"amount_to_capture": 3005})
    assert (error.value.code, error.value.param) == ("invalid_charge_amount", "amount_to_capture")
    captured = await client.v1.payment_intents.capture_async(
        intent.id, params={"amount_to_capture": 3000}
    )
    assert captured.amount_received == 3000
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.refunds.create_async(params={"payment_intent": intent.id, "amount": 1001})
    assert (error.value.code, error.value.param) == ("invalid_charge_amount", "amount")
    refund = await client.v1.refunds.create_async(
        params={"payment_intent": intent.id, "amount": 1000}
    )
    assert refund.amount == 1000


@pytest.mark.parametrize("currency", ["isk", "ugx"])
async def test_isk_and_ugx_are_two_decimal_with_whole_units_only(
    client: stripe.StripeClient, browser: aiohttp.ClientSession, currency: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as error:
        await create_session(client, line_items=items(currency, 550))
    assert error.value.code == "invalid_charge_amount_no_decimal_compatible"
    assert error.value.user_message == (
        f"Invalid amount. Currency {currency.upper()} has become effectively zero-decimal and "
        "charged amounts must be evenly divisible by 100. See "
        "https://stripe.com/docs/currencies#special-cases for more information."
    )

    # 5 units are 500, as the API keeps two decimals.
    session, intent = await authorised_session(client, browser, line_items=items(currency, 500, 3))
    assert session.amount_total == 1500
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.payment_intents.capture_async(intent.id, params={"amount_to_capture": 1250})
    assert error.value.code == "invalid_charge_amount_no_decimal_compatible"
    await client.v1.payment_intents.capture_async(intent.id, params={"amount_to_capture": 1200})
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.refunds.create_async(params={"payment_intent": intent.id, "amount": 150})
    assert error.value.code == "invalid_charge_amount_no_decimal_compatible"
    assert (await client.v1.refunds.create_async(params={"payment_intent": intent.id})).amount == (
        1200
    )


@pytest.mark.parametrize(("currency", "amount"), [("huf", 17550), ("twd", 1999)])
async def test_huf_and_twd_charge_two_decimal_amounts(
    client: stripe.StripeClient, browser: aiohttp.ClientSession, currency: str, amount: int
) -> None:
    # Zero-decimal for payouts only: charges keep their fraction.
    _, intent = await authorised_session(client, browser, line_items=items(currency, amount))
    captured = await client.v1.payment_intents.capture_async(intent.id)
    assert captured.amount_received == amount


def test_decimals_and_steps() -> None:
    assert [money.exponent(c) for c in ("jpy", "eur", "kwd", "isk", "ugx", "huf")] == [
        0,
        2,
        3,
        2,
        2,
        2,
    ]
    assert [money.step(c) for c in ("jpy", "eur", "kwd", "isk", "ugx", "twd")] == [
        1,
        1,
        10,
        100,
        100,
        1,
    ]
    assert money.display(500, "isk") == "5.00 ISK"
    assert money.display(5120, "kwd") == "5.120 KWD"
