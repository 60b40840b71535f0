"""What an operator trips over on the console, seen only in Chromium: each test is a defect
found by using the console from outside, kept so that it stays mended."""

from __future__ import annotations

from selenium.webdriver.common.by import By

from csms.app import CentralSystem
from simulators.chargepoint import SimulatedCharger
from tests.browser import Browser
from tests.console_fixtures import DESKTOP, TABLET, base_url, browser_login, console_browser
from tests.payflow import Driver, finished_session

browser = console_browser  # Chromium at a desktop's size, no cookie left over


async def _fits(browser: Browser, size: tuple[int, int]) -> bool:
    """Whether the open page fits the window's width: no sideways scrolling of the page."""
    await browser._run(lambda: browser.driver.set_window_size(*size))
    return await browser.page_width() <= await browser.viewport_width()


async def test_pages_with_a_paid_session_fit_a_desktop_and_a_tablet(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger, browser: Browser
) -> None:
    """A Checkout Session's id (66 characters) in the audit log, a transaction's row on its
    charger's page: the page must not grow wider than the screen and cut its tables."""
    await finished_session(driver, sim)
    await browser_login(browser, system, "admin")
    for page in ("/console/audit", f"/console/chargers/{sim.charge_point_id}"):
        await browser.open(base_url(system) + page)
        for size in (DESKTOP, TABLET):
            assert await _fits(browser, size), (page, size, await browser.overflowing())
            await browser.screenshot(f"qa{page.replace('/', '-')}-{size[0]}")


async def test_a_page_whose_login_ended_says_its_live_values_stopped(
    system: CentralSystem, sim: SimulatedCharger, browser: Browser
) -> None:
    """An operator watching a charger or a session live, logged out in another tab (or at
    the end of the login's hours): the live stream is refused and the page froze silently,
    still looking live. It now says that it stopped and how to go on."""
    await browser_login(browser, system, "support")
    page = f"{base_url(system)}/console/chargers/{sim.charge_point_id}"
    await browser.open(page)
    await browser.until(
        lambda: browser.evaluate("return document.documentElement.dataset.liveConnected")
    )
    assert not await browser.visible("live-stopped")
    first = await browser.current_tab()
    await browser.new_tab(base_url(system) + "/console")
    await browser.click("logout")
    await browser.until(lambda: browser.visible("login-form"))  # the logout was done
    await browser.close_other_tabs(first)
    system._console_closing.set()  # the stream ends (as it does every 5 minutes): reconnect
    await browser.until(lambda: browser.visible("live-stopped"))
    assert "Live updates stopped" in await browser.text("live-stopped")
    link = await browser.attribute("live-stopped-reload", "href")
    assert link == page
    await browser.screenshot("qa-live-stopped")


async def test_a_commands_answer_fits_a_tablet(
    system: CentralSystem, sim: SimulatedCharger, browser: Browser
) -> None:
    """GetConfiguration's answer on a tablet: its JSON payload and its long values
    (MeterValuesSampledData, SupportedFeatureProfiles) made the page wider than the screen."""
    await browser_login(browser, system, "support")
    await browser._run(lambda: browser.driver.set_window_size(*TABLET))
    await browser.open(
        f"{base_url(system)}/console/chargers/{sim.charge_point_id}/commands/GetConfiguration"
    )
    send = "main form button[type=submit]"
    await browser._run(lambda: browser.driver.find_elements(By.CSS_SELECTOR, send)[-1].click())
    await browser.until(lambda: browser.visible("result-payload"))
    assert await _fits(browser, TABLET), await browser.overflowing()
    await browser.screenshot("qa-getconfiguration-768")
