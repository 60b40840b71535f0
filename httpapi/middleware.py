"""Middlewares: the one error shape on /api/, and the API key check; the security headers
that every response carries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable

import structlog
from aiohttp import web

from httpapi.errors import ApiError, error_response
from httpapi.forwarded import HEADER, TrustedProxies, client_address
from httpapi.principal import PRINCIPAL, Principal

log = structlog.get_logger()

Middleware = Callable[
    [web.Request, Callable[[web.Request], Awaitable[web.StreamResponse]]],
    Awaitable[web.StreamResponse],
]

ResponseHook = Callable[[web.Request, web.StreamResponse], Awaitable[None]]

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


# Where the key check leaves who is acting: "key:{name}" of the verified API key (kept
# beside PRINCIPAL, which says the same and the role, for code that reads only this).
ACTOR = web.RequestKey("actor", str)


def api_key_required(
    verify: Callable[[str], Awaitable[Principal | None]],
    prefix: str = "/api/",
    open_paths: Collection[str] = (),
    proxies: TrustedProxies | None = None,
) -> Middleware:
    """Every route under `prefix` but `open_paths` needs a valid `X-API-Key` header.

    `verify` returns who the key acts for (`Principal`: "key:{name}" and its user's role),
    or None for a key that is not valid; the request then carries it as
    `request[PRINCIPAL]`, which each route checks against the role it needs
    (`httpapi.routing`) and which the routes that move money or change a payment write into
    the audit log (see `actor_of`). A request that already carries a principal (the
    console's signed-in user) is not asked for a key.
    """

    trusted = proxies or TrustedProxies()

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if (
            request.path.startswith(prefix)
            and request.path not in open_paths
            and PRINCIPAL not in request
        ):
            key = request.headers.get("X-API-Key", "")
            principal = await verify(key) if key else None
            if principal is None:
                remote = client_address(request.remote, request.headers.getall(HEADER, []), trusted)
                log.warning("api.unauthorised", path=request.path, remote=remote)
                return error_response(
                    401, "unauthorised", "a valid X-API-Key header is required", "X-API-Key"
                )
            request[PRINCIPAL] = principal
            request[ACTOR] = principal.actor
        return await handler(request)

    return middleware


def actor_of(request: web.Request, default: str = "operator") -> str:
    """Who is acting in `request`: "key:{name}" for an API key, "user:{name}" for a user
    signed in to the console, else `default`."""
    principal = request.get(PRINCIPAL)
    if principal is not None:
        return principal.actor
    return request.get(ACTOR, default)


def security_headers(form_targets: Iterable[str] = ()) -> ResponseHook:
    """Headers for every response, for `app.on_response_prepare` rather than a middleware:
    a handler that streams (server-sent events, CSV) sends its headers before any
    middleware sees the response, while this signal runs as each response is prepared,
    errors and redirects included.

    HTML pages get a Content-Security-Policy allowing only their own origin, plus the
    inline <style> and <script> they carry. `form_targets` are origins a form may be
    redirected to besides this one and any https: one (Stripe Checkout).
    """
    policy = "; ".join(
        (
            "default-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "script-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            " ".join(("form-action 'self' https:", *form_targets)),
            "frame-ancestors 'none'",
        )
    )

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        if response.content_type == "text/html":
            headers.setdefault("Content-Security-Policy", policy)

    return add_headers
