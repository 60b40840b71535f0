"""The reservation machine's clock: what a Tick does, and when the next one is due.

`TimedStep.check_deadlines` runs after every event (a Tick is only an event that moves
nothing else): unpaid past the payment deadline, expired; not started within the start
window, timed out; charging with the cable out for long, or the card's hold about to lapse
(the capture deadline), settled from the last meter value with the charge stopped; past
the tariff's maximum duration, stopped; a stop unanswered, asked again; the idle time after
the charge at its cap, settled.

`next_deadline` is the same table read the other way: the earliest moment one of these
could fire for a reservation, so that the runner ticks it then and never polls. The two
must be changed together.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from payments.reservation_charging import ChargingStep
from payments.reservation_model import (
    BEFORE_START,
    CHARGING_STATES,
    Hold,
    Policy,
    Reservation,
    State,
)


class TimedStep(ChargingStep):
    """A step that applies the deadlines due at its `now`."""

    def check_deadlines(self) -> None:
        r, now, _policy = self.r, self.now, self.policy
        if r.state is State.PENDING_PAYMENT and now >= r.payment_deadline and r.hold is Hold.NONE:
            self.end(State.EXPIRED, "not paid in time")
        elif r.state in BEFORE_START and r.start_deadline and now >= r.start_deadline:
            self.end(State.START_TIMEOUT, "the charge did not start in time")
        elif r.state in CHARGING_STATES:
            self.charging_deadlines()
        elif r.state is State.WAITING_FOR_DISCONNECT and r.stopped_at is not None:
            idle_cap = timedelta(
                minutes=r.tariff.idle_grace_minutes + (r.tariff.idle_fee_max_minutes or 0)
            )
            if now >= r.stopped_at + idle_cap or self.past_capture_deadline():
                self.set(unplugged_at=min(now, r.stopped_at + idle_cap))
                self.settle()

    def charging_deadlines(self) -> None:
        r, now, policy = self.r, self.now, self.policy
        # No StopTransaction though the cable is out, or the card hold is about to lapse:
        # settle from the last meter value (and make sure the charge stops).
        unplugged_long = (
            r.available_since is not None
            and now >= r.available_since + policy.settle_after_available
        )
        if unplugged_long or self.past_capture_deadline():
            if r.state is State.CHARGING and not unplugged_long:
                self.request_stop()
            self.settle()
            return
        if r.state is State.CHARGING:
            max_minutes = r.tariff.max_duration_minutes
            if (
                max_minutes
                and r.charging_since
                and now >= r.charging_since + timedelta(minutes=max_minutes)
            ):
                self.request_stop()
        elif r.stop_requested_at and now >= r.stop_requested_at + policy.stop_retry_interval:
            self.request_stop()  # no StopTransaction yet: ask again

    def past_capture_deadline(self) -> bool:
        return (
            self.r.authorised_at is not None
            and self.now >= self.r.authorised_at + self.policy.capture_deadline
        )


def next_deadline(r: Reservation, policy: Policy) -> datetime | None:
    """When the machine next needs a Tick for this reservation (None: only events move it)."""
    candidates: list[datetime | None] = []
    if r.state is State.PENDING_PAYMENT:
        candidates.append(r.payment_deadline)
    elif r.state in BEFORE_START:
        candidates.append(r.start_deadline)
    elif r.state in CHARGING_STATES or r.state is State.WAITING_FOR_DISCONNECT:
        if r.authorised_at is not None:
            candidates.append(r.authorised_at + policy.capture_deadline)
        if r.available_since is not None:
            candidates.append(r.available_since + policy.settle_after_available)
        if r.state is State.CHARGING and r.charging_since and r.tariff.max_duration_minutes:
            candidates.append(r.charging_since + timedelta(minutes=r.tariff.max_duration_minutes))
        if r.state is State.STOPPING and r.stop_requested_at:
            candidates.append(r.stop_requested_at + policy.stop_retry_interval)
        if r.state is State.WAITING_FOR_DISCONNECT and r.stopped_at:
            idle = r.tariff.idle_grace_minutes + (r.tariff.idle_fee_max_minutes or 0)
            candidates.append(r.stopped_at + timedelta(minutes=idle))
    known = [c for c in candidates if c is not None]
    return min(known) if known else None
