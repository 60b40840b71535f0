"""Middlewares: the one error shape on /api/, and the API key check."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

import structlog
from aiohttp import web

from httpapi.errors import ApiError, error_response

log = structlog.get_logger()

Middleware = Callable[
    [web.Request, Callable[[web.Request], Awaitable[web.StreamResponse]]],
    Awaitable[web.StreamResponse],
]

_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 415: "unsupported"}


def api_errors(prefix: str = "/api/") -> Middleware:
    """Under `prefix`, every failure answers `{"error": {...}}` and reveals no internals."""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not request.path.startswith(prefix):
            return await handler(request)
        try:
            return await handler(request)
        except ApiError as error:
            return error.response()
        except web.HTTPException as error:
            if error.status < 400 or error.content_type == "application/json":
                raise  # a redirect, or an error that already speaks JSON
            code = _CODES.get(error.status, "error")
            return error_response(error.status, code, error.reason)
        except Exception:
            log.exception("api.failed", path=request.path, method=request.method)
            return error_response(500, "internal", "internal error")

    return middleware


def api_key_required(
    verify: Callable[[str], Awaitable[bool]],
    prefix: str = "/api/",
    open_paths: Collection[str] = (),
) -> Middleware:
    """Every route under `prefix` but `open_paths` needs a valid `X-API-Key` header."""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith(prefix) and request.path not in open_paths:
            key = request.headers.get("X-API-Key", "")
            if not key or not await verify(key):
                log.warning("api.unauthorised", path=request.path, remote=request.remote)
                return error_response(
                    401, "unauthorised", "a valid X-API-Key header is required", "X-API-Key"
                )
        return await handler(request)

    return middleware
