"""One transition of the reservation machine being worked out, and the primitives of its
effects.

`Step` holds the reservation as it changes, the charger's facts, the time and the policy,
and collects the effects in the order they are asked for. The methods here are the
primitives every phase uses to change money or the charge: ask for a stop, stop a stray
transaction, capture, release, park for review, end on a failure. Each changes the
reservation and appends at most one effect, keeping the bookkeeping that makes it safe to
ask twice (attempt numbers, the stray transaction's id, the hold's state: a release is only
asked for a hold that is held). When they apply is the phases' decision
(payments.reservation_payment, payments.reservation_charging,
payments.reservation_settlement, payments.reservation_deadlines); which phase an event
goes to is the transition table's (payments.reservation).

Pure, like the whole machine: no I/O, and no time but `now`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from payments.reservation_messages import (
    Capture,
    ChargerFacts,
    Effect,
    ExpireCheckout,
    ReleaseHold,
    RemoteStop,
)
from payments.reservation_model import CHARGING_STATES, Hold, Policy, Reservation, State


class Step:
    """One transition being worked out; collects the effects as it goes."""

    def __init__(self, r: Reservation, facts: ChargerFacts, now: datetime, policy: Policy) -> None:
        self.r = r
        self.facts = facts
        self.now = now
        self.policy = policy
        self.effects: list[Effect] = []

    def set(self, **changes: object) -> None:
        self.r = replace(self.r, **changes)  # type: ignore[arg-type]

    def request_stop(self) -> None:
        assert self.r.transaction_id is not None
        self.set(state=State.STOPPING, stop_requested_at=self.now, stop_undelivered=False)
        self.effects.append(RemoteStop(self.r.transaction_id))

    def stray(self, charger_id: str, transaction_id: int) -> None:
        """Stop a transaction this reservation's tag must not be charging on (once per id)."""
        if self.r.stray_transaction_id == transaction_id:
            return
        self.set(stray_transaction_id=transaction_id)
        self.effects.append(RemoteStop(transaction_id, charger_id))

    def capture(self, amount: int) -> None:
        assert self.r.payment_intent_id is not None
        attempt = self.r.capture_attempts + 1
        self.set(capture_amount=amount, hold=Hold.CAPTURING, capture_attempts=attempt)
        self.effects.append(Capture(self.r.payment_intent_id, amount, attempt))

    def release(self) -> None:
        if self.r.hold is Hold.HELD:
            assert self.r.payment_intent_id is not None
            attempt = self.r.release_attempts + 1
            self.set(hold=Hold.RELEASING, release_attempts=attempt)
            self.effects.append(ReleaseHold(self.r.payment_intent_id, attempt))

    def review(self, reason: str) -> None:
        """Park for a person: active charges are stopped first, then settled into review."""
        if self.r.state in CHARGING_STATES or self.r.state is State.WAITING_FOR_DISCONNECT:
            self.set(failure_reason=reason)
            return
        self.set(state=State.NEEDS_REVIEW, failure_reason=reason)

    def end(self, state: State, reason: str, *, checkout_open: bool = True) -> None:
        """A failure end: the reservation stops locking the connector; a held card is released.

        Ending before a payment closes the Checkout Session, so that it can no longer be
        paid; closing it finds out when the driver paid first (a late payment)."""
        r = self.r
        unpaid = r.state is State.PENDING_PAYMENT and r.hold is Hold.NONE
        if checkout_open and unpaid and r.checkout_session_id:
            self.effects.append(ExpireCheckout(r.checkout_session_id))
        self.set(state=state, failure_reason=reason, verifying=False)
        self.release()
