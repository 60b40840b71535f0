"""Accessibility checks run in Chromium on a console page (tests/browser.py): what WCAG 2.1
AA asks that a script can check. Each check returns the problems found, as text naming the
element, so a failing test says what to mend.

- `lang` on <html>; one <h1>, headings without skipped levels;
- every form control has a label (<label for>, a wrapping <label>, aria-label or
  aria-labelledby), every button and link a name;
- text contrast at least 4.5:1 (3:1 for large text) against the background behind it;
- every link, button and control is reached with the Tab key, in document order.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.browser import Browser

_STATIC_CHECKS = (Path(__file__).parent / "console_a11y.js").read_text()

_FOCUSABLE = r"""
const visible = e => !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length) &&
  getComputedStyle(e).visibility !== 'hidden';
return Array.from(document.querySelectorAll('a[href], button, input, select, textarea'))
  .filter(e => e.type !== 'hidden' && !e.disabled && visible(e) && e.tabIndex >= 0);
"""


async def accessibility_problems(browser: Browser) -> list[str]:
    """What the page breaks of the checks above (empty: nothing found)."""
    problems: list[str] = await browser.evaluate(_STATIC_CHECKS)
    problems.extend(await _keyboard_problems(browser))
    return problems


async def _keyboard_problems(browser: Browser) -> list[str]:
    """Tab from the top of the page: every focusable element must be reached."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    def walk() -> list[str]:
        driver = browser.driver
        wanted: list[Any] = driver.execute_script(_FOCUSABLE)
        # Start before everything: a focusable mark put first in the page, focused.
        driver.execute_script(
            "const start = document.createElement('span'); start.id = 'a11y-start';"
            "start.tabIndex = 0; document.body.prepend(start); start.focus();"
        )
        reached: list[Any] = []
        # A control may take several presses (a date's day, month and year), so the walk
        # ends when it comes round to the first element again, or leaves the page.
        for _ in range(3 * len(wanted) + 10):
            ActionChains(driver).send_keys(Keys.TAB).perform()
            active = driver.switch_to.active_element
            if reached and active == reached[0]:
                break
            if active.tag_name == "body" or active.get_attribute("id") == "a11y-start":
                break
            if active not in reached:
                reached.append(active)
        driver.execute_script("document.getElementById('a11y-start').remove()")
        # One radio button of a group takes the focus; the arrow keys move within it.
        groups = driver.execute_script(
            "return arguments[0].map(e => e.type === 'radio' ? e.form + ':' + e.name : null)",
            reached,
        )
        wanted = [
            e for e in wanted
            if not (
                e.get_attribute("type") == "radio"
                and driver.execute_script(
                    "return arguments[0].form + ':' + arguments[0].name", e
                ) in groups
            )
        ]  # fmt: skip
        missing = [e for e in wanted if e not in reached]
        return [
            "not reached with Tab: "
            + driver.execute_script(
                "const e = arguments[0]; return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')"
                " + ' \"' + (e.textContent || e.name || '').trim().slice(0, 30) + '\"'",
                e,
            )
            for e in missing[:10]
        ]

    return await asyncio.to_thread(walk)
