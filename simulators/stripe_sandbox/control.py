"""JSON endpoints under /_sandbox/ that drive the sandbox from another process.

They mirror the Python control methods of `StripeSandbox` one for one, so a test that
runs the sandbox with `python -m simulators.stripe_sandbox` can do what an in-process
test does. No API key: they are not part of Stripe's API.

The payment_intents routes are what an operator does in Stripe's Dashboard, outside the
API calls under test: capture (`{"amount": n}` for part of it), refund (`{"amount": n,
"reason": ...}`), cancel, dispute. They answer the object as the API would, and Stripe's
error body when Stripe would refuse.

Connect: `accounts/{id}/complete` finishes a connected account's onboarding as the hosted
page would; `accounts/{id}/payouts` (`{"amount": n, "currency": "eur", "status": "paid" |
"failed" | "pending", "failure_code": "account_closed"}`) makes a payout of that account,
and `payouts/{id}` (`{"status": "paid" | "failed"}`) settles a pending one.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .app import json_response
from .errors import invalid_request

if TYPE_CHECKING:
    from .sandbox import StripeSandbox


class Control:
    def __init__(self, sandbox: StripeSandbox) -> None:
        self._sandbox = sandbox

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/_sandbox", self.overview),
            web.post("/_sandbox/clock/advance", self.advance_clock),
            web.post("/_sandbox/faults", self.add_fault),
            web.delete("/_sandbox/faults", self.clear_faults),
            web.get("/_sandbox/webhooks", self.webhooks),
            web.post("/_sandbox/webhooks", self.configure_webhooks),
            web.get("/_sandbox/ledger", self.ledger),
            web.get("/_sandbox/events", self.events),
            web.post("/_sandbox/payment_intents/{id}/capture", self.capture),
            web.post("/_sandbox/payment_intents/{id}/refund", self.refund),
            web.post("/_sandbox/payment_intents/{id}/cancel", self.cancel_elsewhere),
            web.post("/_sandbox/payment_intents/{id}/dispute", self.dispute),
            web.post("/_sandbox/accounts/{id}/complete", self.complete_account),
            web.post("/_sandbox/accounts/{id}/payouts", self.create_payout),
            web.post("/_sandbox/payouts/{id}", self.settle_payout),
        ]

    async def _body(self, request: web.Request) -> dict[str, Any]:
        text = await request.text()
        if not text.strip():
            return {}
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            raise invalid_request(f"Invalid JSON body: {exc}") from None
        if not isinstance(body, dict):
            raise invalid_request("The body must be a JSON object.")
        return body

    async def overview(self, request: web.Request) -> web.Response:
        sandbox = self._sandbox
        return json_response(
            200,
            {
                "base_url": sandbox.base_url,
                "now": sandbox.now(),
                "faults": sandbox.faults.pending(),
                "webhooks": self._webhook_settings(),
            },
        )

    async def advance_clock(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        seconds = body.get("seconds")
        if not isinstance(seconds, int) or seconds < 0:
            raise invalid_request("`seconds` must be a non-negative integer.", param="seconds")
        return json_response(200, {"now": self._sandbox.advance_clock(seconds)})

    async def add_fault(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        try:
            self._sandbox.fail_next(
                body.get("count", 1),
                body.get("status"),
                delay_seconds=body.get("delay_seconds"),
                path=body.get("path"),
                method=body.get("method"),
                after_processing=bool(body.get("after_processing", False)),
            )
        except (TypeError, ValueError) as exc:
            raise invalid_request(str(exc)) from None
        return json_response(200, {"pending": self._sandbox.faults.pending()})

    async def clear_faults(self, request: web.Request) -> web.Response:
        self._sandbox.clear_faults()
        return json_response(200, {"pending": []})

    def _webhook_settings(self) -> dict[str, Any]:
        dispatcher = self._sandbox.webhooks
        return {
            "url": dispatcher.url,
            "duplicates": dispatcher.duplicates,
            "shuffle": dispatcher.shuffle,
            "paused": dispatcher.paused,
            "enabled_events": self._sandbox.enabled_events,
        }

    async def webhooks(self, request: web.Request) -> web.Response:
        return json_response(
            200, self._webhook_settings() | {"attempts": self._sandbox.deliveries()}
        )

    async def configure_webhooks(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        sandbox = self._sandbox
        if "url" in body:
            sandbox.webhook_url = body["url"]
        if "enabled_events" in body:
            try:
                sandbox.enabled_events = body["enabled_events"]
            except ValueError as exc:
                raise invalid_request(str(exc), param="enabled_events") from None
        if "duplicates" in body:
            try:
                sandbox.webhook_duplicates(body["duplicates"])
            except (TypeError, ValueError) as exc:
                raise invalid_request(str(exc), param="duplicates") from None
        if "shuffle" in body:
            sandbox.webhook_shuffle(bool(body["shuffle"]))
        if "paused" in body:
            if body["paused"]:
                sandbox.pause_webhooks()
            else:
                sandbox.resume_webhooks()
        return json_response(200, self._webhook_settings())

    async def ledger(self, request: web.Request) -> web.Response:
        return json_response(200, {"payment_intents": self._sandbox.ledger()})

    async def events(self, request: web.Request) -> web.Response:
        return json_response(200, {"events": self._sandbox.events(request.query.get("type"))})

    async def capture(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        try:
            intent = self._sandbox.capture_payment_intent(
                request.match_info["id"], body.get("amount")
            )
        except ValueError as exc:
            raise invalid_request(str(exc), param="amount") from None
        return json_response(200, intent)

    async def refund(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        reason = body.get("reason")
        if reason not in (None, "duplicate", "fraudulent", "requested_by_customer"):
            raise invalid_request(
                "Invalid reason: must be one of duplicate, fraudulent, requested_by_customer",
                param="reason",
            )
        try:
            refund = self._sandbox.refund_payment_intent(
                request.match_info["id"], body.get("amount"), reason
            )
        except ValueError as exc:
            raise invalid_request(str(exc), param="amount") from None
        return json_response(200, refund)

    async def cancel_elsewhere(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        intent = self._sandbox.cancel_payment_intent_elsewhere(
            request.match_info["id"], body.get("reason", "requested_by_customer")
        )
        return json_response(200, intent)

    async def dispute(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        dispute = self._sandbox.create_dispute(
            request.match_info["id"], body.get("reason", "fraudulent")
        )
        return json_response(200, dispute)

    async def complete_account(self, request: web.Request) -> web.Response:
        return json_response(200, self._sandbox.complete_account(request.match_info["id"]))

    async def create_payout(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        try:
            payout = self._sandbox.create_payout(
                request.match_info["id"],
                body.get("amount"),  # type: ignore[arg-type]
                body.get("currency"),
                body.get("status", "paid"),
                body.get("failure_code", "account_closed"),
            )
        except ValueError as exc:
            raise invalid_request(str(exc)) from None
        return json_response(200, payout)

    async def settle_payout(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        try:
            payout = self._sandbox.settle_payout(
                request.match_info["id"],
                body.get("status", "paid"),
                body.get("failure_code", "account_closed"),
            )
        except ValueError as exc:
            raise invalid_request(str(exc)) from None
        return json_response(200, payout)
