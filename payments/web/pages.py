"""The driver's pages, served by the server itself with no external assets.

A driver at a charger scans the QR code (`/c/{charger}/{connector}`), sees the price and
the hold, pays on Stripe Checkout, comes back to a page that follows the charge live
(server-sent events; without JavaScript it still works, refreshed by the browser) and
ends on a printable receipt. Every refusal is a page that says what happened. A payment
left unfinished is the driver's to continue or cancel (the session cookie), never a "busy"
of their own; to other drivers the busy page says how long it can last and reloads itself.
Pages showing live state are not cached: Back asks again.

Each page is in the driver's language (`language.choose`: a `?lang=` link, remembered in a
cookie, or the browser's Accept-Language), with a switch to the others on every page.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import quote

import orjson
import structlog
from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape
from yarl import URL

from httpapi.forwarded import HEADER, TrustedProxies, client_address
from payments.http import valid_email
from payments.ports import ConnectorDetails
from payments.pricing import hold_amount
from payments.reservation import Hold, Reservation
from payments.service import Payments, SessionRefused
from payments.views import stage
from payments.web import language
from payments.web.describe import tariff_in_words
from payments.web.guards import RateLimit, csrf_ok, csrf_token, remember_csrf
from payments.web.operator import Operator, site_named
from payments.web.pending import checkout_link, minutes_left, refresh_after
from payments.web.receipt import receipt_values, tax_rate
from payments.web.session_view import ChargerState, driver_view
from payments.web.texts import Texts

log = structlog.get_logger()

SESSION_COOKIE = "csms_session"
# One server-sent-events connection is held at most this long; the browser reconnects.
_STREAM_SECONDS = 600
# A language picked with the switch is remembered for a year.
_LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600
# Why a connector is busy (`Payments.busy_reason`), in the driver's words.
_BUSY_WORDS = {
    "the connector has not reported its status": "busy.no_status",
    "a charging session is in progress": "busy.in_progress",
    "reserved by another driver": "busy.reserved",
}
_BUSY_STATUS = "the connector is "


class DriverPages:
    def __init__(
        self,
        payments: Payments,
        *,
        rate_limit: RateLimit,
        trusted_proxies: TrustedProxies | None = None,
        enabled: bool = True,
        update_interval: float = 1.0,
        operator: Operator | None = None,
    ) -> None:
        self._operator = operator or Operator()
        self._payments = payments
        self._rate_limit = rate_limit
        self._proxies = trusted_proxies or TrustedProxies()
        self._enabled = enabled
        self._update_interval = update_interval
        self._closing = asyncio.Event()
        self._templates = Environment(
            loader=PackageLoader("payments.web"),
            autoescape=select_autoescape(["html"]),
        )

    def close(self) -> None:
        """Let live streams end, so the HTTP server can shut down without waiting for them."""
        self._closing.set()

    def register(self, app: web.Application) -> None:
        app.router.add_get("/start", self.start_page)
        app.router.add_get("/c/{cp}/{conn}", self.short_link)
        app.router.add_get("/c/{cp}", self.short_link)
        app.router.add_post("/start", self.start)
        app.router.add_get("/pay/{token}/success", self.success)
        app.router.add_get("/pay/{token}/cancel", self.cancelled)
        app.router.add_get("/session/{token}", self.session)
        app.router.add_get("/session/{token}/events", self.events)
        app.router.add_post("/session/{token}/stop", self.stop)
        app.router.add_get("/receipt/{token}", self.receipt)

    # -- rendering

    def _render(
        self, request: web.Request, template: str, status: int = 200, **values: Any
    ) -> web.Response:
        csrf = csrf_token(request)
        t = texts_for(request)
        html = self._templates.get_template(template).render(
            t=t,
            lang=t.language,
            languages=_switch(request, t.language, values.get("back")),
            csrf=csrf,
            **values,
        )
        response = web.Response(text=html, status=status, content_type="text/html")
        response.headers["Content-Language"] = t.language
        response.headers["Vary"] = "Accept-Language, Cookie"
        # Live state: a Back must ask again, never show a stale "Available" or "busy".
        response.headers["Cache-Control"] = "no-store"
        remember_csrf(response, csrf)
        asked = language.supported(request.query.get(language.PARAM))
        if asked is not None:
            response.set_cookie(
                language.COOKIE,
                asked,
                max_age=_LANGUAGE_COOKIE_SECONDS,
                httponly=True,
                samesite="Lax",
                path="/",
            )
        return response

    def _problem(
        self, request: web.Request, status: int, kind: str, back: str | None = None, **words: Any
    ) -> web.Response:
        t = texts_for(request)
        if "reason" in words:
            words["reason"] = _busy_words(words["reason"], t)
        return self._render(
            request,
            "message.html",
            status=status,
            title=t(f"problem.{kind}.title"),
            text=t(f"problem.{kind}.text", **words),
            problem=True,
            back=back,
        )

    # -- start

    async def short_link(self, request: web.Request) -> web.Response:
        return await self._start_page(
            request, request.match_info["cp"], request.match_info.get("conn", "1")
        )

    async def start_page(self, request: web.Request) -> web.Response:
        return await self._start_page(
            request, request.query.get("cp", ""), request.query.get("conn", "1")
        )

    async def _start_page(self, request: web.Request, charger_id: str, conn: str) -> web.Response:
        connector = _connector_number(conn)
        t = texts_for(request)
        info = await self._payments.charger_info(charger_id) if charger_id else None
        if info is None or connector is None:
            return self._problem(request, 404, "unknown", charger=charger_id or "?")
        name = info["name"] or charger_id
        if not self._enabled:
            return self._problem(request, 503, "disabled")
        own, token = await self._own(request)
        ongoing = f"/session/{quote(token)}" if own else None
        here = own is not None and (own.charger_id, own.connector_id) == (charger_id, connector)
        if ongoing and not self._payments.is_online(charger_id):
            text = t("problem.offline.ongoing", charger=name)
            return self._way_back(request, 503, ongoing, t("problem.offline.title"), text)
        if here and own and checkout_link(own):
            return self._unpaid_page(request, own, token, name)
        if here and ongoing:
            return self._way_back(request, 200, ongoing, t("session.title"), t("start.here"))
        if not self._payments.is_online(charger_id):
            return self._problem(request, 503, "offline", charger=name)
        busy = await self._payments.busy_reason(charger_id, connector)
        if busy and not ongoing:
            return await self._busy(request, charger_id, name, connector, busy)
        tariff = await self._payments.tariff_for(charger_id, connector)
        status = self._payments.connector_status(charger_id, connector)
        return self._render(
            request,
            "start.html",
            title=f"{t('start.title')}: {name}",
            charger_id=charger_id,
            charger_name=name,
            location=info["location"],
            model=info.get("model"),
            plug=_plug_words(info.get("connectors", {}).get(connector), t),
            connector=connector,
            connector_status=_status_words(status, t, t("status.unknown")),
            price_words=tariff_in_words(tariff, t),
            hold=t.fmt.money(hold_amount(tariff), tariff.currency),
            max_energy=t.fmt.energy_limit(tariff.max_energy_wh) if tariff.max_energy_wh else None,
            ongoing=ongoing,
            operator=self._operator.at_site(info.get("site")),
            site=site_named(info),
            time_zone=info.get("time_zone"),
            vat=tax_rate(tariff.tax_rate_basis_points, t) if tariff.tax_rate_basis_points else None,
        )

    def _way_back(
        self, request: web.Request, status: int, session: str, title: str, text: str
    ) -> web.Response:
        """Instead of the start page: the way back to the driver's own session."""
        t = texts_for(request)
        return self._render(
            request,
            "message.html",
            status=status,
            title=title,
            text=text,
            problem=status >= 400,
            back=session,
            back_label=t("start.view_session"),
        )

    async def _own(self, request: web.Request) -> tuple[Reservation | None, str]:
        """The driver's own session in progress (from the cookie) and its token."""
        token = request.cookies.get(SESSION_COOKIE, "")
        r = await self._payments.by_token(token) if token else None
        return (r, token) if r is not None and r.active else (None, "")

    def _unpaid_page(
        self, request: web.Request, r: Reservation, token: str, charger_name: str
    ) -> web.Response:
        """The driver's own unfinished payment at this connector: back to Checkout, or cancel."""
        t = texts_for(request)
        return self._render(
            request,
            "unpaid.html",
            title=t("unpaid.title"),
            text=t(
                "unpaid.text",
                connector=r.connector_id,
                charger=charger_name,
                minutes=minutes_left(r, self._payments.clock()),
            ),
            checkout=checkout_link(r),
            token=token,
        )

    async def _busy(
        self,
        request: web.Request,
        charger_id: str,
        name: str,
        connector: int,
        reason: str,
        back: str | None = None,
    ) -> web.Response:
        """Connector busy: why, how long an unpaid reservation can still hold it, and a page
        that reloads itself so that it becomes the start page once the connector is free."""
        t = texts_for(request)
        holder = await self._payments.holding(charger_id, connector)
        now = self._payments.clock()
        until = None
        if holder is not None and checkout_link(holder):
            until = t("busy.unpaid_until", minutes=minutes_left(holder, now))
        return self._render(
            request,
            "message.html",
            status=409,
            title=t("problem.busy.title"),
            text=t(
                "problem.busy.text",
                charger=name,
                connector=connector,
                reason=_busy_words(reason, t),
            ),
            detail=until,
            problem=True,
            back=back,
            refresh=refresh_after(holder, now),
            refresh_to=f"/c/{quote(charger_id, safe='')}/{connector}",
        )

    async def start(self, request: web.Request) -> web.Response:
        form = await request.post()
        if not csrf_ok(request, form.get("csrf")):
            return self._problem(request, 403, "expired_form")
        charger_id = str(form.get("cp", ""))
        connector = _connector_number(str(form.get("conn", "")))
        back = f"/c/{quote(charger_id, safe='')}/{connector or 1}"
        t = texts_for(request)
        if connector is None or not charger_id:
            return self._problem(request, 400, "invalid", message=t("invalid.connector"), back=back)
        own, token = await self._own(request)
        if own is not None and (own.charger_id, own.connector_id) == (charger_id, connector):
            # The driver's own reservation holds it (a Back to an older page): lead there.
            raise web.HTTPSeeOther(checkout_link(own) or f"/session/{quote(token)}")
        email = str(form.get("email", "")).strip() or None
        if email is not None and not valid_email(email):
            return self._problem(
                request, 400, "invalid", message=t("invalid.email", email=email), back=back
            )
        client = client_address(request.remote, request.headers.getall(HEADER, []), self._proxies)
        if not await self._rate_limit.allow(client):
            log.warning("payments.rate_limited", remote=client)
            return self._problem(request, 429, "too_many", back=back)
        try:
            r, token = await self._payments.start_session(
                charger_id, connector, email, locale=t.language
            )
        except SessionRefused as refused:
            return await self._refused(request, refused, charger_id, connector, back)
        target = r.checkout_url if r.checkout_url and r.hold is Hold.NONE else f"/session/{token}"
        response = web.HTTPSeeOther(target)
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Lax", path="/")
        raise response

    async def _refused(
        self, request: web.Request, refused: SessionRefused, charger: str, connector: int, back: str
    ) -> web.Response:
        info = await self._payments.charger_info(charger)
        name = (info or {}).get("name") or charger  # drivers read the name, as on the start page
        if refused.status == "ChargerOffline":
            return self._problem(request, 503, "offline", charger=name, back=back)
        if refused.status == "ConnectorBusy":
            return await self._busy(request, charger, name, connector, refused.detail, back)
        return self._problem(request, 503, "unavailable", back=back)

    # -- back from Checkout

    async def _reservation(self, request: web.Request) -> Reservation | None:
        return await self._payments.by_token(request.match_info["token"])

    def _not_found(self, request: web.Request) -> web.Response:
        return self._problem(request, 404, "not_found")

    async def success(self, request: web.Request) -> web.Response:
        r = await self._reservation(request)
        if r is None:
            return self._not_found(request)
        await self._payments.confirm(r.id, actor="driver")
        raise web.HTTPSeeOther(f"/session/{request.match_info['token']}")

    async def cancelled(self, request: web.Request) -> web.Response:
        r = await self._reservation(request)
        if r is None:
            return self._not_found(request)
        await self._payments.cancel(r.id, actor="driver")
        t = texts_for(request)
        return self._render(
            request,
            "message.html",
            title=t("cancelled.title"),
            text=t("cancelled.text"),
            problem=False,
            back=f"/c/{quote(r.charger_id, safe='')}/{r.connector_id}",
        )

    # -- the session

    async def session(self, request: web.Request) -> web.Response:
        r = await self._reservation(request)
        if r is None:
            return self._not_found(request)
        token = request.match_info["token"]
        info = await self._payments.charger_info(r.charger_id)
        t = texts_for(request)
        view = self.driver_view(r, t, self._operator.at_site((info or {}).get("site")))
        response = self._render(
            request,
            "session.html",
            title=t("session.title"),
            token=token,
            charger_name=(info or {}).get("name") or r.charger_id,
            connector=r.connector_id,
            view=view,
            live=not view["final"],
        )
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Lax", path="/")
        return response

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: the session's view every second while it changes."""
        r = await self._reservation(request)
        if r is None:
            return self._not_found(request)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        t = texts_for(request)
        info = await self._payments.charger_info(r.charger_id)
        contact = self._operator.at_site((info or {}).get("site"))
        last = None
        async with asyncio.timeout(_STREAM_SECONDS):
            while True:
                current = await self._payments.get(r.id)
                assert current is not None
                view = self.driver_view(current, t, contact)
                if view != last:
                    await response.write(b"data: " + orjson.dumps(view) + b"\n\n")
                    last = view
                transport = request.transport
                if view["final"] or transport is None or transport.is_closing():
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self._update_interval)
                if self._closing.is_set():
                    break
        return response

    async def stop(self, request: web.Request) -> web.Response:
        r = await self._reservation(request)
        if r is None:
            return self._not_found(request)
        form = await request.post()
        if not csrf_ok(request, form.get("csrf")):
            return self._problem(
                request, 403, "expired_form", back=f"/session/{request.match_info['token']}"
            )
        await self._payments.stop(r.id, actor="driver")
        raise web.HTTPSeeOther(f"/session/{request.match_info['token']}")

    def driver_view(
        self, r: Reservation, t: Texts, operator: Operator | None = None
    ) -> dict[str, Any]:
        """The session's view; the support contact `operator`'s (its site's), else ours."""
        charger = ChargerState(
            online=self._payments.is_online(r.charger_id),
            connector_status=self._payments.connector_status(r.charger_id, r.connector_id),
            support_contact=(operator or self._operator).support_contact,
        )
        return driver_view(r, self._payments.clock(), charger, t)

    # -- the receipt

    async def receipt(self, request: web.Request) -> web.Response:
        r = await self._reservation(request)
        if r is None:
            return self._not_found(request)
        if stage(r) != "done":
            raise web.HTTPSeeOther(f"/session/{request.match_info['token']}")
        info = await self._payments.charger_info(r.charger_id)
        t = texts_for(request)
        row = await self._payments.row(r.id)
        refunds = await self._payments.refunds_of(r.id)
        operator = self._operator.at_site((info or {}).get("site"))
        return self._render(
            request,
            "receipt.html",
            title=t("receipt.title"),
            charger_name=(info or {}).get("name") or r.charger_id,
            site=site_named(info),
            connector=r.connector_id,
            email=row["email"] if row else None,
            **receipt_values(r, refunds, t, operator, (info or {}).get("time_zone")),
        )


