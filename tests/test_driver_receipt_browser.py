"""The receipt on small phones in a real browser: a long charger name, a long operator
address and the reference wrap, nothing reaches past the screen's edge at 320 x 640 or
390 x 844."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from selenium import webdriver

from csms.app import CentralSystem
from tests.browser import PHONE, SMALL_PHONE, Browser
from tests.conftest import MakeConfig
from tests.payflow import TARIFF, Driver, charger, finished_session, refund_and_wait

# One word of 60 letters: nowhere to break it but anywhere.
LONG_NAME = "Ladepark Hauptbahnhof ParkdeckEbeneMinusZweiStellplatzVierzehnAmNordausgangSchnell"
OPERATOR = {
    "name": "Stadtwerke-Hafenstadt-Energievertriebs-und-Ladeinfrastrukturgesellschaft mbH",
    "address": "Kaistraße 7\n20457 Hamburg",
    "support_url": "https://hafenstadt.example/hilfe/laden/quittungen/fragen-zu-ihrem-ladevorgang",
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
        await running.chargers.register("CP-1", name=LONG_NAME)
        yield running


@pytest.mark.parametrize("size", [SMALL_PHONE, PHONE], ids=["320x640", "390x844"])
async def test_the_receipt_fits_a_small_phone(
    system: CentralSystem, chromium: webdriver.Chrome, size: tuple[int, int]
) -> None:
    sim = charger(system, unplug_after_stop=0.1)
    await sim.start()
    browser = Browser(chromium)
    try:
        # The start page too, with the long name and the operator's links.
        await browser.emulate_phone(size=size)
        await browser.open(f"http://127.0.0.1:{system.http.port}/c/CP-1/1")
        assert await browser.viewport_width() == size[0]
        assert await browser.visible("terms") is False  # none configured: no link
        assert await browser.page_width() <= size[0]
        assert await browser.overflowing() == []
        await browser.screenshot(f"start-{size[0]}")
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            driver = Driver(system, http)
            rid, token = await finished_session(driver, sim)
            await refund_and_wait(driver, rid, {"amount": 10, "reason": "slow charger"})
    finally:
        await sim.stop()
    try:
        for language in ("en", "de"):
            await browser.open(
                f"http://127.0.0.1:{system.http.port}/receipt/{token}?lang={language}"
            )
            assert await browser.viewport_width() == size[0]
            assert await browser.text("charger") == LONG_NAME
            assert await browser.text("reference") == rid
            assert await browser.visible("vat")
            # The refund's own line and what was paid after it, on screen too.
            assert await browser.visible("paid")
            assert await browser.right_edge("paid") <= size[0]
            assert await browser.style("tr.refund", "display") == "table-row"
            refunded = "€0.10" if language == "en" else "0,10 €"
            assert f"\N{MINUS SIGN}{refunded}" in await browser.page_text()
            assert await browser.page_width() <= size[0]
            assert await browser.overflowing() == []
            await browser.screenshot(f"receipt-{size[0]}-{language}")
        # Printed: black on white, no buttons, no language switch.
        assert await browser.visible("print") and await browser.visible("lang-en")
        await browser.emulate_print()
        assert not await browser.visible("print") and not await browser.visible("lang-en")
        assert await browser.style("body", "background-color") == "rgb(255, 255, 255)"
        assert await browser.style(".card", "background-color") == "rgb(255, 255, 255)"
        assert await browser.style("#total", "color") == "rgb(0, 0, 0)"
        assert await browser.style("dt", "color") == "rgb(0, 0, 0)"
    finally:
        await browser.emulate_print(on=False)
        await browser.emulate_phone(on=False)
