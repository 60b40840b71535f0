"""The security extension of OCPP 1.6 over the management API: the security events chargers
reported, and their signed firmware updates' and log uploads' progress. Read-only."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import AwareDatetime, Field

from csms.store.chargers import ChargerStore
from csms.store.security import EventFilter, SecurityStore
from httpapi.errors import ApiError, not_found
from httpapi.models import ApiModel, Page, PageQuery, decode_cursor, encode_cursor
from httpapi.routing import Api
from storage.clock import to_text
from storage.db import Row


class SecurityEventOut(ApiModel):
    id: int
    charger_id: str
    type: str = Field(description='As the charger sent it, e.g. "TamperDetectionActivated"')
    timestamp: str = Field(description="When the charger says it happened")
    tech_info: str | None
    critical: bool = Field(
        description="Critical in the specification's list of security events: an operator"
        " alert (kind security_event) was raised for it"
    )
    received_at: str

    @classmethod
    def of(cls, row: Row) -> SecurityEventOut:
        return cls(
            id=row["id"],
            charger_id=row["charger_id"],
            type=row["type"],
            timestamp=row["timestamp"],
            tech_info=row["tech_info"],
            critical=bool(row["critical"]),
            received_at=row["received_at"],
        )


class SecurityEventPage(Page[SecurityEventOut]):
    pass


class ChargerEventQuery(PageQuery):
    type: str | None = Field(default=None, min_length=1, max_length=50)
    critical: bool | None = None
    since: AwareDatetime | None = Field(
        default=None, alias="from", description="Happened at or after (ISO 8601)"
    )
    until: AwareDatetime | None = Field(
        default=None, alias="to", description="Happened before (ISO 8601)"
    )

    def selection(self, charger_id: str | None) -> EventFilter:
        return EventFilter(
            charger_id=charger_id,
            type=self.type,
            critical=self.critical,
            since=to_text(self.since) if self.since else None,
            until=to_text(self.until) if self.until else None,
        )


class SecurityEventQuery(ChargerEventQuery):
    charger_id: str | None = Field(default=None, min_length=1, max_length=48)


class LogFirmwareStatusOut(ApiModel):
    id: int
    kind: Literal["firmware", "log"] = Field(
        description="firmware: SignedFirmwareStatusNotification; log: LogStatusNotification"
    )
    status: str
    request_id: int | None = Field(
        description="The requestId of the SignedUpdateFirmware or GetLog"
    )
    received_at: str

    @classmethod
    def of(cls, row: Row) -> LogFirmwareStatusOut:
        return cls(**{name: row[name] for name in cls.model_fields})


class LogFirmwareStatusPage(Page[LogFirmwareStatusOut]):
    pass


class LogFirmwareStatusQuery(PageQuery):
    kind: Literal["firmware", "log"] | None = None


class SecurityRoutes:
    def __init__(self, security: SecurityStore, chargers: ChargerStore) -> None:
        self._security = security
        self._chargers = chargers

    def register(self, api: Api) -> None:
        tag = "security"
        api.add("GET", "/api/security-events", self.list_events, tag=tag,
                summary="Security events reported by every charger, newest first",
                query=SecurityEventQuery, response=SecurityEventPage)  # fmt: skip
        api.add("GET", "/api/chargers/{chargerId}/security-events", self.list_charger_events,
                tag=tag, summary="One charger's security events, newest first",
                query=ChargerEventQuery, response=SecurityEventPage, errors=(404,))  # fmt: skip
        api.add("GET", "/api/chargers/{chargerId}/log-firmware-statuses", self.list_statuses,
                tag=tag, summary="One charger's SignedFirmwareStatusNotification and"
                " LogStatusNotification reports, newest first", query=LogFirmwareStatusQuery,
                response=LogFirmwareStatusPage, errors=(404,))  # fmt: skip

    async def list_events(
        self, request: web.Request, query: SecurityEventQuery
    ) -> SecurityEventPage:
        return await self._events(query, query.charger_id)

    async def list_charger_events(
        self, request: web.Request, query: ChargerEventQuery
    ) -> SecurityEventPage:
        return await self._events(query, await self._charger(request))

    async def list_statuses(
        self, request: web.Request, query: LogFirmwareStatusQuery
    ) -> LogFirmwareStatusPage:
        charger_id = await self._charger(request)
        before = _before(query.cursor) if query.cursor else None
        rows = await self._security.reports(
            charger_id, query.kind, before=before, limit=query.limit + 1
        )
        page = rows[: query.limit]
        return LogFirmwareStatusPage(
            items=[LogFirmwareStatusOut.of(row) for row in page],
            next_cursor=encode_cursor(page[-1]["id"]) if len(rows) > query.limit else None,
        )

    async def _events(self, query: ChargerEventQuery, charger_id: str | None) -> SecurityEventPage:
        before = _before(query.cursor) if query.cursor else None
        rows = await self._security.events(
            query.selection(charger_id), before=before, limit=query.limit + 1
        )
        page = rows[: query.limit]
        return SecurityEventPage(
            items=[SecurityEventOut.of(row) for row in page],
            next_cursor=encode_cursor(page[-1]["id"]) if len(rows) > query.limit else None,
        )

    async def _charger(self, request: web.Request) -> str:
        row = await self._chargers.get(request.match_info["chargerId"])
        if row is None:
            raise not_found("charger")
        return str(row["id"])


def _before(cursor: str) -> int:
    """The id a cursor from these listings points below; refused if it is not one of ours."""
    key = decode_cursor(cursor, 1)[0]
    if not isinstance(key, int) or isinstance(key, bool) or not 0 < key < 2**63:
        raise ApiError(400, "invalid", "not a cursor from this API", "cursor")
    return key
