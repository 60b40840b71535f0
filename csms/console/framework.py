"""The console's frame: who is logged in, what their role allows, and how pages answer.

Every page under /console but the login page and the static files needs a login (the
middleware sends anyone else to the login page, or answers a non-GET with a 401 page
linking to it). A page asks
`require(request, role)` (403 page naming the role otherwise) and a form handler
`await form(request, role)`, which checks the role and the login's CSRF token before
anything changes. Pages are Jinja2 templates extending base.html, rendered by `render`;
after a POST a page redirects (`see_other`) with a one-time message (the flash, kept in a
cookie until the next page shows it).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import quote, unquote, urlsplit

from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape
from multidict import MultiDict, MultiDictProxy

from csms.console.logins import Logins
from csms.roles import ROLES, Role, allows
from httpapi.forwarded import TrustedProxies

COOKIE = "csms_console"
FLASH_COOKIE = "csms_console_flash"
LOGIN_PATH = "/console/login"
_OPEN = (LOGIN_PATH, "/console/static/")

# (path, label, role needed to see it in the navigation)
NAVIGATION: tuple[tuple[str, str, Role], ...] = (
    ("/console", "Overview", "viewer"),
    ("/console/chargers", "Chargers", "viewer"),
    ("/console/sessions", "Sessions", "viewer"),
    ("/console/tariffs", "Tariffs", "viewer"),
    ("/console/sites", "Sites & owners", "viewer"),
    ("/console/id-tags", "Id tags", "viewer"),
    ("/console/users", "Users", "admin"),
    ("/console/audit", "Audit", "viewer"),
    ("/console/reports", "Reports", "finance"),
    ("/console/qr", "QR labels", "viewer"),
)


@dataclass(frozen=True)
class ConsoleUser:
    name: str
    role: Role
    csrf: str  # this login's form token

    @property
    def actor(self) -> str:
        """Who acted, for services and audit lines."""
        return f"user:{self.name}"


# The user of a request, set by the middleware.
USER = web.RequestKey("console_user", ConsoleUser)
# Finds the user of a login: (name) -> its role, or None when unknown or disabled.
RoleOf = Callable[[str], Awaitable[Role | None]]


def moment(value: Any) -> str:
    """A stored time (datetime or text) as "2026-12-01 10:00:05 UTC"."""
    if value is None or value == "":
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return text.replace("T", " ").replace("+00:00", "").removesuffix("Z")[:19] + " UTC"


class Console:
    def __init__(
        self, logins: Logins, role_of: RoleOf, proxies: TrustedProxies | None = None
    ) -> None:
        self.logins = logins
        self._role_of = role_of
        self._proxies = proxies or TrustedProxies()
        self._templates = Environment(
            loader=PackageLoader("csms.console", "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._templates.filters["moment"] = moment  # a stored time as a person reads it

    # -- who is asking

    def user(self, request: web.Request) -> ConsoleUser:
        return request[USER]

    def require(self, request: web.Request, role: Role) -> ConsoleUser:
        user = self.user(request)
        if not allows(user.role, role):
            raise self.refusal(request, role)
        return user

    async def form(self, request: web.Request, role: Role) -> MultiDictProxy[str]:
        """The posted form, once the role and the login's CSRF token are checked."""
        user = self.require(request, role)
        form = await request.post()
        sent = form.get("csrf")
        if not isinstance(sent, str) or not hmac.compare_digest(sent, user.csrf):
            raise self.error(
                request, 403, "This form has expired or did not come from this console:"
                " go back, reload the page and try again.",
            )  # fmt: skip
        return MultiDictProxy(MultiDict((k, v) for k, v in form.items() if isinstance(v, str)))

    def refusal(self, request: web.Request, role: Role) -> web.HTTPForbidden:
        user = self.user(request)
        return web.HTTPForbidden(
            text=self._page(
                request, "problem.html", title="Not allowed", status_code=403,
                message=f"This needs the role {role}; you are {user.name} ({user.role}).",
            ),
            content_type="text/html",
        )  # fmt: skip

    # -- answers

    def render(
        self, request: web.Request, template: str, *, title: str, status: int = 200, **context: Any
    ) -> web.Response:
        response = web.Response(
            text=self._page(request, template, title=title, **context),
            status=status,
            content_type="text/html",
        )
        if request.cookies.get(FLASH_COOKIE):
            response.del_cookie(FLASH_COOKIE, path="/console")
        return response

    def see_other(self, location: str, flash: str | None = None) -> web.HTTPSeeOther:
        redirect = web.HTTPSeeOther(location)
        if flash:  # a message, no secret: the same cookie over http and https
            redirect.set_cookie(
                FLASH_COOKIE, quote(flash[:300]), path="/console", httponly=True,
                samesite="Strict",
            )  # fmt: skip
        return redirect

    def over_tls(self, request: web.Request) -> bool:
        """Whether the browser reached the console over TLS: directly, or through a trusted
        proxy (`server.trusted_proxies`) that says so in `X-Forwarded-Proto`. Cookies are
        then Secure: never sent over plain http."""
        if request.secure:
            return True
        try:
            peer = ipaddress.ip_address(request.remote or "")
        except ValueError:
            return False
        forwarded = request.headers.get("X-Forwarded-Proto", "").strip().lower()
        return peer in self._proxies and forwarded == "https"

    def problem(
        self, request: web.Request, status: int, message: str, back: str | None = None
    ) -> web.Response:
        """A plain page saying what went wrong, with a link `back` (else to the overview)."""
        return self.render(
            request, "problem.html", title=_TITLES.get(status, "Error"), status=status,
            message=message, status_code=status, back=back,
        )  # fmt: skip

    def error(
        self, request: web.Request, status: int, message: str, back: str | None = None
    ) -> web.HTTPException:
        """The same page as `problem`, to raise."""
        error = web.HTTPException(
            text=self._page(
                request, "problem.html", title=_TITLES.get(status, "Error"), message=message,
                status_code=status, back=back,
            ),
            content_type="text/html",
        )  # fmt: skip
        error.set_status(status)
        return error

    def not_found(self, request: web.Request, what: str) -> NoReturn:
        raise self.error(request, 404, f"No {what} of that name.")

    def _page(self, request: web.Request, template: str, **context: Any) -> str:
        user = request.get(USER)
        flash = request.cookies.get(FLASH_COOKIE)
        return (
            self._templates.get_template(template)
            .render(
                user=user,
                csrf=user.csrf if user else "",
                allows=(lambda needed: user is not None and allows(user.role, needed)),
                navigation=[
                    (path, label) for path, label, role in NAVIGATION
                    if user is not None and allows(user.role, role)
                ],
                path=request.path,
                flash=unquote(flash)[:300] if flash else None,
                roles=ROLES,
                **context,
            )
        )  # fmt: skip

    # -- the login check

    def middleware(self) -> Callable[..., Awaitable[web.StreamResponse]]:
        @web.middleware
        async def console_login(
            request: web.Request,
            handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        ) -> web.StreamResponse:
            path = request.path
            if not (path == "/console" or path.startswith("/console/")):
                return await handler(request)
            if (nul := await _nul_field(request)) is not None:
                raise self.error(
                    request, 400, f"{nul}: contains a NUL character, which no field may hold;"
                    " nothing was changed.",
                )  # fmt: skip
            if path.startswith(_OPEN):
                return await handler(request)
            user = await self._logged_in(request)
            if user is None:
                if request.method in ("GET", "HEAD") and path != "/console/events":
                    raise web.HTTPSeeOther(f"{LOGIN_PATH}?next={quote(request.path_qs, safe='')}")
                raise self._login_ended(request)
            request[USER] = user
            try:
                return await handler(request)
            except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as unrouted:
                raise self._no_page(request, unrouted.status) from None

        return console_login

    def _no_page(self, request: web.Request, status: int) -> web.HTTPException:
        """aiohttp's bare 404/405 for an address with no page (mistyped, or a form's address
        opened again) as a console page, leading back to the page above it."""
        above = request.path.rstrip("/").rsplit("/", 1)[0]
        back = above if above.startswith("/console") else "/console"
        if status == 405:
            message = "This address takes a form, not a visit: nothing to show here."
            return self.error(request, 405, message, back=back)
        return self.error(request, 404, "No page at this address.", back=back)

    def _login_ended(self, request: web.Request) -> web.HTTPException:
        """A form sent from a tab whose login has ended (logged out elsewhere, expired): a
        page saying so, with a link to log in and come back to the form's page. Logging out
        again is simply the login page."""
        if request.path == "/console/logout":
            return web.HTTPSeeOther(LOGIN_PATH)
        came_from = urlsplit(request.headers.get("Referer", ""))
        page = came_from.path + (f"?{came_from.query}" if came_from.query else "")
        back = (
            f"{LOGIN_PATH}?next={quote(page, safe='/')}"
            if page.startswith("/console")
            else LOGIN_PATH
        )
        return self.error(
            request, 401, "Your login has ended (you logged out, or it expired): nothing was"
            " changed. Log in again, then send the form again.", back=back,
        )  # fmt: skip

    async def _logged_in(self, request: web.Request) -> ConsoleUser | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        login = await self.logins.find(token)
        if login is None:
            return None
        role = await self._role_of(login.user_name)
        if role is None:  # disabled or removed since
            return None
        return ConsoleUser(login.user_name, role, login.csrf)


async def _nul_field(request: web.Request) -> str | None:
    """The first field of the query or the posted form holding a NUL character: no text
    column of PostgreSQL can store one, and no operator means one."""
    fields = [*request.query.items()]
    if request.method == "POST":
        fields += [(k, v) for k, v in (await request.post()).items() if isinstance(v, str)]
    return next((name for name, value in fields if "\x00" in value or "\x00" in name), None)


_TITLES = {
    400: "Not valid",
    401: "Login ended",
    403: "Not allowed",
    404: "Not found",
    405: "Not a page",
    409: "Not possible now",
}
