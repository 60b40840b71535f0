"""Paying for a reservation: the Checkout Session verified, the card's authorisation taken.

`PayingStep` adds to a `ChargingStep` (payments.reservation_charging):
- `verify`, `verify_pending`: a payment signal asks Stripe for the session's state; one
  that arrives while a verification is under way makes it verify again afterwards (the
  answer under way may predate the payment);
- `authorised`: the hold is taken once, whichever of the confirmation and the webhook
  comes first; a payment for a reservation that already ended is released (the ended state
  is kept); less authorised than the hold ends it as a failed payment; otherwise the
  charge may start (`try_start`) within the start window;
- `not_authorised`: while the driver can still pay (another card, 3D Secure, processing)
  nothing ends; otherwise the unpaid reservation fails, or goes to review when the
  PaymentIntent was captured by someone else (it cannot be released from here).
"""

from __future__ import annotations

from payments.reservation_charging import ChargingStep
from payments.reservation_messages import VerifyPayment
from payments.reservation_model import Hold, State


class PayingStep(ChargingStep):
    """A step that can verify a payment and take its authorisation."""

    def verify(self) -> None:
        assert self.r.checkout_session_id is not None
        self.set(verifying=True, verify_again=False)
        self.effects.append(VerifyPayment(self.r.checkout_session_id))

    def verify_pending(self) -> bool:
        """After a verification's answer: verify again if a signal came meanwhile."""
        if self.r.verify_again and self.r.hold is Hold.NONE and self.r.checkout_session_id:
            self.verify()
            return True
        return False

    def authorised(self, payment_intent_id: str, amount_capturable: int) -> None:
        r = self.r
        self.set(verifying=False, verify_again=False)
        if r.hold is not Hold.NONE:
            return  # seen already (confirm and webhook both verify)
        self.set(hold=Hold.HELD, payment_intent_id=payment_intent_id, authorised_at=self.now)
        if r.state is not State.PENDING_PAYMENT:
            # Paid after the reservation ended (cancelled, expired): give the money back.
            self.release()
            return
        if amount_capturable < r.hold_amount:
            self.end(State.PAYMENT_FAILED, f"authorised {amount_capturable} of {r.hold_amount}")
            return
        self.set(state=State.AUTHORISED, start_deadline=self.now + self.policy.start_window)
        self.try_start()

    def not_authorised(self, payment_intent_id: str | None, status: str) -> None:
        """A verification's answer that the payment is not authorised (or not yet)."""
        r = self.r
        self.set(verifying=False)
        if self.verify_pending():
            return
        if r.state is State.PENDING_PAYMENT and r.hold is Hold.NONE:
            if payment_intent_id:
                self.set(payment_intent_id=payment_intent_id)
            if status in ("requires_payment_method", "requires_action", "processing"):
                return  # the driver can still try another card on the Checkout page
            # A PaymentIntent captured by someone else cannot be released by us.
            ending = State.NEEDS_REVIEW if status == "succeeded" else State.PAYMENT_FAILED
            self.end(ending, f"payment intent is {status}")
