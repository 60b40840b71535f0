"""Payments for operators: list and inspect them, and refund captured ones."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from aiohttp import web
from pydantic import AwareDatetime, Field

from httpapi.errors import ApiError, not_found
from httpapi.middleware import actor_of
from httpapi.models import ApiModel, Page, PageQuery, decode_cursor, encode_cursor
from httpapi.routing import Api
from payments.api_models import PaymentView
from payments.coordinator import RefundRefused
from payments.refunds import RefundRecord
from payments.reservation import ACTIVE, State
from payments.service import Payments
from payments.views import reservation_json
from storage.clock import to_text


class PaymentQuery(PageQuery):
    state: State | None = None
    charger_id: str | None = Field(default=None, min_length=1, max_length=48)
    from_: AwareDatetime | None = Field(default=None, alias="from")
    to: AwareDatetime | None = None


class PaymentPage(Page[PaymentView]):
    pass


class RefundRequest(ApiModel):
    amount: int | None = Field(
        default=None, ge=1, description="Minor units; absent: everything not yet refunded"
    )
    reason: str = Field(min_length=1, max_length=500)


class RefundOut(ApiModel):
    refund_id: str
    amount: int
    reason: str
    status: str
    stripe_refund_id: str | None
    failure: str | None
    requested_by: str
    created_at: str

    @classmethod
    def of(cls, record: RefundRecord) -> RefundOut:
        return cls(
            refund_id=record.id,
            amount=record.amount,
            reason=record.reason,
            status=record.status,
            stripe_refund_id=record.stripe_refund_id,
            failure=record.failure,
            requested_by=record.requested_by,
            created_at=record.created_at,
        )


class PaymentDetails(ApiModel):
    payment: PaymentView
    checkout_session_id: str | None
    payment_intent_id: str | None
    id_tag: str
    refunded_amount: int
    history: list[dict[str, Any]]
    effects: list[dict[str, Any]]
    audit: list[dict[str, Any]]
    refunds: list[RefundOut]


class PaymentAdminRoutes:
    def __init__(self, payments: Payments) -> None:
        self._payments = payments

    def register(self, api: Api) -> None:
        tag = "payments"
        api.add("GET", "/api/payments", self.list_payments, tag=tag, query=PaymentQuery,
                summary="List payments, newest first", response=PaymentPage)  # fmt: skip
        api.add("GET", "/api/payments/{id}/details", self.payment_details, tag=tag,
                summary="A payment with its state history, Stripe ids, effects and audit log",
                response=PaymentDetails, errors=(404,))  # fmt: skip
        api.add("POST", "/api/payments/{id}/refunds", self.refund_payment, tag=tag,
                summary="Refund all or part of a captured payment (send Idempotency-Key to "
                "make a retried request refund once)",
                body=RefundRequest, response=RefundOut, status=201,
                errors=(404, 409), role="finance")  # fmt: skip
        api.add("GET", "/api/payments/{id}/refunds", self.list_refunds, tag=tag,
                summary="A payment's refunds", response=list[RefundOut],
                errors=(404,))  # fmt: skip

    async def list_payments(self, request: web.Request, query: PaymentQuery) -> PaymentPage:
        before = None
        if query.cursor:
            created, reservation_id = decode_cursor(query.cursor, 2)
            before = (str(created), str(reservation_id))
        found = await self._payments.page(
            state=query.state.value if query.state else None,
            charger_id=query.charger_id,
            since=to_text(query.from_) if query.from_ else None,
            until=to_text(query.to) if query.to else None,
            before=before,
            limit=query.limit + 1,
        )
        now = self._payments.clock()
        shown = found[: query.limit]
        last = shown[-1] if shown else None
        return PaymentPage(
            items=[PaymentView.model_validate(reservation_json(r, now)) for r in shown],
            next_cursor=(
                encode_cursor(to_text(last.created_at), last.id)
                if last and len(found) > query.limit
                else None
            ),
        )

    async def payment_details(self, request: web.Request) -> PaymentDetails:
        reservation_id = request.match_info["id"]
        record = await self._payments.record(reservation_id)
        if record is None:
            raise not_found("payment")
        r = record.reservation
        return PaymentDetails(
            payment=PaymentView.model_validate(reservation_json(r, self._payments.clock())),
            checkout_session_id=r.checkout_session_id,
            payment_intent_id=r.payment_intent_id,
            id_tag=r.id_tag,
            refunded_amount=r.refunded_amount,
            history=record.history,
            effects=record.effects,
            audit=record.audit,
            refunds=[RefundOut.of(x) for x in record.refunds],
        )

    async def refund_payment(self, request: web.Request, body: RefundRequest) -> RefundOut:
        reservation_id = request.match_info["id"]
        r = await self._payments.get(reservation_id)
        if r is None:
            raise not_found("payment")
        if r.state in ACTIVE:
            raise ApiError(409, "not_settled", "the session has not been settled yet")
        key = request.headers.get("Idempotency-Key", "")
        refund_id = "rf_" + (
            hashlib.sha256(f"{reservation_id}:{key}".encode()).hexdigest()[:24]
            if key
            else secrets.token_hex(12)
        )
        try:
            record = await self._payments.refund(
                reservation_id, refund_id, body.amount, body.reason, actor=actor_of(request)
            )
        except RefundRefused as refused:
            raise ApiError(409, "not_refundable", str(refused), "amount") from None
        return RefundOut.of(record)

    async def list_refunds(self, request: web.Request) -> list[RefundOut]:
        reservation_id = request.match_info["id"]
        if await self._payments.get(reservation_id) is None:
            raise not_found("payment")
        return [RefundOut.of(x) for x in await self._payments.refunds_of(reservation_id)]
