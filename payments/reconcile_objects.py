"""Stripe's side of reconciliation: the fields the comparison's rules read, taken from
Stripe's own JSON objects (Checkout Sessions, PaymentIntents, charges, refunds, disputes),
expanded or not, and the snapshot of one listing window (`payments.reconcile.compare`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def _id(value: Any) -> str | None:
    """An id field, expanded or not."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _claimed(obj: Mapping[str, Any], key: str = "reservation_id") -> str | None:
    value = (obj.get("metadata") or {}).get(key)
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass(frozen=True)
class StripeSession:
    id: str
    status: str  # open, complete, expired
    payment_intent: str | None
    reservation_id: str | None  # what our metadata claims
    created: int = 0

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> StripeSession:
        return cls(
            obj["id"],
            obj.get("status") or "open",
            _id(obj.get("payment_intent")),
            _claimed(obj),
            _int(obj.get("created")),
        )


@dataclass(frozen=True)
class StripeIntent:
    id: str
    status: str
    amount: int = 0
    amount_capturable: int = 0
    amount_received: int = 0
    reservation_id: str | None = None
    cancellation_reason: str | None = None
    currency: str = ""
    created: int = 0

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> StripeIntent:
        return cls(
            obj["id"],
            obj.get("status") or "",
            _int(obj.get("amount")),
            _int(obj.get("amount_capturable")),
            _int(obj.get("amount_received")),
            _claimed(obj),
            obj.get("cancellation_reason"),
            obj.get("currency") or "",
            _int(obj.get("created")),
        )


@dataclass(frozen=True)
class StripeCharge:
    id: str
    payment_intent: str | None
    disputed: bool = False
    created: int = 0

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> StripeCharge:
        return cls(
            obj["id"],
            _id(obj.get("payment_intent")),
            bool(obj.get("disputed")),
            _int(obj.get("created")),
        )


@dataclass(frozen=True)
class StripeRefund:
    id: str
    payment_intent: str | None
    charge: str | None
    amount: int
    status: str  # pending, requires_action, succeeded, failed, canceled
    request_id: str | None = None  # metadata refund_request_id: our refund id
    created: int = 0

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> StripeRefund:
        return cls(
            obj["id"],
            _id(obj.get("payment_intent")),
            _id(obj.get("charge")),
            _int(obj.get("amount")),
            obj.get("status") or "succeeded",
            _claimed(obj, "refund_request_id"),
            _int(obj.get("created")),
        )


@dataclass(frozen=True)
class StripeDispute:
    id: str
    payment_intent: str | None
    charge: str | None
    amount: int
    status: str = ""
    created: int = 0

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> StripeDispute:
        return cls(
            obj["id"],
            _id(obj.get("payment_intent")),
            _id(obj.get("charge")),
            _int(obj.get("amount")),
            obj.get("status") or "",
            _int(obj.get("created")),
        )


@dataclass(frozen=True)
class StripeSnapshot:
    """What Stripe listed: objects created at or after `since` (Unix seconds)."""

    since: int
    sessions: Sequence[StripeSession] = ()
    intents: Sequence[StripeIntent] = ()
    charges: Sequence[StripeCharge] = ()
    refunds: Sequence[StripeRefund] = ()
    disputes: Sequence[StripeDispute] = ()

    def named_reservations(self) -> set[str]:
        """Every reservation id our metadata names in the listing."""
        named = {s.reservation_id for s in self.sessions} | {i.reservation_id for i in self.intents}
        return {x for x in named if x}

    def stripe_ids(self) -> set[str]:
        """The Checkout Session and PaymentIntent ids listed or pointed to."""
        ids = {s.id for s in self.sessions} | {i.id for i in self.intents}
        ids |= {s.payment_intent for s in self.sessions if s.payment_intent}
        ids |= {x.payment_intent for x in (*self.charges, *self.refunds, *self.disputes)}
        return {x for x in ids if x}
