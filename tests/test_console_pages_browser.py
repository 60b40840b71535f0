"""Every console page in Chromium, as an admin at a desktop's and a tablet's size: each one
answers, has its heading, nothing wider than the screen, and passes the accessibility
checks (tests/console_a11y.py); a viewer meets the 403 page where a page is not theirs."""

from __future__ import annotations

from selenium.webdriver.common.by import By

from csms.app import CentralSystem
from csms.store.sites import Site
from simulators.chargepoint import SimulatedCharger
from tests.browser import Browser
from tests.console_a11y import accessibility_problems
from tests.console_fixtures import (
    DESKTOP,
    TABLET,
    base_url,
    browser_login,
    console_browser,
    lay_out,
)
from tests.payflow import Driver, finished_session

__all__ = ["console_browser"]


async def _heading(browser: Browser) -> str:
    return await browser._run(lambda: browser.driver.find_element(By.TAG_NAME, "h1").text)


async def test_every_page_answers_fits_and_is_accessible(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger, console_browser: Browser
) -> None:
    browser = console_browser
    reservation_id, _ = await finished_session(driver, sim)
    await system.sites.add(Site("harbour", "Harbour car park", "Europe/Berlin"))
    await system.id_tags.put("RFID-1")
    pages = [
        "/console", "/console/chargers", "/console/chargers/CP-1",
        "/console/chargers/CP-1/commands/ChangeAvailability", "/console/sessions",
        f"/console/sessions/{reservation_id}", "/console/tariffs", "/console/tariffs/new",
        "/console/sites", "/console/sites/harbour", "/console/id-tags", "/console/users",
        "/console/audit", "/console/reports", "/console/qr",
    ]  # fmt: skip
    await browser_login(browser, system, "admin")
    for size in (DESKTOP, TABLET):
        lay_out(browser, size)
        for path in pages:
            await browser.open(base_url(system) + path)
            heading = await _heading(browser)
            assert heading and heading not in ("Not found", "Not allowed", "Error"), path
            assert await browser.page_width() <= size[0], (path, size, await browser.overflowing())
            assert await accessibility_problems(browser) == [], (path, size)


async def test_a_viewer_meets_the_403_page_naming_the_role(
    system: CentralSystem, console_browser: Browser
) -> None:
    browser = console_browser
    await browser_login(browser, system, "viewer")
    for path, role in (("/console/users", "admin"), ("/console/reports", "finance")):
        await browser.open(base_url(system) + path)
        assert await _heading(browser) == "Not allowed"
        assert f"This needs the role {role}" in await browser.text("problem")
        assert await accessibility_problems(browser) == []
    nav = await browser._run(
        lambda: browser.driver.find_element(By.CSS_SELECTOR, "nav[aria-label=Main]").text
    )
    assert "Users" not in nav and "Reports" not in nav  # not offered where refused
