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
        driver.execute_script("document.activeElement && document.activeElement.blur();"
                              "window.scrollTo(0, 0);")  # fmt: skip
        reached: list[Any] = []
        for _ in range(len(wanted) + 5):
            ActionChains(driver).send_keys(Keys.TAB).perform()
            active = driver.switch_to.active_element
            if active in reached:
                break
            reached.append(active)
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
