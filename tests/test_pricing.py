import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.currency import step
from payments.pricing import (
    Tariff,
    TariffError,
    Usage,
    checked_hold_amount,
    currency_exponent,
    format_money,
    hold_amount,
    price,
    tariff_from_major_units,
    to_minor,
    would_pass_cap,
)

FULL = Tariff(
    "EUR",
    price_per_kwh=35,
    session_fee=50,
    time_fee_per_minute=5,
    time_fee_free_minutes=60,
    time_fee_max_minutes=120,
    idle_fee_per_minute=10,
    idle_grace_minutes=10,
    idle_fee_max_minutes=60,
    max_energy_wh=50_000,
)


def test_hold_is_the_most_a_session_can_cost() -> None:
    # 50 kWh x 0.35 + 0.50 + 120 min x 0.05 + 60 min x 0.10
    assert hold_amount(FULL) == 1750 + 50 + 600 + 600


def test_breakdown() -> None:
    breakdown = price(
        FULL, Usage(energy_wh=12_345, charging_seconds=3 * 3600 + 61, idle_seconds=25 * 60)
    )
    assert breakdown.energy == 432  # 12.345 kWh x 35 = 432.075 -> 432
    assert breakdown.session_fee == 50
    assert (breakdown.time_minutes, breakdown.time_fee) == (120, 600)  # 181 min - 60 free, capped
    assert (breakdown.idle_minutes, breakdown.idle_fee) == (15, 150)  # 25 min - 10 grace
    assert breakdown.total == 1232


def test_rounding_half_up_to_the_minor_unit() -> None:
    tariff = Tariff("eur", price_per_kwh=25, max_energy_wh=100_000)
    assert price(tariff, Usage(energy_wh=100, charging_seconds=0)).energy == 3  # 2.5 -> 3
    assert price(tariff, Usage(energy_wh=99, charging_seconds=0)).energy == 2  # 2.475 -> 2


def test_zero_decimal_currency() -> None:
    tariff = Tariff(
        "JPY",
        price_per_kwh=to_minor("52", "jpy"),
        session_fee=to_minor("100", "jpy"),
        max_energy_wh=30_000,
    )
    assert hold_amount(tariff) == 52 * 30 + 100
    assert price(tariff, Usage(energy_wh=10_500, charging_seconds=0)).total == 546 + 100
    assert format_money(1660, "jpy") == "1,660 JPY"
    with pytest.raises(ValueError, match="more decimals"):
        to_minor("0.5", "jpy")


def test_minor_units_and_formatting() -> None:
    assert to_minor("0.35", "eur") == 35
    assert to_minor("12", "usd") == 1200
    assert to_minor("1.234", "kwd") == 1234
    with pytest.raises(ValueError):
        to_minor("0.355", "eur")
    with pytest.raises(ValueError):
        to_minor("abc", "eur")
    assert format_money(123456, "eur") == "1,234.56 EUR"


@pytest.mark.parametrize(
    ("tariff", "field"),
    [
        (dict(price_per_kwh=30), "max_energy_wh"),
        (dict(time_fee_per_minute=5), "time_fee_max_minutes"),
        (dict(idle_fee_per_minute=5), "idle_fee_max_minutes"),
    ],
)
def test_unbounded_tariffs_are_refused(tariff: dict, field: str) -> None:
    with pytest.raises(TariffError) as refused:
        hold_amount(Tariff("eur", **tariff))
    assert refused.value.field == field


def test_time_fee_bounded_by_the_maximum_duration() -> None:
    tariff = Tariff(
        "eur", time_fee_per_minute=10, time_fee_free_minutes=30, max_duration_minutes=90
    )
    assert hold_amount(tariff) == 600


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        (dict(currency="euro"), "currency"),
        (dict(currency="eur", price_per_kwh=-1), "price_per_kwh"),
        (dict(currency="eur", session_fee=1.5), "session_fee"),
        (dict(currency="eur", max_energy_wh=0), "max_energy_wh"),
        (dict(currency="eur", colour="red"), "colour"),
        (dict(price_per_kwh=1), "currency"),
    ],
)
def test_invalid_tariffs_name_the_field(settings: dict, field: str) -> None:
    with pytest.raises(TariffError) as refused:
        Tariff.from_dict(settings)
    assert refused.value.field == field


