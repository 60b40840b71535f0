"""Tariffs by time of day against a running central system: the API and config.toml take
bands and the time fee's excluded window (refusals name the field), and paid sessions on
the simulated charger are priced band by band, across a band boundary and across the
night the clocks go back in Europe/Berlin, down to the receipt.

The charger's clock decides: the server prices a session from the charger's timestamps
(StartTransaction, MeterValues, StopTransaction), so the simulated charger is given a
clock that stands at a chosen moment until the session begins and then runs as fast as
its meter (the simulation's speed). The server's own clock stays the real one.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from csms.app import CentralSystem
from csms.cli import main
from csms.config import ConfigError
from csms.config_values import default_tariff
from simulators.chargepoint import Behaviour, SimulatedCharger
from tests.conftest import API_HEADERS, MakeConfig, ocpp_url
from tests.payflow import TARIFF, Driver
from tests.waiting import eventually

SPEED = 600  # one real second is ten minutes of the charger's
DASH, TIMES = "\u2013", "\u00d7"  # as the receipt typesets 07:00-22:00 and kWh x price


class ChargerClock:
    """Stands at `base` until `run()`, then runs SPEED times faster than real time."""

    def __init__(self, base: datetime) -> None:
        self.base = base
        self._since: float | None = None

    def run(self) -> None:
        self._since = time.monotonic()

    def __call__(self) -> datetime:
        if self._since is None:
            return self.base
        return self.base + timedelta(seconds=(time.monotonic() - self._since) * SPEED)


def _config(make_config: MakeConfig, bands: str) -> Any:
    return make_config(
        tariff={**TARIFF, "price_per_kwh": "0.30", "bands": bands},
        payments={"minimum_energy_wh": 100},
        operator={"time_zone": "Europe/Berlin"},
    )


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


# -- the API and config.toml


async def test_the_api_takes_bands_and_an_excluded_window(
    csms: CentralSystem, http: aiohttp.ClientSession
) -> None:
    base = f"http://127.0.0.1:{csms.http.port}/api/tariffs"
    body = {
        "id": "by-time",
        "currency": "eur",
        "pricePerKwh": 30,
        "maxEnergyWh": 20_000,
        "timeFeePerMinute": 2,
        "timeFeeMaxMinutes": 120,
        "bands": [
            {
                "name": "Peak",
                "start": "07:00",
                "end": "22:00",
                "days": ["mon", "tue", "wed", "thu", "fri"],
                "pricePerKwh": 45,
            },
            {"start": "22:00", "end": "07:00", "pricePerKwh": 20, "days": ["fri"]},
        ],
        "timeFeeExcluded": {"start": "22:00", "end": "07:00"},
    }
    async with http.post(base, json=body, headers=API_HEADERS) as response:
        created = await response.json()
        assert response.status == 201, created
    # The hold: 20 kWh at the highest price, 45, and 120 minutes at 2.
    assert created["holdAmount"] == 900 + 240
    assert created["bands"][0] == {**body["bands"][0]}  # type: ignore[index]
    assert created["bands"][1]["name"] == ""
    assert created["timeFeeExcluded"] == {"start": "22:00", "end": "07:00"}
    tariff = (await csms.tariffs.all())["by-time"]
    assert tariff.bands[0].days == ("mon", "tue", "wed", "thu", "fri")
    assert tariff.time_fee_excluded is not None and tariff.time_fee_excluded.end == "07:00"
    async with http.get(f"{base}/by-time", headers=API_HEADERS) as response:
        assert await response.json() == created


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            {
                "bands": [
                    {"start": "07:00", "end": "22:00", "pricePerKwh": 45},
                    {"start": "7:00", "end": "09:00", "pricePerKwh": 1},
                ]
            },
            "bands[1].start",
            "not a time HH:MM",
        ),
        (
            {
                "bands": [
                    {"start": "07:00", "end": "22:00", "pricePerKwh": 45},
                    {"start": "21:00", "end": "23:00", "pricePerKwh": 1},
                ]
            },
            "bands[1].start",
            "overlaps bands[0]",
        ),
        (
            {"bands": [{"start": "07:00", "end": "22:00", "pricePerKwh": 45, "days": ["monday"]}]},
            "bands[0].days",
            "not a weekday",
        ),
        (
            {"bands": [{"start": "07:00", "end": "07:00", "pricePerKwh": 45}]},
            "bands[0].end",
            "must differ from the start",
        ),
        (
            {"timeFeeExcluded": {"start": "22:00", "end": "7"}},
            "timeFeeExcluded.end",
            "not a time HH:MM",
        ),
        (
            {
                "pricePerKwh": 0,
                "maxEnergyWh": None,
                "bands": [{"start": "07:00", "end": "22:00", "pricePerKwh": 45}],
            },
            "maxEnergyWh",
            "a price per kWh needs a maximum energy",
        ),
    ],
)
async def test_bad_bands_are_refused_naming_the_field(
    csms: CentralSystem,
    http: aiohttp.ClientSession,
    change: dict[str, Any],
    field: str,
    message: str,
) -> None:
    body = {"id": "t", "currency": "eur", "pricePerKwh": 30, "maxEnergyWh": 5000, **change}
    url = f"http://127.0.0.1:{csms.http.port}/api/tariffs"
    async with http.post(url, json=body, headers=API_HEADERS) as response:
        answer = await response.json()
        assert response.status == 400, answer
    assert answer["error"]["field"] == field
    assert answer["error"]["message"].startswith(message), answer
    assert await csms.tariffs.all() == {}


def test_config_carries_bands_and_the_window(make_config: MakeConfig) -> None:
    tariff = default_tariff(
        make_config(
            tariff={
                **TARIFF,
                "bands": "Peak mon-fri 07:00-22:00 0.45; Weekend night sat,sun 22:00-06:00 0.2",
                "time_fee_excluded": "22:00-07:00",
            }
        )
    )
    assert [(b.name, b.days, b.start, b.end, b.price_per_kwh) for b in tariff.bands] == [
        ("Peak", ("mon", "tue", "wed", "thu", "fri"), "07:00", "22:00", 45),
        ("Weekend night", ("sat", "sun"), "22:00", "06:00", 20),
    ]
    assert tariff.time_fee_excluded is not None and tariff.time_fee_excluded.start == "22:00"
    for bands, named in (
        ("Peak 07:00-22:00 0.45; Late 21:00-23:00 0.5", "tariff.bands[1].start: overlaps"),
        ("Peak 07:00-22:00 abc", "tariff.bands[0].price_per_kwh"),
        ("Peak 7-22 0.45", "tariff.bands[0].start: not a time HH:MM"),
        # Misspelt weekdays are refused, not read into the name (the band every day).
        ("Peak mon-fir 07:00-22:00 0.45", "tariff.bands[0].days: weekdays are"),
        ("Peak Mo-Fr 07:00-22:00 0.45", "tariff.bands[0].days: weekdays are"),
        ("Peak monday-friday 07:00-22:00 0.45", "tariff.bands[0].days: weekdays are"),
    ):
        with pytest.raises(ConfigError) as error:
            default_tariff(make_config(tariff={**TARIFF, "bands": bands}))
        assert str(error.value).startswith(named), error.value
    with pytest.raises(ConfigError) as error:
        default_tariff(make_config(tariff={**TARIFF, "time_fee_excluded": "22:00"}))
    assert str(error.value).startswith("tariff.time_fee_excluded.end: not a time")


# -- paid sessions priced band by band


def _split(
    gain: int, a: datetime, b: datetime, parts: list[tuple[datetime, datetime, int]], n: int
) -> list[int]:
    """`gain` shared among the parts (from, to, index; index 0 elsewhere) by the time each
    covers of [a, b), whole Wh by largest remainder, ties to the lower index."""
    micro = timedelta(microseconds=1)
    weights = [0] * n
    for start, stop, index in parts:
        weights[index] += max(timedelta(0), min(stop, b) - max(start, a)) // micro
    weights[0] = (b - a) // micro - sum(weights[1:])
    if sum(weights) == 0:
        weights = [1] + [0] * (n - 1)
    total = sum(weights)
    shares = [gain * w // total for w in weights]
    order = sorted(range(n), key=lambda i: (-(gain * weights[i] % total), i))
    for i in order[: gain - sum(shares)]:
        shares[i] += 1
    return shares


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def _expected_by_band(
    driver: Driver, transaction_id: int, parts: list[tuple[datetime, datetime, int]], n: int
) -> list[int]:
    """The energy by band worked out from the readings the server stored for the session."""
    async with driver.http.get(
        f"{driver.base}/api/transactions/{transaction_id}", headers=API_HEADERS
    ) as response:
        tx = await response.json()
    readings = [(_moment(tx["startedAt"]), tx["meterStartWh"])]
    for value in tx["meterValues"]:
        if value["measurand"] == "Energy.Active.Import.Register":
            readings.append((_moment(value["timestamp"]), int(Decimal(value["normalised"]))))
    readings.append((_moment(tx["stoppedAt"]), tx["meterStopWh"]))
    expected = [0] * n
    (previous, register), *rest = readings
    for at, wh in sorted(set(rest)):
        if at < previous or wh < register:
            continue
        room = min(wh - register, 5000 - sum(expected))  # up to the tariff's maximum
        if room > 0:
            shares = _split(room, previous, at, parts, n)
            expected = [x + y for x, y in zip(expected, shares, strict=True)]
        previous, register = at, wh
    return expected


async def _paid_session(system: CentralSystem, driver: Driver, clock: ChargerClock) -> dict:
    sim = SimulatedCharger(
        ocpp_url(system),
        "CP-1",
        power_kw=3.0,
        meter_interval=0.2,
        speed=SPEED,
        behaviour=Behaviour(unplug_after_stop=0.1),
        clock=clock,
    )
    await sim.start()
    try:
        status, created = await driver.create("CP-1", 1)
        assert status == 200, created
        rid = created["reservationId"]
        paid = await driver.pay(created["checkoutUrl"])
        token = paid.url.path.removeprefix("/session/")
        await driver.wait_for_state(rid, "AwaitingPlug")
        clock.run()
        await sim.plug_in(1)
        final = await driver.wait_for_state(rid, "Completed", timeout=30)
    finally:
        await sim.stop()
    final["token"] = token
    return final


async def _receipt(driver: Driver, token: str, language: str = "en") -> str:
    async def ready() -> bool:
        async with driver.http.get(f"{driver.base}/receipt/{token}") as page:
            return page.status == 200

    await eventually(ready, timeout=10)
    async with driver.http.get(
        f"{driver.base}/receipt/{token}", headers={"Accept-Language": language}
    ) as page:
        return await page.text()


def _half_up(wh: int, price: int) -> int:
    return int((Decimal(wh) * price / 1000).quantize(Decimal(1), ROUND_HALF_UP))


def _kwh(wh: int) -> str:
    return f"{wh // 1000}.{wh % 1000:03d}"


async def _check_session(
    system: CentralSystem,
    driver: Driver,
    clock: ChargerClock,
    parts: list[tuple[datetime, datetime, int]],
    prices: list[int],
) -> tuple[list[int], str]:
    final = await _paid_session(system, driver, clock)
    r = await system.reservations.get(final["reservationId"])
    assert r is not None and r.time_zone == "Europe/Berlin"  # the operator's: no site zone
    expected = await _expected_by_band(driver, final["transactionId"], parts, len(prices))
    assert list(r.band_energy_wh) == expected
    breakdown = final["breakdown"]
    assert sum(expected) == breakdown["energyWh"] == min(final["energyWh"], 5000)
    amounts = [_half_up(wh, price) for wh, price in zip(expected, prices, strict=True)]
    assert [(b["part"], b["energyWh"], b["amount"]) for b in breakdown["bands"]] == [
        (i, wh, amounts[i]) for i, wh in enumerate(expected) if wh
    ]
    assert breakdown["energy"] == sum(amounts)
    assert final["capturedAmount"] == breakdown["total"] == 50 + sum(amounts)
    receipt = await _receipt(driver, final["token"])
    final["german"] = await _receipt(driver, final["token"], "de")
    return expected, receipt + final["german"]


async def test_a_paid_session_across_two_price_bands(
    make_config: MakeConfig, http: aiohttp.ClientSession
) -> None:
    # Tuesday 1 December, 06:50 in Berlin (05:50Z), 3 kW for at most 5 kWh: about ten
    # minutes at 0.30 before the peak begins at 07:00 (06:00Z), the rest at 0.45.
    peak = (datetime(2026, 12, 1, 6, tzinfo=UTC), datetime(2026, 12, 1, 21, tzinfo=UTC), 1)
    async with CentralSystem(_config(make_config, "Peak mon-fri 07:00-22:00 0.45")) as system:
        await system.chargers.register("CP-1", name="Harbour car park")
        driver = Driver(system, http)
        clock = ChargerClock(datetime(2026, 12, 1, 5, 50, tzinfo=UTC))
        expected, receipt = await _check_session(system, driver, clock, [peak], [30, 45])
    assert expected[0] > 0 and expected[1] > 0
    assert f"Other times: {_kwh(expected[0])} kWh {TIMES} €0.30" in receipt
    assert f"Peak Mon{DASH}Fri 07:00{DASH}22:00: {_kwh(expected[1])} kWh {TIMES} €0.45" in receipt
    assert f"€{_half_up(expected[1], 45) / 100:.2f}" in receipt
    assert f"Übrige Zeiten: {_kwh(expected[0]).replace('.', ',')} kWh {TIMES} 0,30" in receipt
    assert f"Peak Mo{DASH}Fr 07:00{DASH}22:00: " in receipt


async def test_a_paid_session_across_the_night_the_clocks_go_back(
    make_config: MakeConfig, http: aiohttp.ClientSession
) -> None:
    # Sunday 25 October 2026, 02:40 CEST (00:40Z), for about 100 minutes. Early runs from
    # the first 02:30 (00:30Z) to 03:00, which comes once, in CET (02:00Z): 80 minutes of
    # the session, the repeated hour included. Then Peak. A fixed offset of +2 would end
    # Early at 01:00Z; a plain wall-clock reading would leave the repeat outside it.
    early = (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 2, tzinfo=UTC), 1)
    peak = (datetime(2026, 10, 25, 2, tzinfo=UTC), datetime(2026, 10, 25, 21, tzinfo=UTC), 2)
    bands = "Early 02:30-03:00 0.20; Peak 03:00-22:00 0.45"
    async with CentralSystem(_config(make_config, bands)) as system:
        await system.chargers.register("CP-1", name="Harbour car park")
        driver = Driver(system, http)
        clock = ChargerClock(datetime(2026, 10, 25, 0, 40, tzinfo=UTC))
        expected, receipt = await _check_session(system, driver, clock, [early, peak], [30, 20, 45])
    assert expected[0] == 0
    assert expected[1] > 3 * expected[2] > 0  # 80 minutes against about 20
    assert f"Early 02:30{DASH}03:00: {_kwh(expected[1])} kWh {TIMES} €0.20" in receipt
    assert f"Peak 03:00{DASH}22:00: {_kwh(expected[2])} kWh {TIMES} €0.45" in receipt


def test_the_cli_sets_bands_and_the_window(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CSMS_DATABASE_PATH", str(tmp_path / "cli.db"))
    monkeypatch.setenv("CSMS_DATABASE_URL", database_url)
    argv = ["tariffs", "set", "by-time", "--currency", "EUR", "--price-per-kwh", "0.30",
            "--max-energy-wh", "10000", "--time-fee-per-minute", "0.02",
            "--time-fee-max-minutes", "60", "--time-fee-excluded", "22:00-07:00"]  # fmt: skip
    assert main([*argv, "--bands", "Peak mon-fri 07:00-22:00 0.45"]) == 0
    # 10 kWh at 0.45 and 60 minutes at 0.02.
    assert "a session holds at most 5.70 EUR" in capsys.readouterr().out
    assert main(["tariffs", "list"]) == 0
    listed = capsys.readouterr().out
    assert "'name': 'Peak'" in listed and "'time_fee_excluded': {'start': '22:00'" in listed
    assert main([*argv, "--bands", "Peak mon-fri 07:00-22:00 0.45; 21:00-23:00 0.5"]) == 2
    assert "--bands[1].start: overlaps bands[0]" in capsys.readouterr().err
    assert main([*argv, "--bands", "Peak Mo-Fr 07:00-22:00 0.45"]) == 2
    assert "--bands[0].days: weekdays are" in capsys.readouterr().err
    # A name with a hyphen stays a name.
    assert main([*argv, "--bands", "Off-peak 22:00-07:00 0.25; Mid-day 11:00-13:00 0.4"]) == 0
    capsys.readouterr()
    assert main(["tariffs", "list"]) == 0
    listed = capsys.readouterr().out
    assert "'name': 'Off-peak'" in listed and "'name': 'Mid-day'" in listed
