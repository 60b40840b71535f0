"""A pass-through between the server and the Stripe sandbox that can hold back one answer.

Stripe sometimes answers slowly. `hold()` picks the next request to a path: it reaches
Stripe at once (so Stripe's state is read or changed then), but its answer is only handed
to the server when the scenario says so. That puts events in a chosen order, e.g. "the
server read the Checkout Session, then the driver paid, then the server got the answer".
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from bench.faults.processes import free_port

# Headers that describe one hop, not the message.
_HOP = {
    "accept-encoding",
    "connection",
    "content-encoding",
    "content-length",
    "host",
    "keep-alive",
    "transfer-encoding",
}
# Longest an answer is held back, whatever the scenario does.
HOLD_AT_MOST = 10.0


@dataclass
class Held:
    method: str
    path: str
    reached: asyncio.Event = field(default_factory=asyncio.Event)  # Stripe has it
    released: asyncio.Event = field(default_factory=asyncio.Event)  # the server may have it

    def release(self) -> None:
        self.released.set()


class StripeProxy:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._upstream = ""
        self._held: list[Held] = []
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    async def start(self, upstream: str) -> None:
        self._upstream = upstream
        # A fresh connection per request: none goes stale between the sandbox and us.
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        for held in self._held:
            held.release()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    def hold(self, method: str, path: str) -> Held:
        """Hold back the answer to the next `method` request to `path`."""
        held = Held(method.upper(), path)
        self._held.append(held)
        return held

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._http is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        try:
            async with self._http.request(
                request.method, self._upstream + request.path_qs, data=body, headers=headers
            ) as answer:
                payload = await answer.read()
                status = answer.status
                answer_headers = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP}
        except aiohttp.ClientError:
            # Stripe is gone (the run is ending): what a client sees of a lost connection.
            return web.Response(status=502, text="bad gateway")
        held = self._take(request.method, request.path)
        if held is not None:
            held.reached.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(held.released.wait(), HOLD_AT_MOST)
        return web.Response(body=payload, status=status, headers=answer_headers)

    def forget(self, held: Held) -> None:
        """A hold whose request never came: it must not catch a later one."""
        if held in self._held:
            self._held.remove(held)
        held.release()

    def _take(self, method: str, path: str) -> Held | None:
        for held in self._held:
            if held.method == method and held.path == path:
                self._held.remove(held)
                return held
        return None
