"""The money end of a reservation: the session priced into a capture or a release, and what
Stripe, reconciliation and a person reviewing say about the hold afterwards.

`SettlingStep` adds to a `Step` (payments.reservation_step):
- `settle`: the price from the tariff snapshot (payments.reservation_model.session_price),
  never more than the hold; below the minimum energy or the smallest amount worth
  capturing the hold is released instead; a free session completes with nothing to take;
  a hold lost while charging goes to review;
- `capture_rejected`: Stripe's refusal, classified (below the minimum: release; the
  authorisation gone: the hold is lost and a person reviews; anything else: a person
  reviews with the hold kept);
- `captured_elsewhere`, `hold_lost`: what Stripe (the source of truth) reports is taken as
  it is, the charge stopped when nothing is left to capture, review when no rule explains
  it;
- `review_action`: a person's way out of a review (retry the capture within the hold,
  release, resolve), applied only once `review_refusal` found nothing against it.
The hold is captured at most once or released at most once: every path goes through the
primitives, which only act on a hold in the state that allows it.
"""

from __future__ import annotations

from payments.reservation_messages import (
    AUTHORISATION_EXPIRED,
    BELOW_MINIMUM,
    ReleaseInReview,
    Resolve,
    RetryCapture,
    ReviewAction,
)
from payments.reservation_model import (
    BEFORE_START,
    CHARGING_STATES,
    TERMINAL,
    Hold,
    State,
    minimum_charge,
    retry_amount,
    session_price,
)
from payments.reservation_step import Step


class SettlingStep(Step):
    """A step that can settle the session and follow the hold to its end."""

    def settle(self) -> None:
        """Price the session from the tariff snapshot; capture it, or release a tiny amount."""
        r = self.r
        breakdown = session_price(r, self.now)
        amount = min(breakdown.total, r.hold_amount)
        if r.hold is Hold.FREE:
            self.set(state=State.COMPLETED, breakdown=breakdown, capture_amount=0)
            return
        if r.hold is not Hold.HELD:
            # The hold was lost while charging: nothing can be captured; someone must look.
            self.set(state=State.NEEDS_REVIEW, breakdown=breakdown)
            return
        self.set(state=State.SETTLING, breakdown=breakdown)
        if r.energy_wh < self.policy.minimum_energy_wh or amount < minimum_charge(r, self.policy):
            self.set(capture_amount=0)
            self.release()
        else:
            self.capture(amount)

    def capture_rejected(self, reason: str, kind: str) -> None:
        """Stripe refused the capture: below the minimum, release; the authorisation gone,
        the hold is lost; anything else, someone must look (the hold stays)."""
        if kind == BELOW_MINIMUM:
            self.set(hold=Hold.HELD, capture_amount=0, failure_reason=reason)
            if self.r.state is not State.SETTLING:
                self.set(state=State.SETTLING)
            self.release()
        elif kind == AUTHORISATION_EXPIRED:
            self.set(hold=Hold.LOST, state=State.NEEDS_REVIEW, failure_reason=reason)
        else:
            self.set(hold=Hold.HELD, state=State.NEEDS_REVIEW, failure_reason=reason)

    def captured_elsewhere(self, amount: int) -> None:
        """Stripe (the source of truth) says captured: take its amount, and have a person
        look unless it is the capture this reservation was making anyway."""
        r = self.r
        if r.hold is Hold.CAPTURED and r.captured_amount == amount:
            return
        expected = r.hold is Hold.CAPTURING and r.capture_amount == amount
        # Stripe's fee on a capture made elsewhere is not known here.
        self.set(hold=Hold.CAPTURED, captured_amount=amount, stripe_fee=None)
        if expected and r.state is State.SETTLING:
            self.set(state=State.COMPLETED)
        elif r.state is State.CHARGING:
            self.request_stop()  # nothing is left to capture: the charge must end
        elif not expected:
            self.review(f"captured {amount} at Stripe outside csms")

    def hold_lost(self, reason: str) -> None:
        r = self.r
        if r.hold not in (Hold.HELD, Hold.RELEASING, Hold.CAPTURING):
            return
        if r.hold is Hold.RELEASING:
            self.set(hold=Hold.RELEASED)  # our own release, reported back
            if r.state is State.SETTLING:
                self.set(state=State.COMPLETED)
            return
        self.set(hold=Hold.LOST, failure_reason=f"hold cancelled: {reason}")
        if r.state is State.CHARGING:
            self.request_stop()
        if r.state in BEFORE_START or r.state is State.PENDING_PAYMENT:
            self.set(state=State.CANCELLED)
        elif r.state not in TERMINAL and r.state not in CHARGING_STATES:
            self.set(state=State.NEEDS_REVIEW)

    def review_action(self, action: ReviewAction) -> None:
        match action:
            case RetryCapture():
                self.set(state=State.SETTLING, failure_reason=None)
                self.capture(retry_amount(self.r, action, self.now))
            case ReleaseInReview():
                self.set(state=State.RESOLVED, resolution="hold released by an operator")
                self.release()
            case Resolve(note):
                self.set(state=State.RESOLVED, resolution=note)
