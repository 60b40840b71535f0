"""Headless Chromium driven by Selenium, from async tests: each call runs in a thread so the
server under test keeps running on the event loop meanwhile."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOTS = Path(os.environ.get("CSMS_SCREENSHOTS", "test-artifacts/screenshots"))
PHONE = (390, 844)
SMALL_PHONE = (320, 640)


def start_chromium() -> webdriver.Chrome:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        message = "Chromium and chromedriver are needed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs them: missing there is an error
        pytest.skip(message)
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--window-size={PHONE[0]},{PHONE[1]}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


class Browser:
    def __init__(self, driver: webdriver.Chrome) -> None:
        self.driver = driver

    async def _run(self, action: Callable[[], Any]) -> Any:
        return await asyncio.to_thread(action)

    async def open(self, url: str) -> None:
        await self._run(lambda: self.driver.get(url))

    async def back(self) -> None:
        """The browser's Back button."""
        await self._run(self.driver.back)

    async def new_tab(self, url: str) -> str:
        """Open `url` in a new tab and switch to it: the tab's handle."""

        def open_tab() -> str:
            self.driver.switch_to.new_window("tab")
            self.driver.get(url)
            return self.driver.current_window_handle

        return await self._run(open_tab)

    async def current_tab(self) -> str:
        return await self._run(lambda: self.driver.current_window_handle)

    async def switch_to(self, tab: str) -> None:
        await self._run(lambda: self.driver.switch_to.window(tab))

    async def close_other_tabs(self, keep: str) -> None:
        def close() -> None:
            for handle in self.driver.window_handles:
                if handle != keep:
                    self.driver.switch_to.window(handle)
                    self.driver.close()
            self.driver.switch_to.window(keep)

        await self._run(close)

    async def url(self) -> str:
        return await self._run(lambda: self.driver.current_url)

    async def text(self, element_id: str) -> str:
        return await self._run(lambda: self.driver.find_element(By.ID, element_id).text)

    async def attribute(self, element_id: str, name: str) -> str | None:
        return await self._run(
            lambda: self.driver.find_element(By.ID, element_id).get_attribute(name)
        )

    async def emulate_phone(self, on: bool = True, size: tuple[int, int] = PHONE) -> None:
        """Lay pages out at exactly `size`, as a phone (headless Chromium's window is
        never narrower than 500 px); `on=False` goes back to the window's size."""
        if on:
            width, height = size
            metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True}
            await self._run(
                lambda: self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
            )
        else:
            await self._run(
                lambda: self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
            )

    async def emulate_print(self, on: bool = True) -> None:
        """Lay pages out as printed (CSS @media print), or back on screen."""
        media = {"media": "print" if on else ""}
        await self._run(lambda: self.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", media))

    async def style(self, selector: str, prop: str) -> str:
        """The computed CSS value of `prop` on the first element `selector` matches."""
        return await self._run(
            lambda: self.driver.execute_script(
                "return getComputedStyle(document.querySelector(arguments[0]))"
                ".getPropertyValue(arguments[1])",
                selector,
                prop,
            )
        )

    async def viewport_width(self) -> int:
        return await self._run(lambda: self.driver.execute_script("return window.innerWidth"))

    async def page_width(self) -> int:
        """How wide the page is laid out: wider than the viewport means sideways scrolling."""
        return await self._run(
            lambda: self.driver.execute_script("return document.documentElement.scrollWidth")
        )

    async def language(self) -> str | None:
        """The page's language, as its <html lang> says."""
        return await self._run(
            lambda: self.driver.find_element(By.TAG_NAME, "html").get_attribute("lang")
        )

    async def right_edge(self, element_id: str) -> float:
        """Where the element ends, in CSS pixels from the left of the page."""
        return await self._run(
            lambda: self.driver.execute_script(
                "return document.getElementById(arguments[0]).getBoundingClientRect().right",
                element_id,
            )
        )

    async def overflowing(self) -> list[str]:
        """The elements that reach past the viewport's right edge, as tag#id.class."""
        return await self._run(
            lambda: self.driver.execute_script(
                "return Array.from(document.querySelectorAll('body *'))"
                ".filter(e => e.getBoundingClientRect().right > window.innerWidth)"
                ".map(e => e.tagName + '#' + e.id + '.' + e.className)"
            )
        )

    async def evaluate(self, script: str) -> Any:
        """What `script` (a function body, with `return`) gives in the page."""
        return await self._run(lambda: self.driver.execute_script(script))

    async def page_text(self) -> str:
        return await self._run(lambda: self.driver.find_element(By.TAG_NAME, "body").text)

    async def fill(self, element_id: str, value: str) -> None:
        def type_in() -> None:
            field = self.driver.find_element(By.ID, element_id)
            field.clear()
            field.send_keys(value)

        await self._run(type_in)

    async def click(self, element_id: str) -> None:
        await self._run(lambda: self.driver.find_element(By.ID, element_id).click())

    async def visible(self, element_id: str) -> bool:
        def check() -> bool:
            found = self.driver.find_elements(By.ID, element_id)
            return bool(found) and found[0].is_displayed()

        return await self._run(check)

    async def screenshot(self, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"

        def save() -> None:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            self.driver.save_screenshot(str(path))

        await self._run(save)
        return path

    async def until(self, condition: Callable[[], Any], timeout: float = 20) -> None:
        """Poll an async condition; page reloads and element swaps are retried."""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    if await condition():
                        return
                except WebDriverException:
                    pass
                await asyncio.sleep(0.2)
