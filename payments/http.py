"""The payment API (JSON) and the Stripe webhook endpoint, as aiohttp routes.

Errors follow one shape per route family: the payment routes answer
`{status, field?, message|reason}` as front-ends of the systems this one replaces
expect; nothing is created or changed when a request is refused.
"""

from __future__ import annotations

import re
import sqlite3
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
from payments import reservation as machine
from payments.api_models import (
    ConfirmPayment,
    NewPayment,
    PaymentRefusal,
    PaymentStarted,
    PaymentView,
    WebhookReceipt,
)
from payments.coordinator import Coordinator
from payments.ports import ChargerControl
from payments.pricing import Tariff, TariffError, hold_amount
from payments.reservation import Reservation, State
from payments.runner import EffectRunner
from payments.store import PaymentStore
from payments.stripe_gateway import verify_webhook
from payments.views import reservation_json
from payments.webhooks import apply_webhook

log = structlog.get_logger()

_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
# Connector statuses in which a new session may begin.
_FREE_STATUSES = frozenset({"Available", "Preparing"})


def valid_email(text: str) -> bool:
    return len(text) <= 254 and _EMAIL.fullmatch(text) is not None


def _json(status: int, body: dict[str, Any]) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda o: orjson.dumps(o).decode())


def _invalid(field: str, message: str) -> web.Response:
    return _json(400, {"status": "Invalid", "field": field, "message": message})


class RequestError(Exception):
    def __init__(self, response: web.Response) -> None:
        self.response = response


class SessionRefused(Exception):
    """Why a charging session cannot begin: `status` as the API names it, and details."""

    def __init__(self, http_status: int, status: str, detail: str) -> None:
        super().__init__(detail)
        self.http_status = http_status
        self.status = status
        self.detail = detail

    def response(self) -> web.Response:
        key = "reason" if self.status == "ConnectorBusy" else "message"
        return _json(self.http_status, {"status": self.status, key: self.detail})


@dataclass(frozen=True)
class WebhookSettings:
    secrets: list[str]
    tolerance: int = 300
    insecure: bool = False  # development only: accept unsigned events


