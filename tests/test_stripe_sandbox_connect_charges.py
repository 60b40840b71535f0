"""Stripe Connect money on the sandbox through the real SDK: destination charges made with
Checkout and captured with an application fee, refunds that reverse the transfer and
refund the fee in proportion, application fee refunds, payouts of connected accounts and
their Connect events, balance transactions with Stripe's fee, and all of it kept by the
state file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import stripe

from simulators.stripe_sandbox import StripeSandbox
from tests import test_stripe_sandbox as base
from tests.test_stripe_sandbox import WebhookReceiver, authorised_session, raw
from tests.test_stripe_sandbox_connect import delivered, new_owner, onboard

receiver, sandbox, client, browser = base.receiver, base.sandbox, base.client, base.browser


async def ready_owner(client: stripe.StripeClient, browser: aiohttp.ClientSession) -> Any:
    owner = await new_owner(client)
    await onboard(client, browser, owner.id)
    return owner


def destination(owner_id: str, **extra: Any) -> dict[str, Any]:
    """`payment_intent_data` of a destination charge to `owner_id`."""
    return {
        "payment_intent_data": {
            "capture_method": "manual",
            "transfer_data": {"destination": owner_id},
            "on_behalf_of": owner_id,
        }
        | extra
    }


async def captured_destination_charge(
    client: stripe.StripeClient, browser: aiohttp.ClientSession, owner_id: str, fee: int
) -> tuple[Any, Any]:
    """A 20.00 EUR destination charge captured with `fee` as application fee: (intent, charge)."""
    _, intent = await authorised_session(client, browser, **destination(owner_id))
    intent = await client.v1.payment_intents.capture_async(
        intent.id, params={"application_fee_amount": fee}
    )
    charge = await client.v1.charges.retrieve_async(intent.latest_charge)
    return intent, charge


async def test_destination_charge_captured_with_an_application_fee(
    sandbox: StripeSandbox,
    client: stripe.StripeClient,
    browser: aiohttp.ClientSession,
    receiver: WebhookReceiver,
) -> None:
    owner = await ready_owner(client, browser)
    _, authorised = await authorised_session(client, browser, **destination(owner.id))
    assert authorised.transfer_data.destination == owner.id
    assert authorised.on_behalf_of == owner.id

    intent, charge = await captured_destination_charge(client, browser, owner.id, 300)

    assert intent.application_fee_amount == 300
    assert (charge.application_fee_amount, charge.transfer_data.destination) == (300, owner.id)
    transfer = await client.v1.transfers.retrieve_async(charge.transfer)
    assert (transfer.amount, transfer.destination, transfer.source_transaction) == (
        2000,
        owner.id,
        charge.id,
    )
    assert transfer.transfer_group == f"group_{intent.id}"
    fee = await client.v1.application_fees.retrieve_async(charge.application_fee)
    assert (fee.amount, fee.account, fee.charge, fee.refunded) == (300, owner.id, charge.id, False)
    fees = await client.v1.application_fees.list_async(params={"charge": charge.id})
    assert [f.id for f in fees.data] == [fee.id]
    assert (await delivered(receiver, "application_fee.created"))[0]["data"]["object"]["id"] == (
        fee.id
    )
    # The transfer was made from the charge: nothing is left to transfer from it.
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.transfers.create_async(
            params={
                "amount": 1,
                "currency": "eur",
                "destination": owner.id,
                "source_transaction": charge.id,
            }
        )


async def test_transfer_data_amount_at_capture_and_the_errors_of_destination_charges(
    client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    owner = await ready_owner(client, browser)
    _, intent = await authorised_session(client, browser, **destination(owner.id))
    with pytest.raises(stripe.InvalidRequestError) as over:
        await client.v1.payment_intents.capture_async(
            intent.id, params={"transfer_data": {"amount": 2001}}
        )
    assert over.value.param == "transfer_data[amount]"
    intent = await client.v1.payment_intents.capture_async(
        intent.id, params={"transfer_data": {"amount": 1700}}
    )
    charge = await client.v1.charges.retrieve_async(intent.latest_charge)
    assert (await client.v1.transfers.retrieve_async(charge.transfer)).amount == 1700
    assert charge.application_fee is None

    _, plain = await authorised_session(client, browser)
    with pytest.raises(stripe.InvalidRequestError) as no_destination:
        await client.v1.payment_intents.capture_async(
            plain.id, params={"application_fee_amount": 100}
        )
    assert no_destination.value.param == "application_fee_amount"

    not_ready = await new_owner(client)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await base.create_session(client, **destination(not_ready.id))
    assert refused.value.code == "insufficient_capabilities_for_transfer"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await base.create_session(client, **destination("acct_nobody"))
    assert missing.value.param == "payment_intent_data[transfer_data][destination]"
    with pytest.raises(stripe.InvalidRequestError) as too_big:
        await base.create_session(client, **destination(owner.id, application_fee_amount=2001))
    assert too_big.value.param == "payment_intent_data[application_fee_amount]"


async def test_refunds_reverse_the_transfer_and_refund_the_fee_in_proportion(
    sandbox: StripeSandbox,
    client: stripe.StripeClient,
    browser: aiohttp.ClientSession,
    receiver: WebhookReceiver,
) -> None:
    owner = await ready_owner(client, browser)
    intent, charge = await captured_destination_charge(client, browser, owner.id, 300)

    refund = await client.v1.refunds.create_async(
        params={
            "payment_intent": intent.id,
            "amount": 500,
            "reverse_transfer": True,
            "refund_application_fee": True,
        }
    )
    reversal_id = refund.transfer_reversal
    transfer = await client.v1.transfers.retrieve_async(charge.transfer)
    assert transfer.amount_reversed == 500 and transfer.reversals.data[0].id == reversal_id
    assert transfer.reversals.data[0].source_refund == refund.id
    fee = await client.v1.application_fees.retrieve_async(charge.application_fee)
    assert (fee.amount_refunded, fee.refunded) == (75, False)

    # The last refund takes back what is left of both.
    await client.v1.refunds.create_async(
        params={
            "payment_intent": intent.id,
            "reverse_transfer": True,
            "refund_application_fee": True,
        }
    )
    transfer = await client.v1.transfers.retrieve_async(charge.transfer)
    assert (transfer.amount_reversed, transfer.reversed) == (2000, True)
    fee = await client.v1.application_fees.retrieve_async(charge.application_fee)
    assert (fee.amount_refunded, fee.refunded) == (300, True)
    assert [r.amount for r in fee.refunds.data] == [225, 75]
    await delivered(receiver, "application_fee.refunded", 2)
    await delivered(receiver, "transfer.reversed", 2)

    # Without the flags a refund leaves the transfer and the fee alone.
    _, other = await captured_destination_charge(client, browser, owner.id, 300)
    await client.v1.refunds.create_async(params={"charge": other.id, "amount": 1000})
    assert (await client.v1.transfers.retrieve_async(other.transfer)).amount_reversed == 0
    assert (await client.v1.application_fees.retrieve_async(other.application_fee)).refunded is (
        False
    )


async def test_application_fee_refunds_partial_then_the_rest_then_refused(
    sandbox: StripeSandbox,
    client: stripe.StripeClient,
    browser: aiohttp.ClientSession,
) -> None:
    owner = await ready_owner(client, browser)
    _, charge = await captured_destination_charge(client, browser, owner.id, 300)
    fee_id = charge.application_fee

    part = await client.v1.application_fees.refunds.create_async(
        fee_id, params={"amount": 100, "metadata": {"why": "goodwill"}}
    )
    assert (part.object, part.amount, part.fee) == ("fee_refund", 100, fee_id)
    with pytest.raises(stripe.InvalidRequestError) as over:
        await client.v1.application_fees.refunds.create_async(fee_id, params={"amount": 201})
    assert (over.value.code, over.value.param) == ("amount_too_large", "amount")
    rest = await client.v1.application_fees.refunds.create_async(fee_id)
    assert rest.amount == 200
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.application_fees.refunds.create_async(fee_id)

    listed = await client.v1.application_fees.refunds.list_async(fee_id)
    assert [r.id for r in listed.data] == [rest.id, part.id]
    fetched = await client.v1.application_fees.refunds.retrieve_async(fee_id, part.id)
    assert fetched.metadata.to_dict() == {"why": "goodwill"}
    fee = await client.v1.application_fees.retrieve_async(fee_id)
    assert (fee.amount_refunded, fee.refunded) == (300, True)
    assert [e["data"]["object"]["amount_refunded"] for e in sandbox.events(
        "application_fee.refunded"
    )] == [100, 300]  # fmt: skip


async def test_payouts_of_a_connected_account_and_their_connect_events(
    sandbox: StripeSandbox,
    client: stripe.StripeClient,
    browser: aiohttp.ClientSession,
    receiver: WebhookReceiver,
) -> None:
    owner = await ready_owner(client, browser)
    paid = sandbox.create_payout(owner.id, 1700)
    status, failed, _ = await raw(
        browser,
        "POST",
        f"{sandbox.base_url}/_sandbox/accounts/{owner.id}/payouts",
        data='{"amount": 900, "status": "failed", "failure_code": "no_account"}',
    )
    assert status == 200 and failed["status"] == "failed"
    as_owner: Any = {"stripe_account": owner.id}

    payouts = await client.v1.payouts.list_async(options=as_owner)
    assert [p.id for p in payouts.data] == [failed["id"], paid["id"]]
    fetched = await client.v1.payouts.retrieve_async(paid["id"], options=as_owner)
    assert (fetched.status, fetched.amount, fetched.currency) == ("paid", 1700, "eur")
    bank = (await client.v1.accounts.retrieve_async(owner.id)).external_accounts.data[0]
    assert fetched.destination == bank.id
    failed_payout = await client.v1.payouts.retrieve_async(failed["id"], options=as_owner)
    assert (failed_payout.failure_code, failed_payout.status) == ("no_account", "failed")
    only_paid = await client.v1.payouts.list_async(params={"status": "paid"}, options=as_owner)
    assert [p.id for p in only_paid.data] == [paid["id"]]
    # The platform sees none of them.
    assert (await client.v1.payouts.list_async()).data == []
    with pytest.raises(stripe.InvalidRequestError) as hidden:
        await client.v1.payouts.retrieve_async(paid["id"])
    assert hidden.value.http_status == 404

    paid_event = (await delivered(receiver, "payout.paid"))[0]
    failed_event = (await delivered(receiver, "payout.failed"))[0]
    assert (paid_event["account"], paid_event["data"]["object"]["id"]) == (owner.id, paid["id"])
    assert failed_event["account"] == owner.id
    assert [e["account"] for e in sandbox.events("payout.created")] == [owner.id, owner.id]

    pending = sandbox.create_payout(owner.id, 100, status="pending")
    status, settled, _ = await raw(
        browser, "POST", f"{sandbox.base_url}/_sandbox/payouts/{pending['id']}",
        data='{"status": "paid"}',
    )  # fmt: skip
    assert (status, settled["status"]) == (200, "paid")
    status, refused, _ = await raw(
        browser, "POST", f"{sandbox.base_url}/_sandbox/payouts/{pending['id']}",
        data='{"status": "failed"}',
    )  # fmt: skip
    assert (status, refused["error"]["param"]) == (400, "id")
    not_ready = await new_owner(client)
    with pytest.raises(Exception, match="Payouts are not enabled"):
        sandbox.create_payout(not_ready.id, 100)


async def test_captured_charges_have_a_balance_transaction_with_stripes_fee(
    client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    _, intent = await authorised_session(client, browser)
    intent = await client.v1.payment_intents.capture_async(intent.id)
    charge = await client.v1.charges.retrieve_async(intent.latest_charge)

    txn = await client.v1.balance_transactions.retrieve_async(charge.balance_transaction)
    # 1.5 % + 0.25 EUR of 20.00 EUR.
    assert (txn.amount, txn.fee, txn.net, txn.type, txn.source) == (
        2000,
        55,
        1945,
        "charge",
        charge.id,
    )
    assert txn.fee_details[0].type == "stripe_fee"
    listed = await client.v1.balance_transactions.list_async(params={"source": charge.id})
    assert [t.id for t in listed.data] == [txn.id]
    expanded = await client.v1.charges.retrieve_async(
        charge.id, params={"expand": ["balance_transaction"]}
    )
    assert expanded.balance_transaction.fee == 55

    refund = await client.v1.refunds.create_async(
        params={"charge": charge.id, "amount": 500, "expand": ["balance_transaction"]}
    )
    assert (refund.balance_transaction.amount, refund.balance_transaction.fee) == (-500, 0)
    assert refund.balance_transaction.type == "refund"
    kinds = await client.v1.balance_transactions.list_async(params={"type": "refund"})
    assert [t.source for t in kinds.data] == [refund.id]


async def test_connect_objects_survive_a_restart(
    tmp_path: Path, browser: aiohttp.ClientSession
) -> None:
    state = tmp_path / "stripe.sqlite"
    first = StripeSandbox(state_path=state)
    await first.start()
    sdk, http = base.make_client(first)
    try:
        owner = await ready_owner(sdk, browser)
        _, charge = await captured_destination_charge(sdk, browser, owner.id, 200)
        await sdk.v1.refunds.create_async(
            params={"charge": charge.id, "amount": 1000, "reverse_transfer": True}
        )
        payout = first.create_payout(owner.id, 500)
    finally:
        await http.close_async()
        await first.stop()

    second = StripeSandbox(state_path=state)
    await second.start()
    sdk, http = base.make_client(second)
    try:
        account = await sdk.v1.accounts.retrieve_async(owner.id)
        assert account.charges_enabled is True
        transfer = await sdk.v1.transfers.retrieve_async(charge.transfer)
        assert transfer.amount_reversed == 1000 and len(transfer.reversals.data) == 1
        fee = await sdk.v1.application_fees.retrieve_async(charge.application_fee)
        assert fee.amount == 200
        kept = await sdk.v1.payouts.retrieve_async(
            payout["id"], options={"stripe_account": owner.id}
        )
        assert kept.status == "paid"
    finally:
        await http.close_async()
        await second.stop()


async def test_connect_objects_have_the_fields_and_types_of_stripe_fixtures(
    sandbox: StripeSandbox, client: stripe.StripeClient, browser: aiohttp.ClientSession
) -> None:
    if not base.FIXTURES.exists():
        pytest.skip(f"{base.FIXTURES} not available")
    fixtures = json.loads(base.FIXTURES.read_text())["resources"]
    # Both capabilities of Stripe's example.
    owner = await new_owner(
        client,
        capabilities={"card_payments": {"requested": True}, "transfers": {"requested": True}},
    )
    await onboard(client, browser, owner.id)
    status, link, _ = await raw(
        browser,
        "POST",
        f"{sandbox.base_url}/v1/account_links",
        headers=base.AUTH,
        data={
            "account": owner.id,
            "refresh_url": "http://127.0.0.1:9/r",
            "return_url": "http://127.0.0.1:9/d",
            "type": "account_onboarding",
        },
    )
    assert status == 200
    _, charge = await captured_destination_charge(client, browser, owner.id, 300)
    refund = await client.v1.refunds.create_async(
        params={"charge": charge.id, "amount": 400, "reverse_transfer": True}
    )
    fee_refund = await client.v1.application_fees.refunds.create_async(
        charge.application_fee, params={"amount": 10}
    )
    payout = sandbox.create_payout(owner.id, 700)
    connect_event = sandbox.events("payout.paid")[0]

    wire: dict[str, dict[str, Any]] = {"account_link": link}
    as_owner = base.AUTH | {"Stripe-Account": owner.id}
    for name, path, headers in [
        ("account", f"/v1/accounts/{owner.id}", base.AUTH),
        ("application_fee", f"/v1/application_fees/{charge.application_fee}", base.AUTH),
        (
            "fee_refund",
            f"/v1/application_fees/{charge.application_fee}/refunds/{fee_refund.id}",
            base.AUTH,
        ),
        ("payout", f"/v1/payouts/{payout['id']}", as_owner),
        ("transfer", f"/v1/transfers/{charge.transfer}", base.AUTH),
        (
            "transfer_reversal",
            f"/v1/transfers/{charge.transfer}/reversals/{refund.transfer_reversal}",
            base.AUTH,
        ),
        (
            "balance_transaction",
            f"/v1/balance_transactions/{charge.balance_transaction}",
            base.AUTH,
        ),
        ("event", f"/v1/events/{connect_event['id']}", as_owner),
    ]:
        status, body, _ = await raw(browser, "GET", sandbox.base_url + path, headers=headers)
        assert status == 200, (name, body)
        wire[name] = body
    assert wire["event"]["account"] == owner.id

    sdk_classes = {
        "account": stripe.Account,
        "account_link": stripe.AccountLink,
        "application_fee": stripe.ApplicationFee,
        "fee_refund": stripe.ApplicationFeeRefund,
        "payout": stripe.Payout,
        "transfer": stripe.Transfer,
        "transfer_reversal": stripe.TransferReversal,
        "balance_transaction": stripe.BalanceTransaction,
        "event": stripe.Event,
    }
    for name, ours in wire.items():
        theirs = fixtures[name]
        assert ours["object"] == theirs["object"]
        base.assert_same_shape(ours, theirs, name)
        extra = set(ours) - set(theirs)
        assert extra <= set(sdk_classes[name].__annotations__), f"{name}: {sorted(extra)}"
