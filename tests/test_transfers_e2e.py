"""Revenue sharing end to end: the real server, a simulated charger at an owner's site, the
Stripe sandbox, and the real `stripe` SDK reading what the sandbox holds. An owner is
onboarded through the API and the sandbox's hosted onboarding page; a paid session's share
goes to the owner's connected account as a transfer linked to the charge; a partial refund
takes it back in proportion; an owner not ready is paid once the account is completed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import stripe

from csms.app import CentralSystem
from payments.reservation import Reservation
from payments.split import SplitRule, after_refunds, split
from payments.transfer_messages import ACCRUED, REFUSED, TRANSFERRED
from simulators.chargepoint import SimulatedCharger
from tests.payflow import Driver, finished_session, refund_and_wait
from tests.waiting import eventually

RULE = {"commission_basis_points": 2000, "operator_minimum": 10}  # the operator keeps 20 %


@pytest.fixture
async def sdk(system: CentralSystem) -> AsyncIterator[stripe.StripeClient]:
    """The real SDK, pointed at the sandbox the server uses."""
    assert system.sandbox is not None
    http = stripe.AIOHTTPClient(timeout=10)
    yield stripe.StripeClient(
        "sk_test_sandbox",
        base_addresses={"api": system.sandbox.base_url},
        http_client=http,
        max_network_retries=0,
    )
    await http.close_async()


async def _call(driver: Driver, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    from tests.conftest import API_HEADERS

    async with driver.http.request(
        method, f"{driver.base}{path}", json=body, headers=API_HEADERS
    ) as response:
        return response.status, await response.json(content_type=None)


async def _owner_at_site(driver: Driver, sim: SimulatedCharger, *, onboard: bool) -> str:
    """Owner "owner-1" with its Express account (onboarded or not), owning the site of
    the simulated charger; the owner's Stripe account id."""
    status, owner = await _call(
        driver,
        "POST",
        "/api/owners",
        {"id": "owner-1", "name": "Harbour GmbH", "email": "o@harbour.example", "country": "DE"},
    )
    assert status == 201, owner
    site = {"id": "harbour", "name": "Harbour", "timeZone": "Europe/Berlin"}
    status, created = await _call(
        driver, "POST", "/api/sites", {**site, "ownerId": "owner-1", "split": RULE}
    )
    assert status == 201, created
    status, joined = await _call(
        driver, "PATCH", f"/api/chargers/{sim.charge_point_id}", {"siteId": "harbour"}
    )
    assert status == 200, joined
    if onboard:
        await _onboard(driver)
    return owner["stripeAccountId"]


async def _onboard(driver: Driver) -> None:
    """The owner completes Stripe's hosted onboarding; Stripe's account.updated makes it ready."""
    status, link = await _call(driver, "POST", "/api/owners/owner-1/onboarding-link")
    assert status in (200, 201), link
    async with driver.http.post(link["url"], data={"action": "submit"}) as page:
        assert page.status == 200, await page.text()

    async def ready() -> bool:
        return (await _call(driver, "GET", "/api/owners/owner-1"))[1]["ready"] is True

    await eventually(ready, timeout=15)


async def _reservation(system: CentralSystem, reservation_id: str) -> Reservation:
    r = await system.reservations.get(reservation_id)
    assert r is not None
    return r


async def _settled(system: CentralSystem, reservation_id: str, status: str) -> Reservation:
    async def there() -> bool:
        r = await _reservation(system, reservation_id)
        return r.transfer_status == status and r.reversing_amount == 0

    await eventually(there, timeout=15)
    return await _reservation(system, reservation_id)


async def _transfers(sdk: stripe.StripeClient, reservation_id: str) -> list[Any]:
    page = await sdk.v1.transfers.list_async({"transfer_group": reservation_id, "limit": 100})
    return list(page.data)


async def test_a_paid_session_is_split_and_the_share_transferred(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger, sdk: stripe.StripeClient
) -> None:
    account = await _owner_at_site(driver, sim, onboard=True)
    reservation_id, _ = await finished_session(driver, sim)
    r = await _settled(system, reservation_id, TRANSFERRED)
    expected = split(SplitRule(**RULE), r.captured_amount, r.energy_wh)
    assert r.captured_amount > 0 and r.owner_id == "owner-1"
    assert (r.owner_share, r.operator_share) == (expected.owner, expected.operator)
    assert r.owner_share + r.operator_share == r.captured_amount

    (transfer,) = await _transfers(sdk, reservation_id)
    intent = await sdk.v1.payment_intents.retrieve_async(r.payment_intent_id or "")
    assert transfer.id == r.transfer_id
    assert transfer.amount == r.owner_share == r.transferred_amount
    assert transfer.destination == account
    assert transfer.source_transaction == intent.latest_charge
    assert transfer.currency == "eur"
    shown = (await driver.status(reservation_id))["ownerShare"]
    assert (shown["ownerShare"], shown["operatorShare"]) == (r.owner_share, r.operator_share)
    assert (shown["transferId"], shown["split"]) == (transfer.id, {**RULE, "fixed_per_kwh": 0})
    rows = await system.transfer_service.store.of_reservation(reservation_id)
    assert [(x["kind"], x["amount"], x["stripe_id"], x["status"]) for x in rows] == [
        ("transfer", r.owner_share, transfer.id, "succeeded")
    ]
    # Reconciliation finds the books and Stripe in agreement: no review.
    report = await system.reconciler.run()
    assert not [o for o in report.outcomes if o.finding.reservation_id == reservation_id]
    assert (await _reservation(system, reservation_id)).state.value == "Completed"


