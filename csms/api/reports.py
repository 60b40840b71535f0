"""Reports over the management API, for finance: energy, sessions and revenue per day and
per charger, as JSON or CSV (what is counted: payments.reports).

    GET /api/reports/daily?from=YYYY-MM-DD&to=YYYY-MM-DD[&chargerId=]   (.csv, or format=csv)
    GET /api/reports/chargers?from=YYYY-MM-DD&to=YYYY-MM-DD             (.csv, or format=csv)

Days are the operator's (`[operator] time_zone`), from and to both included, at most 366 of
them; a bad range is a 400 naming `from` or `to`. Money is in integer minor units, one entry
per currency, never added across currencies. A CSV has one row per day (or charger) and
currency; its `transactions` and `transactionEnergyWh` are on the first row of the day (or
charger) only, so that a column's sum is right; every cell passes httpapi.csv_export's
`neutralise`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import TYPE_CHECKING, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from csms.config_values import operator
from httpapi.csv_export import csv_columns, neutralise, stream_csv
from httpapi.errors import ApiError
from httpapi.models import ApiModel
from httpapi.routing import Api
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

if TYPE_CHECKING:
    from csms.app import CentralSystem


def system_reports(system: CentralSystem) -> Reports:
    """The reports of a running system, in the operator's time zone."""
    zone = operator(system.config).time_zone
    return Reports(system.db, system.payment_service.charger_info, zone)


class RangeQuery(ApiModel):
    since: str = Field(alias="from", max_length=20, description="First day, YYYY-MM-DD")
    until: str = Field(
        alias="to", max_length=20, description="Last day, YYYY-MM-DD, included (366 days at most)"
    )
    format: Literal["json", "csv"] = "json"

    def range(self) -> DateRange:
        return checked_range(self.since, self.until)


class DailyQuery(RangeQuery):
    charger_id: str | None = Field(default=None, min_length=1, max_length=48)


def checked_range(since: str | None, until: str | None) -> DateRange:
    """The range, or a 400 naming `from` or `to`."""
    try:
        return DateRange.parse(since, until)
    except RangeError as error:
        raise ApiError(400, "invalid", error.message, error.field) from None


class MoneyOut(ApiModel):
    currency: str
    sessions: int = Field(description="Paid sessions whose charge stopped in the period")
    energy_wh: int = Field(description="The energy those sessions were billed for")
    captured: int = Field(description="Minor units")
    refunded: int = Field(description="Minor units, as the refunds stand now")
    revenue: int = Field(description="captured - refunded, minor units")

    @classmethod
    def of(cls, money: Money) -> MoneyOut:
        return cls(
            currency=money.currency,
            sessions=money.sessions,
            energy_wh=money.energy_wh,
            captured=money.captured,
            refunded=money.refunded,
            revenue=money.revenue,
        )


class DayOut(ApiModel):
    date: str
    transactions: int = Field(description="OCPP transactions (paid or not) stopped that day")
    transaction_energy_wh: int = Field(description="What their meters delivered")
    currencies: list[MoneyOut]

    @classmethod
    def of(cls, row: DayRow) -> DayOut:
        return cls(
            date=row.day.isoformat(),
            transactions=row.transactions,
            transaction_energy_wh=row.transaction_energy_wh,
            currencies=[MoneyOut.of(m) for m in row.money],
        )


class ChargerOut(ApiModel):
    charger_id: str
    name: str | None
    transactions: int
    transaction_energy_wh: int
    currencies: list[MoneyOut]

    @classmethod
    def of(cls, row: ChargerRow) -> ChargerOut:
        return cls(
            charger_id=row.charger_id,
            name=row.name,
            transactions=row.transactions,
            transaction_energy_wh=row.transaction_energy_wh,
            currencies=[MoneyOut.of(m) for m in row.money],
        )


class DailyReport(ApiModel):
    since: str = Field(alias="from")
    until: str = Field(alias="to")
    time_zone: str
    charger_id: str | None
    days: list[DayOut]
    totals: list[MoneyOut]


class ChargerReport(ApiModel):
    since: str = Field(alias="from")
    until: str = Field(alias="to")
    time_zone: str
    chargers: list[ChargerOut]
    totals: list[MoneyOut]


class CsvMoney(ApiModel):
    currency: str | None
    sessions: int
    energy_wh: int
    energy_kwh: str
    captured: int
    refunded: int
    revenue: int
    transactions: int | None
    transaction_energy_wh: int | None


class DailyCsvRow(ApiModel):
    date: str


class ChargerCsvRow(ApiModel):
    charger_id: str
    name: str | None


class DailyCsv(CsvMoney, DailyCsvRow):
    pass


class ChargerCsv(CsvMoney, ChargerCsvRow):
    pass


