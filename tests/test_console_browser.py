"""The console's frame in Chromium: logging in and out, failed logins throttled, a live
value changing without a reload, the overview's accessibility at a desktop's and a tablet's
size (and its screenshot for the README)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from csms.app import CentralSystem
from tests.browser import Browser
from tests.conftest import MakeConfig
from tests.console_a11y import accessibility_problems
from tests.console_fixtures import (
    DESKTOP,
    PASSWORD,
    TABLET,
    base_url,
    browser_login,
    console_browser,
    ensure_user,
    lay_out,
)
from tests.payflow import TARIFF, charger

__all__ = ["console_browser"]


@pytest.fixture
async def system(make_config: MakeConfig) -> AsyncIterator[CentralSystem]:
    config = make_config(
        tariff=TARIFF,
        payments={"minimum_energy_wh": 100},
        console={"login_attempts": 3, "login_window": 600},
    )
    async with CentralSystem(config) as running:
        await running.chargers.register("CP-1", name="Harbour car park", location="Level 2")
        yield running


async def test_log_in_see_the_overview_and_log_out(
    system: CentralSystem, console_browser: Browser
) -> None:
    browser = console_browser
    await browser.open(base_url(system) + "/console/sessions")
    assert (await browser.url()).startswith(base_url(system) + "/console/login")
    assert await accessibility_problems(browser) == []
    name = await browser_login(browser, system, "support", name="sue")
    assert "sue" in await browser.text("who")
    await browser.click("logout")
    await browser.until(lambda: browser.visible("login-form"))
    assert "Logged out." in await browser.page_text()
    await browser.open(base_url(system) + "/console")
    assert (await browser.url()).startswith(base_url(system) + "/console/login")
    assert name == "sue"


async def test_failed_logins_are_throttled(system: CentralSystem, console_browser: Browser) -> None:
    browser = console_browser
    await ensure_user(system, "viewer", "vic")
    await browser.open(base_url(system) + "/console/login")
    for _ in range(3):
        await browser.fill("name", "vic")
        await browser.fill("password", "a wrong password")
        await _submit_and_wait_for_the_answer(browser)
        assert "Wrong name or password" in await browser.text("login-message")
    await browser.fill("name", "vic")
    await browser.fill("password", PASSWORD)
    await _submit_and_wait_for_the_answer(browser)
    assert "Too many failed logins" in await browser.text("login-message")


async def test_a_charger_coming_online_shows_without_a_reload(
    system: CentralSystem, console_browser: Browser
) -> None:
    browser = console_browser
    await browser_login(browser, system, "viewer")
    assert await browser.text("online") == "0"
    await browser.evaluate("window.sameDocument = true; return true;")
    simulated = charger(system)
    await simulated.start()
    try:
        await browser.until(lambda: _text_is(browser, "online", "1"))
        assert await browser.evaluate("return window.sameDocument === true")  # no reload
    finally:
        await simulated.stop()


async def test_the_overview_is_accessible_on_a_desktop_and_a_tablet(
    system: CentralSystem, console_browser: Browser
) -> None:
    browser = console_browser
    simulated = charger(system)
    await simulated.start()
    try:
        await browser_login(browser, system, "admin")
        await browser.until(lambda: _text_is(browser, "online", "1"))
        assert await accessibility_problems(browser) == []
        assert await browser.page_width() <= DESKTOP[0]
        await browser.screenshot("console-overview")
        lay_out(browser, TABLET)
        assert await browser.page_width() <= TABLET[0]
        assert await accessibility_problems(browser) == []
    finally:
        await simulated.stop()


async def test_the_accessibility_checks_find_what_they_look_for(
    system: CentralSystem, console_browser: Browser
) -> None:
    """The checks can fail: a page given each fault is reported for each."""
    browser = console_browser
    await browser_login(browser, system, "viewer")
    await browser.evaluate(
        """
        const main = document.getElementById('main');
        main.insertAdjacentHTML('beforeend',
          '<h1>Second</h1><h4>Skipped</h4><input id="unlabelled">' +
          '<p style="color:#bbb;background:#fff">faint</p>' +
          '<button id="unreachable" tabindex="-1">x</button><a href="/x" id="empty"></a>');
        document.documentElement.removeAttribute('lang');
        return true;
        """
    )
    found = "\n".join(await accessibility_problems(browser))
    for expected in (
        "<html> has no lang",
        "2 <h1> elements",
        "heading level skipped",
        "no label for input#unlabelled",
        "contrast",
        "no name for a#empty",
    ):
        assert expected in found, found


async def _submit_and_wait_for_the_answer(browser: Browser) -> None:
    """Log in and wait for the next page: the last answer's message, still shown while the
    form is sent, must not be taken for the new one."""
    await browser.evaluate("window.answered = false; return true")
    await browser.click("login")

    async def new_page() -> bool:
        fresh = await browser.evaluate("return window.answered === undefined")
        return fresh and await browser.visible("login-message")

    await browser.until(new_page)


async def _text_is(browser: Browser, element_id: str, expected: str) -> bool:
    return await browser.text(element_id) == expected
