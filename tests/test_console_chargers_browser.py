"""The console's charger pages in Chromium: registering a charger through the form, sending
a command to the simulated charger and reading its result, and a connector's status changing
on the open page without a reload (the console's server-sent events); each page passes the
console's accessibility checks (tests/console_a11y.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from csms.app import CentralSystem
from csms.ocpp16.auth import security_profile
from simulators.chargepoint import SimulatedCharger
from tests.browser import Browser
from tests.console_a11y import accessibility_problems
from tests.console_fixtures import (
    TABLET,
    base_url,
    browser_login,
    console_browser,
    lay_out,
)
from tests.payflow import charger

browser = console_browser  # Chromium at a desktop's size, no cookie left over


@pytest.fixture
async def sim(system: CentralSystem) -> AsyncIterator[SimulatedCharger]:
    simulated = charger(system, speed=60)
    await simulated.start()
    yield simulated
    await simulated.stop()


async def _choose(browser: Browser, element_id: str, text: str) -> None:
    await browser._run(
        lambda: Select(browser.driver.find_element(By.ID, element_id)).select_by_visible_text(text)
    )


async def test_register_a_charger_through_the_form(system: CentralSystem, browser: Browser) -> None:
    await browser_login(browser, system, "support")
    await browser.open(base_url(system) + "/console/chargers")
    assert await accessibility_problems(browser) == []
    await browser.screenshot("console-chargers")
    await browser.fill("charger-id", "CP-WEB")
    await browser.fill("charger-name", "Front gate")
    await browser.fill("charger-location", "Visitors' car park")
    await browser.fill("charger-password", "a-long-enough-password-42")
    await _choose(browser, "charger-profile", "2: password over TLS (wss:// only)")
    await browser.click("register")
    await browser.until(lambda: browser.visible("flash"))
    assert await browser.url() == base_url(system) + "/console/chargers/CP-WEB"
    assert "Charger CP-WEB registered" in await browser.text("flash")
    heading = await browser._run(lambda: browser.driver.find_element(By.TAG_NAME, "h1").text)
    assert heading == "Charger CP-WEB: Front gate"
    row = await system.chargers.get("CP-WEB")
    assert row is not None and security_profile(row) == 2
    assert row["location"] == "Visitors' car park"
    assert await accessibility_problems(browser) == []


async def test_send_a_command_to_the_simulator_and_see_its_result(
    system: CentralSystem, browser: Browser, sim: SimulatedCharger
) -> None:
    await sim.wait_for_status(1, "Available")
    await browser_login(browser, system, "support")
    await browser.open(base_url(system) + "/console/chargers/CP-1")
    await browser._run(
        lambda: browser.driver.find_element(By.LINK_TEXT, "ChangeAvailability").click()
    )
    await browser.until(lambda: browser.visible("field-connectorId"))
    await browser.fill("field-connectorId", "1")
    await _choose(browser, "field-type", "Inoperative")
    await browser._run(
        lambda: browser.driver.find_element(By.CSS_SELECTOR, "#command button").click()
    )
    await browser.until(lambda: browser.visible("result"))
    assert await accessibility_problems(browser) == []
    assert await browser.text("result-status") == "Accepted"
    assert await browser.attribute("result", "data-kind") == "Answered"
    await sim.wait_for_status(1, "Unavailable")


async def test_a_connector_status_change_arrives_without_reload(
    system: CentralSystem, browser: Browser, sim: SimulatedCharger
) -> None:
    await sim.wait_for_status(2, "Available")
    await browser_login(browser, system, "admin")
    await browser.open(base_url(system) + "/console/chargers/CP-1")
    badge = "[data-live='connector:CP-1:2']"

    async def shown(status: str) -> bool:
        found = await browser.evaluate(
            f'var e = document.querySelector("{badge}");'
            " return e && [e.textContent, e.getAttribute('data-state')];"
        )
        return found == [status, status]

    await browser.until(lambda: shown("Available"))
    assert await accessibility_problems(browser) == []  # every part an admin sees
    await browser.screenshot("console-charger")
    lay_out(browser, TABLET)
    assert await browser.page_width() <= TABLET[0]  # nothing wider than a tablet's screen
    assert await accessibility_problems(browser) == []
    await browser.evaluate("window.notReloaded = true; return 1;")
    await sim.fault(2)  # StatusNotification: Faulted
    await browser.until(lambda: shown("Faulted"))
    assert await browser.evaluate("return window.notReloaded === true;")
