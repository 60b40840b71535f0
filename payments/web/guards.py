"""Protections for the driver's forms: CSRF tokens and a per-address rate limit."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from storage.clock import utc_now
from storage.db import Database
from storage.limits import WindowCounter

CSRF_COOKIE = "csms_csrf"


def csrf_token(request: web.Request) -> str:
    """The browser's CSRF token (from its cookie), or a new one to be set with the page."""
    return request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)


def remember_csrf(response: web.StreamResponse, token: str) -> None:
    # Double-submit: a forged cross-site POST can send the cookie but cannot read it
    # to put the same value in the form.
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="Lax", path="/")


def csrf_ok(request: web.Request, submitted: object) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE)
    return (
        isinstance(submitted, str)
        and cookie is not None
        and hmac.compare_digest(cookie.encode(), submitted.encode())
    )


class RateLimit:
    """At most `count` attempts per `window` seconds per key (the client's address),
    counted in the database, so the limit holds across every node: `storage.limits` (fixed
    windows, each key its own, opened at its first attempt)."""

    SCOPE = "driver_start"

    def __init__(
        self,
        db: Database,
        count: int,
        window: float,
        *,
        clock: Callable[[], datetime] = utc_now,
        max_keys: int = 10_000,
    ) -> None:
        self._counter = WindowCounter(
            db, self.SCOPE, limit=count, window=window, clock=clock, capacity=max_keys
        )

    async def allow(self, key: str) -> bool:
        """Count this attempt; whether it is within the limit. One write to the database,
        none for a key this node already knows to be over the limit."""
        return await self._counter.allow(key)
