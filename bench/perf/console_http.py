"""The console benchmark's HTTP clients: operators logged in through the login form, the
live stream they keep open (`/console/events`), and the management API's charger list.

An operator here is what a browser is to the server: its own cookie jar and connection, a
login (GET the form for its token, POST name and password, 303 to the console), then one
`/console/events` request held open and read as it comes, as an EventSource does. Only the
server's side is measured; these clients run in the benchmark's process.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass, field

import aiohttp

_TOKEN = re.compile(r'name="token" value="([^"]+)"')
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60)


async def login(base: str, name: str, password: str) -> aiohttp.ClientSession:
    """A session logged in as `name`; RuntimeError when the console refuses."""
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=TIMEOUT)
    try:
        async with http.get(f"{base}/console/login") as page:
            token = _TOKEN.search(await page.text())
        if token is None:
            raise RuntimeError("the console's login page has no form token")
        form = {"name": name, "password": password, "token": token[1], "next": "/console"}
        async with http.post(f"{base}/console/login", data=form, allow_redirects=False) as done:
            if done.status != 303:
                raise RuntimeError(f"console login as {name}: HTTP {done.status}")
    except BaseException:
        await http.close()
        raise
    return http


@dataclass
class Stream:
    """One operator's `/console/events`, read until `close()`."""

    http: aiohttp.ClientSession
    base: str
    frames: int = 0
    first: asyncio.Event = field(default_factory=asyncio.Event)
    error: str = ""
    _task: asyncio.Task[None] | None = None

    def open(self) -> None:
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async with self.http.get(f"{self.base}/console/events") as response:
                if response.status != 200:
                    self.error = f"/console/events: HTTP {response.status}"
                    return
                buffer = b""
                async for chunk in response.content.iter_any():
                    buffer += chunk
                    *frames, buffer = buffer.split(b"\n\n")
                    self.frames += len(frames)
                    if frames:
                        self.first.set()
                self.error = "/console/events ended"
        except aiohttp.ClientError as error:
            self.error = f"/console/events: {error!r}"
        finally:
            self.first.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


async def first_frame_seconds(http: aiohttp.ClientSession, base: str) -> tuple[float, int]:
    """A new `/console/events` until its first frame, which the server computes afresh (a
    page's stream never starts with values older than itself): (seconds, bytes)."""
    started = time.perf_counter()
    async with http.get(f"{base}/console/events") as response:
        if response.status != 200:
            raise RuntimeError(f"/console/events: HTTP {response.status}")
        frame = b""
        while not frame.endswith(b"\n\n"):  # every value: over a megabyte for 5,000
            chunk = await response.content.readany()
            if not chunk:
                raise RuntimeError("/console/events ended before its first frame")
            frame += chunk
        return time.perf_counter() - started, len(frame)


async def chargers_seconds(
    http: aiohttp.ClientSession, base: str, api_key: str, limit: int
) -> tuple[float, int, int]:
    """GET /api/chargers with `limit` a page, following the cursor to the end of the fleet:
    (seconds, chargers, pages)."""
    started = time.perf_counter()
    cursor: str | None = None
    chargers = pages = 0
    while True:
        query: dict[str, str | int] = {"limit": limit}
        if cursor:
            query["cursor"] = cursor
        async with http.get(
            f"{base}/api/chargers", params=query, headers={"X-API-Key": api_key}
        ) as response:
            if response.status != 200:
                raise RuntimeError(f"/api/chargers: HTTP {response.status}")
            page = await response.json()
        chargers += len(page["items"])
        pages += 1
        cursor = page.get("nextCursor")
        if not cursor:
            return time.perf_counter() - started, chargers, pages
