"""The receipt and the start page over HTTP, against a running central system: refunds
(partial, then the rest) and what stays paid, the VAT included in gross prices, times in the
operator's time zone, and the operator's identity; the settings that feed them refused with
the setting's name when wrong."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from csms.app import CentralSystem
from csms.config import Config, ConfigError, with_overrides
from csms.config_values import default_tariff
from payments.pricing import Tariff, TariffError, included_tax, tariff_from_major_units
from tests.conftest import API_HEADERS, MakeConfig
from tests.payflow import TARIFF, Driver, charger, finished_session, refund_and_wait

BERLIN = ZoneInfo("Europe/Berlin")
OPERATOR = {
    "name": "Stadtwerke Hafenstadt GmbH",
    "address": "Kaistraße 7\n20457 Hamburg",
    "support_email": "laden@hafenstadt.example",
    "support_phone": "+49 40 123456",
    "support_url": "https://hafenstadt.example/hilfe",
    "terms_url": "https://hafenstadt.example/agb",
    "privacy_url": "https://hafenstadt.example/datenschutz",
    "time_zone": "Europe/Berlin",
}


@pytest.fixture
async def system(make_config: MakeConfig) -> AsyncIterator[CentralSystem]:
    config = make_config(
        tariff={**TARIFF, "tax_rate_percent": "19"},
        payments={"minimum_energy_wh": 100},
        operator=OPERATOR,
    )
    async with CentralSystem(config) as running:
        await running.chargers.register("CP-1", name="Harbour car park")
        yield running


@pytest.fixture
async def driver(system: CentralSystem) -> AsyncIterator[Driver]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield Driver(system, http)


async def _get(driver: Driver, path: str) -> str:
    async with driver.http.get(f"{driver.base}{path}") as page:
        html = await page.text()
        assert page.status == 200, html
        return html


def _vat(gross: int, percent: int) -> int:
    """The VAT inside a gross amount, worked out here on its own: gross - gross / (1 + p)."""
    net = Decimal(gross) / (1 + Decimal(percent) / 100)
    return int((Decimal(gross) - net).quantize(Decimal(1), ROUND_HALF_UP))


def _euros(minor: int) -> str:
    return f"€{minor // 100}.{minor % 100:02d}"


async def test_receipt_with_refunds_vat_time_zone_and_operator(
    system: CentralSystem, driver: Driver
) -> None:
    sim = charger(system, unplug_after_stop=0.1)
    await sim.start()
    try:
        rid, token = await finished_session(driver, sim)
    finally:
        await sim.stop()
    captured = (await driver.status(rid))["capturedAmount"]
    assert captured > 40  # the session fee and some energy: room for a partial refund

    before = await _get(driver, f"/receipt/{token}")
    assert f'id="captured">{_euros(captured)}<' in before
    assert "Refunded" not in before and 'id="paid"' not in before
    assert "incl. VAT 19 %" in before
    assert f'id="vat">{_euros(_vat(captured, 19))}<' in before
    # Who to ask, and who took the money.
    assert "Stadtwerke Hafenstadt GmbH" in before and "Kaistraße 7<br>20457 Hamburg" in before
    assert 'href="mailto:laden@hafenstadt.example"' in before
    assert 'href="tel:+4940123456"' in before and "https://hafenstadt.example/hilfe" in before

    # Times in Berlin's zone, named: 24-hour German format, CET or CEST.
    german = await _get(driver, f"/receipt/{token}?lang=de")
    r = await system.payment_service.get(rid)
    assert r is not None and r.started_at is not None
    local = r.started_at.astimezone(BERLIN)
    expected = f"{local:%d.%m.%Y, %H:%M} {local.tzname()}"
    assert local.tzname() in ("CET", "CEST")
    assert f'id="started">{expected}<' in german, german
    assert "inkl. MwSt. 19 %" in german

    await refund_and_wait(driver, rid, {"amount": 40, "reason": "slow charger"})
    partial = await _get(driver, f"/receipt/{token}?lang=en")
    refunds = re.findall(r'<tr class="refund"><td>([^<]+)</td><td class="amount">([^<]+)<', partial)
    assert len(refunds) == 1, partial
    words, amount = refunds[0]
    assert amount == f"\u2212{_euros(40)}"
    assert re.fullmatch(r"Refunded on \w{3} \d{1,2}, \d{4}, .+ (CET|CEST)", words), words
    assert f'id="captured">{_euros(captured)}<' in partial  # what was charged stays as it was
    assert f'id="paid">{_euros(captured - 40)}<' in partial
    assert f'id="vat">{_euros(_vat(captured - 40, 19))}<' in partial

    await refund_and_wait(driver, rid, {"reason": "the rest"})
    full = await _get(driver, f"/receipt/{token}")
    assert len(re.findall(r'<tr class="refund">', full)) == 2
    assert f"\u2212{_euros(captured - 40)}<" in full
    assert f'id="paid">{_euros(0)}<' in full
    assert 'id="vat"' not in full  # nothing paid, no VAT in it


async def test_start_page_names_the_operator_and_the_vat(
    system: CentralSystem, driver: Driver
) -> None:
    sim = charger(system)
    await sim.start()
    try:
        english = await _get(driver, "/c/CP-1/1?lang=en")
        german = await _get(driver, "/c/CP-1/1?lang=de")
    finally:
        await sim.stop()
    assert 'id="vat">Prices include VAT (19 %).<' in english
    # What the charger said of itself when it booted; nothing about its plug is invented.
    assert 'id="model">Charger: Simulator SIM-22<' in english
    assert 'id="model">Ladestation: Simulator SIM-22<' in german
    assert "Stadtwerke Hafenstadt GmbH" in english
    assert 'href="https://hafenstadt.example/agb" id="terms">Terms of use<' in english
    assert 'href="https://hafenstadt.example/datenschutz" id="privacy">Privacy<' in english
    assert 'id="vat">Preise inkl. MwSt. (19 %).<' in german
    assert ">Nutzungsbedingungen<" in german and ">Datenschutz<" in german


async def test_without_operator_settings_nothing_is_made_up(
    make_config: MakeConfig, driver_http: aiohttp.ClientSession
) -> None:
    async with CentralSystem(make_config(tariff=TARIFF)) as system:
        await system.chargers.register("CP-1")
        sim = charger(system)
        await sim.start()
        try:
            async with driver_http.get(f"http://127.0.0.1:{system.http.port}/c/CP-1/1") as page:
                html = await page.text()
        finally:
            await sim.stop()
    assert 'id="operator"' not in html and 'id="vat"' not in html and "VAT" not in html


@pytest.fixture
async def driver_http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


def test_included_tax_is_half_up_and_changes_nothing() -> None:
    assert included_tax(1190, 1900) == 190
    assert included_tax(100, 1900) == 16  # 15.97
    assert included_tax(107, 700) == 7
    assert included_tax(1, 1900) == 0  # 0.16
    assert included_tax(3, 1900) == 0  # 0.479
    assert included_tax(6, 1900) == 1  # 0.958
    assert included_tax(999, 0) == 0
    for gross in range(0, 2000, 7):
        assert included_tax(gross, 1900) == _vat(gross, 19)


def test_tax_rate_in_the_settings() -> None:
    tariff = tariff_from_major_units(
        "eur", {"price_per_kwh": "0.40", "max_energy_wh": 5000, "tax_rate_percent": "7.7"}
    )
    assert tariff.tax_rate_basis_points == 770
    assert Tariff.from_dict(tariff.to_dict()) == tariff
    with pytest.raises(TariffError, match="tax_rate_basis_points"):
        Tariff("eur", tax_rate_basis_points=10001)


@pytest.mark.parametrize("bad", ["19%", "-1", "101", "7.777", "abc"])
def test_a_bad_tax_rate_names_the_setting(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"^tariff\.tax_rate_percent: "):
        default_tariff(with_overrides(Config(), tariff={"tax_rate_percent": bad}))


@pytest.mark.parametrize("zone", ["Mars/Olympus", "CEST+2", "../etc/passwd", "", "posixrules"])
def test_an_unknown_time_zone_names_the_setting(zone: str) -> None:
    with pytest.raises(ConfigError, match=r"^operator\.time_zone: not a known IANA time zone"):
        with_overrides(Config(), operator={"time_zone": zone})


def test_operator_links_must_be_urls() -> None:
    with pytest.raises(ConfigError, match=r"^operator\.terms_url: "):
        with_overrides(Config(), operator={"terms_url": "javascript:alert(1)"})
    with pytest.raises(ConfigError, match=r"^operator\.support_email: "):
        with_overrides(Config(), operator={"support_email": "not an address"})
    assert with_overrides(Config(), operator={"time_zone": "America/New_York"})


async def test_a_tariff_from_the_api_carries_its_own_rate(
    system: CentralSystem, driver: Driver
) -> None:
    tariff = {"id": "reduced", "currency": "eur", "pricePerKwh": 30, "maxEnergyWh": 5000}
    status, refused = await driver.post("/api/tariffs", {**tariff, "taxRateBasisPoints": 10001})
    assert status == 400 and "taxRateBasisPoints" in str(refused), refused
    status, created = await driver.post("/api/tariffs", {**tariff, "taxRateBasisPoints": 770})
    assert status == 201, created
    assert created["taxRateBasisPoints"] == 770
    async with driver.http.put(
        f"{driver.base}/api/tariffs/reduced/assignments",
        json={"chargerId": "CP-1", "connectorId": 2},
        headers=API_HEADERS,
    ) as response:
        assert response.status < 300, await response.text()
    sim = charger(system)
    await sim.start()
    try:
        reduced = await _get(driver, "/c/CP-1/2?lang=de")
        default = await _get(driver, "/c/CP-1/1?lang=de")
    finally:
        await sim.stop()
    assert 'id="vat">Preise inkl. MwSt. (7,7 %).<' in reduced
    assert 'id="vat">Preise inkl. MwSt. (19 %).<' in default


async def test_a_charger_in_another_time_zone(system: CentralSystem, driver: Driver) -> None:
    async def patch(body: dict) -> tuple[int, dict]:
        async with driver.http.patch(
            f"{driver.base}/api/chargers/CP-1", json=body, headers=API_HEADERS
        ) as response:
            return response.status, await response.json()

    status, refused = await patch({"timeZone": "Mars/Olympus"})
    assert status == 400 and refused["error"]["field"] == "timeZone", refused
    status, changed = await patch({"timeZone": "America/New_York"})
    assert status == 200 and changed["timeZone"] == "America/New_York", changed
    sim = charger(system, unplug_after_stop=0.1)
    await sim.start()
    try:
        rid, token = await finished_session(driver, sim)
    finally:
        await sim.stop()
    r = await system.payment_service.get(rid)
    assert r is not None and r.stopped_at is not None
    local = r.stopped_at.astimezone(ZoneInfo("America/New_York"))
    assert local.tzname() in ("EST", "EDT")
    german = await _get(driver, f"/receipt/{token}?lang=de")
    assert f'id="stopped">{local:%d.%m.%Y, %H:%M} {local.tzname()}<' in german, german
    # Back to the operator's zone: the session keeps the zone it was priced in.
    status, changed = await patch({"timeZone": None})
    assert status == 200 and changed["timeZone"] is None
    again = await _get(driver, f"/receipt/{token}?lang=de")
    assert f'id="stopped">{local:%d.%m.%Y, %H:%M} {local.tzname()}<' in again
    assert r.time_zone == "America/New_York"
