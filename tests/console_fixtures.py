"""Logged-in operators for console tests: an HTTP client that logs in through the login form
and sends each form's CSRF token, and the same login in Chromium (tests/browser.py)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from csms.app import CentralSystem
from csms.roles import Role

if TYPE_CHECKING:
    from tests.browser import Browser  # selenium only where a browser is wanted

PASSWORD = "correct horse battery"
_TOKEN = re.compile(r'name="(?:token|csrf)" value="([^"]+)"')


def base_url(system: CentralSystem) -> str:
    return f"http://127.0.0.1:{system.http.port}"


async def ensure_user(system: CentralSystem, role: Role, name: str | None = None) -> str:
    """A user with `role` (named after it unless `name`), password `PASSWORD`."""
    name = name or role
    if await system.users.get(name) is None:
        await system.users.add(name, role, PASSWORD)
    else:  # e.g. the first start's "admin", whose password was printed, not known here
        await system.users.set_password(name, PASSWORD)
    return name


class ConsoleClient:
    """An operator logged in over HTTP; redirects are not followed, so tests see them."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = base
        self.csrf = ""

    async def login(self, name: str, password: str = PASSWORD) -> aiohttp.ClientResponse:
        page = await self.http.get(self.base + "/console/login")
        token = _TOKEN.search(await page.text())
        assert token is not None, "the login form has a token"
        response = await self.http.post(
            self.base + "/console/login",
            data={"name": name, "password": password, "token": token[1], "next": "/console"},
            allow_redirects=False,
        )
        if response.status == 303:
            overview = await self.text("/console")
            found = _TOKEN.search(overview)
            assert found is not None, "a logged-in page carries the CSRF token"
            self.csrf = found[1]
        return response

    async def get(self, path: str, **options: Any) -> aiohttp.ClientResponse:
        options.setdefault("allow_redirects", False)
        return await self.http.get(self.base + path, **options)

    async def text(self, path: str) -> str:
        response = await self.get(path)
        assert response.status == 200, f"GET {path}: {response.status} {await response.text()}"
        return await response.text()

    async def post(self, path: str, data: dict[str, Any] | None = None) -> aiohttp.ClientResponse:
        """POST a form with this login's CSRF token (unless `data` has its own)."""
        form = {"csrf": self.csrf, **(data or {})}
        return await self.http.post(self.base + path, data=form, allow_redirects=False)


@asynccontextmanager
async def console_client(
    system: CentralSystem, role: Role = "admin", name: str | None = None
) -> AsyncIterator[ConsoleClient]:
    """A client logged in as a user with `role`."""
    user = await ensure_user(system, role, name)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        client = ConsoleClient(http, base_url(system))
        response = await client.login(user)
        assert response.status == 303, f"login as {user}: {response.status}"
        yield client


async def browser_login(
    browser: Browser, system: CentralSystem, role: Role = "admin", name: str | None = None
) -> str:
    """Log Chromium in as a user with `role` through the login form; the user's name."""
    user = await ensure_user(system, role, name)
    await browser.open(base_url(system) + "/console/login")
    await browser.fill("name", user)
    await browser.fill("password", PASSWORD)
    await browser.click("login")
    await browser.until(lambda: browser.visible("logout"))
    return user


DESKTOP = (1280, 800)
TABLET = (768, 1024)


def lay_out(browser: Browser, size: tuple[int, int]) -> None:
    """Lay pages out on a screen of exactly `size` CSS pixels (a headless window's own size
    loses some height to the window's frame)."""
    width, height = size
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
    browser.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


@pytest.fixture
def console_browser(chromium: Any) -> Browser:
    """Chromium on a desktop's 1280x800 screen, with no cookie left from an earlier test."""
    from tests.browser import Browser

    chromium.delete_all_cookies()
    chromium.set_window_size(*DESKTOP)
    browser = Browser(chromium)
    lay_out(browser, DESKTOP)
    return browser
