"""The money audit log over the management API: every money movement and operator action,
newest first, as JSON pages or as CSV. Read-only: the table is append-only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from pydantic import AwareDatetime, Field

from httpapi.csv_export import csv_chunks, stream_csv
from httpapi.errors import ApiError
from httpapi.models import ApiModel, Page, PageQuery, decode_cursor, encode_cursor
from httpapi.routing import Api
from payments.audit_log import AuditLog
from storage.clock import to_text

# Lines read from the database per CSV chunk: the export never holds them all.


class AuditEntryOut(ApiModel):
    id: int
    at: str
    actor: str = Field(
        description="driver, charger, stripe, system, reconciler; key:<name> for an API key"
        " (it acts for its user, with the user's role; key:config for a key of api.keys);"
        " user:<name> for an operator user signed in to the console"
    )
    action: str = Field(description='What happened, e.g. "captured" or "hold released"')
    reservation_id: str | None
    amount: int | None = Field(description="In the currency's minor units")
    currency: str | None
    stripe_id: str | None
    detail: str | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> AuditEntryOut:
        return cls(**{name: row[name] for name in cls.model_fields})


class AuditPage(Page[AuditEntryOut]):
    pass


class AuditFilters(ApiModel):
    reservation_id: str | None = Field(default=None, min_length=1, max_length=100)
    action: str | None = Field(default=None, min_length=1, max_length=100)
    actor: str | None = Field(
        default=None, min_length=1, max_length=200, description="Who acted, e.g. user:alice"
    )
    since: AwareDatetime | None = Field(
        default=None, alias="from", description="At or after (ISO 8601)"
    )
    until: AwareDatetime | None = Field(default=None, alias="to", description="Before (ISO 8601)")

    async def lines(self, audit: AuditLog, before: int | None, limit: int) -> list[dict[str, Any]]:
        """The matching lines below the id `before`, newest first."""
        return await audit.page(
            reservation_id=self.reservation_id,
            action=self.action,
            actor=self.actor,
            since=to_text(self.since) if self.since else None,
            until=to_text(self.until) if self.until else None,
            before=before,
            limit=limit,
        )


class AuditQuery(AuditFilters, PageQuery):
    pass


def audit_csv(audit: AuditLog, where: AuditFilters) -> AsyncIterator[str]:
    """The export, newest first, with the JSON listing's columns."""
    return csv_chunks(
        AuditEntryOut,
        lambda before, limit: where.lines(audit, before, limit),
        AuditEntryOut.of,
    )


class AuditRoutes:
    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit

    def register(self, api: Api) -> None:
        tag = "audit"
        api.add("GET", "/api/audit", self.list_audit, tag=tag,
                summary="The money audit log, newest first", query=AuditQuery,
                response=AuditPage)  # fmt: skip
        api.add("GET", "/api/audit.csv", self.export_audit, tag=tag,
                summary="The same audit lines as CSV, all at once", query=AuditFilters,
                produces="text/csv")  # fmt: skip

    async def list_audit(self, request: web.Request, query: AuditQuery) -> AuditPage:
        before = _before(query.cursor) if query.cursor else None
        rows = await query.lines(self._audit, before, query.limit + 1)
        page = rows[: query.limit]
        more = len(rows) > query.limit
        return AuditPage(
            items=[AuditEntryOut.of(row) for row in page],
            next_cursor=encode_cursor(page[-1]["id"]) if more else None,
        )

    async def export_audit(self, request: web.Request, query: AuditFilters) -> web.StreamResponse:
        return await stream_csv(request, "audit.csv", audit_csv(self._audit, query))


def _before(cursor: str) -> int:
    """The id a cursor from this listing points below; refused if it is not one of ours."""
    key = decode_cursor(cursor, 1)[0]
    if not isinstance(key, int) or isinstance(key, bool) or not 0 < key < 2**63:
        raise ApiError(400, "invalid", "not a cursor from this API", "cursor")
    return key
