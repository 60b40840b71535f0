"""The stream of Stripe events an ingestion run delivers, built from real ones.

The templates are the events the Stripe sandbox recorded while the bench made activity on
its account: charging sessions paid by drivers (payment_intent.created, charge.succeeded,
payment_intent.amount_capturable_updated, checkout.session.completed: the last two go
through csms's reservation state machine) and sales by another product on the same account
(captures, refunds, disputes: csms only records those). A stream delivers each template under
its own id first, then copies of them under new ids, so that the mix of types is the
account's; and about a tenth of its deliveries are exact repeats of an earlier delivery, as
when Stripe redelivers an event: those must change nothing.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

# The types for which csms writes a money audit line when recording the event (see
# payments/webhooks.py, _RECORDED): that line must exist once per distinct event.
AUDITED_TYPES = frozenset(
    {"charge.refunded", "charge.dispute.created", "payment_intent.payment_failed"}
)
# Stripe's event ids are "evt_" and 24 characters.
ID_DIGITS = 24


def event_id(series: str, number: int) -> str:
    return f"evt_{series}{number:0{ID_DIGITS - len(series)}d}"


@dataclass(frozen=True)
class Delivery:
    """One POST: a template sent under an event id."""

    template: int
    event_id: str


@dataclass(frozen=True)
class Stream:
    templates: tuple[dict[str, Any], ...]
    deliveries: tuple[Delivery, ...]  # in sending order; a repeat is an earlier Delivery again

    def distinct(self) -> dict[str, Delivery]:
        return {delivery.event_id: delivery for delivery in self.deliveries}

    @property
    def repeats(self) -> int:
        return len(self.deliveries) - len(self.distinct())

    def types(self) -> Counter[str]:
        return Counter(self.templates[d.template]["type"] for d in self.distinct().values())

    def for_sessions(self) -> int:
        """Distinct events about a charging session (the rest are other sales')."""
        return sum(is_session_event(self.templates[d.template]) for d in self.distinct().values())

    def audit_lines(self) -> Counter[str]:
        """Audit lines csms must write, by Stripe object id: one per distinct audited event."""
        lines: Counter[str] = Counter()
        for delivery in self.distinct().values():
            event = self.templates[delivery.template]
            if event["type"] in AUDITED_TYPES:
                lines[event["data"]["object"]["id"]] += 1
        return lines


def is_session_event(event: dict[str, Any]) -> bool:
    metadata = event["data"]["object"].get("metadata") or {}
    return "reservation_id" in metadata


def build_stream(
    templates: list[dict[str, Any]],
    count: int,
    repeat_share: float,
    series: str,
    rng: random.Random,
    originals: bool = False,
) -> Stream:
    """`count` deliveries: with `originals`, every template under its own id first; then
    copies of random templates under new ids of `series`; `repeat_share` of them repeats."""
    repeats = round(count * repeat_share)
    distinct: list[Delivery] = []
    if originals:
        distinct = [Delivery(n, event["id"]) for n, event in enumerate(templates)]
    while len(distinct) < count - repeats:
        distinct.append(Delivery(rng.randrange(len(templates)), event_id(series, len(distinct))))
    # Each repeat goes somewhere after its original: its sort key falls between the
    # original's place and the end.
    keyed = [(float(n), delivery) for n, delivery in enumerate(distinct)]
    for _ in range(repeats):
        original = rng.randrange(len(distinct))
        keyed.append((rng.uniform(original + 0.5, len(distinct)), distinct[original]))
    keyed.sort(key=lambda pair: pair[0])
    return Stream(tuple(templates), tuple(delivery for _, delivery in keyed))
