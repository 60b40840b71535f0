"""Charging transactions over the management API: listing, one with its meter values, CSV."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from aiohttp import web
from pydantic import AwareDatetime, Field

from csms.ocpp16.metering import decimal_text, normalise
from csms.store.transactions import TransactionFilter, TransactionStore
from httpapi.csv_export import csv_chunks, stream_csv
from httpapi.errors import ApiError, not_found
from httpapi.models import ApiModel, Page, PageQuery, decode_cursor, encode_cursor
from httpapi.routing import Api
from storage.clock import to_text
from storage.db import Row

# OCPP integers are 32-bit; bounding them also keeps SQLite's 64-bit integers from overflowing.
ConnectorId = Annotated[int, Field(ge=0, le=2**31 - 1)]
# Longer might not fit SQLite's 64-bit integers: no such transaction can exist.
_TRANSACTION_ID = re.compile(r"[0-9]{1,18}")
# Rows read from the database per CSV chunk: the export never holds them all.


class TransactionOut(ApiModel):
    id: int
    charger_id: str
    connector_id: int
    id_tag: str
    id_tag_status: str
    meter_start_wh: int
    meter_stop_wh: int | None
    energy_wh: int = Field(description="Delivered: the current (or final) register - meterStartWh")
    power_w: int | None = Field(description="The latest power sample; null once stopped")
    started_at: str
    stopped_at: str | None
    stop_reason: str | None

    @classmethod
    def of(cls, row: Row) -> TransactionOut:
        stopped = row["stopped_at"] is not None
        register = row["meter_stop_wh"] if stopped else row["energy_wh"]
        return cls(
            id=row["id"],
            charger_id=row["charger_id"],
            connector_id=row["connector_id"],
            id_tag=row["id_tag"],
            id_tag_status=row["id_tag_status"],
            meter_start_wh=row["meter_start_wh"],
            meter_stop_wh=row["meter_stop_wh"],
            # No reading yet (a database from release 1): nothing delivered that we know of.
            energy_wh=0 if register is None else register - row["meter_start_wh"],
            power_w=None if stopped else row["power_w"],
            started_at=row["started_at"],
            stopped_at=row["stopped_at"],
            stop_reason=row["stop_reason"],
        )


class TransactionPage(Page[TransactionOut]):
    pass


class MeterValueOut(ApiModel):
    timestamp: str
    measurand: str
    phase: str | None
    unit: str | None
    context: str | None
    location: str | None
    value: str = Field(description="As the charger sent it")
    normalised: str | None = Field(
        description="The exact value as a decimal number in text, never rounded: energy in Wh"
        " or varh and power in W or var (a value in kWh, kvarh, kW or kvar times 1000), any"
        " other measurand in its own unit; null when the value is not a plain number",
        examples=["15.6", "1.5", "12345.6"],
    )

    @classmethod
    def of(cls, row: Row) -> MeterValueOut:
        exact = normalise(row["value"], row["unit"], row["format"])
        return cls(
            **{name: row[name] for name in cls.model_fields if name != "normalised"},
            normalised=None if exact is None else decimal_text(exact),
        )


class TransactionDetail(TransactionOut):
    stop_id_tag: str | None
    meter_values: list[MeterValueOut]


class TransactionFilters(ApiModel):
    charger_id: str | None = Field(default=None, min_length=1, max_length=48)
    connector_id: ConnectorId | None = None
    id_tag: str | None = Field(default=None, min_length=1, max_length=20)
    started_from: AwareDatetime | None = Field(
        default=None, alias="from", description="Started at or after (ISO 8601)"
    )
    started_before: AwareDatetime | None = Field(
        default=None, alias="to", description="Started before (ISO 8601)"
    )
    state: Literal["open", "closed"] | None = None

    def selection(self) -> TransactionFilter:
        return TransactionFilter(
            charger_id=self.charger_id,
            connector_id=self.connector_id,
            id_tag=self.id_tag,
            started_from=to_text(self.started_from) if self.started_from else None,
            started_before=to_text(self.started_before) if self.started_before else None,
            open=None if self.state is None else self.state == "open",
        )


class TransactionQuery(TransactionFilters, PageQuery):
    pass


def transactions_csv(store: TransactionStore, where: TransactionFilter) -> AsyncIterator[str]:
    """The export, newest first, with the JSON listing's columns."""
    return csv_chunks(
        TransactionOut,
        lambda before, limit: store.find(where, before=before, limit=limit),
        TransactionOut.of,
    )


class TransactionRoutes:
    def __init__(self, transactions: TransactionStore) -> None:
        self._transactions = transactions

    def register(self, api: Api) -> None:
        tag = "transactions"
        api.add("GET", "/api/transactions", self.list_transactions, tag=tag,
                summary="List transactions, newest first", query=TransactionQuery,
                response=TransactionPage)  # fmt: skip
        api.add("GET", "/api/transactions.csv", self.export_transactions, tag=tag,
                summary="The same transactions as CSV, all at once", query=TransactionFilters,
                produces="text/csv")  # fmt: skip
        api.add("GET", "/api/transactions/{transactionId}", self.get_transaction, tag=tag,
                summary="One transaction with its meter values", response=TransactionDetail,
                errors=(404,), path_parameters={"transactionId": {"type": "integer"}})  # fmt: skip

    async def list_transactions(
        self, request: web.Request, query: TransactionQuery
    ) -> TransactionPage:
        before = _before(query.cursor) if query.cursor else None
        rows = await self._transactions.find(
            query.selection(), before=before, limit=query.limit + 1
        )
        page = rows[: query.limit]
        more = len(rows) > query.limit
        return TransactionPage(
            items=[TransactionOut.of(row) for row in page],
            next_cursor=encode_cursor(page[-1]["id"]) if more else None,
        )

    async def export_transactions(
        self, request: web.Request, query: TransactionFilters
    ) -> web.StreamResponse:
        chunks = transactions_csv(self._transactions, query.selection())
        return await stream_csv(request, "transactions.csv", chunks)

    async def get_transaction(self, request: web.Request) -> TransactionDetail:
        text = request.match_info["transactionId"]
        row = await self._transactions.get(int(text)) if _TRANSACTION_ID.fullmatch(text) else None
        if row is None:
            raise not_found("transaction")
        meter_values = await self._transactions.meter_values(row["id"])
        return TransactionDetail(
            **TransactionOut.of(row).model_dump(),
            stop_id_tag=row["stop_id_tag"],
            meter_values=[MeterValueOut.of(value) for value in meter_values],
        )


def _before(cursor: str) -> int:
    """The id a cursor from this listing points below; refused if it is not one of ours."""
    key = decode_cursor(cursor, 1)[0]
    if not isinstance(key, int) or isinstance(key, bool) or not 0 < key < 2**63:
        raise ApiError(400, "invalid", "not a cursor from this API", "cursor")
    return key
