"""The HTTP endpoint (aiohttp): `/healthz` for load balancers, `/metrics` for Prometheus.

`/metrics` is open, as scrapers expect, unless the metrics.require_api_key setting asks for
an API key (X-API-Key, or `Authorization: Bearer KEY`); with metrics.listen it is served on
that address alone (`metrics_app`), not on the HTTP endpoint."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from csms.metrics import Metrics
from httpapi.errors import error_response
from httpapi.middleware import Middleware
from storage.db import Database

DB_KEY = web.AppKey("db", Database)
CONNECTED_KEY = web.AppKey("connected", Callable[[], list[str]])
METRICS_KEY = web.AppKey("metrics", Metrics)
# Checks an API key (who it acts for, or None); absent: /metrics is open.
Verify = Callable[[str], Awaitable[object | None]]
METRICS_VERIFY_KEY = web.AppKey("metrics_verify", Verify)


def create_app(
    db: Database,
    connected: Callable[[], list[str]],
    middlewares: list[Middleware],
    metrics: Metrics,
    *,
    serve_metrics: bool = True,
    metrics_verify: Verify | None = None,
) -> web.Application:
    app = web.Application(client_max_size=64 * 1024, middlewares=middlewares)
    app[DB_KEY] = db
    app[CONNECTED_KEY] = connected
    app.router.add_get("/healthz", healthz)
    if serve_metrics:
        _add_metrics(app, metrics, metrics_verify)
    return app


def metrics_app(metrics: Metrics, verify: Verify | None = None) -> web.Application:
    """`/metrics` alone, for its own address (metrics.listen)."""
    app = web.Application(client_max_size=1024)
    _add_metrics(app, metrics, verify)
    return app


def _add_metrics(app: web.Application, metrics: Metrics, verify: Verify | None) -> None:
    app[METRICS_KEY] = metrics
    if verify is not None:
        app[METRICS_VERIFY_KEY] = verify
    app.router.add_get("/metrics", metrics_page)


async def healthz(request: web.Request) -> web.Response:
    try:
        await request.app[DB_KEY].fetchone("SELECT 1")
    except Exception:
        return web.json_response({"status": "error", "database": "unavailable"}, status=503)
    return web.json_response(
        {"status": "ok", "database": "ok", "chargersConnected": len(request.app[CONNECTED_KEY]())}
    )


async def metrics_page(request: web.Request) -> web.Response:
    """Outside /api/, so without the API key, like /healthz, unless one is required."""
    verify = request.app.get(METRICS_VERIFY_KEY)
    if verify is not None and not await _key_accepted(request, verify):
        return error_response(
            401, "unauthorised", "a valid X-API-Key header (or Bearer token) is required",
            "X-API-Key",
        )  # fmt: skip
    body, content_type = await request.app[METRICS_KEY].exposition(
        request.headers.get("Accept", "")
    )
    return web.Response(body=body, headers={"Content-Type": content_type})


async def _key_accepted(request: web.Request, verify: Verify) -> bool:
    key = request.headers.get("X-API-Key", "")
    if not key:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else ""
    return bool(key) and await verify(key) is not None


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
