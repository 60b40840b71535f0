"""Stripe Connect on the sandbox through the real SDK: connected accounts onboarded on the
hosted page, Account Links, transfers with `source_transaction`, reversals, idempotency."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
import stripe

from simulators.stripe_sandbox import StripeSandbox
from tests import test_stripe_sandbox as base
from tests.test_stripe_sandbox import AUTH, WebhookReceiver, authorised_session, raw
from tests.waiting import eventually

# The fixtures of the sandbox's main tests.
receiver, sandbox, client, browser = base.receiver, base.sandbox, base.client, base.browser

RETURN = "http://127.0.0.1:9/owners/onboarded"
REFRESH = "http://127.0.0.1:9/owners/refresh"


async def new_owner(client: stripe.StripeClient, **overrides: Any) -> Any:
    params: dict[str, Any] = {
        "type": "express",
        "country": "DE",
        "email": "owner@hotel.example",
        "capabilities": {"transfers": {"requested": True}},
        "business_profile": {"name": "Hotel Adler"},
        "metadata": {"owner": "o-1"},
    } | overrides
    return await client.v1.accounts.create_async(params=params)


async def onboarding_link(client: stripe.StripeClient, account_id: str) -> Any:
    return await client.v1.account_links.create_async(
        params={
            "account": account_id,
            "refresh_url": REFRESH,
            "return_url": RETURN,
            "type": "account_onboarding",
        }
    )


async def onboard(
    client: stripe.StripeClient, browser: aiohttp.ClientSession, account_id: str
) -> None:
    link = await onboarding_link(client, account_id)
    async with browser.get(link.url, allow_redirects=False) as response:
        assert response.status == 200
    async with browser.post(link.url, data={"action": "submit"}, allow_redirects=False) as page:
        assert (page.status, page.headers["Location"]) == (303, RETURN)


async def paid_charge(
    client: stripe.StripeClient, browser: aiohttp.ClientSession, **overrides: Any
) -> Any:
    """A captured 20.00 EUR charge."""
    _, intent = await authorised_session(client, browser, **overrides)
    await client.v1.payment_intents.capture_async(intent.id)
    intent = await client.v1.payment_intents.retrieve_async(intent.id)
    return await client.v1.charges.retrieve_async(intent.latest_charge)


def connect_events(receiver: WebhookReceiver, event_type: str) -> list[dict[str, Any]]:
    return [event for event in receiver.events() if event["type"] == event_type]


async def delivered(
    receiver: WebhookReceiver, event_type: str, count: int = 1
) -> list[dict[str, Any]]:
    """The events of `event_type` delivered, once there are `count` of them."""

    async def arrived() -> bool:
        return len(connect_events(receiver, event_type)) >= count

    await eventually(arrived)
    return connect_events(receiver, event_type)


# -- accounts and onboarding --------------------------------------------------------------


async def test_new_account_is_not_ready_until_onboarded(client: stripe.StripeClient) -> None:
    account = await new_owner(client)

    assert account.id.startswith("acct_") and account.type == "express"
    assert (account.charges_enabled, account.payouts_enabled, account.details_submitted) == (
        False,
        False,
        False,
    )
    assert account.capabilities.transfers == "inactive"
    assert "external_account" in account.requirements.currently_due
    assert account.default_currency == "eur" and account.country == "DE"
    assert account.controller.stripe_dashboard.type == "express"
    fetched = await client.v1.accounts.retrieve_async(account.id)
    assert fetched.metadata.to_dict() == {"owner": "o-1"}
    listed = await client.v1.accounts.list_async()
    assert [a.id for a in listed.data] == [account.id]


async def test_accounts_from_controller_properties_and_their_errors(
    client: stripe.StripeClient,
) -> None:
    custom = await client.v1.accounts.create_async(
        params={
            "controller": {
                "fees": {"payer": "application"},
                "losses": {"payments": "application"},
                "requirement_collection": "application",
                "stripe_dashboard": {"type": "none"},
            },
            "country": "FR",
        }
    )
    assert custom.type == "custom" and custom.controller.requirement_collection == "application"
    standard = await client.v1.accounts.create_async(params={"type": "standard"})
    assert standard.capabilities.to_dict() == {"card_payments": "inactive", "transfers": "inactive"}

    with pytest.raises(stripe.InvalidRequestError) as both:
        await client.v1.accounts.create_async(
            params={"type": "express", "controller": {"stripe_dashboard": {"type": "none"}}}
        )
    assert both.value.param == "type"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        await client.v1.accounts.retrieve_async("acct_missing")
    assert (unknown.value.http_status, unknown.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as bad:
        await new_owner(client, country="Germany")
    assert bad.value.param == "country"


async def test_onboarding_on_the_hosted_page_completes_the_account_with_account_updated(
    sandbox: StripeSandbox,
    client: stripe.StripeClient,
    browser: aiohttp.ClientSession,
    receiver: WebhookReceiver,
) -> None:
    account = await new_owner(client)
    link = await onboarding_link(client, account.id)
    assert link.object == "account_link"
    assert link.expires_at > link.created and link.url.startswith(sandbox.base_url)

    async with browser.get(link.url, allow_redirects=False) as page:
        assert page.status == 200
        assert "Hotel Adler" in await page.text()
    async with browser.post(link.url, data={"action": "submit"}, allow_redirects=False) as page:
        assert (page.status, page.headers["Location"]) == (303, RETURN)

    account = await client.v1.accounts.retrieve_async(account.id)
    assert (account.charges_enabled, account.payouts_enabled, account.details_submitted) == (
        True,
        True,
        True,
    )
    assert account.capabilities.transfers == "active"
    assert account.requirements.currently_due == []
    assert account.external_accounts.data[0].last4 == "6789"
    event = (await delivered(receiver, "account.updated"))[0]
    assert event["account"] == account.id
    # A Connect event is listed with the account's Stripe-Account header, not without.
    as_owner: Any = {"stripe_account": account.id}
    listed = await client.v1.events.list_async(params={"type": "account.*"}, options=as_owner)
    assert [e.id for e in listed.data] == [event["id"]]
    assert (await client.v1.events.list_async(params={"type": "account.*"})).data == []
    fetched = await client.v1.events.retrieve_async(event["id"], options=as_owner)
    assert fetched.account == account.id
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.events.retrieve_async(event["id"])
    assert event["data"]["object"]["charges_enabled"] is True
    assert event["data"]["previous_attributes"]["charges_enabled"] is False


async def test_account_links_are_single_use_and_expire(
    sandbox: StripeSandbox, client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    account = await new_owner(client)
    link = await onboarding_link(client, account.id)
    async with browser.get(link.url, allow_redirects=False) as first:
        assert first.status == 200
    async with browser.get(link.url, allow_redirects=False) as again:
        assert (again.status, again.headers["Location"]) == (303, REFRESH)

    left = await onboarding_link(client, account.id)
    async with browser.post(left.url, data={"action": "leave"}, allow_redirects=False) as page:
        assert (page.status, page.headers["Location"]) == (303, RETURN)
    assert (await client.v1.accounts.retrieve_async(account.id)).details_submitted is False
    async with browser.post(left.url, data={"action": "submit"}, allow_redirects=False) as page:
        assert (page.status, page.headers["Location"]) == (303, REFRESH)

    stale = await onboarding_link(client, account.id)
    sandbox.advance_clock(301)
    async with browser.get(stale.url, allow_redirects=False) as page:
        assert (page.status, page.headers["Location"]) == (303, REFRESH)
    assert (await client.v1.accounts.retrieve_async(account.id)).charges_enabled is False

    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.account_links.create_async(
            params={"account": account.id, "return_url": RETURN, "type": "account_onboarding"}
        )
    assert missing.value.param == "refresh_url"


async def test_control_endpoint_completes_an_account_without_a_browser(
    sandbox: StripeSandbox, client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    account = await new_owner(client)
    url = f"{sandbox.base_url}/_sandbox/accounts/{account.id}/complete"
    status, body, _ = await raw(browser, "POST", url)
    assert (status, body["charges_enabled"], body["capabilities"]["transfers"]) == (
        200,
        True,
        "active",
    )
    events = sandbox.events("account.updated")
    assert [e["account"] for e in events] == [account.id]
    status, body, _ = await raw(browser, "POST", f"{sandbox.base_url}/_sandbox/accounts/x/complete")
    assert (status, body["error"]["code"]) == (404, "resource_missing")


async def test_stripe_account_header_must_name_a_connected_account(
    sandbox: StripeSandbox, browser: aiohttp.ClientSession
) -> None:
    headers = AUTH | {"Stripe-Account": "acct_nobody"}
    status, body, _ = await raw(browser, "GET", f"{sandbox.base_url}/v1/payouts", headers=headers)
    assert (status, body["error"]["code"]) == (403, "account_invalid")


# -- transfers and reversals --------------------------------------------------------------


async def test_transfer_with_source_transaction_and_its_limits(
    sandbox: StripeSandbox,
    client: stripe.StripeClient,
    browser: aiohttp.ClientSession,
    receiver: WebhookReceiver,
) -> None:
    owner = await new_owner(client)
    charge = await paid_charge(client, browser)
    params = {
        "amount": 1500,
        "currency": "eur",
        "destination": owner.id,
        "source_transaction": charge.id,
        "transfer_group": "session-1",
        "metadata": {"session": "s-1"},
    }
    with pytest.raises(stripe.InvalidRequestError) as not_ready:
        await client.v1.transfers.create_async(params=params)
    assert not_ready.value.code == "insufficient_capabilities_for_transfer"
    assert not_ready.value.param == "destination"

    await onboard(client, browser, owner.id)
    transfer = await client.v1.transfers.create_async(params=params)
    assert (transfer.amount, transfer.destination, transfer.source_transaction) == (
        1500,
        owner.id,
        charge.id,
    )
    assert transfer.transfer_group == "session-1" and transfer.reversed is False

    with pytest.raises(stripe.InvalidRequestError) as too_much:
        await client.v1.transfers.create_async(params=params | {"amount": 501})
    assert (too_much.value.code, too_much.value.param) == ("balance_insufficient", "amount")
    rest = await client.v1.transfers.create_async(params=params | {"amount": 500})
    assert rest.amount == 500
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.transfers.create_async(params=params | {"destination": "acct_x"})
    assert (missing.value.http_status, missing.value.param) == (404, "destination")

    by_group = await client.v1.transfers.list_async(params={"transfer_group": "session-1"})
    assert [t.id for t in by_group.data] == [rest.id, transfer.id]
    by_destination = await client.v1.transfers.list_async(params={"destination": owner.id})
    assert len(by_destination.data) == 2
    assert (await client.v1.transfers.list_async(params={"transfer_group": "x"})).data == []
    created = await delivered(receiver, "transfer.created", 2)
    assert "account" not in created[0]


async def test_same_idempotency_key_returns_the_same_transfer(
    sandbox: StripeSandbox, client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    owner = await new_owner(client)
    await onboard(client, browser, owner.id)
    charge = await paid_charge(client, browser)
    params = {
        "amount": 1000,
        "currency": "eur",
        "destination": owner.id,
        "source_transaction": charge.id,
    }
    options: Any = {"idempotency_key": "transfer-session-7"}
    first = await client.v1.transfers.create_async(params=params, options=options)
    again = await client.v1.transfers.create_async(params=params, options=options)

    assert again.id == first.id
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    assert len((await client.v1.transfers.list_async()).data) == 1
    assert len(sandbox.events("transfer.created")) == 1
    with pytest.raises(stripe.IdempotencyError):
        await client.v1.transfers.create_async(params=params | {"amount": 999}, options=options)


async def test_reversals_partial_then_the_rest_then_refused(
    sandbox: StripeSandbox,
    client: stripe.StripeClient,
    browser: aiohttp.ClientSession,
    receiver: WebhookReceiver,
) -> None:
    owner = await new_owner(client)
    await onboard(client, browser, owner.id)
    charge = await paid_charge(client, browser)
    transfer = await client.v1.transfers.create_async(
        params={
            "amount": 1200,
            "currency": "eur",
            "destination": owner.id,
            "source_transaction": charge.id,
        }
    )

    partial = await client.v1.transfers.reversals.create_async(
        transfer.id, params={"amount": 300, "metadata": {"refund": "re-1"}}
    )
    assert (partial.amount, partial.transfer) == (300, transfer.id)
    assert partial.metadata.to_dict() == {"refund": "re-1"}
    after = await client.v1.transfers.retrieve_async(transfer.id)
    assert (after.amount_reversed, after.reversed) == (300, False)
    with pytest.raises(stripe.InvalidRequestError) as over:
        await client.v1.transfers.reversals.create_async(transfer.id, params={"amount": 901})
    assert over.value.param == "amount"

    rest = await client.v1.transfers.reversals.create_async(transfer.id)
    assert rest.amount == 900
    after = await client.v1.transfers.retrieve_async(transfer.id)
    assert (after.amount_reversed, after.reversed) == (1200, True)
    assert [r.id for r in after.reversals.data] == [rest.id, partial.id]
    with pytest.raises(stripe.InvalidRequestError) as done:
        await client.v1.transfers.reversals.create_async(transfer.id, params={"amount": 1})
    assert done.value.code == "transfer_already_reversed"

    listed = await client.v1.transfers.reversals.list_async(transfer.id)
    assert [r.id for r in listed.data] == [rest.id, partial.id]
    fetched = await client.v1.transfers.reversals.retrieve_async(transfer.id, partial.id)
    assert fetched.amount == 300
    # What was reversed can be transferred again from the charge.
    again = await client.v1.transfers.create_async(
        params={
            "amount": 2000,
            "currency": "eur",
            "destination": owner.id,
            "source_transaction": charge.id,
        }
    )
    assert again.amount == 2000

    reversed_events = await delivered(receiver, "transfer.reversed", 2)
    assert reversed_events[0]["data"]["object"]["amount_reversed"] == 300
    assert reversed_events[1]["data"]["previous_attributes"] == {
        "amount_reversed": 300,
        "reversed": False,
    }
    updated = await client.v1.transfers.update_async(
        transfer.id, params={"metadata": {"statement": "2026-11"}}
    )
    assert updated.metadata.to_dict() == {"statement": "2026-11"}
    assert [e["type"] for e in sandbox.events("transfer.updated")] == ["transfer.updated"]


async def test_updating_an_account_emits_account_updated_with_what_changed(
    sandbox: StripeSandbox, client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    account = await new_owner(client)
    updated = await client.v1.accounts.update_async(
        account.id,
        params={
            "email": "accounts@hotel.example",
            "metadata": {"site": "s-9"},
            "capabilities": {"card_payments": {"requested": True}},
        },
    )
    assert updated.email == "accounts@hotel.example"
    assert updated.capabilities.to_dict() == {"transfers": "inactive", "card_payments": "inactive"}
    (event,) = sandbox.events("account.updated")
    assert event["account"] == account.id
    assert event["data"]["previous_attributes"]["email"] == "owner@hotel.example"
    assert set(event["data"]["previous_attributes"]) == {"email", "metadata", "capabilities"}
    with pytest.raises(stripe.InvalidRequestError) as unsupported:
        await client.v1.accounts.update_async(account.id, params={"tos_acceptance": {"ip": "x"}})
    assert unsupported.value.param == "tos_acceptance"
    # Without a change there is no event.
    await client.v1.accounts.update_async(account.id, params={"email": "accounts@hotel.example"})
    assert len(sandbox.events("account.updated")) == 1
