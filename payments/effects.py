"""Carrying out one effect: the Stripe call or charger command it stands for, and the event
that reports its outcome back to the reservation.

`StripeUnavailable` and `ChargerUnreachable` propagate: the runner retries the effect later
(with the same idempotency key). Every other outcome, failures included, is an event.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from payments import reservation as machine
from payments.outbox import PendingEffect
from payments.ports import ChargerControl
from payments.pricing import format_money
from payments.refunds import RefundStore
from payments.reservation import Event, Reservation
from payments.stripe_gateway import CheckoutRequest, StripeGateway, StripeRejected
from payments.transfer_effects import TransferEffects
from payments.transfer_messages import ReverseTransfer, TransferToOwner


class ChargerUnreachable(Exception):
    """A command that must reach the charger found it offline: try again later."""


# Stripe's refusals of a capture, by what can still be done about them.
_CAPTURE_REFUSALS = {
    "amount_too_small": machine.BELOW_MINIMUM,
    "charge_expired_for_capture": machine.AUTHORISATION_EXPIRED,
    "payment_intent_canceled": machine.AUTHORISATION_EXPIRED,
}


class EffectExecutor:
    def __init__(
        self,
        gateway: StripeGateway,
        chargers: ChargerControl,
        refunds: RefundStore,
        *,
        public_base_url: str,
        checkout_expires_at: Callable[[Reservation], datetime],
        transfers: TransferEffects | None = None,  # None: no owners' shares to move
    ) -> None:
        self._transfers = transfers
        self._gateway = gateway
        self._chargers = chargers
        self._refunds = refunds
        self.public_base_url = public_base_url
        self._checkout_expires_at = checkout_expires_at

    async def execute(
        self,
        pending: PendingEffect,
        r: Reservation,
        token: str,
        email: str | None,
        *,
        repeated: bool = False,
    ) -> Event:
        """`repeated`: the effect may have been carried out before (a retry, or an effect
        left by a process that died while carrying it out)."""
        key = pending.idempotency_key
        match pending.effect:
            case machine.CreateCheckout(locale, charger_name):
                return await self._create_checkout(r, token, email, key, locale, charger_name)
            case machine.ExpireCheckout(session_id):
                if await self._gateway.expire_checkout(session_id, key) == "complete":
                    return machine.PaymentCompleted()  # paid meanwhile: a hold to look at
                return machine.CheckoutExpired()
            case machine.VerifyPayment(session_id):
                return await self._verify(session_id)
            case machine.RemoteStart(id_tag):
                outcome = await self._chargers.remote_start(r.charger_id, r.connector_id, id_tag)
                if outcome == "Offline":
                    return machine.RemoteStartUndelivered()
                if outcome == "Timeout":
                    return machine.RemoteStartUnanswered()
                return machine.RemoteStartAnswered(outcome == "Accepted", repeated)
            case machine.RemoteStop(transaction_id, charger_id):
                outcome = await self._chargers.remote_stop(
                    charger_id or r.charger_id, transaction_id
                )
                if outcome == "Offline":
                    if charger_id is not None:
                        # A stray transaction: no state waits for the charger's return, so
                        # the effect itself waits, retried until the charger is back.
                        raise ChargerUnreachable(f"{charger_id} is offline")
                    return machine.RemoteStopUndelivered()
                return machine.RemoteStopAnswered(outcome == "Accepted")
            case machine.Capture(payment_intent_id, amount):
                try:
                    captured = await self._gateway.capture(payment_intent_id, amount, key)
                    return machine.Captured(captured.amount, captured.fee)
                except StripeRejected as rejected:
                    return machine.CaptureRejected(
                        rejected.message, _CAPTURE_REFUSALS.get(rejected.code, machine.REFUSED)
                    )
            case machine.ReleaseHold(payment_intent_id):
                try:
                    await self._gateway.release(payment_intent_id, key)
                except StripeRejected as rejected:
                    return machine.ReleaseRejected(rejected.message)
                return machine.HoldReleased()
            case machine.Refund(payment_intent_id, refund_id, amount):
                reason = await self._refund_reason(refund_id)
                try:
                    # Always looked up first by our request id: an earlier attempt may have
                    # reached Stripe (a crash, a lost answer) more than 24 hours ago, when
                    # Stripe no longer remembers the idempotency key.
                    stripe_id = await self._gateway.refund(
                        payment_intent_id,
                        amount,
                        reason,
                        key,
                        request_id=refund_id,
                        attempts=max(pending.attempts, 1),
                    )
                except StripeRejected as rejected:
                    return machine.RefundFailed(refund_id, amount, rejected.message)
                return machine.RefundSucceeded(refund_id, amount, stripe_id)
            case TransferToOwner() | ReverseTransfer() if self._transfers is not None:
                return await self._transfers.execute(pending, r, repeated)
        raise AssertionError(f"unknown effect {pending.effect!r}")

    async def _refund_reason(self, refund_id: str) -> str:
        record = await self._refunds.get(refund_id)
        return record.reason if record else ""

    async def _create_checkout(
        self,
        r: Reservation,
        token: str,
        email: str | None,
        key: str,
        locale: str | None,
        charger_name: str | None,
    ) -> Event:
        base = self.public_base_url.rstrip("/")
        request = CheckoutRequest(
            reservation_id=r.id,
            charger_id=r.charger_id,
            connector_id=r.connector_id,
            id_tag=r.id_tag,
            amount=r.hold_amount,
            currency=r.tariff.currency,
            description=(
                f"Charging at {charger_name or r.charger_id}, connector {r.connector_id}: hold of"
                f" at most {format_money(r.hold_amount, r.tariff.currency)}, only the energy used"
                " is charged"
            ),
            email=email,
            locale=locale,
            success_url=f"{base}/pay/{token}/success?session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{base}/pay/{token}/cancel",
            expires_at=self._checkout_expires_at(r),
        )
        try:
            session = await self._gateway.create_checkout(request, key)
        except StripeRejected as rejected:
            return machine.CheckoutUnavailable(rejected.message)
        return machine.CheckoutCreated(session.id, session.url)

    async def _verify(self, session_id: str) -> Event:
        state = await self._gateway.payment_state(session_id)
        if state.session_status == "expired":
            return machine.CheckoutExpired()
        if state.payment_intent_id and state.payment_intent_status == "requires_capture":
            return machine.PaymentAuthorised(state.payment_intent_id, state.amount_capturable)
        # Not paid (yet): the Checkout page stays usable until it expires.
        return machine.PaymentNotAuthorised(
            state.payment_intent_id, state.payment_intent_status or "requires_payment_method"
        )
