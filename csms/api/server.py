"""The HTTP endpoint (aiohttp): `/healthz` for load balancers, `/metrics` for Prometheus."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from csms.metrics import Metrics
from httpapi.middleware import Middleware
from storage.db import Database

DB_KEY = web.AppKey("db", Database)
CONNECTED_KEY = web.AppKey("connected", Callable[[], list[str]])
METRICS_KEY = web.AppKey("metrics", Metrics)


def create_app(
    db: Database,
    connected: Callable[[], list[str]],
    middlewares: list[Middleware],
    metrics: Metrics,
) -> web.Application:
    app = web.Application(client_max_size=64 * 1024, middlewares=middlewares)
    app[DB_KEY] = db
    app[CONNECTED_KEY] = connected
    app[METRICS_KEY] = metrics
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_page)
    return app


async def healthz(request: web.Request) -> web.Response:
    try:
        await request.app[DB_KEY].fetchone("SELECT 1")
    except Exception:
        return web.json_response({"status": "error", "database": "unavailable"}, status=503)
    return web.json_response(
        {"status": "ok", "database": "ok", "chargersConnected": len(request.app[CONNECTED_KEY]())}
    )


async def metrics_page(request: web.Request) -> web.Response:
    """Outside /api/, so without the API key, like /healthz: what scrapers expect."""
    body, content_type = await request.app[METRICS_KEY].exposition(
        request.headers.get("Accept", "")
    )
    return web.Response(body=body, headers={"Content-Type": content_type})


class HttpServer:
    def __init__(
        self, app: web.Application, host: str, port: int, shutdown_timeout: float = 10.0
    ) -> None:
        # On shutdown, requests under way get this long to finish.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
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