def money_cells(row: DayRow | ChargerRow) -> list[dict[str, object]]:
    """A row's money as CSV cells, one per currency (one of zeros when it has none); the
    transactions on the first only."""
    money: Sequence[Money | None] = row.money or (None,)
    cells: list[dict[str, object]] = []
    for i, m in enumerate(money):
        first = i == 0
        cells.append(
            {
                "currency": m.currency if m else None,
                "sessions": m.sessions if m else 0,
                "energy_wh": m.energy_wh if m else 0,
                "energy_kwh": kwh_text(m.energy_wh if m else 0),
                "captured": m.captured if m else 0,
                "refunded": m.refunded if m else 0,
                "revenue": m.revenue if m else 0,
                "transactions": row.transactions if first else None,
                "transaction_energy_wh": row.transaction_energy_wh if first else None,
            }
        )
    return cells


def daily_csv(rows: Iterable[DayRow]) -> list[BaseModel]:
    return [
        DailyCsv(date=row.day.isoformat(), **cells) for row in rows for cells in money_cells(row)
    ]


def chargers_csv(rows: Iterable[ChargerRow]) -> list[BaseModel]:
    return [
        ChargerCsv(charger_id=row.charger_id, name=row.name, **cells)
        for row in rows
        for cells in money_cells(row)
    ]


def csv_text(model: type[BaseModel], items: Iterable[BaseModel]) -> str:
    """The rows as CSV (RFC 4180) under the model's JSON names, every cell neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(csv_columns(model))
    for item in items:
        writer.writerow([neutralise(cell) for cell in item.model_dump(by_alias=True).values()])
    return buffer.getvalue()


async def _once(text: str) -> AsyncIterator[str]:
    yield text


class ReportRoutes:
    def __init__(self, reports: Reports) -> None:
        self._reports = reports

    @property
    def zone_name(self) -> str:
        return str(self._reports.zone)

    def register(self, api: Api) -> None:
        tag = "reports"
        api.add("GET", "/api/reports/daily", self.daily, tag=tag,
                summary="Energy, sessions and revenue per day (format=csv: as CSV)",
                query=DailyQuery, response=DailyReport, role="finance")  # fmt: skip
        api.add("GET", "/api/reports/daily.csv", self.daily_csv, tag=tag,
                summary="The daily report as CSV", query=DailyQuery,
                produces="text/csv", role="finance")  # fmt: skip
        api.add("GET", "/api/reports/chargers", self.chargers, tag=tag,
                summary="Energy, sessions and revenue per charger (format=csv: as CSV)",
                query=RangeQuery, response=ChargerReport, role="finance")  # fmt: skip
        api.add("GET", "/api/reports/chargers.csv", self.chargers_csv, tag=tag,
                summary="The report per charger as CSV", query=RangeQuery,
                produces="text/csv", role="finance")  # fmt: skip

    async def daily(
        self, request: web.Request, query: DailyQuery
    ) -> DailyReport | web.StreamResponse:
        if query.format == "csv":
            return await self.daily_csv(request, query)
        dates = query.range()
        rows = await self._reports.daily(dates, query.charger_id)
        return DailyReport(
            since=dates.first.isoformat(),
            until=dates.last.isoformat(),
            time_zone=self.zone_name,
            charger_id=query.charger_id,
            days=[DayOut.of(row) for row in rows],
            totals=[MoneyOut.of(m) for m in totals(rows)],
        )

    async def daily_csv(self, request: web.Request, query: DailyQuery) -> web.StreamResponse:
        dates = query.range()
        rows = await self._reports.daily(dates, query.charger_id)
        text = csv_text(DailyCsv, daily_csv(rows))
        name = f"report-daily-{dates.first}-{dates.last}.csv"
        return await stream_csv(request, name, _once(text))

    async def chargers(
        self, request: web.Request, query: RangeQuery
    ) -> ChargerReport | web.StreamResponse:
        if query.format == "csv":
            return await self.chargers_csv(request, query)
        dates = query.range()
        rows = await self._reports.chargers(dates)
        return ChargerReport(
            since=dates.first.isoformat(),
            until=dates.last.isoformat(),
            time_zone=self.zone_name,
            chargers=[ChargerOut.of(row) for row in rows],
            totals=[MoneyOut.of(m) for m in totals(rows)],
        )

    async def chargers_csv(self, request: web.Request, query: RangeQuery) -> web.StreamResponse:
        dates = query.range()
        rows = await self._reports.chargers(dates)
        text = csv_text(ChargerCsv, chargers_csv(rows))
        name = f"report-chargers-{dates.first}-{dates.last}.csv"
        return await stream_csv(request, name, _once(text))
