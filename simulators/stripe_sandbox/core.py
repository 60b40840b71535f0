"""The account's objects: every Stripe object by id, reading and expanding them, and the
events a change emits.

`AccountCore` is what every resource family of the account (Checkout Sessions and the
hosted page, PaymentIntents, refunds and disputes; Connect beside it) builds on. Objects
are JSON as Stripe returns them, ids unique across types, events included; `retrieve`
answers Stripe's `resource_missing` for an id of another type. `emit` records an event
with a copy of the object as it is now and hands it to webhook delivery; it runs last in
a change, after the objects are consistent. `Records` note what is stored or looked up by
id, for the state file (persistence): change a record reached by iterating only after
looking it up by id.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable
from typing import Any

from . import resources
from .errors import StripeError, invalid_request, resource_missing
from .ledger import entry
from .records import Records
from .resources import JSON, new_id
from .state_types import Checkout, Clock, IntentBook, Origin

log = logging.getLogger("simulators.stripe_sandbox")

# Fields whose string id `expand[]` may replace by the object.
EXPANDABLE = frozenset(
    {"payment_intent", "latest_charge", "charge", "payment_method", "balance_transaction"}
)


class AccountCore:
    """One Stripe test-mode account's objects and events.

    `page_url(session_id)` gives the hosted page's address; `publish(event)` hands every
    new event to webhook delivery. `on_capture` and `on_refund` are Connect's part of a
    capture and a refund (`connect_money`): they run before the events are emitted.
    """

    def __init__(
        self,
        clock: Clock,
        api_version: str,
        page_url: Callable[[str], str],
        publish: Callable[[JSON], None],
    ) -> None:
        self.clock = clock
        self.api_version = api_version
        self.page_url = page_url
        self.publish = publish
        # Every object by id (ids are unique across types), events included. `Records`
        # note what is stored or looked up by id, for the state file: change a record
        # reached by iterating only after looking it up by id (see `records`).
        self.objects: Records[JSON] = Records()
        self.events: list[JSON] = []
        self.checkouts: Records[Checkout] = Records()
        self.books: Records[IntentBook] = Records()
        # Connect's part of a capture and of a refund (see `connect`): set by `Connect`.
        self.on_capture: Callable[[JSON, JSON, Origin], None] = lambda intent, charge, o: None
        self.on_refund: Callable[[JSON, JSON, bool, bool, Origin], None] = (
            lambda charge, refund, reverse, fee, o: None
        )

    # -- reading

    def retrieve(self, object_name: str, object_id: str, param: str) -> JSON:
        obj = self.objects.get(object_id)
        if obj is None or obj["object"] != object_name:
            raise resource_missing(object_name, object_id, param)
        return obj

    def expand(self, obj: JSON, paths: Iterable[str]) -> JSON:
        """A copy of `obj` with the ids at the dotted `paths` replaced by their objects."""
        paths = list(paths)
        if not paths:
            return obj
        result = copy.deepcopy(obj)
        for path in paths:
            self._expand(result, path.split("."), path)
        return result

    def _expand(self, node: JSON, parts: list[str], path: str) -> None:
        name, rest = parts[0], parts[1:]
        if node.get("object") == "list" and name == "data":
            for item in node["data"]:
                if rest:
                    self._expand(item, rest, path)
            return
        if name == "line_items" and node.get("object") == "checkout.session":
            items = copy.deepcopy(self.checkouts[node["id"]].line_items)
            node[name] = resources.list_object(
                items, f"/v1/checkout/sessions/{node['id']}/line_items"
            )
        elif name in EXPANDABLE and name in node:
            if isinstance(node[name], str):
                target = self.objects.get(node[name])
                if target is None:
                    raise _not_expandable(path)
                node[name] = copy.deepcopy(target)
        elif not (rest and isinstance(node.get(name), dict)):
            # Only ids can be expanded; a path may go through objects already inline.
            raise _not_expandable(path)
        value = node[name]
        if rest and isinstance(value, dict):
            self._expand(value, rest, path)

    def ledger(self) -> dict[str, dict[str, Any]]:
        return {
            intent_id: entry(book.ledger, self.objects.peek(intent_id))
            for intent_id, book in self.books.items()
        }

    # -- events

    def _emit(
        self,
        event_type: str,
        obj: JSON,
        origin: Origin,
        *,
        previous_attributes: JSON | None = None,
        account: str | None = None,
    ) -> None:
        """A new event about `obj`; `account` makes it a Connect event of that account."""
        event = resources.event(
            event_type,
            # The event carries the object as it is now, not as it will become.
            copy.deepcopy(obj),
            event_id=new_id("evt_3"),
            created=self.clock.now(),
            api_version=self.api_version,
            request_id=origin.request_id,
            idempotency_key=origin.idempotency_key,
            previous_attributes=previous_attributes,
            account=account,
        )
        self.events.append(event)
        self.objects[event["id"]] = event
        log.debug("event %s %s", event["id"], event_type)
        self.publish(event)

    emit = _emit


def _not_expandable(path: str) -> StripeError:
    return invalid_request(f"This property cannot be expanded ({path}).", param="expand")
