"""A payment not finished yet, as the driver's pages show it: to the driver who started it, a
way back to Checkout and a way out; to anyone else, how long it can still hold the connector.

An unpaid reservation holds its connector until its payment deadline (the short
`payments.pending_window` once the Checkout link was handed over); the state machine then
ends it and closes its Checkout Session. Pure functions of the reservation and the time.
"""

from __future__ import annotations

import math
from datetime import datetime

from payments.reservation import Hold, Reservation, State

# A busy page reloads itself at least this often (seconds), to turn into the start page.
REFRESH_SECONDS = 15


def unpaid(r: Reservation) -> bool:
    """Waiting for the driver's payment on Checkout (nothing held on the card yet)."""
    return r.state is State.PENDING_PAYMENT and r.hold is Hold.NONE


def checkout_link(r: Reservation) -> str | None:
    """Where the driver goes on paying: the reservation's own Checkout page, while unpaid."""
    return r.checkout_url if unpaid(r) and r.checkout_url else None


def minutes_left(r: Reservation, now: datetime) -> int:
    """The most whole minutes (at least 1) the unpaid reservation can still hold the connector."""
    seconds = (r.payment_deadline - now).total_seconds()
    return max(1, math.ceil(seconds / 60))


def refresh_after(holder: Reservation | None, now: datetime) -> int:
    """Seconds after which a busy page reloads: soon after the unpaid hold ends, else often."""
    if holder is None or not unpaid(holder):
        return REFRESH_SECONDS
    seconds = math.ceil((holder.payment_deadline - now).total_seconds()) + 2
    return max(2, min(REFRESH_SECONDS, seconds))
