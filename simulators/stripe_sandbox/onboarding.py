"""The hosted onboarding page an Account Link's `url` points to: `/connect/onboarding/{token}`.

A plain HTML form, no JavaScript, as `hosted` is for payments. Submitted with
`action=submit` it completes the connected account (see `Connect.complete_onboarding`:
`account.updated` is emitted) and answers 303 to the link's `return_url`; with
`action=leave` the owner leaves without finishing: 303 to `return_url`, the account as it
was. A link opened a second time, expired, or already submitted sends the browser to its
`refresh_url`, where the platform makes a new link, as Stripe does.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from aiohttp import web

from .connect import Connect
from .resources import JSON

_HTML = "text/html"


class OnboardingPage:
    def __init__(self, connect: Connect, commit: Callable[[], None] = lambda: None) -> None:
        self._connect = connect
        self._commit = commit

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/connect/onboarding/{token}", self.show),
            web.post("/connect/onboarding/{token}", self.submit),
        ]

    def _record(self, request: web.Request) -> JSON:
        record = self._connect.link(request.match_info["token"])
        if record is None:
            raise web.HTTPNotFound(
                text=_page("Link not found", "<p id='not-found'>This link is not valid.</p>"),
                content_type=_HTML,
            )
        return record

    async def show(self, request: web.Request) -> web.StreamResponse:
        record = self._record(request)
        opened = self._connect.open_link(record["id"])
        self._commit()
        if opened is None:
            raise web.HTTPSeeOther(record["refresh_url"])
        account = self._connect.objects.peek(record["account"])
        return web.Response(text=_form(record, account), content_type=_HTML)

    async def submit(self, request: web.Request) -> web.StreamResponse:
        record = self._record(request)
        action = (await request.post()).get("action", "submit")
        if action not in ("submit", "leave"):
            raise web.HTTPBadRequest(text="action must be submit or leave")
        used = self._connect.submit_link(record["id"], complete=action == "submit")
        self._commit()
        if used is None:
            raise web.HTTPSeeOther(record["refresh_url"])
        raise web.HTTPSeeOther(record["return_url"])


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title></head><body><main>{body}</main></body></html>"
    )


def _form(record: JSON, account: JSON) -> str:
    profile = account["business_profile"]
    name = html.escape(profile["name"] or account["email"] or account["id"])
    url = html.escape(profile["url"] or "")
    token = html.escape(record["id"])
    body = (
        f"<h1>Get paid with Stripe</h1><p id='account'>{name} ({html.escape(account['id'])})</p>"
        f"<form method='post' action='/connect/onboarding/{token}'>"
        f"<label>Business website <input name='url' value='{url}'></label>"
        "<label>Bank account (IBAN) <input name='iban' value='DE89370400440532013000'></label>"
        "<label><input type='checkbox' name='tos' checked> I accept the Stripe Connected "
        "Account Agreement</label>"
        "<button type='submit' name='action' value='submit' id='submit'>Agree and submit</button>"
        "<button type='submit' name='action' value='leave' id='leave'>Finish later</button>"
        "</form>"
    )
    return _page("Onboarding", body)
