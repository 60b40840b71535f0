"""Protections for the driver's forms: CSRF tokens and a per-address rate limit."""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from aiohttp import web

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
    """At most `count` attempts per `window` seconds per key (client address)."""

    def __init__(
        self,
        count: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self._count = count
        self._window = window
        self._clock = clock
        self._max_keys = max_keys
        self._attempts: OrderedDict[str, deque[float]] = OrderedDict()

    def allow(self, key: str) -> bool:
        now = self._clock()
        attempts = self._attempts.pop(key, None) or deque()
        while attempts and attempts[0] <= now - self._window:
            attempts.popleft()
        allowed = len(attempts) < self._count
        if allowed:
            attempts.append(now)
        self._attempts[key] = attempts
        # Memory stays bounded however many addresses knock: forget the longest quiet.
        while len(self._attempts) > self._max_keys:
            self._attempts.popitem(last=False)
        return allowed
