"""The console's owner actions (listed on `/console/sites`): add an owner and get the link to
Stripe's hosted onboarding, a new link, a refresh of Stripe's flags; and an owner's monthly
statement, printable or as CSV.

Owners go through `payments.onboarding.Onboarding`, as the management API's do, with the
API's model (`NewOwner`) and its e-mail check: a refused form is shown again naming the
field, and nothing is created. Stripe's onboarding links are single use and short-lived, so
the page that makes one shows it once and it is not kept. Statements are the ones the API
serves (payments.statements_store's book, payments.statements_render's CSV and page), for
finance (and admin), in the operator's time zone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from csms.config_values import operator
from csms.console.admin_forms import Errors, check
from csms.console.framework import Console
from payments.http import valid_email
from payments.onboarding import Onboarding, OwnerRefused, OwnerUnavailable
from payments.owners import Owner
from payments.owners_http import NewOwner
from payments.statements import Month, MonthError, Statement, StatementDoesNotAddUp
from payments.statements_render import to_csv, to_html
from payments.statements_store import StatementBook
from payments.web.operator import Operator
from storage.clock import to_text

if TYPE_CHECKING:
    from csms.app import CentralSystem

PATH = "/console/owners"
SITES = "/console/sites"
OWNER_FIELDS = ("id", "name", "email", "country")


class OwnerPages:
    def __init__(
        self, console: Console, onboarding: Onboarding, book: StatementBook, operator: Operator
    ) -> None:
        self._console = console
        self._onboarding = onboarding
        self._book = book
        self._operator = operator

    def routes(self) -> list[web.RouteDef]:
        statements = PATH + "/{owner}/statements/{month}"
        return [
            web.get(f"{PATH}/new", self.new),
            web.post(PATH, self.add),
            web.post(PATH + "/{owner}/onboarding-link", self.link),
            web.post(PATH + "/{owner}/refresh", self.refresh),
            web.get(f"{PATH}/statement", self.choose_statement),
            web.get(statements + ".html", self.statement_html),
            web.get(statements + ".csv", self.statement_csv),
        ]

    async def new(self, request: web.Request) -> web.Response:
        self._console.require(request, "admin")
        return self._new_page(request, {}, {})

    def _new_page(
        self, request: web.Request, entered: dict[str, str], errors: Errors, status: int = 200
    ) -> web.Response:
        return self._console.render(
            request, "owner_new.html", title="Add an owner", status=status,
            entered=entered, errors=errors,
        )  # fmt: skip

    async def add(self, request: web.Request) -> web.Response:
        """Add the owner (and its Stripe account), then show its first onboarding link."""
        form = await self._console.form(request, "admin")
        user = self._console.user(request)
        entered = {name: form.get(name, "").strip() for name in OWNER_FIELDS}
        body = check(NewOwner, entered)
        if isinstance(body, NewOwner) and not valid_email(body.email):
            body = {"email": "not an e-mail address"}
        if not isinstance(body, NewOwner):
            return self._new_page(request, entered, body, status=400)
        try:
            owner = await self._onboarding.add(
                body.id, body.name, body.email, body.country, user.actor
            )
        except OwnerRefused as refused:
            errors = {refused.field or "form": refused.message}
            return self._new_page(request, entered, errors, status=refused.status)
        except OwnerUnavailable as error:
            message = f"{error}. The owner is kept; add it again, or ask for its link, later."
            return self._new_page(request, entered, {"form": message}, status=503)
        return await self._link_page(request, owner, user.actor)

    async def link(self, request: web.Request) -> web.Response:
        await self._console.form(request, "admin")
        owner = await self._onboarding.owners.get(request.match_info["owner"])
        if owner is None:
            return self._console.problem(request, 404, "No such owner.")
        return await self._link_page(request, owner, self._console.user(request).actor)

    async def _link_page(self, request: web.Request, owner: Owner, actor: str) -> web.Response:
        """A fresh onboarding link for `owner`, shown once (or why there is none)."""
        status, values = 200, {}
        try:
            link = await self._onboarding.link(owner.id, actor)
            values = {"link": link.url, "expires": to_text(link.expires_at)[:16].replace("T", " ")}
        except OwnerRefused as refused:
            status, values = refused.status, {"problem": refused.message}
        except OwnerUnavailable as error:
            status, values = 503, {"problem": f"{error}; nothing is lost, ask again."}
        response = self._console.render(
            request, "owner_link.html", title=f"Onboarding link for {owner.name}",
            status=status, owner=owner, **values,
        )  # fmt: skip
        response.headers["Cache-Control"] = "no-store"  # the link is the owner's, single use
        return response

    async def refresh(self, request: web.Request) -> web.Response:
        await self._console.form(request, "admin")
        try:
            owner = await self._onboarding.refresh(request.match_info["owner"])
        except OwnerRefused as refused:
            return self._console.problem(request, refused.status, refused.message)
        except OwnerUnavailable as error:
            return self._console.problem(request, 503, f"{error}; nothing is lost, ask again.")
        state = "ready" if owner.ready else "not ready yet"
        raise self._console.see_other(SITES, f"Owner {owner.id} read again from Stripe: {state}")

    async def choose_statement(self, request: web.Request) -> web.Response:
        """The statement form's answer: to the statement it names."""
        self._console.require(request, "finance")
        owner, month = request.query.get("owner", ""), request.query.get("month", "")
        kind = "csv" if request.query.get("format") == "csv" else "html"
        try:
            Month.parse(month)
        except MonthError as error:
            return self._console.problem(request, 400, f"Month: {error}")
        if await self._onboarding.owners.get(owner) is None:
            return self._console.problem(request, 404, "No such owner.")
        raise web.HTTPSeeOther(f"{PATH}/{owner}/statements/{month}.{kind}")

    async def _statement(self, request: web.Request) -> Statement | web.Response:
        self._console.require(request, "finance")
        try:
            month = Month.parse(request.match_info["month"])
        except MonthError as error:
            return self._console.problem(request, 400, f"Month: {error}")
        try:
            found = await self._book.statement(request.match_info["owner"], month)
        except StatementDoesNotAddUp as error:
            return self._console.problem(request, 500, f"The statement does not add up: {error}")
        if found is None:
            return self._console.problem(request, 404, "No such owner.")
        return found

    async def statement_html(self, request: web.Request) -> web.Response:
        s = await self._statement(request)
        if isinstance(s, web.Response):
            return s
        response = web.Response(text=to_html(s, self._operator, "en"), content_type="text/html")
        response.headers["Cache-Control"] = "no-store"
        return response

    async def statement_csv(self, request: web.Request) -> web.Response:
        s = await self._statement(request)
        if isinstance(s, web.Response):
            return s
        filename = f"statement-{s.owner_id}-{s.month}.csv"
        return web.Response(
            text=to_csv(s),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )


def owner_pages(console: Console, system: CentralSystem) -> OwnerPages:
    """The owner pages over the system's onboarding, with statements as the API makes them:
    in the operator's time zone, naming the operator."""
    settings = operator(system.config)
    book = StatementBook(
        system.db, system.owners, system.payment_service.charger_info, settings.time_zone
    )
    return OwnerPages(console, system.onboarding, book, settings)
