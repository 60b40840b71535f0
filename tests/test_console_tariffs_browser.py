"""The tariff form in Chromium: the hold and the sample session's price follow what is typed
without a reload, an error names the field as it is typed, and a tariff is created and
assigned through the form; the pages pass the console's accessibility checks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from selenium import webdriver

from csms.app import CentralSystem
from tests.browser import Browser
from tests.conftest import MakeConfig
from tests.console_a11y import accessibility_problems
from tests.console_fixtures import base_url, browser_login
from tests.payflow import TARIFF


@pytest.fixture
async def system(make_config: MakeConfig) -> AsyncIterator[CentralSystem]:
    async with CentralSystem(make_config(tariff=TARIFF)) as running:
        await running.chargers.register("CP-1", name="Harbour car park")
        yield running


@pytest.fixture
def browser(chromium: webdriver.Chrome) -> Browser:
    chromium.delete_all_cookies()
    return Browser(chromium)


async def _shows(browser: Browser, element_id: str, text: str) -> None:
    async def shown() -> bool:
        return await browser.text(element_id) == text

    try:
        await browser.until(shown, timeout=10)
    except TimeoutError:
        seen = await browser.text(element_id)
        raise AssertionError(f"#{element_id}: {seen!r}, not {text!r}") from None


async def test_typing_updates_the_hold_and_the_sample_price(
    system: CentralSystem, browser: Browser
) -> None:
    await browser_login(browser, system, "admin")
    await browser.open(base_url(system) + "/console/tariffs/new")
    await browser.evaluate("window.sameDocument = true; return true")
    await browser.fill("f-id", "harbour")
    await browser.fill("f-pricePerKwh", "0.30")
    await browser.fill("f-sessionFee", "1.00")
    await browser.fill("f-maxEnergyWh", "20000")
    # 20 kWh x 0.30 + 1.00; the sample: 10 kWh in an hour, 3.00 + 1.00.
    await _shows(browser, "hold", "7.00 EUR")
    await _shows(browser, "sample-price", "4.00 EUR")
    await browser.fill("f-pricePerKwh", "0.50")
    await _shows(browser, "hold", "11.00 EUR")
    await _shows(browser, "sample-price", "6.00 EUR")
    await browser.fill("f-sampleKwh", "25")  # past the 20 kWh cap: 20 are billed
    await _shows(browser, "sample-price", "11.00 EUR")

    await browser.fill("f-pricePerKwh", "0.505")
    await browser.until(lambda: browser.visible("preview-error"), timeout=10)
    assert (await browser.text("preview-error")).startswith("Price per kWh:")
    assert await browser.attribute("f-pricePerKwh", "aria-invalid") == "true"
    await _shows(browser, "hold", "\u2014")
    assert await browser.evaluate("return window.sameDocument === true")  # no reload
    assert await system.tariffs.all() == {}  # a preview stores nothing


async def test_create_and_assign_through_the_form(system: CentralSystem, browser: Browser) -> None:
    await browser_login(browser, system, "admin")
    await browser.open(base_url(system) + "/console/tariffs/new")
    await browser.fill("f-id", "harbour")
    await browser.fill("f-pricePerKwh", "0.30")
    await browser.fill("f-sessionFee", "1.00")
    await browser.fill("f-maxEnergyWh", "20000")
    await browser.click("save")
    await browser.until(lambda: browser.visible("flash"))
    assert await browser.text("flash") == "Tariff harbour added"
    assert (await system.tariffs.all())["harbour"].price_per_kwh == 30

    await browser.fill("a-chargerId", "CP-1")
    await browser.fill("a-connectorId", "1")
    await browser.click("assign")

    async def assigned() -> bool:
        return "applies to CP-1 connector 1" in await browser.text("flash")

    await browser.until(assigned)
    assert await system.tariffs.of_charger("CP-1") == {1: "harbour"}
    assert "CP-1" in await browser.text("assignments")

    # The pages pass the console's accessibility checks.
    assert await accessibility_problems(browser) == []
    for path in ("/console/tariffs", "/console/reports"):
        await browser.open(base_url(system) + path)
        assert await accessibility_problems(browser) == [], path
