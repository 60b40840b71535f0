"""The console's overview page, and the live values every console page follows.

`/console/events` is a stream of server-sent events: first every live value, then each
second those that changed (`ConsoleFacts.live`), as `{key: text}`; static/console.js puts
them into the elements whose `data-live` names the key. The stream ends on its own after
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
        sent: dict[str, str] = {}
        opened = time.monotonic()  # the page asking was rendered before: nothing older
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            async with asyncio.timeout(self._stream_seconds):
                while not self._closing.is_set():
                    values = await self._facts.live(computed_after=None if sent else opened)
                    changed = {k: v for k, v in values.items() if sent.get(k) != v}
                    if changed or not sent:
                        await response.write(b"data: " + orjson.dumps(changed) + b"\n\n")
                        sent = dict(values)
                    transport = request.transport
                    if transport is None or transport.is_closing():
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._closing.wait(), self._interval)
        return response
