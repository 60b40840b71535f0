"""Logging in and out of the console.

The login form carries a token also set as a cookie (SameSite=Strict): a page of another
site can neither read the token nor send the cookie, so it cannot post the form (login
CSRF, which would log a victim into the attacker's account). Failed logins are counted per
address in the shared database (`FailureThrottle`, as for chargers' passwords): after
`console.login_attempts` within `console.login_window` seconds the address is refused until
the window ends, even with the right password. A login sets the session cookie (HttpOnly,
SameSite=Strict, Secure when the browser came over TLS: `Console.over_tls`) and lasts
`console.session_hours`; logging out ends it in the database, not just in the browser.
"""

from __future__ import annotations

import hmac
import math
import secrets
from urllib.parse import urlsplit

import structlog
from aiohttp import web

from csms.console.framework import COOKIE, LOGIN_PATH, Console
from csms.ocpp16.auth import FailureThrottle, throttle_key
from csms.store.users import UserStore
from httpapi.forwarded import HEADER, TrustedProxies, client_address

log = structlog.get_logger()
LOGIN_COOKIE = "csms_console_login"


class LoginPages:
    def __init__(
        self,
        console: Console,
        users: UserStore,
        throttle: FailureThrottle,
        proxies: TrustedProxies,
        lifetime_seconds: float,
    ) -> None:
        self._console = console
        self._users = users
        self._throttle = throttle
        self._proxies = proxies
        self._lifetime = lifetime_seconds

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self.root),
            web.get(LOGIN_PATH, self.form),
            web.post(LOGIN_PATH, self.login),
            web.post("/console/logout", self.logout),
        ]

    async def root(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/console")

    async def form(
        self,
        request: web.Request,
        *,
        message: str | None = None,
        status: int = 200,
        name: str = "",
    ) -> web.Response:
        token = secrets.token_urlsafe(24)
        response = self._console.render(
            request, "login.html", title="Log in", status=status, login_token=token,
            message=message, next=_next(request.query.get("next")),
            name=name,
        )  # fmt: skip
        response.set_cookie(
            LOGIN_COOKIE, token, path=LOGIN_PATH, httponly=True, samesite="Strict",
            secure=self._console.over_tls(request),
        )  # fmt: skip
        return response

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
        expected, sent = request.cookies.get(LOGIN_COOKIE, ""), str(form.get("token", ""))
        if not expected or not hmac.compare_digest(expected, sent):
            return await self.form(
                request, status=403, name=name,
                message="This login form has expired or did not come from this console:"
                " try again.",
            )  # fmt: skip
        address = throttle_key(
            client_address(request.remote, request.headers.getall(HEADER, []), self._proxies)
        )
        wait = await self._throttle.retry_after(address)
        if wait > 0:
            log.warning("console.login_throttled", remote=address)
            minutes = max(1, math.ceil(wait / 60))
            return await self.form(
                request, status=429, name=name,
                message=f"Too many failed logins from your address: try again in {minutes}"
                f" minute{'s' if minutes > 1 else ''}.",
            )  # fmt: skip
        with self._throttle.guessing(address):
            user = await self._users.authenticate(name, password) if name and password else None
            if user is None:
                await self._throttle.record_failure(address)
        if user is None:
            log.warning("console.login_failed", user=name[:64], remote=address)
            return await self.form(
                request, status=401, message="Wrong name or password.", name=name
            )
        token, _ = await self._console.logins.begin(user.name)
        log.info("console.login", user=user.name, remote=address)
        redirect = web.HTTPSeeOther(_next(str(form.get("next", ""))))
        redirect.set_cookie(
            COOKIE, token, path="/console", httponly=True, samesite="Strict",
            secure=self._console.over_tls(request), max_age=int(self._lifetime),
        )  # fmt: skip
        redirect.del_cookie(LOGIN_COOKIE, path=LOGIN_PATH)
        raise redirect

    async def logout(self, request: web.Request) -> web.Response:
        await self._console.form(request, "viewer")
        token = request.cookies.get(COOKIE, "")
        await self._console.logins.end(token)
        log.info("console.logout", user=self._console.user(request).name)
        redirect = self._console.see_other(LOGIN_PATH, "Logged out.")
        redirect.del_cookie(COOKIE, path="/console")
        raise redirect


def _next(target: str | None) -> str:
    """Where to go after logging in: a console page of this site, nothing else."""
    if not target:
        return "/console"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console") or "\\" in target:
        return "/console"
    return target