class PaymentRoutes:
    def __init__(
        self,
        store: PaymentStore,
        coordinator: Coordinator,
        runner: EffectRunner,
        chargers: ChargerControl,
        default_tariff: Tariff,
        webhook: WebhookSettings,
    ) -> None:
        self._store = store
        self._coordinator = coordinator
        self._runner = runner
        self._chargers = chargers
        self._default_tariff = default_tariff
        self._webhook = webhook

    def register_api(self, api: Api) -> None:
        shared = {"tag": "payments", "error_model": PaymentRefusal}
        api.add("POST", "/api/payments", self.create_payment, **shared,
                summary="Start a paid session: a Checkout URL for the hold, or Accepted if free",
                body=NewPayment, validate_body=False, response=PaymentStarted,
                errors=(404, 409, 503))  # fmt: skip
        api.add("GET", "/api/payments/{id}", self.get_payment, **shared, errors=(404,),
                summary="A paid session: state, stage, energy, cost so far, hold, captured",
                response=PaymentView)  # fmt: skip
        api.add("POST", "/api/payments/{id}/confirm", self.confirm_payment, **shared,
                summary="The driver is back from Checkout: verify the payment now",
                body=ConfirmPayment, validate_body=False, response=PaymentView,
                errors=(404,))  # fmt: skip
        api.add("POST", "/api/payments/{id}/cancel", self.cancel_payment, **shared,
                summary="Cancel a session that has not started; the hold is released",
                response=PaymentView, errors=(404, 409))  # fmt: skip
        api.add("POST", "/api/payments/{id}/stop", self.stop_payment, **shared,
                summary="Stop the charge (or cancel it before it started)",
                response=PaymentView, errors=(404, 409))  # fmt: skip
        api.add("POST", "/api/stripe/webhook", self.stripe_webhook, tag="payments",
                summary="Stripe webhook endpoint (signed events only)", auth=False,
                response=WebhookReceipt)  # fmt: skip

    # -- the flow

    async def start_session(
        self, charger_id: str, connector_id: int, email: str | None
    ) -> tuple[Reservation, str]:
        """Check the connector, then create the reservation and its checkout.

        Raises SessionRefused when the session cannot begin; nothing is left behind then.
        """
        if not self._chargers.is_online(charger_id):
            raise SessionRefused(404, "ChargerOffline", f"{charger_id} is not connected")
        busy = await self.busy_reason(charger_id, connector_id)
        if busy:
            raise SessionRefused(409, "ConnectorBusy", busy)
        tariff = await self.tariff_for(charger_id, connector_id)
        try:
            hold_amount(tariff)
        except TariffError as error:
            log.error("payments.bad_tariff", charge_point_id=charger_id, error=str(error))
            raise SessionRefused(503, "PaymentsUnavailable", "no usable tariff") from None
        try:
            r, token = await self._coordinator.create(charger_id, connector_id, tariff, email)
        except sqlite3.IntegrityError:
            # Another driver won the race for this connector.
            raise SessionRefused(409, "ConnectorBusy", "reserved by another driver") from None
        if r.state is not State.PENDING_PAYMENT:
            return r, token  # free: no payment needed
        await self._runner.run_now(r.id, give_up_when_unavailable=True)
        r = await self._store.get(r.id)
        assert r is not None
        if r.checkout_url is None:
            # Stripe could not be reached: close the reservation so nothing stays half made.
            await self._coordinator.handle(r.id, machine.Cancel("system"))
            raise SessionRefused(503, "PaymentsUnavailable", "try again in a minute")
        return r, token

    async def tariff_for(self, charger_id: str, connector_id: int) -> Tariff:
        return await self._store.tariff_for(charger_id, connector_id) or self._default_tariff

    async def busy_reason(self, charger_id: str, connector_id: int) -> str | None:
        status = self._chargers.connector_status(charger_id, connector_id)
        if status is None:
            return "the connector has not reported its status"
        if status not in _FREE_STATUSES:
            return f"the connector is {status}"
        if await self._chargers.open_transaction(charger_id, connector_id) is not None:
            return "a charging session is in progress"
        if await self._store.active_on(charger_id, connector_id) is not None:
            return "reserved by another driver"
        return None

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
            r, token = await self.start_session(charger_id, connector_id, email)
        except RequestError as error:
            return error.response
        except SessionRefused as refused:
            return refused.response()
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
        return _view(r, self._coordinator.clock())

    async def confirm_payment(self, request: web.Request) -> web.Response:
        r = await self._find(request)
        try:
            body = await _body(request)
        except RequestError as error:
            return error.response
        session_id = body.get("checkoutSessionId")
        if not isinstance(session_id, str) or session_id != r.checkout_session_id:
            return _invalid("checkoutSessionId", "not this reservation's Checkout Session")
        after = await self.confirm_now(r.id, actor=actor_of(request))
        return _json(200, reservation_json(after, self._coordinator.clock()))

    async def confirm_now(self, reservation_id: str, actor: str = "driver") -> Reservation:
        """The driver is back from Checkout: verify the payment now, for an immediate answer."""
        await self._coordinator.handle(reservation_id, machine.PaymentCompleted(), actor=actor)
        await self._runner.run_now(reservation_id)
        r = await self._store.get(reservation_id)
        assert r is not None
        return r

    async def cancel_payment(self, request: web.Request) -> web.Response:
        r = await self._find(request)
        after = await self._coordinator.handle(
            r.id, machine.Cancel("driver"), actor=actor_of(request)
        )
        assert after is not None
        if after.state is not State.CANCELLED:
            return _json(
                409,
                {"status": "NotCancellable", "state": after.state.value,
                 "message": "a session that has started is stopped, not cancelled"},
            )  # fmt: skip
        return _view(after, self._coordinator.clock())

    async def stop_payment(self, request: web.Request) -> web.Response:
        r = await self._find(request)
        after = await self._coordinator.handle(
            r.id, machine.StopRequested("driver"), actor=actor_of(request)
        )
        assert after is not None
        # Stopping a charge, or cancelling one that has not started, is what "stop" means.
        if after.state not in (State.STOPPING, State.CANCELLED):
            return _json(409, {"status": "NotStoppable", "state": after.state.value})
        return _view(after, self._coordinator.clock())

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
        outcome = await apply_webhook(self._coordinator, event)
        return _json(200, {"received": True, "applied": outcome.applied})

    async def _find(self, request: web.Request) -> Reservation:
        r = await self._store.get(request.match_info["id"])
        if r is None:
            raise web.HTTPNotFound(
                text=orjson.dumps({"status": "NotFound", "message": "no such payment"}).decode(),
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