def test_free_tariff() -> None:
    assert hold_amount(Tariff("eur")) == 0


def test_snapshot_round_trip() -> None:
    assert Tariff.from_dict(FULL.to_dict()) == FULL


def test_cap_projection() -> None:
    tariff = Tariff("eur", price_per_kwh=30, max_energy_wh=10_000)
    assert not would_pass_cap(tariff, 9_000, 11_000, 60)  # 9.183 kWh next
    assert would_pass_cap(tariff, 9_900, 11_000, 60)
    assert not would_pass_cap(Tariff("eur"), 10**9, 10**6, 60)


@given(
    energy=st.integers(min_value=-10, max_value=10**7),
    charging=st.integers(min_value=-10, max_value=10**6),
    idle=st.integers(min_value=-10, max_value=10**6),
    per_kwh=st.integers(min_value=0, max_value=500),
    fee=st.integers(min_value=0, max_value=1000),
    per_minute=st.integers(min_value=0, max_value=50),
)
def test_price_never_exceeds_the_hold(
    energy: int, charging: int, idle: int, per_kwh: int, fee: int, per_minute: int
) -> None:
    tariff = Tariff(
        "eur",
        price_per_kwh=per_kwh,
        session_fee=fee,
        time_fee_per_minute=per_minute,
        time_fee_max_minutes=90,
        idle_fee_per_minute=per_minute,
        idle_fee_max_minutes=30,
        max_energy_wh=40_000,
    )
    breakdown = price(tariff, Usage(energy, charging, idle))
    assert 0 <= breakdown.total <= hold_amount(tariff)
    assert min(breakdown.energy, breakdown.time_fee, breakdown.idle_fee) >= 0


# -- amounts Stripe takes


def test_the_names_callers_know_still_answer() -> None:
    assert currency_exponent("jpy") == 0 and currency_exponent("kwd") == 3
    assert to_minor("0.35", "EUR") == 35 and format_money(35, "eur") == "0.35 EUR"


def test_three_decimal_price_and_hold_are_multiples_of_ten() -> None:
    # 0.123 KWD per kWh, at most 10.5 kWh, a time fee of 0.007 KWD a minute for 45 minutes.
    tariff = Tariff(
        "kwd",
        price_per_kwh=123,
        session_fee=150,
        time_fee_per_minute=7,
        time_fee_max_minutes=45,
        max_energy_wh=10_500,
    )
    # 1291.5 -> 1292, + 150 + 315 = 1757 fils: held as 1.760 KWD, never less than a price.
    assert hold_amount(tariff) == 1760
    breakdown = price(tariff, Usage(energy_wh=3_300, charging_seconds=13 * 60))
    # 3.3 kWh x 123 = 405.9 -> 406 -> 400; 13 min x 7 = 91 -> 90: each line rounds down.
    assert (breakdown.energy, breakdown.session_fee, breakdown.time_fee) == (400, 150, 90)
    assert breakdown.total == 640


def test_isk_price_in_whole_kronur() -> None:
    tariff = Tariff("isk", price_per_kwh=to_minor("45.5", "isk"), max_energy_wh=3_000)
    assert hold_amount(tariff) == 13_700  # 136.50 ISK, held as 137 ISK
    assert price(tariff, Usage(energy_wh=1_000, charging_seconds=0)).energy == 4_500


