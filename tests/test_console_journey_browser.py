"""The console's promise, end to end in Chromium: a new operator starts the product, logs in
with the password printed at first start, registers a charger, sets a tariff, watches a paid
session live and refunds part of it, all in the browser. Screenshots at 1280x800 for the
README along the way (docs/console/ keeps the ones shown there)."""

from __future__ import annotations

import re

import aiohttp
import pytest

from csms.app import CentralSystem
from tests.browser import Browser
from tests.conftest import MakeConfig
from tests.console_a11y import accessibility_problems
from tests.console_fixtures import base_url, console_browser
from tests.payflow import TARIFF, Driver, charger

__all__ = ["console_browser"]


async def _live(browser: Browser, key: str) -> str:
    return await browser.evaluate(
        f"const e = document.querySelector('[data-live=\"{key}\"]'); return e ? e.textContent : ''"
    )


async def _until_live(browser: Browser, key: str, *wanted: str) -> None:
    async def shown() -> bool:
        return await _live(browser, key) in wanted

    try:
        await browser.until(shown, timeout=30)
    except TimeoutError:
        raise AssertionError(f"{key}: {await _live(browser, key)!r}, not {wanted}") from None


async def test_a_new_operator_does_it_all_in_the_browser(
    make_config: MakeConfig, console_browser: Browser, capsys: pytest.CaptureFixture[str]
) -> None:
    browser = console_browser
    config = make_config(tariff=TARIFF, payments={"minimum_energy_wh": 100})
    async with CentralSystem(config) as system, aiohttp.ClientSession() as http:
        # Installed and started: the first admin's password is printed once.
        printed = re.search(r"Its password is shown only now: (\S+)", capsys.readouterr().err)
        assert printed is not None
        base = base_url(system)

        # Log in: the root leads to the console, the console to its login page.
        await browser.open(base + "/")
        assert (await browser.url()).startswith(base + "/console/login")
        await browser.fill("name", "admin")
        await browser.fill("password", printed[1])
        await browser.click("login")
        await browser.until(lambda: browser.visible("logout"))
        await browser.screenshot("console-1-overview")

        # Register a charger, then see it come online without a reload.
        await browser.open(base + "/console/chargers")
        await browser.fill("charger-id", "CP-7")
        await browser.fill("charger-name", "Harbour car park")
        await browser.fill("charger-location", "Level 2, bay 14")
        await browser.click("register")
        await browser.until(lambda: browser.visible("flash"))
        assert await browser.url() == base + "/console/chargers/CP-7"
        await browser.evaluate("window.sameDocument = true; return true")
        sim = charger(system, "CP-7", unplug_after_stop=0.1)
        await sim.start()
        try:
            await _until_live(browser, "charger:CP-7:online", "online")
            await _until_live(browser, "connector:CP-7:1", "Available")
            assert await browser.evaluate("return window.sameDocument === true")
            await browser.screenshot("console-2-charger")

            # Set a tariff: the hold follows the typing; save it and assign it to CP-7.
            await browser.open(base + "/console/tariffs/new")
            await browser.fill("f-id", "harbour")
            await browser.fill("f-pricePerKwh", "0.35")
            await browser.fill("f-sessionFee", "0.50")
            await browser.fill("f-maxEnergyWh", "10000")
            await browser.until(lambda: _text_is(browser, "hold", "4.00 EUR"))
            await browser.screenshot("console-3-tariff")
            await browser.click("save")
            await browser.until(lambda: browser.visible("flash"))
            await browser.fill("a-chargerId", "CP-7")
            await browser.click("assign")
            await browser.until(lambda: _flash_has(browser, "CP-7"))
            assert await system.tariffs.of_charger("CP-7") == {0: "harbour"}

            # A driver pays (on a phone: over HTTP here) and plugs in; the operator watches
            # the session live on its page.
            driver = Driver(system, http)
            status, created = await driver.create("CP-7", 1)
            assert status == 200 and created["maxAmount"] == 400, created
            reservation_id = created["reservationId"]
            await browser.open(f"{base}/console/sessions/{reservation_id}")
            await browser.evaluate("window.sameDocument = true; return true")
            await driver.pay(created["checkoutUrl"])
            await _until_live(browser, f"session:{reservation_id}:state", "AwaitingPlug")
            await sim.plug_in(1)
            await _until_live(browser, f"session:{reservation_id}:state", "Charging")
            energy = f"session:{reservation_id}:energy"
            first = await _live(browser, energy)
            await browser.until(lambda: _changed(browser, energy, first), timeout=30)
            # The summary follows the state, the chart the energy, without a reload.
            await browser.until(lambda: _text_is(browser, "hold", "Held"))
            await browser.until(lambda: _chart_drawn(browser))
            assert await browser.evaluate("return window.sameDocument === true")
            await browser.screenshot("console-4-session-live")

            # Stop it from the console, then refund part of what was captured.
            await browser.click("stop")
            await browser.until(lambda: browser.visible("flash"))
            await _until_live(browser, f"session:{reservation_id}:state", "Completed")
            await browser.open(f"{base}/console/sessions/{reservation_id}")
            captured = (await driver.status(reservation_id))["capturedAmount"]
            assert captured > 10
            await browser.fill("refund-amount", "0.10")
            await browser.fill("refund-reason", "Connector was hard to unplug")
            await browser.click("refund")
            await browser.until(lambda: browser.visible("flash"))

            async def refunded() -> bool:
                await browser.open(f"{base}/console/sessions/{reservation_id}")
                return "succeeded" in await browser.text("refunds")

            await browser.until(refunded, timeout=30)
            assert (await driver.status(reservation_id))["refundedAmount"] == 10

            async def confirmed() -> bool:  # Stripe's charge.refunded: the total refunded
                await browser.open(f"{base}/console/sessions/{reservation_id}")
                rows = await browser.evaluate(
                    "return Array.from(document.querySelectorAll('#audit tbody tr'))"
                    ".map(r => Array.from(r.cells).map(c => c.textContent.trim()))"
                )
                return any(
                    "refunds confirmed by stripe (total)" in row and "€0.10" in row for row in rows
                )

            try:
                await browser.until(confirmed, timeout=30)
            except TimeoutError:
                raise AssertionError(await browser.text("audit")) from None
            assert await accessibility_problems(browser) == []
            await browser.screenshot("console-5-refunded")
        finally:
            await sim.stop()


async def _text_is(browser: Browser, element_id: str, expected: str) -> bool:
    return await browser.text(element_id) == expected


async def _chart_drawn(browser: Browser) -> bool:
    return await browser.evaluate("return !!document.querySelector('#section-meter svg')")


async def _flash_has(browser: Browser, text: str) -> bool:
    return await browser.visible("flash") and text in await browser.text("flash")


async def _changed(browser: Browser, key: str, before: str) -> bool:
    return await _live(browser, key) not in (before, "")
