"""The sandbox's list endpoints through the real SDK: Stripe's pagination and filters."""

from __future__ import annotations

import aiohttp
import pytest
import stripe

from simulators.stripe_sandbox import StripeSandbox
from tests import test_stripe_sandbox as base
from tests.test_stripe_sandbox import (
    AUTH,
    CARD_DECLINED,
    authorised_session,
    create_session,
    pay,
    raw,
)

# The fixtures of the sandbox's main tests.
receiver, sandbox, client, browser = base.receiver, base.sandbox, base.client, base.browser


async def _sessions(client: stripe.StripeClient, count: int) -> list[str]:
    return [(await create_session(client, client_reference_id=f"r-{n}")).id for n in range(count)]


async def test_lists_are_newest_first_ten_by_default_with_has_more(
    client: stripe.StripeClient,
) -> None:
    created = await _sessions(client, 12)

    first = await client.v1.checkout.sessions.list_async()

    assert first.object == "list" and first.url == "/v1/checkout/sessions"
    assert [s.id for s in first.data] == created[::-1][:10]
    assert first.has_more is True
    rest = await client.v1.checkout.sessions.list_async(
        params={"starting_after": first.data[-1].id}
    )
    assert [s.id for s in rest.data] == created[1::-1]
    assert rest.has_more is False
    newer = await client.v1.checkout.sessions.list_async(
        params={"ending_before": rest.data[0].id, "limit": 3}
    )
    # The page just before the cursor, still newest first, and more beyond it.
    assert [s.id for s in newer.data] == created[4:1:-1]
    assert newer.has_more is True


async def test_auto_pagination_walks_every_payment_intent_both_ways(
    client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    intents = [(await authorised_session(client, browser))[1].id for _ in range(7)]

    first = await client.v1.payment_intents.list_async(params={"limit": 3})
    walked = [intent.id async for intent in first.auto_paging_iter()]

    assert walked == intents[::-1]
    assert first.data[0].object == "payment_intent"
    assert first.data[0].status == "requires_capture"
    back = await client.v1.payment_intents.list_async(
        params={"limit": 2, "ending_before": intents[1]}
    )
    # Going back from the second oldest: the SDK reverses each page, oldest first.
    assert [intent.id async for intent in back.auto_paging_iter()] == intents[2:]


async def test_created_filters(sandbox: StripeSandbox, client: stripe.StripeClient) -> None:
    early = await create_session(client)
    sandbox.advance_clock(100)
    late = await create_session(client)

    async def ids(created: object) -> list[str]:
        page = await client.v1.checkout.sessions.list_async(params={"created": created})
        return [s.id for s in page.data]

    assert await ids({"gt": early.created}) == [late.id]
    assert await ids({"gte": early.created}) == [late.id, early.id]
    assert await ids({"lt": late.created}) == [early.id]
    assert await ids({"lte": early.created, "gte": early.created}) == [early.id]
    assert await ids(late.created) == [late.id]
    assert await ids({"gt": late.created}) == []


async def test_sessions_filter_by_payment_intent_and_status(
    client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    paid, intent = await authorised_session(client, browser)
    open_session = await create_session(client)
    expired = await create_session(client)
    await client.v1.checkout.sessions.expire_async(expired.id)

    by_intent = await client.v1.checkout.sessions.list_async(params={"payment_intent": intent.id})
    assert [s.id for s in by_intent.data] == [paid.id]
    for status, expected in [("open", open_session.id), ("complete", paid.id)]:
        page = await client.v1.checkout.sessions.list_async(params={"status": status})
        assert [s.id for s in page.data] == [expected]
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.checkout.sessions.list_async(params={"status": "paid"})
    assert error.value.param == "status"
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.checkout.sessions.list_async(params={"customer": "cus_x"})
    assert error.value.param == "customer"


async def test_charges_and_refunds_filter_by_payment_intent_and_charge(
    client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    declined = await create_session(client)
    await pay(browser, declined.url, CARD_DECLINED)
    _, intent = await authorised_session(client, browser)
    _, other = await authorised_session(client, browser)
    for paid in (intent, other):
        await client.v1.payment_intents.capture_async(paid.id)
    first = await client.v1.refunds.create_async(
        params={"payment_intent": intent.id, "amount": 500}
    )
    second = await client.v1.refunds.create_async(
        params={"payment_intent": intent.id, "amount": 300}
    )
    await client.v1.refunds.create_async(params={"payment_intent": other.id})

    charges = await client.v1.charges.list_async()
    assert len(charges.data) == 3
    assert charges.data[-1].status == "failed"  # the declined attempt, the oldest
    mine = await client.v1.charges.list_async(params={"payment_intent": intent.id})
    assert [c.id for c in mine.data] == [intent.latest_charge]
    refunds = await client.v1.refunds.list_async(params={"payment_intent": intent.id})
    assert [r.id for r in refunds.data] == [second.id, first.id]
    by_charge = await client.v1.refunds.list_async(
        params={"charge": intent.latest_charge, "limit": 1}
    )
    assert ([r.id for r in by_charge.data], by_charge.has_more) == ([second.id], True)
    assert len((await client.v1.refunds.list_async()).data) == 3


async def test_list_errors_and_expand(
    sandbox: StripeSandbox,
    client: stripe.StripeClient,
    browser: aiohttp.ClientSession,
) -> None:
    await authorised_session(client, browser)
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.payment_intents.list_async(params={"starting_after": "pi_nope"})
    assert (error.value.http_status, error.value.param) == (404, "starting_after")
    for bad in ({"limit": 0}, {"limit": 101}):
        with pytest.raises(stripe.InvalidRequestError) as error:
            await client.v1.payment_intents.list_async(params=bad)
        assert error.value.param == "limit"
    status, body, _ = await raw(
        browser,
        "GET",
        f"{sandbox.base_url}/v1/charges?starting_after=ch_a&ending_before=ch_b",
        headers=AUTH,
    )
    assert (status, body["error"]["param"]) == (400, "ending_before")

    expanded = await client.v1.payment_intents.list_async(params={"expand": ["data.latest_charge"]})
    assert expanded.data[0].latest_charge.object == "charge"


async def test_disputes_can_be_listed_and_retrieved(
    sandbox: StripeSandbox, client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    _, first = await authorised_session(client, browser)
    _, second = await authorised_session(client, browser)
    for intent in (first, second):
        await client.v1.payment_intents.capture_async(intent.id)
    older = sandbox.create_dispute(first.id)
    newer = sandbox.create_dispute(second.id, "duplicate")

    listed = await client.v1.disputes.list_async(params={"created": {"gte": older["created"]}})
    assert [d.id for d in listed.data] == [newer["id"], older["id"]]
    mine = await client.v1.disputes.list_async(params={"payment_intent": first.id})
    assert [d.id for d in mine.data] == [older["id"]]
    by_charge = await client.v1.disputes.list_async(params={"charge": second.latest_charge})
    assert [d.reason for d in by_charge.data] == ["duplicate"]
    fetched = await client.v1.disputes.retrieve_async(older["id"])
    assert (fetched.object, fetched.amount, fetched.status) == ("dispute", 2000, "needs_response")
    with pytest.raises(stripe.InvalidRequestError) as error:
        await client.v1.disputes.retrieve_async("dp_missing")
    assert (error.value.http_status, error.value.param) == (404, "dispute")
