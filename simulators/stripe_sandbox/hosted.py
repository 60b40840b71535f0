"""The hosted payment page at `session.url`: `/pay/{session_id}` and its 3D Secure step.

Plain HTML forms, no JavaScript: the browser posts the card fields, the sandbox checks
them like Stripe's page does, runs the payment attempt and answers with the next page or
a 303 redirect to the merchant's `success_url`.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from . import pages
from .cards import CardInputError, read_card
from .resources import JSON
from .state import Account
from .state_types import PaymentOutcome

_HTML = "text/html"


class HostedPage:
    def __init__(self, account: Account, commit: Callable[[], None] = lambda: None) -> None:
        self._account = account
        # Makes a payment attempt durable before the page answers.
        self._commit = commit

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/pay/{session_id}", self.show),
            web.post("/pay/{session_id}", self.submit),
            web.get("/pay/{session_id}/authenticate", self.show_authentication),
            web.post("/pay/{session_id}/authenticate", self.submit_authentication),
        ]

    def _session(self, request: web.Request) -> JSON:
        session = self._account.objects.get(request.match_info["session_id"])
        if session is None or session["object"] != "checkout.session":
            raise web.HTTPNotFound(
                text=pages.message(
                    "Something went wrong",
                    "The page you were looking for could not be found.",
                    element_id="not-found",
                ),
                content_type=_HTML,
            )
        return session

    def _form(
        self,
        session: JSON,
        *,
        status: int = 200,
        error: str | None = None,
        values: dict[str, str] | None = None,
    ) -> web.Response:
        line_items = self._account.line_items(session["id"])
        html = pages.checkout(session, line_items, error=error, values=values)
        return web.Response(text=html, status=status, content_type=_HTML)

    async def show(self, request: web.Request) -> web.Response:
        session = self._session(request)
        if session["status"] != "open":
            return web.Response(text=pages.closed(session), content_type=_HTML)
        return self._form(session)

    async def submit(self, request: web.Request) -> web.StreamResponse:
        session = self._session(request)
        if session["status"] != "open":
            return web.Response(text=pages.closed(session), status=409, content_type=_HTML)
        form = {
            key: value for key, value in (await request.post()).items() if isinstance(value, str)
        }
        values = {k: form.get(k, "") for k in ("email", "cardExpiry", "billingName")}
        try:
            card = read_card(form, self._account.clock.now())
        except CardInputError as exc:
            return self._form(session, status=400, error=exc.message, values=values)
        outcome = self._account.attempt_payment(session["id"], card)
        self._commit()
        return self._answer(session, outcome, values)

    async def show_authentication(self, request: web.Request) -> web.Response:
        session = self._session(request)
        if session["status"] != "open":
            return web.Response(text=pages.closed(session), content_type=_HTML)
        intent_id = session["payment_intent"]
        if intent_id is None or self._account.objects[intent_id]["status"] != "requires_action":
            raise web.HTTPSeeOther(f"/pay/{session['id']}")
        return web.Response(text=pages.authenticate(session), content_type=_HTML)

    async def submit_authentication(self, request: web.Request) -> web.StreamResponse:
        session = self._session(request)
        action = (await request.post()).get("action")
        if action not in ("complete", "fail"):
            raise web.HTTPBadRequest(text="action must be complete or fail")
        outcome = self._account.authenticate(session["id"], success=action == "complete")
        self._commit()
        return self._answer(session, outcome, {})

    def _answer(
        self, session: JSON, outcome: PaymentOutcome, values: dict[str, str]
    ) -> web.StreamResponse:
        if outcome.status == "authorized":
            success_url = session["success_url"]
            if success_url is None:
                return web.Response(
                    text=pages.message(
                        "Thanks for your payment",
                        "Your payment was accepted. You can close this page.",
                        element_id="paid",
                    ),
                    content_type=_HTML,
                )
            raise web.HTTPSeeOther(success_url.replace("{CHECKOUT_SESSION_ID}", session["id"]))
        if outcome.status == "requires_action":
            raise web.HTTPSeeOther(f"/pay/{session['id']}/authenticate")
        if outcome.status == "declined":
            return self._form(session, status=402, error=outcome.message, values=values)
        if session["status"] == "open":
            # Nothing waits for authentication (any more): back to the form.
            raise web.HTTPSeeOther(f"/pay/{session['id']}")
        return web.Response(text=pages.closed(session), status=409, content_type=_HTML)
