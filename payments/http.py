"""The payment API (JSON) and the Stripe webhook endpoint, as aiohttp routes.

Errors: the payment routes answer `{status, field?, message|reason}` as front-ends of
the systems this one replaces expect, and every such error also carries the API's common
`{error: {code, message, field?}}` object (code: the status in snake case, ChargerOffline
-> charger_offline), so that a client may read one shape everywhere. Nothing is created or
changed when a request is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import stripe
import structlog
from aiohttp import web

from httpapi.errors import error_response
from httpapi.middleware import actor_of
from httpapi.routing import Api, json_response
from payments.api_models import (
    ConfirmPayment,
    NewPayment,
    PaymentRefusal,
    PaymentStarted,
    PaymentView,
    WebhookReceipt,
)
from payments.connect_webhooks import ConnectWebhooks, is_connect_event
from payments.reservation import Reservation, State
from payments.service import Payments, SessionRefused
from payments.stripe_gateway import verify_webhook
from payments.views import reservation_json

log = structlog.get_logger()

_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")


def valid_email(text: str) -> bool:
    return len(text) <= 254 and _EMAIL.fullmatch(text) is not None


def _json(status: int, body: dict[str, Any]) -> web.Response:
    if status >= 400:
        body = with_error(body)
    return web.json_response(body, status=status, dumps=lambda o: orjson.dumps(o).decode())


def with_error(body: dict[str, Any]) -> dict[str, Any]:
    """A refusal `{status, ...}` with the common `{error: {code, message, field?}}` beside."""
    code = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", body["status"]).lower()
    error = {"code": code, "message": body.get("message") or body.get("reason") or code}
    if body.get("field") is not None:
        error["field"] = body["field"]
    return {**body, "error": error}


def _invalid(field: str, message: str) -> web.Response:
    return _json(400, {"status": "Invalid", "field": field, "message": message})


class RequestError(Exception):
    def __init__(self, response: web.Response) -> None:
        self.response = response


def _refusal(refused: SessionRefused) -> web.Response:
    key = "reason" if refused.status == "ConnectorBusy" else "message"
    return _json(refused.http_status, {"status": refused.status, key: refused.detail})


@dataclass(frozen=True)
class WebhookSettings:
    secrets: list[str]
    tolerance: int = 300
    insecure: bool = False  # development only: accept unsigned events


class PaymentRoutes:
    def __init__(
        self,
        payments: Payments,
        webhook: WebhookSettings,
        *,
        connect: ConnectWebhooks | None = None,
    ) -> None:
        self._payments = payments
        self._webhook = webhook
        self._connect = connect  # Connect's events (owners' accounts, payouts, transfers)

    def register_api(self, api: Api) -> None:
        shared = {"tag": "payments", "error_model": PaymentRefusal}
        api.add("POST", "/api/payments", self.create_payment, **shared,
                summary="Start a paid session: a Checkout URL for the hold, or Accepted if free",
                body=NewPayment, validate_body=False, response=PaymentStarted,
                errors=(404, 409, 503), role="support")  # fmt: skip
        api.add("GET", "/api/payments/{id}", self.get_payment, **shared, errors=(404,),
                summary="A paid session: state, stage, energy, cost so far, hold, captured",
                response=PaymentView)  # fmt: skip
        api.add("POST", "/api/payments/{id}/confirm", self.confirm_payment, **shared,
                summary="The driver is back from Checkout: verify the payment now",
                body=ConfirmPayment, validate_body=False, response=PaymentView,
                errors=(404,), role="support")  # fmt: skip
        api.add("POST", "/api/payments/{id}/cancel", self.cancel_payment, **shared,
                summary="Cancel a session that has not started; the hold is released",
                response=PaymentView, errors=(404, 409), role="support")  # fmt: skip
        api.add("POST", "/api/payments/{id}/stop", self.stop_payment, **shared,
                summary="Stop the charge (or cancel it before it started)",
                response=PaymentView, errors=(404, 409), role="support")  # fmt: skip
        api.add("POST", "/api/stripe/webhook", self.stripe_webhook, tag="payments",
                summary="Stripe webhook endpoint (signed events only)", auth=False,
                response=WebhookReceipt)  # fmt: skip

    # -- routes

    async def create_payment(self, request: web.Request) -> web.Response:
        try:
            body = await _body(request)
            charger_id = body.get("chargePointId")
            if not isinstance(charger_id, str) or not 1 <= len(charger_id) <= 48:
                return _invalid("chargePointId", "a charge point id of 1 to 48 characters")
            connector_id = body.get("connectorId", 1)
            if (
                not isinstance(connector_id, int)
                or isinstance(connector_id, bool)
                or connector_id < 1
            ):
                return _invalid("connectorId", "a connector number, 1 or more")
            email = body.get("email")
            if email is not None and (not isinstance(email, str) or not valid_email(email)):
                return _invalid("email", "an e-mail address")
            r, token = await self._payments.start_session(charger_id, connector_id, email)
        except RequestError as error:
            return error.response
        except SessionRefused as refused:
            return _refusal(refused)
        if r.hold_amount == 0:
            return _json(200, {"status": "Accepted", "reservationId": r.id, "token": token})
        return _json(
            200,
            {
                "status": "Redirect",
                "checkoutUrl": r.checkout_url,
                "reservationId": r.id,
                "token": token,
                "currency": r.tariff.currency,
                "maxAmount": r.hold_amount,
                "maxEnergyWh": r.tariff.max_energy_wh,
            },
        )

    async def get_payment(self, request: web.Request) -> web.Response:
        r = await self._find(request)
        return _view(r, self._payments.clock())

    async def confirm_payment(self, request: web.Request) -> web.Response:
        r = await self._find(request)
        try:
            body = await _body(request)
        except RequestError as error:
            return error.response
        session_id = body.get("checkoutSessionId")
        if not isinstance(session_id, str) or session_id != r.checkout_session_id:
            return _invalid("checkoutSessionId", "not this reservation's Checkout Session")
        after = await self._payments.confirm(r.id, actor=actor_of(request))
        return _json(200, reservation_json(after, self._payments.clock()))

    async def cancel_payment(self, request: web.Request) -> web.Response:
        r = await self._find(request)
        after = await self._payments.cancel(r.id, actor=actor_of(request))
        if after.state is not State.CANCELLED:
            return _json(
                409,
                {"status": "NotCancellable", "state": after.state.value,
                 "message": "a session that has started is stopped, not cancelled"},
            )  # fmt: skip
        return _view(after, self._payments.clock())

    async def stop_payment(self, request: web.Request) -> web.Response:
        r = await self._find(request)
        after = await self._payments.stop(r.id, actor=actor_of(request))
        # Stopping a charge, or cancelling one that has not started, is what "stop" means.
        if after.state not in (State.STOPPING, State.CANCELLED):
            return _json(
                409,
                {"status": "NotStoppable", "state": after.state.value,
                 "message": f"a session that is {after.state.value} cannot be stopped"},
            )  # fmt: skip
        return _view(after, self._payments.clock())

    async def stripe_webhook(self, request: web.Request) -> web.Response:
        payload = await request.read()
        if not self._webhook.insecure:
            try:
                verify_webhook(
                    payload,
                    request.headers.get("Stripe-Signature", ""),
                    self._webhook.secrets,
                    self._webhook.tolerance,
                )
            except stripe.SignatureVerificationError as error:
                log.warning("payments.webhook_bad_signature", reason=str(error)[:200])
                return error_response(400, "invalid_signature", "the Stripe signature is invalid")
        try:
            event = orjson.loads(payload)
            if not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
                raise ValueError("not an event")
        except (orjson.JSONDecodeError, ValueError, AttributeError):
            return error_response(400, "invalid", "not a Stripe event", "body")
        if self._connect is not None and is_connect_event(event["type"]):
            outcome = await self._connect.receive(event)
        else:
            outcome = await self._payments.webhook(event)
        return _json(200, {"received": True, "applied": outcome.applied})

    async def _find(self, request: web.Request) -> Reservation:
        r = await self._payments.get(request.match_info["id"])
        if r is None:
            raise web.HTTPNotFound(
                text=orjson.dumps(
                    with_error({"status": "NotFound", "message": "no such payment"})
                ).decode(),
                content_type="application/json",
            )
        return r


def _view(r: Reservation, now: datetime) -> web.Response:
    # Through the documented model, so that the answer and the OpenAPI document agree.
    return json_response(PaymentView.model_validate(reservation_json(r, now)))


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read() or b"{}")
    except orjson.JSONDecodeError:
        raise RequestError(_invalid("body", "the body must be a JSON object")) from None
    if not isinstance(body, dict):
        raise RequestError(_invalid("body", "the body must be a JSON object"))
    return body
