"""The driver's pages over plain HTTP: refusals, CSRF, rate limit, escaping, live events."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import aiohttp
import pytest

from csms.app import CentralSystem
from tests.conftest import MakeConfig
from tests.payflow import charger


@pytest.fixture
async def system(make_config: MakeConfig) -> AsyncIterator[CentralSystem]:
    config = make_config(payments={"start_limit_count": 2, "start_limit_window": 600})
    async with CentralSystem(config) as running:
        await running.chargers.register("CP-1", name="<script>alert(1)</script> Depot")
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


def _base(system: CentralSystem) -> str:
    return f"http://127.0.0.1:{system.http.port}"


async def _csrf(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as page:
        assert page.status == 200, await page.text()
        match = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert match
    return match.group(1)


async def test_names_are_escaped(system: CentralSystem, http: aiohttp.ClientSession) -> None:
    sim = charger(system)
    await sim.start()
    try:
        async with http.get(f"{_base(system)}/start?cp=CP-1&conn=1") as page:
            html = await page.text()
    finally:
        await sim.stop()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Depot" in html
    assert (
        "http" not in re.sub(r'action="/start"', "", html).split("<body>")[1]
    )  # no external assets


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/start?cp=NOPE", 404, "Charger not found"),
        ("/start?cp=CP-1&conn=abc", 404, "Charger not found"),
        ("/c/CP-1/1", 503, "Charger offline"),
        ("/session/not-a-token", 404, "Session not found"),
        ("/receipt/not-a-token", 404, "Session not found"),
    ],
)
async def test_refusals_are_pages(
    system: CentralSystem, http: aiohttp.ClientSession, path: str, status: int, words: str
) -> None:
    async with http.get(f"{_base(system)}{path}") as page:
        assert page.status == status
        assert page.content_type == "text/html"
        assert words in await page.text()


async def test_payments_switched_off(make_config: MakeConfig, http: aiohttp.ClientSession) -> None:
    async with CentralSystem(make_config(payments={"enabled": False})) as system:
        await system.chargers.register("CP-1")
        async with http.get(f"{_base(system)}/c/CP-1/1") as page:
            assert page.status == 503
            assert "Payments are switched off" in await page.text()


async def test_forms_need_the_csrf_token(
    system: CentralSystem, http: aiohttp.ClientSession
) -> None:
    sim = charger(system)
    await sim.start()
    try:
        await _csrf(http, f"{_base(system)}/c/CP-1/1")
        async with http.post(
            f"{_base(system)}/start", data={"cp": "CP-1", "conn": "1", "csrf": "forged"}
        ) as refused:
            assert refused.status == 403
        assert await system.db.fetchall("SELECT id FROM reservations") == []
    finally:
        await sim.stop()


async def test_starting_is_rate_limited(system: CentralSystem, http: aiohttp.ClientSession) -> None:
    sim = charger(system)
    await sim.start()
    try:
        token = await _csrf(http, f"{_base(system)}/c/CP-1/1")
        statuses = []
        for _ in range(3):
            async with http.post(
                f"{_base(system)}/start",
                data={"cp": "CP-1", "conn": "2", "csrf": token, "email": "bad address"},
                allow_redirects=False,
            ) as response:
                statuses.append(response.status)
        # Invalid e-mails are refused before the limit counts; valid attempts count.
        assert statuses == [400, 400, 400]
        for _ in range(3):
            async with http.post(
                f"{_base(system)}/start",
                data={"cp": "CP-1", "conn": "2", "csrf": token},
                allow_redirects=False,
            ) as response:
                statuses.append(response.status)
                text = await response.text()
            # Another phone behind the same address: not the first one's own reservation.
            http.cookie_jar.clear(lambda cookie: cookie.key == "csms_session")
        assert statuses[3:] == [303, 409, 429]
        assert "Too many attempts" in text
    finally:
        await sim.stop()


async def test_pay_redirects_to_checkout_and_the_cookie_leads_back(
    system: CentralSystem, http: aiohttp.ClientSession
) -> None:
    sim = charger(system)
    await sim.start()
    try:
        token = await _csrf(http, f"{_base(system)}/c/CP-1/1")
        async with http.post(
            f"{_base(system)}/start",
            data={"cp": "CP-1", "conn": "1", "csrf": token},
            allow_redirects=False,
        ) as response:
            assert response.status == 303
            assert "/pay/cs_" in response.headers["Location"]
        # Back on the start page of another connector: a way back to the session.
        async with http.get(f"{_base(system)}/c/CP-1/2") as page:
            html = await page.text()
        session_link = re.search(r'href="(/session/[^"]+)"', html)
        assert session_link, html
        async with http.get(f"{_base(system)}{session_link.group(1)}/events") as events:
            assert events.content_type == "text/event-stream"
            line = await events.content.readline()
        assert line.startswith(b"data: {") and b'"stage":"payment"' in line
        async with http.get(
            f"{_base(system)}{session_link.group(1).replace('session', 'receipt')}",
            allow_redirects=False,
        ) as early:
            assert early.status == 303  # no receipt before the end
    finally:
        await sim.stop()
