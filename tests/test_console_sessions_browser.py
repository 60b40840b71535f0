"""The session pages in headless Chromium, as an operator uses them: a partial refund typed
into the form, a review resolved, and a session's state changing on its page while it is
open, through the live values, without a reload."""

from __future__ import annotations

from selenium import webdriver

from csms.app import CentralSystem
from simulators.chargepoint import SimulatedCharger
from tests.browser import Browser
from tests.console_a11y import accessibility_problems
from tests.console_fixtures import base_url, browser_login
from tests.payflow import Driver, finished_session
from tests.test_reviews import capture_refused
from tests.waiting import eventually


async def test_a_partial_refund_through_the_form(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger, chromium: webdriver.Chrome
) -> None:
    rid, _ = await finished_session(driver, sim)
    r = await system.payment_service.get(rid)
    assert r is not None and r.payment_intent_id and system.sandbox is not None
    browser = Browser(chromium)
    await browser_login(browser, system, "finance")
    page = f"{base_url(system)}/console/sessions/{rid}"
    await browser.open(page)
    assert await browser.text("state") == "Completed"
    assert await browser.text("refunded") == "€0.00"
    assert await accessibility_problems(browser) == []
    await browser.fill("refund-amount", "0.30")
    await browser.fill("refund-reason", "connector was slow")
    await browser.click("refund")
    await browser.until(lambda: browser.visible("flash"))
    assert await browser.text("flash") == "Refund of €0.30 asked of Stripe."
    assert await browser.url() == page

    async def refunded() -> bool:
        return system.sandbox is not None and (
            system.sandbox.ledger()[r.payment_intent_id]["amount_refunded"] == 30
        )

    await eventually(refunded, timeout=10)

    async def shown() -> bool:
        await browser.open(page)
        return (await browser.text("refunded")).startswith("€0.30")

    await browser.until(shown)
    assert "user:finance" in await browser.text("refunds")
    await browser.screenshot("console-session-refunded")


async def test_a_review_resolved_in_the_browser(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger, chromium: webdriver.Chrome
) -> None:
    rid = await capture_refused(system, driver, sim)
    browser = Browser(chromium)
    await browser_login(browser, system, "finance")
    await browser.open(f"{base_url(system)}/console/sessions?review=1")
    assert await accessibility_problems(browser) == []
    await browser.click(f"row-{rid}-link")
    await browser.until(lambda: browser.visible("review-form"))
    assert await browser.text("state") == "NeedsReview"
    assert await accessibility_problems(browser) == []
    await browser.click("review-release")
    await browser.until(lambda: browser.visible("flash"))
    assert await browser.text("flash") == "Review: hold released; the session is Resolved."
    assert not await browser.visible("review-form")

    async def resolved() -> bool:  # the live values, up to a second old, catch up
        return await browser.text("state") == "Resolved"

    await browser.until(resolved)
    actors = {line["action"]: line["actor"] for line in await system.audit.lines(rid)}
    assert actors["release requested in review"] == "user:finance"


async def test_the_state_changes_on_the_page_without_a_reload(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger, chromium: webdriver.Chrome
) -> None:
    rid = await driver.start_charging(sim)
    browser = Browser(chromium)
    await browser_login(browser, system, "viewer")
    await browser.open(f"{base_url(system)}/console/sessions/{rid}")
    assert await browser.text("state") == "Charging"
    await browser.until(
        lambda: browser.evaluate(
            "return document.documentElement.getAttribute('data-live-connected') === 'yes'"
        )
    )
    await browser.evaluate("window.stillTheSamePage = true; return true")
    # Stopped elsewhere (the driver's phone): the open page follows.
    status, _ = await driver.post(f"/api/payments/{rid}/stop")
    assert status == 200
    await driver.wait_for_state(rid, "Completed")

    async def completed() -> bool:
        return await browser.text("state") == "Completed"

    await browser.until(completed)
    assert await browser.attribute("state", "data-state") == "Completed"
    assert await browser.evaluate("return window.stillTheSamePage === true")
