"""An operator's way to move an owner's share that is waiting: `POST
/api/payments/{id}/owner-transfer` asks again for a share that accrued (the owner was not
ready) or that Stripe refused, once the owner's account can take it, and reverses again
what the owner holds above the share after Stripe refused a reversal. It goes through the
state machine (`OwnerReady`), so the movement is queued in the outbox with its own key, and
is written to the money audit log under the acting API key's name. 409 `transfer_refused`
says why it does not apply, changing nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from httpapi.errors import ApiError, not_found
from httpapi.middleware import actor_of
from httpapi.routing import Api
from payments.api_models import PaymentView
from payments.reservation import Reservation
from payments.reservation_transfers import owner_holds
from payments.service import Payments
from payments.transfer_messages import ACCRUED, REFUSED, TRANSFERRED, OwnerReady
from payments.transfers import ReadyOwners
from payments.views import reservation_json

# Coordinator.handle: applies an event, says the reservation after it.
Handle = Callable[..., Awaitable[Reservation | None]]


class OwnerTransferRoutes:
    def __init__(self, payments: Payments, handle: Handle, owners: ReadyOwners) -> None:
        self._payments = payments
        self._handle = handle
        self._owners = owners

    def register(self, api: Api) -> None:
        api.add("POST", "/api/payments/{id}/owner-transfer", self.transfer, tag="payments",
                response=PaymentView, errors=(404, 409), role="finance",
                summary="Transfer an owner's share that accrued or that Stripe refused",
                description="Once the owner's account is ready: the share (less refunds) is "
                "transferred, at most once; after Stripe refused a reversal, what the owner "
                "holds above the share is reversed again. No body is needed.")  # fmt: skip

    async def transfer(self, request: web.Request) -> PaymentView:
        reservation_id = request.match_info["id"]
        r = await self._payments.get(reservation_id)
        if r is None:
            raise not_found("payment")
        if not _reversal_refused(r):  # a reversal asks nothing of the owner's account
            if r.transfer_status not in (ACCRUED, REFUSED):
                status = r.transfer_status or "no owner's share"
                raise ApiError(
                    409, "transfer_refused", f"nothing waits to be transferred ({status})"
                )
            owner = await self._owners.get(r.owner_id or "")
            if owner is None or not owner.ready:
                raise ApiError(409, "transfer_refused", f"owner {r.owner_id} is not ready")
        after = await self._handle(reservation_id, OwnerReady(), actor=actor_of(request))
        assert after is not None
        return PaymentView.model_validate(reservation_json(after, self._payments.clock()))


def _reversal_refused(r: Reservation) -> bool:
    """The owner holds more than the share and no reversal is under way: Stripe refused one."""
    return (
        r.transfer_status == TRANSFERRED
        and r.reversing_amount == 0
        and owner_holds(r) > r.owner_share
    )
