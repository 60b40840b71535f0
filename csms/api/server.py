"""The HTTP endpoint (aiohttp): `/healthz` for load balancers and monitoring."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from httpapi.middleware import Middleware
from storage.db import Database

DB_KEY = web.AppKey("db", Database)
CONNECTED_KEY = web.AppKey("connected", Callable[[], list[str]])


def create_app(
    db: Database, connected: Callable[[], list[str]], middlewares: list[Middleware]
) -> web.Application:
    app = web.Application(client_max_size=64 * 1024, middlewares=middlewares)
    app[DB_KEY] = db
    app[CONNECTED_KEY] = connected
    app.router.add_get("/healthz", healthz)
    return app


async def healthz(request: web.Request) -> web.Response:
    try:
        await request.app[DB_KEY].fetchone("SELECT 1")
    except Exception:
        return web.json_response({"status": "error", "database": "unavailable"}, status=503)
    return web.json_response(
        {"status": "ok", "database": "ok", "chargersConnected": len(request.app[CONNECTED_KEY]())}
    )


class HttpServer:
    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self._runner = web.AppRunner(app, access_log=None)
        self._host = host
        self._port = port

    async def start(self) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()

    @property
    def port(self) -> int:
        return self._runner.addresses[0][1]

    async def close(self) -> None:
        await self._runner.cleanup()
