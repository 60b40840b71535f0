"""The periodic sweep of accrued shares: after each scheduled reconciliation the node that
leads asks again for the shares that accrued for owners who are ready now, so a readiness
hook call lost without a restart does not leave an owner unpaid until the next start."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from csms.app import CentralSystem
from payments.split import SplitRule, split
from payments.transfer_messages import ACCRUED, TRANSFERRED
from simulators.chargepoint import SimulatedCharger
from tests.conftest import MakeConfig
from tests.payflow import TARIFF, Driver, finished_session
from tests.test_transfers_e2e import RULE, _onboard, _owner_at_site, _reservation, _settled
from tests.waiting import eventually


@pytest.fixture
async def system(make_config: MakeConfig) -> AsyncIterator[CentralSystem]:
    config = make_config(
        tariff=TARIFF, payments={"minimum_energy_wh": 100, "reconcile_interval": 0.2}
    )
    async with CentralSystem(config) as running:
        yield running


async def _accrued_then_ready_with_the_hook_lost(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger
) -> str:
    """A share accrued for an owner not ready; then the owner becomes ready (Stripe's
    account.updated) but the readiness hook's call is lost. The reservation's id."""
    await _owner_at_site(driver, sim, onboard=False)
    reservation_id, _ = await finished_session(driver, sim)
    r = await _settled(system, reservation_id, ACCRUED)
    assert r.owner_share > 0 and r.transferred_amount == 0
    lost: list[str] = []

    async def lost_hook(owner_id: str) -> None:
        lost.append(owner_id)

    system.connect_webhooks.on_ready = lost_hook
    await _onboard(driver)
    assert lost == ["owner-1"]  # the hook was called, and did nothing
    return reservation_id


async def test_the_leading_node_sweeps_accrued_shares_after_a_scheduled_run(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger
) -> None:
    reservation_id = await _accrued_then_ready_with_the_hook_lost(system, driver, sim)
    # No restart: the scheduled reconciliation's sweep transfers the share, once.
    r = await _settled(system, reservation_id, TRANSFERRED)
    expected = split(SplitRule(**RULE), r.captured_amount, r.energy_wh)
    assert r.transferred_amount == r.owner_share == expected.owner > 0
    assert r.transfer_attempts == 2  # the first found the owner not ready; no third
    rows = await system.transfer_service.store.of_reservation(reservation_id)
    assert [(x["kind"], x["amount"], x["status"]) for x in rows] == [
        ("transfer", expected.owner, "succeeded")
    ]


async def test_a_node_that_does_not_lead_does_not_sweep(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger
) -> None:
    asked: list[str] = []
    leads = False

    async def lead(name: str) -> bool:
        asked.append(name)
        return leads

    system.reconciler._lead = lead  # another node leads the scheduled runs
    reservation_id = await _accrued_then_ready_with_the_hook_lost(system, driver, sim)
    seen = len(asked)

    async def three_more_turns() -> bool:
        return len(asked) >= seen + 3

    await eventually(three_more_turns, timeout=15)  # three scheduled turns went by
    r = await _reservation(system, reservation_id)
    assert r.transfer_status == ACCRUED and r.transferred_amount == 0
    assert set(asked) == {"reconcile"}
    leads = True  # this node leads now: its next scheduled run sweeps
    r = await _settled(system, reservation_id, TRANSFERRED)
    assert r.transferred_amount == r.owner_share > 0 and r.transfer_attempts == 2
    rows = await system.transfer_service.store.of_reservation(reservation_id)
    assert [(x["kind"], x["status"]) for x in rows] == [("transfer", "succeeded")]


async def test_the_sweep_follows_the_owners_refresh_and_survives_a_failing_job(
    system: CentralSystem,
) -> None:
    jobs = system.reconciler.after_run
    assert jobs[-2:] == [system.onboarding.refresh_unready, system.transfer_service.sweep]
    ran: list[str] = []

    async def broken() -> None:
        ran.append("broken")
        raise RuntimeError("Stripe said no")

    async def sweep() -> int:
        ran.append("sweep")
        return 0

    system.reconciler.after_run = [broken, sweep]
    await system.reconciler.run_after()
    assert ran == ["broken", "sweep"]
