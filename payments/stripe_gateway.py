"""Stripe through the official SDK (`StripeClient`, async): the calls payments make, and
Stripe's errors mapped to two outcomes the runner understands.

- `StripeUnavailable`: worth retrying (network, timeouts, rate limits, Stripe's 5xx,
  a key that is being fixed). The same idempotency key makes the retry safe.
- `StripeRejected`: Stripe said no for good; retrying would not change it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import stripe
import structlog

from payments.observe import PaymentsObserver

log = structlog.get_logger()

# Objects per page of a list request: Stripe's largest.
LIST_PAGE_SIZE = 100


class StripeUnavailable(Exception):
    pass


class StripeRejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


@dataclass(frozen=True)
class PaymentState:
    """What Stripe says of a Checkout Session and its PaymentIntent."""

    session_status: str  # open, complete, expired
    payment_intent_id: str | None
    payment_intent_status: str | None  # requires_capture is the one that lets a charge start
    amount_capturable: int


@dataclass(frozen=True)
class CaptureResult:
    """A confirmed capture: the amount, and Stripe's fee on the charge in the charge's
    currency (None: not known). Stripe may leave a charge's balance transaction null just
    after capture (asynchronous payment methods, some integrations), and a balance
    transaction in another (settlement) currency gives no fee in the charge's currency:
    then the fee is not known, never guessed."""

    amount: int
    fee: int | None = None


def charge_fee(intent: Any) -> int | None:
    """The fee of the PaymentIntent's charge, from `latest_charge.balance_transaction`
    when both were expanded; None otherwise."""
    charge = getattr(intent, "latest_charge", None)
    if charge is None or isinstance(charge, str):
        return None
    txn = getattr(charge, "balance_transaction", None)
    if txn is None or isinstance(txn, str):
        return None
    fee, currency = getattr(txn, "fee", None), getattr(txn, "currency", None)
    if not isinstance(fee, int) or isinstance(fee, bool) or fee < 0:
        return None
    if currency != getattr(charge, "currency", None):
        return None
    return fee


@dataclass(frozen=True)
class CheckoutRequest:
    reservation_id: str
    charger_id: str
    connector_id: int
    id_tag: str
    amount: int
    currency: str
    description: str
    email: str | None
    success_url: str
    cancel_url: str
    expires_at: datetime
    locale: str | None = None  # Checkout's language ("en", "de"); None: the browser's


class StripeGateway:
    def __init__(
        self,
        api_key: str,
        *,
        api_base: str | None = None,
        max_network_retries: int = 2,
        timeout: float = 20.0,
        observer: PaymentsObserver | None = None,
    ) -> None:
        self._observer = observer
        self._http = stripe.AIOHTTPClient(timeout=timeout)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,  # type: ignore[typeddict-item]
            http_client=self._http,
            max_network_retries=max_network_retries,
        )

    async def close(self) -> None:
        await self._http.close_async()

    async def create_checkout(self, request: CheckoutRequest, key: str) -> CheckoutSession:
        metadata = {
            "reservation_id": request.reservation_id,
            "charge_point_id": request.charger_id,
            "connector_id": str(request.connector_id),
            "id_tag": request.id_tag,
        }
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": request.currency,
                        "unit_amount": request.amount,
                        "product_data": {"name": request.description},
                    },
                }
            ],
            "payment_intent_data": {"capture_method": "manual", "metadata": metadata},
            "allowed_payment_method_types": ["card"],
            "metadata": metadata,
            "client_reference_id": request.reservation_id,
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "expires_at": int(request.expires_at.timestamp()),
        }
        if request.locale:
            params["locale"] = request.locale
        if request.email:
            params["customer_email"] = request.email
            params["payment_intent_data"]["receipt_email"] = request.email
        session = await self._call(
            "checkout.create",
            self._client.v1.checkout.sessions.create_async(
                params,  # type: ignore[arg-type]
                {"idempotency_key": key},
            ),
        )
        return CheckoutSession(session.id, session.url or "")

    async def payment_state(self, session_id: str) -> PaymentState:
        session = await self._call(
            "checkout.retrieve",
            self._client.v1.checkout.sessions.retrieve_async(
                session_id, {"expand": ["payment_intent"]}
            ),
        )
        intent = session.payment_intent
        if intent is None:
            return PaymentState(session.status or "open", None, None, 0)
        if isinstance(intent, str):  # not expanded by an older API: fetch it
            intent = await self._call(
                "payment_intent.retrieve", self._client.v1.payment_intents.retrieve_async(intent)
            )
        return PaymentState(
            session.status or "open", intent.id, intent.status, intent.amount_capturable or 0
        )

    async def capture(self, payment_intent_id: str, amount: int, key: str) -> CaptureResult:
        """Capture `amount`; the rest of the hold is released by Stripe. Returns the amount
        captured and Stripe's fee on the charge when the answer says it (see CaptureResult)."""
        expand = {"expand": ["latest_charge.balance_transaction"]}
        try:
            intent = await self._call(
                "payment_intent.capture",
                self._client.v1.payment_intents.capture_async(
                    payment_intent_id,
                    {"amount_to_capture": amount, **expand},
                    {"idempotency_key": key},
                ),
            )
        except StripeRejected as rejected:
            if rejected.code != "payment_intent_unexpected_state":
                raise
            # Captured already (an earlier attempt whose answer was lost)? Then that's the result.
            intent = await self._call(
                "payment_intent.retrieve",
                self._client.v1.payment_intents.retrieve_async(payment_intent_id, expand),
            )
            if intent.status == "canceled":
                # The authorisation lapsed or was cancelled: nothing can be captured now.
                raise StripeRejected(
                    "payment_intent_canceled", f"the payment was canceled: {rejected.message}"
                ) from rejected
            if intent.status != "succeeded":
                raise
        return CaptureResult(intent.amount_received or amount, charge_fee(intent))

    async def release(self, payment_intent_id: str, key: str) -> None:
        """Cancel the PaymentIntent: the hold on the card disappears."""
        try:
            await self._call(
                "payment_intent.cancel",
                self._client.v1.payment_intents.cancel_async(
                    payment_intent_id,
                    {"cancellation_reason": "abandoned"},
                    {"idempotency_key": key},
                ),
            )
        except StripeRejected as rejected:
            if rejected.code != "payment_intent_unexpected_state":
                raise
            intent = await self._call(
                "payment_intent.retrieve",
                self._client.v1.payment_intents.retrieve_async(payment_intent_id),
            )
            if intent.status != "canceled":
                raise

    async def refund(
        self,
        payment_intent_id: str,
        amount: int,
        reason: str,
        key: str,
        *,
        request_id: str | None = None,
        attempts: int = 0,
    ) -> str:
        """Give `amount` of a captured payment back; returns Stripe's refund id.

        `request_id` (our refund's id) goes into the refund's metadata as
        `refund_request_id`. Stripe forgets idempotency keys after 24 hours, so when an
        earlier attempt may have reached Stripe (`attempts` > 0: its answer was lost), the
        PaymentIntent's refunds are looked through first and the one that attempt made is
        the answer: one request never refunds twice, however late it is repeated.
        """
        refund = None
        if request_id is not None and attempts > 0:
            refund = await self.refund_for_request(payment_intent_id, request_id)
            if refund is not None:
                log.info(
                    "stripe.refund_found", refund_request_id=request_id, refund_id=refund["id"]
                )
        if refund is None:
            metadata = {"reason": reason[:500]}
            if request_id is not None:
                metadata["refund_request_id"] = request_id
            created = await self._call(
                "refund.create",
                self._client.v1.refunds.create_async(
                    {"payment_intent": payment_intent_id, "amount": amount, "metadata": metadata},
                    {"idempotency_key": key},
                ),
            )
            refund = created.to_dict()
        status = refund.get("status")
        if status in ("failed", "canceled"):
            failure = refund.get("failure_reason") or f"the refund {status}"
            raise StripeRejected("refund_failed", failure)
        return str(refund["id"])

    async def refund_for_request(
        self, payment_intent_id: str, request_id: str
    ) -> dict[str, Any] | None:
        """The PaymentIntent's refund made for our refund `request_id` (None: none yet)."""
        refunds = await self._list_all(
            "refund.list",
            self._client.v1.refunds.list_async,
            {"payment_intent": payment_intent_id},
        )
        for refund in refunds:
            if (refund.get("metadata") or {}).get("refund_request_id") == request_id:
                return refund
        return None

    async def list_created(self, resource: str, since: int) -> list[dict[str, Any]]:
        """Every object of `resource` ("checkout_sessions", "payment_intents", "charges",
        "refunds" or "disputes") created at or after `since` (Unix seconds), newest first,
        all pages, as plain dicts."""
        v1 = self._client.v1
        services: dict[str, Any] = {
            "checkout_sessions": v1.checkout.sessions,
            "payment_intents": v1.payment_intents,
            "charges": v1.charges,
            "refunds": v1.refunds,
            "disputes": v1.disputes,
        }
        return await self._list_all(
            f"{resource}.list", services[resource].list_async, {"created": {"gte": since}}
        )

    async def _list_all(
        self, operation: str, list_async: Any, params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """All pages of a list request (100 a page, `starting_after` the last one seen)."""
        found: list[dict[str, Any]] = []
        params = {**params, "limit": LIST_PAGE_SIZE}
        while True:
            page = await self._call(operation, list_async(params))
            items = [item.to_dict() for item in page.data]
            found.extend(items)
            if not page.has_more or not items:
                return found
            params = {**params, "starting_after": items[-1]["id"]}

    async def expire_checkout(self, session_id: str, key: str) -> str:
        """Close an open Checkout Session so that it can no longer be paid. Returns the
        session's status after it: "expired", or "complete" when the driver paid first
        (then the payment must be looked at: it is a hold to release)."""
        try:
            session = await self._call(
                "checkout.expire",
                self._client.v1.checkout.sessions.expire_async(
                    session_id, None, {"idempotency_key": key}
                ),
            )
            return session.status or "expired"
        except StripeRejected:
            state = await self.payment_state(session_id)
            if state.session_status == "open":
                raise
            return state.session_status

    async def _call(self, operation: str, request: Any) -> Any:
        started = time.perf_counter()
        outcome: str | None = None  # stays None when cancelled: no outcome to count
        try:
            result = await request
            outcome = "ok"
            return result
        except (
            stripe.APIConnectionError,
            stripe.RateLimitError,
            stripe.APIError,
            stripe.AuthenticationError,
            stripe.PermissionError,
        ) as error:
            outcome = "unavailable"
            log.warning(
                "stripe.unavailable",
                operation=operation,
                error=type(error).__name__,
                message=str(error)[:200],
            )
            raise StripeUnavailable(
                f"{type(error).__name__}: {error.user_message or error}"
            ) from error
        except stripe.StripeError as error:
            code = getattr(error, "code", None) or type(error).__name__
            # 409: the same idempotency key is still being processed; 5xx: Stripe's trouble.
            if (error.http_status or 0) >= 500 or error.http_status == 409:
                outcome = "unavailable"
                raise StripeUnavailable(str(error)) from error
            outcome = "rejected"
            log.warning("stripe.rejected", operation=operation, code=code, message=str(error)[:200])
            raise StripeRejected(code, error.user_message or str(error)) from error
        finally:
            if self._observer is not None and outcome is not None:
                self._observer.stripe_call(operation, outcome, time.perf_counter() - started)


def verify_webhook(payload: bytes, signature: str, secrets: list[str], tolerance: int) -> None:
    """Raise stripe.SignatureVerificationError unless one of `secrets` signed `payload`."""
    error: stripe.SignatureVerificationError | None = None
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(
                payload.decode("utf-8"), signature, secret, tolerance
            )
            return
        except stripe.SignatureVerificationError as failure:
            error = failure
    raise error or stripe.SignatureVerificationError("no webhook secret configured", signature)
