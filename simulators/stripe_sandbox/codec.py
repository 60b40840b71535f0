"""JSON for what the state file keeps beyond the objects: the bookkeeping of Checkout
Sessions and PaymentIntents (ledger included) and the saved idempotent responses.

Card numbers never reach it: a card waiting for 3D Secure is kept as a `Card` (brand,
last four digits, fingerprint).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .cards import Card, CardProfile
from .idempotency import Saved
from .ledger import Ledger
from .resources import JSON
from .specs import LineItemSpec, PaymentIntentSpec, SessionSpec
from .state_types import Checkout, IntentBook


def dumps(value: Any) -> str:
    # Compact, and without the check for cycles: records are trees.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, check_circular=False)


def checkout_json(checkout: Checkout) -> JSON:
    return {"spec": asdict(checkout.spec), "line_items": checkout.line_items}


def checkout_from(data: JSON) -> Checkout:
    fields = dict(data["spec"])
    fields["line_items"] = tuple(LineItemSpec(**item) for item in fields["line_items"])
    fields["payment_intent"] = PaymentIntentSpec(**fields["payment_intent"])
    for name in ("allowed_payment_method_types", "excluded_payment_method_types"):
        if fields[name] is not None:
            fields[name] = tuple(fields[name])
    return Checkout(SessionSpec(**fields), data["line_items"])


def book_json(book: IntentBook) -> JSON:
    pending = None
    if book.pending is not None:
        card, method_id = book.pending
        pending = {"card": asdict(card), "payment_method": method_id}
    return {
        "ledger": book.ledger.to_json(),
        "authorized_at": book.authorized_at,
        "pending": pending,
    }


def book_from(data: JSON) -> IntentBook:
    pending = None
    if data["pending"] is not None:
        card = dict(data["pending"]["card"])
        card["profile"] = CardProfile(**card["profile"])
        pending = (Card(**card), data["pending"]["payment_method"])
    return IntentBook(Ledger.from_json(data["ledger"]), data["authorized_at"], pending)


def saved_json(saved: Saved) -> JSON:
    return {**asdict(saved), "body": saved.body.decode()}


def saved_from(data: JSON) -> Saved:
    return Saved(**{**data, "body": data["body"].encode()})


@dataclass
class Snapshot:
    """A whole state as read from disk, before it is put into the sandbox."""

    # Every object by id, events included, in the order they were created.
    objects: dict[str, JSON] = field(default_factory=dict)
    checkouts: dict[str, Checkout] = field(default_factory=dict)
    books: dict[str, IntentBook] = field(default_factory=dict)
    # (API key, Idempotency-Key, saved response) of the responses still replayable.
    idempotency: list[tuple[str, str, Saved]] = field(default_factory=list)
    # Ids of the events still to deliver, in their delivery order.
    undelivered: list[str] = field(default_factory=list)
    clock_offset: int = 0
    enabled_events: list[str] | None = None