def _connector_number(text: str) -> int | None:
    return int(text) if text.isdigit() and 1 <= int(text) <= 99 else None


def texts_for(request: web.Request) -> Texts:
    """The texts and formats in the language this request's page is to be in."""
    return Texts(
        language.choose(request.query, request.cookies, request.headers.get("Accept-Language"))
    )


def _switch(request: web.Request, current: str, back: str | None) -> list[dict[str, Any]]:
    """A link per language to this same page (for a form's answer, the page to go back to)."""
    target = request.rel_url if request.method == "GET" or not back else URL(back)
    return [
        {
            "code": code,
            "name": language.NAMES[code],
            "href": str(target.update_query({language.PARAM: code})),
            "current": code == current,
        }
        for code in language.LANGUAGES
    ]


def _plug_words(details: ConnectorDetails | None, t: Texts) -> str | None:
    """The connector's plug and maximum power from the charger's registration: "Type 2 · up
    to 22 kW"; None when the operator entered none."""
    if not details:
        return None
    key = f"plug.{details['plug_type']}"
    plug = t(key) if t.has(key) else t("plug.Other")
    return t("start.plug", plug=plug, power=t.fmt.power_limit(details["max_power_kw"]))


def _status_words(status: str | None, t: Texts, otherwise: str) -> str:
    key = f"status.{status}"
    return t(key) if t.has(key) else otherwise


def _busy_words(reason: str, t: Texts) -> str:
    """Why a connector is busy, in the page's language (in general words when not one of the
    known: an internal reason is not for drivers)."""
    if reason in _BUSY_WORDS:
        return t(_BUSY_WORDS[reason])
    if reason.startswith(_BUSY_STATUS):
        status = reason.removeprefix(_BUSY_STATUS)
        return t("busy.status", status=_status_words(status, t, t("status.unknown")))
    return t("busy.other")
