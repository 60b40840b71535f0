"""The values the sandbox's account works with, beside the Stripe objects themselves.

`Clock`: the sandbox's time, which tests may advance. `Origin`: what caused a change; it
becomes the `request` of the events the change emits (`AUTOMATIC`: no API request, as for
the customer on the hosted page and for what time does). `Checkout` and `IntentBook`: what
the account keeps beside a Checkout Session and a PaymentIntent (the spec it was created
from, the ledger of the money, the card waiting for 3D Secure); the state file stores them
(codec). `PaymentOutcome`: what a payment attempt on the hosted page came to.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from .cards import Card
from .ledger import Ledger
from .resources import JSON
from .specs import SessionSpec


class Clock:
    """The sandbox's time: the wall clock plus whatever tests have advanced it by."""

    def __init__(self) -> None:
        self.offset = 0

    def now(self) -> int:
        return int(time.time()) + self.offset


@dataclass(frozen=True)
class Origin:
    """What caused a change; it becomes the `request` of the events it emits.

    Customer actions on the hosted page and automatic changes have no API request.
    """

    request_id: str | None = None
    idempotency_key: str | None = None


AUTOMATIC = Origin()


@dataclass
class Checkout:
    """What a Checkout Session was created from, beyond the session object."""

    spec: SessionSpec
    line_items: list[JSON]


@dataclass
class IntentBook:
    """The bookkeeping of one PaymentIntent beyond the object itself."""

    ledger: Ledger
    authorized_at: int | None = None
    # The card waiting for the customer to pass (or fail) 3D Secure, and its method id.
    pending: tuple[Card, str] | None = None


@dataclass(frozen=True)
class PaymentOutcome:
    status: Literal["authorized", "declined", "requires_action", "closed"]
    message: str | None = None
