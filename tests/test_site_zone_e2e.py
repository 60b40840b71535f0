"""Tariffs by time of day in the charger's SITE's time zone, end to end: the operator's zone
is UTC, the charger stands at a site in America/New_York, and a paid session on the
simulated charger crosses a band boundary and the night the clocks go back there (1
November 2026, 02:00 EDT -> 01:00 EST, at 06:00Z). Its energy is priced band by band and
its time fee skips the excluded window, both on New York's wall clock; the receipt shows
the bands and gives its times in New York's zone, EDT before the change and EST after.

The charger's clock decides, as in tests/test_tariff_bands_e2e.py, whose helpers this uses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from csms.app import CentralSystem
from csms.store.sites import Site
from tests.conftest import MakeConfig
from tests.payflow import TARIFF, Driver, charger
from tests.test_tariff_bands_e2e import (
    DASH,
    TIMES,
    ChargerClock,
    _expected_by_band,
    _half_up,
    _kwh,
    _paid_session,
    _receipt,
)

NEW_YORK = ZoneInfo("America/New_York")
HARBOUR = Site(id="harbour", name="Harbour car park", time_zone="America/New_York")
BANDS = "Early 01:30-02:00 0.20; Peak 02:00-22:00 0.45"
# On New York's clock that night: Early from the first 01:30 (EDT, 05:30Z) to 02:00, which
# comes once, in EST (07:00Z): the repeated hour is inside it. Peak then until 22:00 EST.
EARLY = (datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 11, 1, 7, tzinfo=UTC), 1)
PEAK = (datetime(2026, 11, 1, 7, tzinfo=UTC), datetime(2026, 11, 2, 3, tzinfo=UTC), 2)
# The time fee's excluded window 01:00-02:00: from the first 01:00 (05:00Z) to 07:00Z.
EXCLUDED = (datetime(2026, 11, 1, 5, tzinfo=UTC), datetime(2026, 11, 1, 7, tzinfo=UTC))


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


def _time_minutes(started: datetime, stopped: datetime) -> int:
    """The whole minutes of charging outside EXCLUDED (payments.reservation_model)."""
    charging = int((stopped - started).total_seconds())
    inside = max(timedelta(0), min(stopped, EXCLUDED[1]) - max(started, EXCLUDED[0]))
    return max(0, charging - inside // timedelta(microseconds=1) // 1_000_000) // 60


async def test_a_session_priced_in_the_sites_zone_across_the_clocks_going_back(
    make_config: MakeConfig, http: aiohttp.ClientSession
) -> None:
    tariff = {**TARIFF, "price_per_kwh": "0.30", "bands": BANDS, "time_fee_per_minute": "0.01",
              "time_fee_max_minutes": 200, "time_fee_excluded": "01:00-02:00"}  # fmt: skip
    config = make_config(
        tariff=tariff, payments={"minimum_energy_wh": 100}, operator={"time_zone": "UTC"}
    )
    async with CentralSystem(config) as system:
        await system.chargers.register("CP-1", name="Bay 1")
        await system.sites.add(HARBOUR)
        await system.chargers.set_site("CP-1", "harbour")
        driver = Driver(system, http)
        # 01:40 EDT (05:40Z), 3 kW for at most 5 kWh: about 100 minutes, 80 of them in
        # Early (the repeated hour included), the rest in Peak. In the operator's zone
        # (UTC) the whole session would be Peak and pay the time fee for every minute.
        clock = ChargerClock(datetime(2026, 11, 1, 5, 40, tzinfo=UTC))
        final = await _paid_session(system, driver, clock)
        r = await system.reservations.get(final["reservationId"])
        assert r is not None and r.time_zone == "America/New_York"  # the site's, snapshot
        expected = await _expected_by_band(driver, final["transactionId"], [EARLY, PEAK], 3)
        english = await _receipt(driver, final["token"])
        german = await _receipt(driver, final["token"], "de")

    assert r.started_at is not None and r.stopped_at is not None
    assert r.started_at < datetime(2026, 11, 1, 6, tzinfo=UTC) < r.stopped_at  # the change
    assert r.stopped_at > PEAK[0]  # and the band boundary
    assert list(r.band_energy_wh) == expected
    assert expected[0] == 0 and expected[1] > 3 * expected[2] > 0  # 80 minutes against 20
    prices = [30, 20, 45]
    amounts = [_half_up(wh, price) for wh, price in zip(expected, prices, strict=True)]
    breakdown = final["breakdown"]
    assert [(b["part"], b["energyWh"], b["amount"]) for b in breakdown["bands"]] == [
        (i, wh, amounts[i]) for i, wh in enumerate(expected) if wh
    ]
    minutes = _time_minutes(r.started_at, r.stopped_at)
    assert 0 < minutes < 40  # only what was charged after 02:00 EST
    assert (breakdown["timeMinutes"], breakdown["timeFee"]) == (minutes, minutes)
    assert final["capturedAmount"] == breakdown["total"] == 50 + sum(amounts) + minutes

    # The receipt: the bands, and times on New York's clock, named, before and after.
    assert f"Early 01:30{DASH}02:00: {_kwh(expected[1])} kWh {TIMES} €0.20" in english
    assert f"Peak 02:00{DASH}22:00: {_kwh(expected[2])} kWh {TIMES} €0.45" in english
    assert f"Time fee ({minutes} min)" in english
    started, stopped = r.started_at.astimezone(NEW_YORK), r.stopped_at.astimezone(NEW_YORK)
    assert (started.tzname(), stopped.tzname()) == ("EDT", "EST")
    assert f'id="started">{started:%d.%m.%Y, %H:%M} EDT<' in german
    assert f'id="stopped">{stopped:%d.%m.%Y, %H:%M} EST<' in german
    assert "EDT</dd>" in english and "EST</dd>" in english and "UTC</dd>" not in english


async def test_the_snapshot_takes_the_chargers_zone_else_its_sites_else_the_operators(
    make_config: MakeConfig, http: aiohttp.ClientSession
) -> None:
    config = make_config(tariff={**TARIFF, "bands": BANDS}, operator={"time_zone": "UTC"})
    async with CentralSystem(config) as system:
        await system.chargers.register("CP-1")
        await system.sites.add(HARBOUR)
        await system.chargers.set_site("CP-1", "harbour")
        driver = Driver(system, http)
        sim = charger(system)
        await sim.start()
        snapshots = []
        try:
            for own, site in (("Asia/Tokyo", "harbour"), (None, "harbour"), (None, None)):
                await system.chargers.set_time_zone("CP-1", own)
                await system.chargers.set_site("CP-1", site)
                status, created = await driver.create("CP-1", 1)
                assert status == 200, created
                r = await system.reservations.get(created["reservationId"])
                assert r is not None
                snapshots.append(r.time_zone)
                status, cancelled = await driver.post(f"/api/payments/{r.id}/cancel")
                assert status == 200, cancelled
        finally:
            await sim.stop()
    assert snapshots == ["Asia/Tokyo", "America/New_York", "UTC"]
