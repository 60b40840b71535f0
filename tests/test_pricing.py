import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.pricing import (
    Tariff,
    TariffError,
    Usage,
    format_money,
    hold_amount,
    price,
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