async def test_a_partial_refund_reverses_the_share_in_proportion(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger, sdk: stripe.StripeClient
) -> None:
    await _owner_at_site(driver, sim, onboard=True)
    reservation_id, _ = await finished_session(driver, sim)
    before = await _settled(system, reservation_id, TRANSFERRED)
    refund = before.captured_amount // 3
    await refund_and_wait(driver, reservation_id, {"amount": refund, "reason": "short"})

    initial = split(SplitRule(**RULE), before.captured_amount, before.energy_wh)
    now = after_refunds(initial, refund)

    async def reversed_at_stripe() -> bool:
        (transfer,) = await _transfers(sdk, reservation_id)
        return transfer.amount_reversed == initial.owner - now.owner

    await eventually(reversed_at_stripe, timeout=15)
    r = await _settled(system, reservation_id, TRANSFERRED)
    assert 0 < r.reversed_amount == initial.owner - now.owner
    assert (r.owner_share, r.operator_share) == (now.owner, now.operator)
    assert r.owner_share + r.operator_share == r.captured_amount - r.refunded_amount
    (transfer,) = await _transfers(sdk, reservation_id)
    reversals = await sdk.v1.transfers.reversals.list_async(transfer.id)
    assert [x.amount for x in reversals.data] == [r.reversed_amount]
    assert transfer.amount - transfer.amount_reversed == r.owner_share
    kinds = [
        (x["kind"], x["amount"]) for x in await system.transfer_service.store.of_reservation(r.id)
    ]
    assert kinds == [("transfer", initial.owner), ("reversal", r.reversed_amount)]
    report = await system.reconciler.run()
    assert not [o for o in report.outcomes if o.finding.reservation_id == reservation_id]


async def test_an_owner_not_ready_is_paid_once_the_account_is_completed(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger, sdk: stripe.StripeClient
) -> None:
    account = await _owner_at_site(driver, sim, onboard=False)
    reservation_id, _ = await finished_session(driver, sim)
    r = await _settled(system, reservation_id, ACCRUED)
    assert r.owner_share > 0 and r.transferred_amount == 0
    assert await _transfers(sdk, reservation_id) == []

    await _onboard(driver)  # account.updated: ready, the hook pays what accrued
    r = await _settled(system, reservation_id, TRANSFERRED)
    (transfer,) = await _transfers(sdk, reservation_id)
    assert (transfer.amount, transfer.destination) == (r.owner_share, account)
    assert r.transfer_attempts == 2  # asked at capture (not ready), then once ready
    # The hook again, and the start-up sweep: nothing more is transferred.
    await system.transfer_service.on_ready("owner-1")
    await system.transfer_service.sweep()
    await system.runner.run_now(reservation_id)
    assert len(await _transfers(sdk, reservation_id)) == 1


async def test_a_refused_transfer_alerts_and_the_operator_moves_it_once_it_can_be(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger, sdk: stripe.StripeClient
) -> None:
    await _owner_at_site(driver, sim, onboard=False)
    reservation_id, _ = await finished_session(driver, sim)
    r = await _settled(system, reservation_id, ACCRUED)
    # Refunded in the Stripe Dashboard, past csms: the charge has too little left.
    kept = 10
    await sdk.v1.refunds.create_async(
        {"payment_intent": r.payment_intent_id or "", "amount": r.captured_amount - kept}
    )
    assert r.owner_share > kept
    status, early = await _call(driver, "POST", f"/api/payments/{reservation_id}/owner-transfer")
    assert (status, early["error"]["code"]) == (409, "transfer_refused")  # not ready yet

    await _onboard(driver)
    r = await _settled(system, reservation_id, REFUSED)
    assert "balance_insufficient" in (r.transfer_failure or "")
    assert await _transfers(sdk, reservation_id) == []
    alerts = [a for a in await system.alerts.check() if a.kind == "transfer_failed"]
    assert [a.reservation_id for a in alerts] == [reservation_id]

    await system.reconciler.run()  # learns of the refund: the owner's share shrinks
    r = await _reservation(system, reservation_id)
    assert r.refunded_amount == r.captured_amount - kept and r.owner_share <= kept
    assert r.owner_share + r.operator_share == kept
    status, view = await _call(driver, "POST", f"/api/payments/{reservation_id}/owner-transfer")
    assert status == 200, view
    r = await _settled(system, reservation_id, TRANSFERRED)
    (transfer,) = await _transfers(sdk, reservation_id)
    assert transfer.amount == r.owner_share == r.transferred_amount > 0
    status, again = await _call(driver, "POST", f"/api/payments/{reservation_id}/owner-transfer")
    assert (status, again["error"]["code"]) == (409, "transfer_refused")
