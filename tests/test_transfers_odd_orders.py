"""Owners' shares under odd orders, end to end (the real server, the sandbox, the real SDK):
several partial refunds then one of everything; everything refunded while the share
accrued, then the owner becoming ready; captures Stripe corrected on two payments."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import stripe

from csms.app import CentralSystem
from payments.reservation import CapturedElsewhere
from payments.split import SplitRule, split
from payments.transfer_messages import ACCRUED, NOTHING, TRANSFERRED
from simulators.chargepoint import SimulatedCharger
from tests import test_transfers_e2e as e2e
from tests.payflow import Driver, finished_session, refund_and_wait
from tests.test_transfers_e2e import RULE, _onboard, _owner_at_site, _settled, _transfers


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
