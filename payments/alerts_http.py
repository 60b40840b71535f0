"""The operator alerts over the management API: what was raised, about what, and whether
its delivery to `alerts.webhook_url` went through. Read-only."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from pydantic import Field

from httpapi.models import ApiModel
from httpapi.routing import Api
from payments.alerts import AlertJob


class AlertOut(ApiModel):
    id: int
    kind: str = Field(
        description="needs_review, dispute, capture_failed, outbox_stuck or security_event"
    )
    subject: str = Field(description="What it is about; an alert is raised once per subject")
    reservation_id: str | None
    status: str = Field(description="pending, sent, failed (given up) or unsent (no URL set)")
    attempts: int
    last_error: str | None
    created_at: str
    sent_at: str | None
    message: str
    body: dict[str, Any] = Field(description="What is POSTed to alerts.webhook_url")

    @classmethod
    def of(cls, row: dict[str, Any]) -> AlertOut:
        body = orjson.loads(row["payload"])
        fields = {name: row[name] for name in cls.model_fields if name not in ("message", "body")}
        return cls(**fields, message=body.get("message", ""), body=body)


class AlertRoutes:
    def __init__(self, alerts: AlertJob) -> None:
        self._alerts = alerts

    def register(self, api: Api) -> None:
        api.add("GET", "/api/alerts", self.list_alerts, tag="payments",
                summary="Operator alerts raised so far, newest first, with their delivery",
                response=list[AlertOut])  # fmt: skip

    async def list_alerts(self, request: web.Request) -> list[AlertOut]:
        return [AlertOut.of(row) for row in reversed(await self._alerts.alerts())]
