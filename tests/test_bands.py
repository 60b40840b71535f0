"""Tariffs by time of day (payments.bands, payments.pricing, the reservation machine's
counting): bands and the excluded window of the time fee in Europe/Berlin, through its
23-hour and 25-hour days, checked against a reference that walks the session minute by
minute."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments import bands
from payments.bands import Band, Window
from payments.codec import decode_reservation, encode_reservation
from payments.pricing import Tariff, TariffError, Usage, hold_amount, price, tariff_from_major_units
from payments.reservation import (
    ChargerFacts,
    Hold,
    MeterReading,
    Policy,
    Reservation,
    State,
    TransactionStopped,
    transition,
)
from payments.web.describe import tariff_in_words
from payments.web.texts import Texts

BERLIN = ZoneInfo("Europe/Berlin")
SPRING = date(2026, 3, 29)  # 02:00 CET -> 03:00 CEST: 23 hours
AUTUMN = date(2026, 10, 25)  # 03:00 CEST -> 02:00 CET: 25 hours
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
PEAK = Band("07:00", "22:00", 45, WEEKDAYS, "Peak")
NIGHT = Band("01:00", "02:30", 20, (), "Night")
TARIFF = Tariff(
    "eur",
    price_per_kwh=30,
    session_fee=50,
    max_energy_wh=30_000,
    max_duration_minutes=600,
    bands=(PEAK, Band("02:30", "04:00", 25, ("sun",), "Early"), NIGHT),
)
FACTS = ChargerFacts(online=True, connector_status="Available")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# -- the boundaries and the days of 23 and 25 hours


def test_a_boundary_in_the_skipped_hour_is_the_jump() -> None:
    # 02:00 to 03:00 does not happen on 29 March: 02:30 begins when the clock jumps.
    assert bands.boundary(SPRING, 150, BERLIN) == utc(2026, 3, 29, 1)
    assert bands.boundary(SPRING, 120, BERLIN) == utc(2026, 3, 29, 1)
    assert bands.boundary(SPRING, 180, BERLIN) == utc(2026, 3, 29, 1)
    assert bands.boundary(SPRING, 60, BERLIN) == utc(2026, 3, 29, 0)


def test_a_boundary_in_the_repeated_hour_is_its_first_occurrence() -> None:
    assert bands.boundary(AUTUMN, 150, BERLIN) == utc(2026, 10, 25, 0, 30)
    assert bands.boundary(AUTUMN, 180, BERLIN) == utc(2026, 10, 25, 2)  # 03:00 CET, once


def _hours(part: tuple[int, ...], index: int) -> float:
    return part[index] / 3_600_000_000


def test_a_whole_day_band_lasts_23_and_25_hours() -> None:
    day = (Band("00:00", "24:00", 10, ("sun",)),)
    spring = bands.time_in_bands(day, BERLIN, utc(2026, 3, 28, 12), utc(2026, 3, 30, 12))
    autumn = bands.time_in_bands(day, BERLIN, utc(2026, 10, 24, 12), utc(2026, 10, 26, 12))
    assert _hours(spring, 1) == 23
    assert _hours(autumn, 1) == 25
    assert _hours(spring, 0) == 48 - 23


def test_bands_with_a_boundary_in_the_changing_hour() -> None:
    skipped = (Band("02:30", "06:00", 10), Band("01:30", "02:15", 20))
    spring = bands.time_in_bands(skipped, BERLIN, utc(2026, 3, 28, 22), utc(2026, 3, 29, 6))
    # 03:00 CEST (01:00Z) to 06:00 CEST (04:00Z); and 01:30 CET to the jump: 30 minutes.
    assert (_hours(spring, 1), _hours(spring, 2)) == (3, 0.5)
    repeated = (Band("02:30", "04:00", 10), Band("02:00", "02:30", 20))
    autumn = bands.time_in_bands(repeated, BERLIN, utc(2026, 10, 24, 22), utc(2026, 10, 25, 6))
    # From the first 02:30 (00:30Z) to 04:00 CET (03:00Z), the repeat included: 2.5 hours;
    # the first 02:00 to 02:30 only: half an hour.
    assert (_hours(autumn, 1), _hours(autumn, 2)) == (2.5, 0.5)


def test_a_band_past_midnight_belongs_to_the_day_it_starts() -> None:
    friday_night = (Band("22:00", "06:00", 10, ("fri",)),)
    # Friday 2026-12-04 20:00 to Sunday 12:00 local (winter, UTC+1).
    parts = bands.time_in_bands(friday_night, BERLIN, utc(2026, 12, 4, 19), utc(2026, 12, 6, 11))
    assert _hours(parts, 1) == 8


def test_the_excluded_window_through_the_autumn_change() -> None:
    window = Window("01:00", "04:00")
    # 01:00 CEST (23:00Z) to 04:00 CET (03:00Z): four hours that night.
    seconds = bands.seconds_in_window(window, BERLIN, utc(2026, 10, 24, 20), utc(2026, 10, 25, 8))
    assert seconds == 4 * 3600


# -- tariffs: bands checked, the hold at the highest price


def test_overlapping_or_malformed_bands_are_refused_naming_them() -> None:
    with pytest.raises(TariffError) as error:
        Tariff("eur", max_energy_wh=1000, bands=(PEAK, Band("21:00", "23:00", 10, ("fri",))))
    assert error.value.field == "bands[1].start"
    assert "overlaps bands[0]" in error.value.message
    with pytest.raises(TariffError) as error:
        Tariff("eur", max_energy_wh=1000, bands=(PEAK, Band("7:00", "9:00", 10)))
    assert (error.value.field, error.value.message.split(" (")[0]) == (
        "bands[1].start",
        "not a time HH:MM",
    )
    with pytest.raises(TariffError) as error:
        Tariff("eur", max_energy_wh=1000, bands=(Band("07:00", "09:00", 10, ("mo",)),))
    assert error.value.field == "bands[0].days"
    with pytest.raises(TariffError) as error:
        Tariff("eur", max_energy_wh=1000, time_fee_excluded=Window("22:00", "25:00"))
    assert error.value.field == "time_fee_excluded.end"
    # Adjacent bands, and a weekend band at the same hours, are fine.
    Tariff("eur", max_energy_wh=1000, bands=(PEAK, Band("22:00", "07:00", 10, WEEKDAYS)))
    Tariff("eur", max_energy_wh=1000, bands=(PEAK, Band("07:00", "22:00", 10, ("sat",))))


def test_the_hold_takes_the_highest_price() -> None:
    assert hold_amount(TARIFF) == 50 + 30_000 * 45 // 1000
    cheaper = Tariff("eur", price_per_kwh=60, max_energy_wh=10_000, bands=(PEAK,))
    assert hold_amount(cheaper) == 600
    major = tariff_from_major_units(
        "eur",
        {
            "max_energy_wh": 5000,
            "bands": [{"start": "07:00", "end": "22:00", "price_per_kwh": "0.45"}],
        },
    )
    assert major.bands[0].price_per_kwh == 45
    with pytest.raises(TariffError) as error:
        tariff_from_major_units(
            "eur",
            {
                "max_energy_wh": 5000,
                "bands": [{"start": "07:00", "end": "22:00", "price_per_kwh": "x"}],
            },
        )
    assert error.value.field == "bands[0].price_per_kwh"


def test_price_by_band_and_the_time_fee_skipping_its_window() -> None:
    tariff = Tariff(
        "eur",
        price_per_kwh=30,
        time_fee_per_minute=2,
        time_fee_max_minutes=300,
        max_energy_wh=30_000,
        bands=(PEAK,),
        time_fee_excluded=Window("22:00", "07:00"),
    )
    usage = Usage(
        energy_wh=4_200,
        charging_seconds=3 * 3600,
        band_energy_wh=(1_000, 3_200),
        time_fee_seconds=3600 + 59,
    )
    b = price(tariff, usage)
    assert [(x.part, x.energy_wh, x.amount) for x in b.bands] == [(0, 1000, 30), (1, 3200, 144)]
    assert b.energy == 174
    assert (b.time_minutes, b.time_fee) == (60, 120)


def test_energy_counted_before_bands_were_kept_is_priced_outside_them() -> None:
    b = price(TARIFF, Usage(energy_wh=2_000, charging_seconds=60))
    assert [(x.part, x.energy_wh) for x in b.bands] == [(0, 2000)]
    assert b.energy == 60


# -- sessions through the machine, against a reference


def _charging(tariff: Tariff, start: datetime, zone: str = "Europe/Berlin") -> Reservation:
    return Reservation(
        id="res_1",
        charger_id="CP-1",
        connector_id=1,
        id_tag="T1",
        tariff=tariff,
        hold_amount=hold_amount(tariff),
        created_at=start,
        payment_deadline=start + timedelta(minutes=5),
        state=State.CHARGING,
        hold=Hold.HELD,
        payment_intent_id="pi_1",
        authorised_at=start,
        transaction_id=1,
        meter_start_wh=0,
        meter_register_wh=0,
        started_at=start,
        charging_since=start,
        metered_at=start,
        time_zone=zone,
    )


def _reference_part(tariff: Tariff, moment: datetime) -> int:
    """The part of the minute starting at `moment`, from the wall clock (Berlin: in the
    repeated hour, the clock counts as 02:59 until the repeat is over)."""
    local = moment.astimezone(BERLIN)
    minute = 179 if local.fold else local.hour * 60 + local.minute
    weekday = local.weekday()
    for i, band in enumerate(tariff.bands):
        first = bands.minute_of_day(band.start, "start")
        last = bands.minute_of_day(band.end, "end")
        days = band.weekdays
        if first < last:
            inside = weekday in days and first <= minute < last
        else:
            inside = (weekday in days and minute >= first) or (
                (weekday - 1) % 7 in days and minute < last
            )
        if inside:
            return i + 1
    return 0


def _reference_split(tariff: Tariff, gain: int, a: datetime, b: datetime) -> list[int]:
    minutes = [0] * (len(tariff.bands) + 1)
    moment = a
    while moment < b:
        minutes[_reference_part(tariff, moment)] += 1
        moment += timedelta(minutes=1)
    if not sum(minutes):
        minutes[_reference_part(tariff, a)] = 1
    total = sum(minutes)
    parts = [gain * m // total for m in minutes]
    order = sorted(range(len(minutes)), key=lambda i: (-(gain * minutes[i] % total), i))
    for i in order[: gain - sum(parts)]:
        parts[i] += 1
    return parts


def _half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), ROUND_HALF_UP))


def _run(
    tariff: Tariff, start: datetime, readings: list[tuple[int, int]]
) -> tuple[Reservation, list[int]]:
    """Readings (minutes since the previous, Wh gained); the session, and the reference
    energy by part (each counted gain split by the minute, up to the maximum energy)."""
    r = _charging(tariff, start)
    policy = Policy(max_power_w=10_000_000)
    reference = [0] * (len(tariff.bands) + 1)
    register, moment = 0, start
    for i, (minutes, gain) in enumerate(readings):
        previous, before = moment, r.energy_wh
        moment += timedelta(minutes=minutes)
        register += gain
        if i == len(readings) - 1:
            event = TransactionStopped(register, moment, ())
        else:
            event = MeterReading(register, None, moment)
        r = transition(r, event, FACTS, moment, policy).reservation
        counted = r.energy_wh - before
        room = min(counted, (tariff.max_energy_wh or 10**9) - sum(reference))
        if room > 0:
            split = _reference_split(tariff, room, previous, moment)
            reference = [x + y for x, y in zip(reference, split, strict=True)]
    return r, reference


def test_a_session_across_the_autumn_change() -> None:
    # Sunday 25 October, 00:40 CEST to 04:40 CET at 6 kW: Night from 01:00 CEST (23:00Z) to
    # the first 02:30 (00:30Z); Early from there to 04:00 CET (03:00Z), the repeated hour
    # included; the rest (20 and 40 minutes) at the tariff's own price.
    start = utc(2026, 10, 24, 22, 40)
    r, reference = _run(TARIFF, start, [(10, 1_000)] * 30)
    assert r.state is State.SETTLING and r.breakdown is not None
    assert list(r.band_energy_wh) == reference
    assert r.band_energy_wh == (6_000, 0, 15_000, 9_000)
    assert [(b.part, b.amount) for b in r.breakdown.bands] == [(0, 180), (2, 375), (3, 180)]
    assert r.breakdown.energy == 735
    assert r.breakdown.total == 785


@pytest.mark.parametrize("day", [SPRING, AUTUMN])
def test_a_session_through_the_whole_changing_day(day: date) -> None:
    tariff = Tariff(
        "eur",
        price_per_kwh=30,
        max_energy_wh=100_000,
        bands=(Band("02:00", "02:45", 50, ("sun",)), Band("02:45", "03:30", 40, ("sun",))),
    )
    start = datetime(day.year, day.month, day.day, tzinfo=BERLIN).astimezone(UTC)
    r, reference = _run(tariff, start, [(15, 1_000)] * 4 * 6)
    assert list(r.band_energy_wh) == reference
    if day == SPRING:  # 02:00-02:45 never happens; 02:45 to 03:30 is 03:00 to 03:30
        assert r.band_energy_wh[1:] == (0, 2_000)
    else:  # the first 02:00-02:45, then 02:45 CEST to 03:30 CET: an hour and three quarters
        assert r.band_energy_wh[1:] == (3_000, 7_000)


def test_the_band_energy_survives_the_codec_and_old_rows_decode() -> None:
    r, _ = _run(TARIFF, utc(2026, 12, 1, 5), [(30, 2_000)] * 4)
    again = decode_reservation(encode_reservation(r))
    assert again == r
    assert again.band_energy_wh == r.band_energy_wh != ()
    assert again.breakdown is not None and r.breakdown is not None
    assert again.breakdown.bands == r.breakdown.bands != ()
    old = orjson.loads(encode_reservation(r))
    for key in ("time_zone", "band_energy_wh"):
        del old[key]
    del old["breakdown"]["bands"]
    for key in ("bands", "time_fee_excluded"):
        del old["tariff"][key]
    decoded = decode_reservation(orjson.dumps(old).decode())
    assert decoded.band_energy_wh == () and decoded.time_zone is None
    assert decoded.tariff.bands == () and decoded.breakdown is not None
    assert decoded.breakdown.bands == ()


_READINGS = st.lists(st.tuples(st.integers(0, 90), st.integers(0, 4_000)), min_size=1, max_size=40)
_STARTS = st.sampled_from(
    [
        utc(2026, 3, 28, 22, 7),
        utc(2026, 10, 24, 21, 53),
        utc(2026, 12, 4, 5, 0),
        utc(2026, 6, 7, 19, 31),
    ]
) | st.datetimes(datetime(2026, 1, 1), datetime(2027, 1, 1)).map(
    lambda d: d.replace(second=0, microsecond=0, tzinfo=UTC)
)
_BANDS = st.sampled_from(
    [
        (PEAK,),
        TARIFF.bands,
        (Band("22:00", "06:00", 12, ("sat", "sun"), "Weekend night"), Band("06:00", "22:00", 45)),
        (
            Band("02:00", "02:45", 50),
            Band("02:45", "03:30", 40),
            Band("03:30", "02:00", 45, ("sun",)),
        ),
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_READINGS, _STARTS, _BANDS, st.integers(1, 120_000), st.integers(1, 60))
def test_energy_by_band_adds_up_and_is_priced_within_the_hold(
    readings: list[tuple[int, int]],
    start: datetime,
    band_set: tuple[Band, ...],
    max_energy: int,
    price_per_kwh: int,
) -> None:
    tariff = Tariff(
        "eur",
        price_per_kwh=price_per_kwh,
        session_fee=50,
        time_fee_per_minute=1,
        time_fee_max_minutes=120,
        max_energy_wh=max_energy,
        bands=band_set,
        time_fee_excluded=Window("22:00", "07:00"),
    )
    r, reference = _run(tariff, start, readings)
    billed = min(r.energy_wh, max_energy)
    assert sum(r.band_energy_wh) == billed
    assert list(r.band_energy_wh or [0] * len(reference)) == reference
    assert r.breakdown is not None
    assert r.breakdown.total <= r.hold_amount
    assert sum(b.energy_wh for b in r.breakdown.bands) == billed
    amounts = [
        _half_up(Decimal(wh * tariff.part_price(i)) / 1000) for i, wh in enumerate(reference)
    ]
    ceiling = _half_up(Decimal(billed * tariff.highest_price_per_kwh) / 1000)
    assert r.breakdown.energy == min(sum(amounts), ceiling)
    if sum(amounts) <= ceiling:
        assert [b.amount for b in r.breakdown.bands] == [
            a for a, wh in zip(amounts, reference, strict=True) if wh
        ]


@given(
    st.integers(0, 10**7),
    st.lists(st.integers(0, 10**12), min_size=1, max_size=8),
)
def test_split_sums_to_the_gain_and_stays_within_a_unit_of_the_share(
    gain: int, weights: list[int]
) -> None:
    parts = bands.split(gain, weights)
    assert sum(parts) == gain and min(parts) >= 0
    total = sum(weights)
    if total:
        for part, weight in zip(parts, weights, strict=True):
            assert abs(part * total - gain * weight) < total


def test_the_start_page_words_name_the_bands_and_the_window() -> None:
    tariff = Tariff(
        "eur",
        price_per_kwh=30,
        time_fee_per_minute=2,
        time_fee_max_minutes=60,
        max_energy_wh=5000,
        bands=(PEAK, Band("22:00", "06:00", 20, ("sat", "sun"))),
        time_fee_excluded=Window("22:00", "07:00"),
    )
    dash = "\u2013"
    assert tariff_in_words(tariff, Texts("en"))[:3] == [
        f"€0.45 per kWh Peak Mon{dash}Fri 07:00{dash}22:00",
        f"€0.20 per kWh Sat, Sun 22:00{dash}06:00",
        "€0.30 per kWh at other times",
    ]
    assert f"no time fee 22:00{dash}07:00" in tariff_in_words(tariff, Texts("en"))
    german = tariff_in_words(tariff, Texts("de"))
    assert german[0] == f"0,45\xa0€ pro kWh Peak Mo{dash}Fr 07:00{dash}22:00"
    assert f"keine Zeitgebühr 22:00{dash}07:00" in german
