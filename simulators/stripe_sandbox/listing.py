"""The list endpoints, with Stripe's pagination: `GET /v1/checkout/sessions`,
`/v1/payment_intents`, `/v1/charges`, `/v1/refunds`, `/v1/disputes` and `/v1/events`
(the events of a connected account with its `Stripe-Account` header, as on Stripe).

As on Stripe (https://docs.stripe.com/api/pagination): objects come newest first;
`limit` is 1 to 100 (default 10); `starting_after=<id>` gives the page of older
objects after that one, `ending_before=<id>` the page of newer objects before it (still
newest first, which is why the SDK's auto-pagination reverses those pages); `has_more`
says whether the list goes on in the direction of travel; `created` filters with
`created[gt|gte|lt|lte]=<unix time>` or `created=<unix time>`. A cursor that names no
such object is a 404 on the cursor's parameter. Parameters Stripe has but the sandbox
does not model (customers, payment links...) are refused by name.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import resources
from .errors import invalid_request
from .params import Reader
from .resources import JSON

if TYPE_CHECKING:
    from .api import ApiCall
    from .state import Account

_PAGE_PARAMS = ["created", "ending_before", "expand", "limit", "starting_after"]


@dataclass(frozen=True)
class Page:
    limit: int
    starting_after: str | None
    ending_before: str | None
    created: dict[str, int]


def read_page(p: Reader) -> Page:
    starting_after, ending_before = p.string("starting_after"), p.string("ending_before")
    if starting_after is not None and ending_before is not None:
        raise invalid_request(
            "You may only specify one of these parameters: ending_before, starting_after.",
            param="ending_before",
        )
    return Page(
        limit=p.integer("limit", minimum=1, maximum=100) or 10,
        starting_after=starting_after,
        ending_before=ending_before,
        created=read_created(p),
    )


def read_created(p: Reader) -> dict[str, int]:
    if not p.has("created"):
        return {}
    if isinstance(p.data["created"], str):
        exact = p.integer("created")
        return {} if exact is None else {"eq": exact}
    bounds = p.hash("created")
    assert bounds is not None
    bounds.allow(["gt", "gte", "lt", "lte"])
    return {op: value for op in bounds.data if (value := bounds.integer(op)) is not None}


def in_range(value: int, bounds: dict[str, int]) -> bool:
    checks = {
        "gt": value.__gt__,
        "gte": value.__ge__,
        "lt": value.__lt__,
        "lte": value.__le__,
        "eq": value.__eq__,
    }
    return all(checks[op](limit) for op, limit in bounds.items())


def paginate(
    account: Account, newest_first: Iterable[JSON], page: Page, *, url: str, object_name: str
) -> JSON:
    """One page of a list whose items are already filtered, newest first."""
    selected = [obj for obj in newest_first if in_range(obj["created"], page.created)]
    ids = [obj["id"] for obj in selected]
    limit = page.limit
    if page.starting_after is not None:
        account.retrieve(object_name, page.starting_after, "starting_after")
        start = ids.index(page.starting_after) + 1 if page.starting_after in ids else len(ids)
        data = selected[start : start + limit]
        has_more = start + limit < len(selected)
    elif page.ending_before is not None:
        account.retrieve(object_name, page.ending_before, "ending_before")
        end = ids.index(page.ending_before) if page.ending_before in ids else 0
        data = selected[max(0, end - limit) : end]
        has_more = end - limit > 0
    else:
        data = selected[:limit]
        has_more = len(selected) > limit
    return resources.list_object(data, url, has_more=has_more)


class Listings:
    """The list endpoints, as handlers of the API pipeline."""

    def __init__(self, account: Account) -> None:
        self.account = account

    def routes(self) -> list[tuple[str, str, Callable[[ApiCall], JSON]]]:
        return [
            ("GET", "/v1/checkout/sessions", self.checkout_sessions),
            ("GET", "/v1/payment_intents", self.payment_intents),
            ("GET", "/v1/charges", self.charges),
            ("GET", "/v1/refunds", self.refunds),
            ("GET", "/v1/disputes", self.disputes),
            ("GET", "/v1/events", self.events),
        ]

    def _newest(self, object_name: str) -> list[JSON]:
        return [o for o in reversed(self.account.objects.values()) if o["object"] == object_name]

    def _list(self, p: Reader, object_name: str, url: str, **filters: str | None) -> JSON:
        page = read_page(p)
        wanted = {name: value for name, value in filters.items() if value is not None}
        items = [
            obj
            for obj in self._newest(object_name)
            if all(obj.get(name) == value for name, value in wanted.items())
        ]
        return paginate(self.account, items, page, url=url, object_name=object_name)

    def checkout_sessions(self, call: ApiCall) -> JSON:
        p = call.params
        p.allow(
            [*_PAGE_PARAMS, "payment_intent", "status"],
            ["customer", "customer_account", "customer_details", "payment_link", "subscription"],
        )
        return self._list(
            p,
            "checkout.session",
            "/v1/checkout/sessions",
            payment_intent=p.string("payment_intent"),
            status=p.string("status", choices=("complete", "expired", "open")),
        )

    def payment_intents(self, call: ApiCall) -> JSON:
        p = call.params
        p.allow(_PAGE_PARAMS, ["customer", "customer_account"])
        return self._list(p, "payment_intent", "/v1/payment_intents")

    def charges(self, call: ApiCall) -> JSON:
        p = call.params
        p.allow([*_PAGE_PARAMS, "payment_intent", "transfer_group"], ["customer"])
        return self._list(
            p,
            "charge",
            "/v1/charges",
            payment_intent=p.string("payment_intent"),
            transfer_group=p.string("transfer_group"),
        )

    def refunds(self, call: ApiCall) -> JSON:
        p = call.params
        p.allow([*_PAGE_PARAMS, "charge", "payment_intent"])
        return self._list(
            p,
            "refund",
            "/v1/refunds",
            charge=p.string("charge"),
            payment_intent=p.string("payment_intent"),
        )

    def disputes(self, call: ApiCall) -> JSON:
        p = call.params
        p.allow([*_PAGE_PARAMS, "charge", "payment_intent"])
        return self._list(
            p,
            "dispute",
            "/v1/disputes",
            charge=p.string("charge"),
            payment_intent=p.string("payment_intent"),
        )

    def events(self, call: ApiCall) -> JSON:
        p = call.params
        p.allow([*_PAGE_PARAMS, "type", "types"], ["delivery_success"])
        event_type, types = p.string("type"), p.strings("types")
        if event_type is not None and types is not None:
            raise invalid_request(
                "You may only specify one of these parameters: type, types.", param="types"
            )
        patterns = [event_type] if event_type is not None else types
        page = read_page(p)
        # `type` may use `*` as a wildcard (`payment_intent.*`). A connected account's
        # events are listed with its `Stripe-Account` header, the platform's without.
        selected = [
            event
            for event in reversed(self.account.events)
            if event.get("account") == call.stripe_account
            and (patterns is None or any(fnmatch.fnmatchcase(event["type"], t) for t in patterns))
        ]
        return paginate(self.account, selected, page, url="/v1/events", object_name="event")
