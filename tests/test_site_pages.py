"""The driver's pages at a charger of a site, over HTTP against a running central system:
the start page and the receipt give times in the site's zone and the site's support contact
(the operator's when the site has none), and the receipt names the site and its address."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from csms.app import CentralSystem
from csms.store.sites import Site
from tests.conftest import MakeConfig
from tests.payflow import TARIFF, Driver, charger, finished_session

TOKYO = ZoneInfo("Asia/Tokyo")  # no daylight saving: always JST, whatever the date
OPERATOR = {
    "name": "Stadtwerke Hafenstadt GmbH",
    "support_email": "laden@hafenstadt.example",
    "support_phone": "+49 40 123456",
    "time_zone": "Europe/Berlin",
}
DEPOT = Site(
    id="tokyo",
    name="Tokyo depot",
    time_zone="Asia/Tokyo",
    address="1-1 Chiyoda\n100-0001 Tokyo",
    support_email="help@depot.example",
    support_url="https://depot.example/help",
)


@pytest.fixture
async def system(make_config: MakeConfig) -> AsyncIterator[CentralSystem]:
    config = make_config(tariff=TARIFF, payments={"minimum_energy_wh": 100}, operator=OPERATOR)
    async with CentralSystem(config) as running:
        await running.chargers.register("CP-1", name="Bay 1")
        await running.sites.add(DEPOT)
        await running.chargers.set_site("CP-1", "tokyo")
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


async def test_start_page_and_receipt_use_the_sites_zone_and_contact(
    system: CentralSystem, driver: Driver
) -> None:
    sim = charger(system, unplug_after_stop=0.1)
    await sim.start()
    try:
        start = await _get(driver, "/c/CP-1/1")
        assert 'id="time-zone">Local time zone: Asia/Tokyo<' in start
        assert "Tokyo depot<br>1-1 Chiyoda<br>100-0001 Tokyo" in start
        assert 'href="mailto:help@depot.example"' in start
        assert 'href="https://depot.example/help"' in start
        assert "laden@hafenstadt.example" not in start and "+49 40 123456" not in start
        german = await _get(driver, "/c/CP-1/1?lang=de")
        assert 'id="time-zone">Zeitzone vor Ort: Asia/Tokyo<' in german
        rid, token = await finished_session(driver, sim)
    finally:
        await sim.stop()

    receipt = await _get(driver, f"/receipt/{token}?lang=en")
    r = await system.payment_service.get(rid)
    assert r is not None and r.started_at is not None
    local = r.started_at.astimezone(TOKYO)
    hour = local.strftime("%I").lstrip("0")
    assert f'id="started">{local:%b} {local.day}, {local.year}, {hour}:{local:%M}' in receipt
    assert "JST</dd>" in receipt and "CET" not in receipt and "CEST" not in receipt
    assert 'id="site">Tokyo depot<br>1-1 Chiyoda<br>100-0001 Tokyo<' in receipt
    assert 'href="mailto:help@depot.example"' in receipt
    assert "laden@hafenstadt.example" not in receipt
    assert "Stadtwerke Hafenstadt GmbH" in receipt  # who took the money stays the operator

    # A site without a contact of its own: the operator's is shown; the site's zone stays.
    await system.sites.update(Site(id="tokyo", name="Tokyo depot", time_zone="Asia/Tokyo"))
    receipt = await _get(driver, f"/receipt/{token}?lang=de")
    assert 'href="mailto:laden@hafenstadt.example"' in receipt
    assert 'href="tel:+4940123456"' in receipt and "help@depot.example" not in receipt
    assert f'id="started">{local:%d.%m.%Y, %H:%M} JST<' in receipt
    assert 'id="site">Tokyo depot<' in receipt

    # A charger's own zone comes before its site's for sessions to come (test_sites); a
    # session keeps the zone it was priced in.
    await system.chargers.set_time_zone("CP-1", "Europe/Berlin")
    receipt = await _get(driver, f"/receipt/{token}?lang=en")
    assert "JST" in receipt and "CET" not in receipt and "CEST" not in receipt


async def test_a_charger_without_a_site_shows_the_operators(
    system: CentralSystem, driver: Driver
) -> None:
    await system.chargers.register("CP-2", name="Bay 2")
    sim = charger(system, "CP-2")
    await sim.start()
    try:
        start = await _get(driver, "/c/CP-2/1")
    finally:
        await sim.stop()
    assert 'id="site"' not in start and 'id="time-zone"' not in start
    assert 'href="mailto:laden@hafenstadt.example"' in start


async def test_a_failed_session_names_the_sites_contact(
    system: CentralSystem, driver: Driver
) -> None:
    sim = charger(system)
    await sim.start()
    try:
        form = await _get(driver, "/c/CP-1/1")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf is not None
        async with driver.http.post(
            f"{driver.base}/start",
            data={"cp": "CP-1", "conn": "1", "csrf": csrf.group(1)},
            allow_redirects=False,
        ) as started:
            assert started.status == 303, await started.text()
            token = started.cookies["csms_session"].value
        async with driver.http.post(
            f"{driver.base}/session/{token}/stop", data={"csrf": csrf.group(1)}
        ) as cancelled:
            assert cancelled.status == 200
        page = await _get(driver, f"/session/{token}?lang=en")
    finally:
        await sim.stop()
    contact = "help@depot.example · https://depot.example/help"
    assert f'<p id="contact" >Questions? Contact {contact}</p>' in page, page
    async with driver.http.get(f"{driver.base}/session/{token}/events") as events:
        line = await events.content.readline()
    assert f'"contact":"{contact}"'.encode() in line