@given(
    code=st.sampled_from(["kwd", "bhd", "isk", "ugx", "eur", "jpy"]),
    energy=st.integers(min_value=0, max_value=10**6),
    charging=st.integers(min_value=0, max_value=10**5),
    idle=st.integers(min_value=0, max_value=10**5),
    per_kwh=st.integers(min_value=0, max_value=5000),
    fee=st.integers(min_value=0, max_value=100),
    per_minute=st.integers(min_value=0, max_value=50),
)
def test_prices_and_holds_are_amounts_stripe_takes(
    code: str, energy: int, charging: int, idle: int, per_kwh: int, fee: int, per_minute: int
) -> None:
    tariff = Tariff(
        code,
        price_per_kwh=per_kwh,
        session_fee=fee * step(code),
        time_fee_per_minute=per_minute,
        time_fee_max_minutes=90,
        idle_fee_per_minute=per_minute,
        idle_fee_max_minutes=30,
        max_energy_wh=40_000,
    )
    hold = hold_amount(tariff)
    breakdown = price(tariff, Usage(energy, charging, idle))
    assert hold % step(code) == 0
    for amount in (breakdown.energy, breakdown.session_fee, breakdown.time_fee, breakdown.idle_fee):
        assert amount % step(code) == 0
    assert 0 <= breakdown.total <= hold


def test_checked_hold_amount_accepts_what_stripe_takes() -> None:
    assert checked_hold_amount(FULL) == hold_amount(FULL)
    assert checked_hold_amount(Tariff("eur")) == 0  # free: nothing goes to Stripe
    assert checked_hold_amount(Tariff("eur", session_fee=50)) == 50  # exactly the minimum
    # No minimum listed for KWD: Stripe checks the settlement currency's; not refused here.
    assert checked_hold_amount(Tariff("kwd", session_fee=10)) == 10


@pytest.mark.parametrize(
    ("tariff", "field", "words"),
    [
        (Tariff("xyz", session_fee=100), "currency", "Stripe does not charge in XYZ"),
        (
            Tariff("eur", price_per_kwh=30, max_energy_wh=1000),
            "max_energy_wh",
            "the hold 0.30 EUR is below Stripe's minimum charge 0.50 EUR",
        ),
        (Tariff("gbp", session_fee=29), "session_fee", "minimum charge 0.30 GBP"),
        (Tariff("czk", session_fee=1000), "session_fee", "minimum charge 15.00 CZK"),
        (
            Tariff("eur", time_fee_per_minute=1, time_fee_max_minutes=20, session_fee=10),
            "time_fee_max_minutes",
            "the hold 0.30 EUR",
        ),
        (
            Tariff("eur", time_fee_per_minute=1, max_duration_minutes=20),
            "max_duration_minutes",
            "the hold 0.20 EUR",
        ),
        (
            Tariff("eur", idle_fee_per_minute=1, idle_fee_max_minutes=20),
            "idle_fee_max_minutes",
            "the hold 0.20 EUR",
        ),
        (
            Tariff("eur", price_per_kwh=100_000, max_energy_wh=1_000_000, session_fee=50),
            "max_energy_wh",
            "the hold 1,000,000.50 EUR is above Stripe's maximum charge 999,999.99 EUR",
        ),
        (Tariff("kwd", session_fee=125), "session_fee", "steps of 0.010 KWD"),
        (Tariff("isk", session_fee=5050), "session_fee", "steps of 1.00 ISK"),
    ],
)
def test_what_stripe_would_refuse_names_the_setting(tariff: Tariff, field: str, words: str) -> None:
    with pytest.raises(TariffError) as refused:
        checked_hold_amount(tariff)
    assert refused.value.field == field
    assert words in refused.value.message


def test_tariffs_in_major_units_are_checked_for_stripe() -> None:
    with pytest.raises(TariffError) as refused:
        tariff_from_major_units("XYZ", {"session_fee": "1"})
    assert refused.value.field == "currency"
    with pytest.raises(TariffError) as refused:
        tariff_from_major_units("aed", {"session_fee": "1.50"})
    assert (refused.value.field, refused.value.message) == (
        "session_fee",
        "the hold 1.50 AED is below Stripe's minimum charge 2.00 AED: raise this setting so "
        "that a session can cost at least that much",
    )
    assert tariff_from_major_units("aed", {"session_fee": "2"}).session_fee == 200
    with pytest.raises(TariffError, match="not an ISO 4217 code"):
        tariff_from_major_units("euro", {})
