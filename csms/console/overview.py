"""The console's overview page, and the live values every console page follows.

`/console/events` is a stream of server-sent events: first every live value, then each
second those that changed (`ConsoleFacts.changes_since`: the changes are found once for
all streams), as `{key: text}`; static/console.js puts them into the elements whose
`data-live` names the key. A page names the keys it shows by their prefixes (`?watch=`,
from its `data-live-watch`), so it is sent those alone. The stream ends on its own after
`stream_seconds` (the browser's EventSource reconnects at once) so a node shutting down is
never held up by consoles left open, and when the node stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import orjson
from aiohttp import web

from csms.console.facts import ConsoleFacts, kwh
from csms.console.framework import Console


def _watched(watch: list[str]) -> tuple[str, ...]:
    """The key prefixes a page follows (`?watch=charger:CP-1:&watch=connector:CP-1:`);
    none: all keys. At most 50 prefixes of at most 200 characters are kept."""
    return tuple(p for p in watch if 0 < len(p) <= 200)[:50]


class OverviewPages:
    def __init__(
        self,
        console: Console,
        facts: ConsoleFacts,
        closing: asyncio.Event,
        *,
        interval: float = 1.0,
        stream_seconds: float = 300.0,
    ) -> None:
        self._console = console
        self._facts = facts
        self._closing = closing
        self._interval = interval
        self._stream_seconds = stream_seconds

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/console", self.overview), web.get("/console/events", self.events)]

    async def overview(self, request: web.Request) -> web.Response:
        self._console.require(request, "viewer")
        overview = await self._facts.overview()
        return self._console.render(
            request, "overview.html", title="Overview", overview=overview,
            energy_today=kwh(overview.energy_today_wh),
        )  # fmt: skip

    async def events(self, request: web.Request) -> web.StreamResponse:
        self._console.require(request, "viewer")
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        watched = _watched(request.query.getall("watch", []))
        version: int | None = None
        opened = time.monotonic()  # the page asking was rendered before: nothing older
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            async with asyncio.timeout(self._stream_seconds):
                while not self._closing.is_set():
                    fresh_after = opened if version is None else None
                    first = version is None
                    version, changed = await self._facts.changes_since(version, fresh_after)
                    if watched:
                        changed = {k: v for k, v in changed.items() if k.startswith(watched)}
                    if changed or first:
                        await response.write(b"data: " + orjson.dumps(changed) + b"\n\n")
                    transport = request.transport
                    if transport is None or transport.is_closing():
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._closing.wait(), self._interval)
        return response
