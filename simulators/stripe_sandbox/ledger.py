"""The ledger: what happened to the money of each PaymentIntent, for checkers.

A checker holds it against the system under test: every PaymentIntent that system
created (recognised by its `metadata`), its amounts, and the requests it made. The
request counters count API requests only (the system under test's), refused ones
included, so a second capture of the same PaymentIntent shows even though Stripe
refuses it; the success counters say how many of them took effect. A request replayed
from the idempotency cache never reaches the account and is not counted. Captures and
cancels by the Dashboard, the issuer or the clock are not requests of the system: they
show in `captured_by` / `canceled_by` and in the amounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

CapturedBy = Literal["api", "automatic", "dashboard"]
CanceledBy = Literal["api", "automatic", "elsewhere", "session_expired"]


@dataclass
class Ledger:
    payment_intent: str
    currency: str
    amount_authorized: int = 0
    amount_captured: int = 0
    amount_released: int = 0
    amount_refunded: int = 0
    amount_disputed: int = 0
    # API capture requests that reached the PaymentIntent, refused ones included...
    capture_requests: int = 0
    # ...and those that captured.
    captures: int = 0
    cancel_requests: int = 0
    cancels: int = 0
    captured_by: CapturedBy | None = None
    canceled_by: CanceledBy | None = None

    @property
    def amount_held(self) -> int:
        return self.amount_authorized - self.amount_captured - self.amount_released

    def to_json(self) -> dict[str, Any]:
        # Every field is a plain value: a copy of the fields (asdict would deep-copy).
        return dict(vars(self))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Ledger:
        return cls(**data)


def entry(ledger: Ledger, intent: dict[str, Any]) -> dict[str, Any]:
    """One line of the report: the ledger, what is still held, and the PaymentIntent's
    status, `created` and `metadata` (a copy)."""
    return ledger.to_json() | {
        "amount_held": ledger.amount_held,
        "status": intent["status"],
        "created": intent["created"],
        "metadata": dict(intent["metadata"]),
    }
