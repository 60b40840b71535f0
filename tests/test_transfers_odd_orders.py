"""Owners' shares under odd orders, end to end (the real server, the sandbox, the real SDK):
several partial refunds then one of everything; everything refunded while the share
accrued, then the owner becoming ready; captures Stripe corrected on two payments."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import stripe

from csms.app import CentralSystem
from payments.reservation import CapturedElsewhere
from payments.split import SplitRule, after_refunds, split
from payments.transfer_messages import ACCRUED, NOTHING, TRANSFERRED
from simulators.chargepoint import SimulatedCharger
from tests import test_transfers_e2e as e2e
from tests.payflow import Driver, finished_session, refund_and_wait
from tests.test_transfers_e2e import (
    RULE,
    _call,
    _onboard,
    _owner_at_site,
    _settled,
    _transfers,
)
from tests.waiting import eventually


@pytest.fixture
async def sdk(system: CentralSystem) -> AsyncIterator[stripe.StripeClient]:
    async for client in e2e.sdk.__wrapped__(system):  # type: ignore[attr-defined]
        yield client


async def test_partial_refunds_then_the_rest_take_back_exactly_what_was_transferred(
    system: CentralSystem,
    driver: Driver,
    sim: SimulatedCharger,
    sdk: stripe.StripeClient,
) -> None:
    await _owner_at_site(driver, sim, onboard=True)
    reservation_id, _ = await finished_session(driver, sim)
    before = await _settled(system, reservation_id, TRANSFERRED)
    captured = before.captured_amount
    initial = split(SplitRule(**RULE), captured, before.energy_wh)
    await refund_and_wait(driver, reservation_id, {"amount": captured // 5, "reason": "a"})
    await refund_and_wait(driver, reservation_id, {"amount": captured // 7, "reason": "b"})
    await refund_and_wait(driver, reservation_id, {"reason": "the rest"})
    r = await _settled(system, reservation_id, TRANSFERRED)
    assert r.refunded_amount == captured
    assert (r.owner_share, r.operator_share) == (0, 0)
    assert r.reversed_amount == r.transferred_amount == initial.owner
    (transfer,) = await _transfers(sdk, reservation_id)
    assert transfer.amount_reversed == transfer.amount == initial.owner
    report = await system.reconciler.run()
    assert not [o for o in report.outcomes if o.finding.reservation_id == reservation_id]


async def test_everything_refunded_while_accrued_then_the_owner_ready_moves_nothing(
    system: CentralSystem,
    driver: Driver,
    sim: SimulatedCharger,
    sdk: stripe.StripeClient,
) -> None:
    await _owner_at_site(driver, sim, onboard=False)
    reservation_id, _ = await finished_session(driver, sim)
    r = await _settled(system, reservation_id, ACCRUED)
    await refund_and_wait(driver, reservation_id, {"reason": "all"})
    r = await _settled(system, reservation_id, ACCRUED)
    assert (r.owner_share, r.operator_share) == (0, 0)
    await _onboard(driver)
    r = await _settled(system, reservation_id, NOTHING)
    assert await _transfers(sdk, reservation_id) == []
    report = await system.reconciler.run()
    assert not [o for o in report.outcomes if o.finding.reservation_id == reservation_id]


async def test_captures_corrected_at_stripe_reverse_each_payments_share(
    system: CentralSystem,
    driver: Driver,
    sim: SimulatedCharger,
    sdk: stripe.StripeClient,
) -> None:
    """Stripe saying two transferred payments were captured for the same smaller amount
    (what reconciliation reports as CapturedElsewhere) takes back each owner's excess: the
    reversals' idempotency keys are the payments' own, not one shared by both."""
    await _owner_at_site(driver, sim, onboard=True)
    ids = []
    for _ in range(2):
        reservation_id, _ = await finished_session(driver, sim)
        await _settled(system, reservation_id, TRANSFERRED)
        ids.append(reservation_id)
        await sim.unplug(1)
    corrected = 50  # minor units, less than either capture
    for reservation_id in ids:
        await system.coordinator.handle(reservation_id, CapturedElsewhere(corrected))
        await system.runner.run_now(reservation_id)
    for reservation_id in ids:
        r = await _settled(system, reservation_id, TRANSFERRED)
        now = split(SplitRule(**RULE), corrected, r.energy_wh)
        assert r.owner_share == now.owner
        assert r.transferred_amount - r.reversed_amount == now.owner
        (transfer,) = await _transfers(sdk, reservation_id)
        assert transfer.amount - transfer.amount_reversed == now.owner


async def test_a_refused_reversal_is_asked_again_by_the_operator(
    system: CentralSystem,
    driver: Driver,
    sim: SimulatedCharger,
    sdk: stripe.StripeClient,
) -> None:
    """Stripe refusing the reversal of a refund leaves the owner more than the share; the
    operator's `owner-transfer` asks for it again (a new key), and then no more."""
    await _owner_at_site(driver, sim, onboard=True)
    reservation_id, _ = await finished_session(driver, sim)
    r = await _settled(system, reservation_id, TRANSFERRED)
    assert system.sandbox is not None
    fault = {"status": 400, "path": f"/v1/transfers/{r.transfer_id}/reversals", "method": "POST"}
    async with driver.http.post(f"{system.sandbox.base_url}/_sandbox/faults", json=fault) as x:
        assert x.status == 200, await x.text()
    await refund_and_wait(driver, reservation_id, {"amount": r.captured_amount // 2, "reason": "x"})

    async def refused() -> bool:
        r = await system.reservations.get(reservation_id)
        return r is not None and r.transfer_failure is not None and r.reversing_amount == 0

    await eventually(refused, timeout=15)
    r = await _settled(system, reservation_id, TRANSFERRED)
    assert r.reversed_amount == 0 and r.transferred_amount > r.owner_share

    status, view = await _call(driver, "POST", f"/api/payments/{reservation_id}/owner-transfer")
    assert status == 200, view

    async def reversed_at_stripe() -> bool:
        (transfer,) = await _transfers(sdk, reservation_id)
        return transfer.amount - transfer.amount_reversed == r.owner_share

    await eventually(reversed_at_stripe, timeout=15)
    r = await _settled(system, reservation_id, TRANSFERRED)
    assert r.transferred_amount - r.reversed_amount == r.owner_share
    status, shown = await _call(driver, "GET", f"/api/payments/{reservation_id}")
    assert shown["ownerShare"]["transferFailure"] is None  # made good: no stale reason
    status, again = await _call(driver, "POST", f"/api/payments/{reservation_id}/owner-transfer")
    assert (status, again["error"]["code"]) == (409, "transfer_refused")
    rows = await system.transfer_service.store.of_reservation(reservation_id)
    assert [(x["kind"], x["status"]) for x in rows] == [
        ("transfer", "succeeded"),
        ("reversal", "failed"),
        ("reversal", "succeeded"),
    ]
    report = await system.reconciler.run()
    assert not [o for o in report.outcomes if o.finding.reservation_id == reservation_id]


async def test_a_refund_while_accrued_then_the_owner_ready_transfers_the_smaller_share(
    system: CentralSystem,
    driver: Driver,
    sim: SimulatedCharger,
    sdk: stripe.StripeClient,
) -> None:
    await _owner_at_site(driver, sim, onboard=False)
    reservation_id, _ = await finished_session(driver, sim)
    r = await _settled(system, reservation_id, ACCRUED)
    refund = r.captured_amount // 4
    await refund_and_wait(driver, reservation_id, {"amount": refund, "reason": "part"})
    await _onboard(driver)
    r = await _settled(system, reservation_id, TRANSFERRED)
    now = after_refunds(split(SplitRule(**RULE), r.captured_amount, r.energy_wh), refund)
    assert r.owner_share == now.owner == r.transferred_amount and r.reversed_amount == 0
    (transfer,) = await _transfers(sdk, reservation_id)
    assert (transfer.amount, transfer.amount_reversed) == (now.owner, 0)
