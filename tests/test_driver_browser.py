"""The driver's journey in a real browser on a phone-sized window: QR link, price, pay with
the sandbox's card form, watch the charge live, stop, receipt. Screenshots are written to
test-artifacts/screenshots/."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from selenium import webdriver

from csms.app import CentralSystem
from tests.browser import PHONE, Browser
from tests.conftest import MakeConfig
from tests.payflow import charger

TARIFF = {
    "currency": "eur",
    "price_per_kwh": "0.40",
    "session_fee": "0.50",
    "idle_fee_per_minute": "0",
    "idle_fee_max_minutes": 0,
    "max_energy_wh": 20000,
    "max_duration_minutes": 0,
}


@pytest.fixture
async def system(make_config: MakeConfig) -> AsyncIterator[CentralSystem]:
    config = make_config(tariff=TARIFF, payments={"minimum_energy_wh": 100})
    async with CentralSystem(config) as running:
        await running.chargers.register("CP-1", name="Harbour car park", location="Level 2, bay 14")
        yield running


@pytest.fixture
def browser(chromium: webdriver.Chrome) -> Browser:
    chromium.delete_all_cookies()
    return Browser(chromium)


def _base(system: CentralSystem) -> str:
    return f"http://127.0.0.1:{system.http.port}"


async def _pay(browser: Browser, card: str) -> None:
    if not await browser.attribute("email", "value"):
        await browser.fill("email", "driver@example.com")
    await browser.fill("cardNumber", card)
    await browser.fill("cardExpiry", "12 / 34")
    await browser.fill("cardCvc", "123")
    await browser.fill("billingName", "Test Driver")
    await browser.click("submit")


async def test_scan_pay_charge_stop_receipt(system: CentralSystem, browser: Browser) -> None:
    sim = charger(system, speed=60, unplug_after_stop=0.2)
    await sim.start()
    try:
        await browser.open(f"{_base(system)}/c/CP-1/1")
        assert "Harbour car park" in await browser.page_text()
        price = await browser.text("price")
        assert "€0.40 per kWh" in price and "€0.50 per session" in price
        assert "€8.50" in await browser.text("hold")  # 20 kWh x 0.40 + 0.50
        await browser.screenshot("1-start")

        await browser.fill("email", "driver@example.com")
        await browser.click("pay")
        await browser.until(lambda: _on_checkout(browser))
        await browser.screenshot("2-checkout")
        await _pay(browser, "4242 4242 4242 4242")
        await browser.until(lambda: _stage_is(browser, "waiting_for_plug"))
        await browser.screenshot("3-plug-in")

        await sim.plug_in(1)
        await browser.until(lambda: _stage_is(browser, "charging"))
        await browser.until(lambda: _energy_over(browser, 0.3))
        first = await _energy(browser)
        await browser.until(lambda: _energy_over(browser, first + 0.2))
        await browser.screenshot("4-charging")

        await browser.click("stop")
        await browser.until(lambda: browser.visible("receipt"), timeout=30)
        await browser.screenshot("5-done")
        await browser.click("receipt")
        await browser.until(lambda: _text_has(browser, "Charged to your card"))
        captured = await browser.text("captured")
        await browser.screenshot("6-receipt")
    finally:
        await sim.stop()
    (row,) = await system.db.fetchall("SELECT captured_amount, currency FROM reservations")
    assert captured == f"€{row['captured_amount'] / 100:,.2f}" and row["captured_amount"] > 0
    assert system.sandbox is not None
    (ledger,) = system.sandbox.ledger().values()
    assert ledger["amount_captured"] == row["captured_amount"]


async def test_declined_card(system: CentralSystem, browser: Browser) -> None:
    sim = charger(system)
    await sim.start()
    try:
        await browser.open(f"{_base(system)}/c/CP-1/1")
        await browser.click("pay")
        await browser.until(lambda: _on_checkout(browser))
        await _pay(browser, "4000 0000 0000 0002")
        await browser.until(lambda: _text_has(browser, "declined"))
        await browser.screenshot("7-declined")
    finally:
        await sim.stop()
    (row,) = await system.db.fetchall("SELECT state, hold FROM reservations")
    assert (row["state"], row["hold"]) == ("PendingPayment", "None")


async def test_busy_connector(system: CentralSystem, browser: Browser) -> None:
    sim = charger(system)
    await sim.start()
    try:
        await system.id_tags.put("RFID-1")
        await sim.start_transaction(1, "RFID-1")
        await browser.open(f"{_base(system)}/c/CP-1/1")
        text = await browser.page_text()
        assert "Connector busy" in text and "Connector 1 of Harbour car park" in text
        await browser.screenshot("8-busy")
    finally:
        await sim.stop()


async def test_offline_and_unknown_chargers(system: CentralSystem, browser: Browser) -> None:
    await browser.open(f"{_base(system)}/c/CP-1/1")
    assert "Charger offline" in await browser.page_text()
    await browser.screenshot("9-offline")
    await browser.open(f"{_base(system)}/start?cp=NOPE")
    assert "Charger not found" in await browser.page_text()


async def test_switching_language_on_a_phone(system: CentralSystem, browser: Browser) -> None:
    sim = charger(system)
    await sim.start()
    await browser.emulate_phone()
    try:
        await browser.open(f"{_base(system)}/c/CP-1/1?lang=en")
        assert await browser.viewport_width() == PHONE[0]
        assert await browser.language() == "en"
        assert "€0.40 per kWh" in await browser.text("price")
        assert await browser.visible("lang-de")
        # On screen, without sideways scrolling.
        assert await browser.right_edge("lang-de") <= PHONE[0]
        assert await browser.page_width() <= PHONE[0]
        await browser.click("lang-de")
        await browser.until(lambda: _language_is(browser, "de"))
        assert (await browser.url()).endswith("/c/CP-1/1?lang=de")
        assert "0,40 € pro kWh" in await browser.text("price")  # (Selenium shows nbsp as a space)
        assert "Bezahlen und laden" in await browser.text("pay")
        await browser.screenshot("10-start-de")
        # Remembered: the same page without ?lang stays German, and so does Checkout.
        await browser.open(f"{_base(system)}/c/CP-1/1")
        assert await browser.language() == "de"
        assert await browser.text("lang-de") == "Deutsch"
        await browser.click("pay")
        await browser.until(lambda: _on_checkout(browser))
        assert await browser.language() == "de"
        # And back to English with the switch.
        await browser.open(f"{_base(system)}/c/CP-1/2")
        await browser.click("lang-en")
        await browser.until(lambda: _language_is(browser, "en"))
        assert "Pay and charge" in await browser.text("pay")
    finally:
        await browser.emulate_phone(on=False)
        await sim.stop()


async def _language_is(browser: Browser, language: str) -> bool:
    return await browser.language() == language


async def _on_checkout(browser: Browser) -> bool:
    return "/pay/cs_" in await browser.url()


async def _stage_is(browser: Browser, stage: str) -> bool:
    return await browser.attribute("stage", "data-stage") == stage


async def _energy(browser: Browser) -> float:
    return float((await browser.text("energy")).split()[0])


async def _energy_over(browser: Browser, kwh: float) -> bool:
    return await _energy(browser) > kwh


async def _text_has(browser: Browser, words: str) -> bool:
    return words.lower() in (await browser.page_text()).lower()
