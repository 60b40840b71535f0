"""`POST /api/reconcile`: reconcile payments with Stripe now, and answer with the summary."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field

from httpapi.errors import ApiError
from httpapi.models import ApiModel
from httpapi.routing import Api
from payments.reconcile import parse_since
from payments.reconciler import Reconciler, ReconcileReport
from payments.stripe_gateway import StripeRejected, StripeUnavailable
from storage.clock import to_text


class ReconcileRequest(ApiModel):
    since: str | None = Field(
        default=None,
        max_length=64,
        description="Objects created since: an ISO 8601 time, or a duration back from now"
        " (90m, 24h, 7d, 1d12h). Default: payments.reconcile_window_hours. The body may be"
        " left out.",
    )


class ReconcileFinding(ApiModel):
    kind: str = Field(
        description="late_payment, hold_cancelled, captured_elsewhere, refunded_elsewhere,"
        " dispute_opened, checkout_expired, review (told to the payment); orphan_hold,"
        " orphan_payment, unmatched, missing (reported only)"
    )
    reservation_id: str | None
    stripe_id: str
    amount: int | None = Field(description="In the currency's minor units")
    currency: str | None
    detail: str
    action: str | None = Field(description="The event the payment was told (null: none)")
    outcome: str = Field(description="applied, already_applied, reported or failed")


class ReconcileSummary(ApiModel):
    since: str
    started_at: str
    finished_at: str
    listed: dict[str, int | None] = Field(
        description="Stripe objects listed, per resource (null: Stripe would not list it)"
    )
    reservations: int = Field(description="Our payments compared")
    counts: dict[str, int] = Field(
        description="Findings per kind (those settled by an earlier run left out)"
    )
    applied: int
    reported: int
    failed: int
    already_applied: int
    findings: list[ReconcileFinding]

    @classmethod
    def of(cls, report: ReconcileReport) -> ReconcileSummary:
        data: dict[str, Any] = report.as_dict()
        for moment in ("since", "started_at", "finished_at"):
            data[moment] = to_text(data[moment])
        data["findings"] = [ReconcileFinding(**finding) for finding in data["findings"]]
        return cls(**data)


class ReconcileRoutes:
    def __init__(self, reconciler: Reconciler) -> None:
        self._reconciler = reconciler

    def register(self, api: Api) -> None:
        api.add("POST", "/api/reconcile", self.reconcile, tag="payments",
                summary="Reconcile payments with Stripe now: list Stripe's objects of the"
                " window, compare them with our books, tell each payment what Stripe says"
                " (actor reconciler), and answer with what was found and done",
                body=ReconcileRequest, body_optional=True, response=ReconcileSummary,
                errors=(503,), role="finance")  # fmt: skip

    async def reconcile(self, request: web.Request, body: ReconcileRequest) -> ReconcileSummary:
        since = None
        if body.since is not None:
            try:
                since = parse_since(body.since, self._reconciler.now())
            except ValueError as error:
                raise ApiError(400, "invalid", str(error), "since") from None
        try:
            report = await self._reconciler.run(since)
        except (StripeUnavailable, StripeRejected) as error:
            raise ApiError(
                503, "stripe_unavailable", f"Stripe could not be listed: {error}"[:500]
            ) from None
        return ReconcileSummary.of(report)
