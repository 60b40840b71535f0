"""The console's admin pages in Chromium: an id tag added through the form, and a QR label
sheet made for two chosen chargers whose codes scan (read back from a screenshot); the
pages pass the accessibility checks (tests/console_a11y.py) on the way."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import zxingcpp
from PIL import Image

from csms.app import CentralSystem
from tests.browser import Browser
from tests.conftest import MakeConfig
from tests.console_a11y import accessibility_problems
from tests.console_fixtures import base_url, browser_login, console_browser
from tests.payflow import TARIFF

__all__ = ["console_browser"]


@pytest.fixture
async def system(make_config: MakeConfig) -> AsyncIterator[CentralSystem]:
    async with CentralSystem(make_config(tariff=TARIFF)) as running:
        for charger, name in (("CP-1", "Harbour"), ("CP-2", "Market"), ("CP-3", "Station")):
            await running.chargers.register(charger, name=name)
        yield running


async def test_add_an_id_tag_through_the_form(
    system: CentralSystem, console_browser: Browser
) -> None:
    browser = console_browser
    await browser_login(browser, system, "support", name="sue")
    await browser.open(base_url(system) + "/console/id-tags")
    assert await accessibility_problems(browser) == []
    await browser.fill("new-id-tag", "CARD-0042")
    await browser.fill("new-parent", "FLEET-1")
    await browser.click("add-id-tag")
    await browser.until(lambda: browser.visible("flash"))
    assert "Id tag CARD-0042 added" in await browser.text("flash")
    assert "CARD-0042" in await browser.text("id-tags")
    tag = await system.id_tags.get("CARD-0042")
    assert tag is not None and tag.parent_id_tag == "FLEET-1" and not tag.blocked

    # Blocking it from its row.
    await browser.evaluate(
        "document.querySelector('tr[data-id-tag=\"CARD-0042\"] button[type=submit]').click();"
        " return true;"
    )
    await browser.until(lambda: browser.visible("flash"))
    assert "blocked" in await browser.text("flash")
    tag = await system.id_tags.get("CARD-0042")
    assert tag is not None and tag.blocked
    assert await accessibility_problems(browser) == []  # with a row and its actions


async def test_the_qr_sheet_for_two_chosen_chargers(
    system: CentralSystem, console_browser: Browser
) -> None:
    browser = console_browser
    await browser_login(browser, system, "admin", name="ada")
    for page in ("/console/audit", "/console/sites", "/console/users", "/console/qr"):
        await browser.open(base_url(system) + page)
        problems = await accessibility_problems(browser)
        assert problems == [], (page, problems)
    # Ticking a charger ticks its connectors.
    await browser.click("qr-charger-1")
    assert await browser.evaluate("return document.getElementById('qr-connector-1-1').checked")
    await browser.click("qr-charger-3")
    await browser.click("qr-make")
    await browser.until(lambda: browser.evaluate("return document.title === 'Connector labels'"))
    assert await browser.evaluate("return document.querySelectorAll('.label').length") == 2
    names = await browser.evaluate(
        "return Array.from(document.querySelectorAll('.label .name')).map(e => e.textContent)"
    )
    assert names == ["Harbour", "Station"]

    shot = await browser.screenshot("console-qr-sheet")
    found = {barcode.text for barcode in zxingcpp.read_barcodes(Image.open(shot))}
    base = system.executor.public_base_url
    assert found == {f"{base}/c/CP-1/1", f"{base}/c/CP-3/1"}

    await browser.emulate_print(True)
    try:  # printed: no grey page background, the labels keep their size
        assert await browser.style("body", "background-color") in ("rgba(0, 0, 0, 0)", "")
        assert await browser.evaluate(
            "return document.querySelector('.label svg').getBoundingClientRect().width > 100"
        )
    finally:
        await browser.emulate_print(False)
