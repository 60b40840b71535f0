"""The live session page in headless Chromium laid out as a 390x844 phone: the button is Cancel
before plug-in and Stop charging once charging, the charger going offline mid-charge shows on
the page as it happens (server-sent events), and the figures become final after the stop.
Screenshots are written to test-artifacts/screenshots/."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from selenium import webdriver

from csms.app import CentralSystem
from tests.browser import PHONE, Browser
from tests.conftest import MakeConfig
from tests.payflow import TARIFF, charger


@pytest.fixture
async def system(make_config: MakeConfig) -> AsyncIterator[CentralSystem]:
    config = make_config(tariff=TARIFF, payments={"minimum_energy_wh": 100})
    async with CentralSystem(config) as running:
        await running.chargers.register("CP-1", name="Harbour car park")
        yield running


@pytest.fixture
async def browser(chromium: webdriver.Chrome) -> AsyncIterator[Browser]:
    chromium.delete_all_cookies()
    phone = Browser(chromium)
    await phone.emulate_phone()
    try:
        yield phone
    finally:
        await phone.emulate_phone(on=False)


async def _pay(browser: Browser, base: str) -> None:
    await browser.open(f"{base}/c/CP-1/1")
    await browser.click("pay")
    await browser.until(lambda: _url_has(browser, "/pay/cs_"))
    await browser.fill("email", "driver@example.com")
    await browser.fill("cardNumber", "4242 4242 4242 4242")
    await browser.fill("cardExpiry", "12 / 34")
    await browser.fill("cardCvc", "123")
    await browser.fill("billingName", "Test Driver")
    await browser.click("submit")
    await browser.until(lambda: _stage_is(browser, "waiting_for_plug"))


async def test_cancel_then_stop_then_offline_mid_charge_on_a_phone(
    system: CentralSystem, browser: Browser
) -> None:
    sim = charger(system, speed=60)
    await sim.start()
    try:
        await _pay(browser, f"http://127.0.0.1:{system.http.port}")
        assert await browser.viewport_width() == PHONE[0]
        assert await browser.text("stop") == "Cancel"
        assert await browser.attribute("stop", "data-kind") == "cancel"
        assert not await browser.visible("power")
        assert await browser.right_edge("stop") <= PHONE[0]
        await browser.screenshot("journey-1-cancel")

        await sim.plug_in(1)
        await browser.until(lambda: _text_is(browser, "stop", "Stop charging"))
        assert await browser.attribute("stop", "data-kind") == "stop"
        assert await browser.attribute("stop", "class") == "secondary"
        await browser.until(lambda: browser.visible("power"))
        assert not await browser.visible("offline")
        assert await browser.attribute("stage", "aria-live") == "polite"
        await browser.screenshot("journey-2-stop")

        await sim.go_offline()
        await browser.until(
            lambda: _text_is(browser, "stage", "The charger has lost its connection")
        )
        assert await browser.visible("offline")
        assert "you pay only for the energy it reports" in await browser.text("offline")
        assert await browser.page_width() <= PHONE[0]
        await browser.screenshot("journey-3-offline")

        await sim.reconnect()
        await browser.until(lambda: _stage_is(browser, "charging"))
        await browser.until(lambda: _hidden(browser, "offline"))
        await browser.click("stop")
        await browser.until(lambda: browser.visible("receipt"), timeout=30)
        assert not await browser.visible("power")
        assert not await browser.visible("hold")
        assert not await browser.visible("stop-form")
        assert await browser.text("cost-label") == "Cost"
        assert "was charged to your card" in await browser.text("money")
        await browser.screenshot("journey-4-final")
    finally:
        await sim.stop()


async def _url_has(browser: Browser, part: str) -> bool:
    return part in await browser.url()


async def _stage_is(browser: Browser, stage: str) -> bool:
    return await browser.attribute("stage", "data-stage") == stage


async def _text_is(browser: Browser, element_id: str, text: str) -> bool:
    return await browser.text(element_id) == text


async def _hidden(browser: Browser, element_id: str) -> bool:
    return not await browser.visible(element_id)
