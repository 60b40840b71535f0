"""The console's reports page, for finance: energy, sessions and revenue per day and per
charger over a date range (what is counted: payments.reports), with the same CSV exports as
the management API's /api/reports routes.

The page and its exports need the finance role (admin has it); anyone else gets the console's
403 page. The range is days in the operator's time zone, the last 7 by default; a bad range
is shown on the page naming the field (`from` or `to`), with no figures.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from csms.api.reports import ChargerCsv, DailyCsv, chargers_csv, csv_text, daily_csv
from csms.console.framework import Console
from payments.currency import format_money
from payments.reports import (
    ChargerRow,
    DateRange,
    DayRow,
    Money,
    RangeError,
    Reports,
    kwh_text,
    totals,
)

DEFAULT_DAYS = 7


def money_view(money: Money) -> dict[str, Any]:
    def show(amount: int) -> str:
        return format_money(amount, money.currency)

    return {
        "currency": money.currency.upper(),
        "sessions": money.sessions,
        "kwh": kwh_text(money.energy_wh),
        "captured": show(money.captured),
        "refunded": show(money.refunded),
        "revenue": show(money.revenue),
    }


def row_view(row: DayRow | ChargerRow) -> dict[str, Any]:
    return {
        "transactions": row.transactions,
        "delivered_kwh": kwh_text(row.transaction_energy_wh),
        "money": [money_view(m) for m in row.money],
    }


class ReportPages:
    def __init__(self, console: Console, reports: Reports) -> None:
        self.console = console
        self.reports = reports

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/console/reports", self.page),
            web.get("/console/reports/daily.csv", self.daily_csv),
            web.get("/console/reports/chargers.csv", self.chargers_csv),
        ]

    def _default(self) -> tuple[str, str]:
        today = datetime.now(UTC).astimezone(self.reports.zone).date()
        return (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(), today.isoformat()

    async def page(self, request: web.Request) -> web.Response:
        self.console.require(request, "finance")
        first, last = self._default()
        since = request.query.get("from", first).strip()
        until = request.query.get("to", last).strip()
        context: dict[str, Any] = {"since": since, "until": until, "zone": str(self.reports.zone)}
        try:
            dates = DateRange.parse(since, until)
        except RangeError as error:
            return self.console.render(
                request, "reports.html", title="Reports", status=400, error=error, **context
            )
        days = await self.reports.daily(dates)
        chargers = await self.reports.chargers(dates)
        return self.console.render(
            request,
            "reports.html",
            title="Reports",
            error=None,
            days=[{"date": row.day.isoformat(), **row_view(row)} for row in days],
            chargers=[
                {"charger_id": row.charger_id, "name": row.name, **row_view(row)}
                for row in chargers
            ],
            totals=[money_view(m) for m in totals(days)],
            **context,
        )

    async def daily_csv(self, request: web.Request) -> web.Response:
        self.console.require(request, "finance")
        dates = self._range(request)
        if isinstance(dates, RangeError):
            return self.console.problem(request, 400, f"{dates.field}: {dates.message}")
        text = csv_text(DailyCsv, daily_csv(await self.reports.daily(dates)))
        return _csv(f"report-daily-{dates.first}-{dates.last}.csv", text)

    async def chargers_csv(self, request: web.Request) -> web.Response:
        self.console.require(request, "finance")
        dates = self._range(request)
        if isinstance(dates, RangeError):
            return self.console.problem(request, 400, f"{dates.field}: {dates.message}")
        text = csv_text(ChargerCsv, chargers_csv(await self.reports.chargers(dates)))
        return _csv(f"report-chargers-{dates.first}-{dates.last}.csv", text)

    def _range(self, request: web.Request) -> DateRange | RangeError:
        try:
            return DateRange.parse(request.query.get("from"), request.query.get("to"))
        except RangeError as error:
            return error


def _csv(filename: str, text: str) -> web.Response:
    return web.Response(
        text=text,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
