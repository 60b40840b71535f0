"""Owners' monthly statements over the management API (payments.statements says what is in
one and which month a session belongs to):

- `GET /api/owners/{id}/statements/{month}`: the statement as JSON;
- `GET /api/owners/{id}/statements/{month}.csv`: as CSV;
- `GET /api/owners/{id}/statements/{month}.html`: as a printable page (an operator's page:
  it takes the API key like the rest of /api).

`month` is YYYY-MM in the operator's time zone: anything else is a 400 naming `month`; an
unknown owner is a 404. A statement whose figures do not add up is a 500 that says so
(`statement_does_not_add_up`), never a wrong number.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import AwareDatetime, Field

from httpapi.errors import ApiError, not_found
from httpapi.models import ApiModel
from httpapi.routing import Api
from payments.statements import Month, MonthError, Statement, StatementDoesNotAddUp
from payments.statements_render import to_csv, to_html
from payments.statements_store import StatementBook
from payments.web import language
from payments.web.operator import Operator

MONTH_PARAMETER = {"type": "string", "pattern": r"^\d{4}-(0[1-9]|1[0-2])$"}


class StatementSession(ApiModel):
    reservation_id: str
    stopped_at: AwareDatetime = Field(description="The month is the one the charge stopped in")
    charger_id: str
    charger_name: str | None
    site_name: str | None
    currency: str
    energy_wh: int
    captured: int = Field(description="Minor units, like every amount here")
    stripe_fee: int | None = Field(description="null: not known")
    refunded: int
    owner_share: int = Field(description="owner share + operator share = captured - refunded")
    operator_share: int
    transferred: int
    reversed: int
    transfer_status: str | None


class StatementMovement(ApiModel):
    id: str
    reservation_id: str
    kind: str = Field(description="transfer or reversal")
    amount: int
    currency: str
    status: str = Field(description="succeeded or failed")
    stripe_id: str | None
    at: AwareDatetime


class StatementPayout(ApiModel):
    id: str
    amount: int
    currency: str
    status: str
    arrival_date: str | None
    at: AwareDatetime


class StatementTotals(ApiModel):
    currency: str
    sessions: int
    energy_wh: int
    captured: int
    stripe_fee: int | None
    refunded: int
    owner_share: int
    operator_share: int
    transferred: int
    reversed: int
    transfers_in_month: int
    reversals_in_month: int
    payouts_paid: int
    net: int = Field(description="captured - refunded = owner share + operator share")


class StatementOut(ApiModel):
    owner_id: str
    owner_name: str
    month: str
    time_zone: str
    start: AwareDatetime
    end: AwareDatetime
    sessions: list[StatementSession]
    movements: list[StatementMovement]
    payouts: list[StatementPayout]
    totals: list[StatementTotals] = Field(description="One per currency")


def statement_out(s: Statement) -> StatementOut:
    def each(model: type[ApiModel], rows: tuple[object, ...]) -> list[ApiModel]:
        return [model.model_validate(row, from_attributes=True) for row in rows]

    return StatementOut.model_validate(
        {
            "owner_id": s.owner_id,
            "owner_name": s.owner_name,
            "month": str(s.month),
            "time_zone": s.time_zone,
            "start": s.start,
            "end": s.end,
            "sessions": each(StatementSession, s.sessions),
            "movements": each(StatementMovement, s.movements),
            "payouts": each(StatementPayout, s.payouts),
            "totals": each(StatementTotals, s.totals),
        }
    )


class StatementRoutes:
    def __init__(self, book: StatementBook, operator: Operator) -> None:
        self._book = book
        self._operator = operator

    def register(self, api: Api) -> None:
        tag, params = "owners", {"month": MONTH_PARAMETER}
        # The suffixed routes first: `{month}` alone would take "2026-11.csv" too.
        api.add("GET", "/api/owners/{id}/statements/{month}.csv", self.statement_csv, tag=tag,
                summary="An owner's monthly statement as CSV", produces="text/csv",
                path_parameters=params, errors=(404, 500), role="finance")  # fmt: skip
        api.add("GET", "/api/owners/{id}/statements/{month}.html", self.statement_html,
                tag=tag, summary="An owner's monthly statement as a printable page",
                produces="text/html", path_parameters=params, errors=(404, 500),
                role="finance")  # fmt: skip
        api.add("GET", "/api/owners/{id}/statements/{month}", self.statement, tag=tag,
                summary="An owner's monthly statement: sessions, shares, transfers, payouts",
                response=StatementOut, path_parameters=params, errors=(404, 500),
                role="finance")  # fmt: skip

    async def _statement(self, request: web.Request) -> Statement:
        try:
            month = Month.parse(request.match_info["month"])
        except MonthError as error:
            raise ApiError(400, "invalid", str(error), "month") from None
        try:
            found = await self._book.statement(request.match_info["id"], month)
        except StatementDoesNotAddUp as error:
            raise ApiError(500, "statement_does_not_add_up", str(error)) from None
        if found is None:
            raise not_found("owner")
        return found

    async def statement(self, request: web.Request) -> StatementOut:
        return statement_out(await self._statement(request))

    async def statement_csv(self, request: web.Request) -> web.Response:
        s = await self._statement(request)
        filename = f"statement-{s.owner_id}-{s.month}.csv"
        return web.Response(
            text=to_csv(s),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    async def statement_html(self, request: web.Request) -> web.Response:
        s = await self._statement(request)
        chosen = language.choose(request.query, {}, request.headers.get("Accept-Language"))
        response = web.Response(
            text=to_html(s, self._operator, chosen), content_type="text/html", charset="utf-8"
        )
        response.headers["Content-Language"] = chosen
        response.headers["Cache-Control"] = "no-store"
        return response
