"""What an operator trips over on the console, seen only in Chromium: each test is a defect
found by using the console from outside, kept so that it stays mended."""

from __future__ import annotations

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
