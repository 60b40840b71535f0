"""An operator's way out of a review (NeedsReview): retry the capture, release the hold, or
resolve it with a note, through the API. Each action goes through the state machine
(`Coordinator.review`), is refused with the reason when it does not apply, and is
written to the money audit log under the acting API key's name.

The answer is the payment as `GET /api/payments/{id}` shows it, once the Stripe call the
action asked for has had its first try (so a capture that Stripe takes answers
Completed, and one it refuses again answers NeedsReview with the reason).
"""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web
from pydantic import Field

from httpapi.errors import ApiError, not_found
from httpapi.middleware import actor_of
from httpapi.models import ApiModel
from httpapi.routing import Api
from payments.api_models import PaymentView
from payments.coordinator import ReviewRefused
from payments.reservation import ReleaseInReview, Resolve, RetryCapture, ReviewAction
from payments.service import Payments
from payments.views import reservation_json

M = TypeVar("M", bound=ApiModel)

_ABOUT = (
    " Only for a payment in NeedsReview; 409 `review_refused` says why an action does not "
    "apply, and changes nothing. The audit log names the API key that acted."
)


class RetryCaptureRequest(ApiModel):
    amount: int | None = Field(
        default=None,
        ge=1,
        description="Minor units, at most the session's price and the hold; absent: the price",
    )


class ResolveRequest(ApiModel):
    note: str = Field(
        min_length=1,
        max_length=1000,
        description="What was found and done (e.g. settled in the Stripe Dashboard)",
    )


class ReviewRoutes:
    def __init__(self, payments: Payments) -> None:
        self._payments = payments

    def register(self, api: Api) -> None:
        shared = {
            "tag": "payments", "response": PaymentView, "errors": (404, 409), "role": "finance"
        }  # fmt: skip
        api.add("POST", "/api/payments/{id}/review/retry-capture", self.retry_capture, **shared,
                summary="Review: capture the held amount again (at most the price and the hold)",
                description="Capture `amount` (default: the session's price, within the hold) "
                "from the hold still on the card. The body may be left out." + _ABOUT,
                body=RetryCaptureRequest, body_optional=True)  # fmt: skip
        api.add("POST", "/api/payments/{id}/review/release", self.release, **shared,
                summary="Review: release the hold still on the card and close the review",
                description="Give the whole hold back to the card; the payment becomes "
                "Resolved. No body is needed." + _ABOUT)  # fmt: skip
        api.add("POST", "/api/payments/{id}/review/resolve", self.resolve, **shared,
                summary="Review: close it with a note, once no hold is left on the card",
                description="For a review whose money was settled otherwise (in the Stripe "
                "Dashboard, or the hold lapsed); the payment becomes Resolved." + _ABOUT,
                body=ResolveRequest)  # fmt: skip

    async def retry_capture(self, request: web.Request, body: RetryCaptureRequest) -> PaymentView:
        return await self._act(request, RetryCapture(body.amount))

    async def release(self, request: web.Request) -> PaymentView:
        return await self._act(request, ReleaseInReview())

    async def resolve(self, request: web.Request, body: ResolveRequest) -> PaymentView:
        return await self._act(request, Resolve(body.note))

    async def _act(self, request: web.Request, action: ReviewAction) -> PaymentView:
        reservation_id = request.match_info["id"]
        if await self._payments.get(reservation_id) is None:
            raise not_found("payment")
        try:
            r = await self._payments.review(reservation_id, action, actor=actor_of(request))
        except ReviewRefused as refused:
            raise ApiError(409, "review_refused", str(refused)) from None
        return PaymentView.model_validate(reservation_json(r, self._payments.clock()))
