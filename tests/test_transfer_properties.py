"""Property tests of the owner's share (payments.reservation_transfers) against the model of
Stripe and the charger in test_reservation_properties, extended with Connect: the owner's
account becoming ready or not, transfers and reversals made (idempotently, by key) or
refused, and every result delivered late, twice or out of order, mixed with refunds.

After the run everything outstanding is carried out, the owner becomes ready and time runs
out; then: never two transfers, never more at the owner's than their share, shares never
negative and owner + operator == captured - refunded after every single event.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import timedelta

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from payments.reservation import (
    ChargerChanged,
    Effect,
    Event,
    Hold,
    MeterReading,
    RefundRequested,
)
from payments.reservation_transfers import billed_wh
from payments.split import SplitRule, after_refunds, split
from payments.transfer_messages import (
    ACCRUED,
    NOTHING,
    TRANSFERRED,
    OwnerNotReady,
    OwnerReady,
    ReversalRefused,
    ReverseTransfer,
    Transferred,
    TransferRefused,
    TransferReversed,
    TransferToOwner,
)
from tests.test_reservation_properties import World, _act, _charging_world, _drain, _new_world


@dataclass
class ConnectWorld(World):
    owner_ready: bool = False
    transfers: dict[str, tuple[str, int]] = field(default_factory=dict)  # key -> (id, amount)
    reversals: dict[str, tuple[str, int]] = field(default_factory=dict)
    reversal_refused: bool = False
    max_owner_share: int = 0

    def feed(self, event: Event) -> None:
        super().feed(event)
        r = self.reservation
        assert r.owner_share >= 0 and r.operator_share >= 0, r
        if r.hold is Hold.CAPTURED:
            assert r.owner_share + r.operator_share == r.captured_amount - r.refunded_amount
            if self.max_owner_share == 0:
                self.max_owner_share = r.owner_share
            assert r.owner_share <= self.max_owner_share, "the owner's share went up"
        if self.transfers:
            at_owner = self.transferred - self.reversed
            # Never more at the owner's than their share once reversals under way land.
            assert at_owner - r.reversing_amount <= self.max_owner_share

    @property
    def transferred(self) -> int:
        return sum(amount for _, amount in self.transfers.values())

    @property
    def reversed(self) -> int:
        return sum(amount for _, amount in self.reversals.values())

    def carry_out(self, effect: Effect, outcome: int) -> None:
        match effect:
            case TransferToOwner(_, amount, attempt):
                key = f"transfer:r1:{attempt}"
                if key in self.transfers:  # Stripe replays an idempotent request
                    self.feed(Transferred(*self.transfers[key]))
                elif not self.owner_ready:
                    self.feed(OwnerNotReady())
                elif outcome % 6 == 5:
                    self.feed(TransferRefused("account restricted"))
                else:
                    self.transfers[key] = (f"tr_{attempt}", amount)
                    self.feed(Transferred(f"tr_{attempt}", amount))
            case ReverseTransfer(_, amount, key):
                if key in self.reversals:
                    self.feed(TransferReversed(key, *self.reversals[key]))
                elif outcome % 11 == 10:
                    self.reversal_refused = True
                    self.feed(ReversalRefused(key, amount, "insufficient funds"))
                else:
                    assert amount <= self.transferred - self.reversed, "reversed more than sent"
                    self.reversals[key] = (f"trr_{key}", amount)
                    self.feed(TransferReversed(key, f"trr_{key}", amount))
            case _:
                super().carry_out(effect, outcome)


RULES = st.builds(
    SplitRule,
    commission_basis_points=st.integers(0, 10_000),
    fixed_per_kwh=st.integers(0, 60),
    operator_minimum=st.integers(0, 400),
)

MACHINE_ACTIONS = [
    "carry_out",
    "carry_out",
    "carry_out",
    "duplicate",
    "pay",
    "completed",
    "cancel",
    "stop",
    "plug",
    "unplug",
    "offline",
    "online",
    "meter",
    "local_stop",
    "wait",
]
connect_actions = st.lists(
    st.tuples(
        st.sampled_from(
            [
                *MACHINE_ACTIONS,
                "carry_out",
                "duplicate",
                "refund",
                "refund",
                "owner_ready",
                "owner_unready",
                "owner_ready_again",
            ]
        ),
        st.integers(min_value=0, max_value=1000),
    ),
    max_size=80,
)


def _connect_world(rule: SplitRule, ready: bool) -> ConnectWorld:
    base = _new_world()
    r = replace(base.reservation, owner_id="own_1", split=rule)
    world = ConnectWorld(r, owner_ready=ready)
    world.outstanding, world.emitted = base.outstanding, base.emitted
    return world


def _connect_act(world: ConnectWorld, action: str, n: int) -> None:
    match action:
        case "owner_ready":
            world.owner_ready = True
            world.feed(OwnerReady())
        case "owner_ready_again":
            world.feed(OwnerReady())  # on_ready called again, or for another session
        case "owner_unready":
            world.owner_ready = False
        case _:
            _act(world, action, n)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    connect_actions,
    RULES,
    st.booleans(),
    st.lists(st.integers(1, 400), max_size=5),
    st.sampled_from(["new", "charging", "charging"]),
)
def test_the_owner_is_paid_once_and_never_more_than_their_share(
    steps: list[tuple[str, int]],
    rule: SplitRule,
    ready: bool,
    refunds: list[int],
    start: str,
) -> None:
    if start == "new":
        world = _connect_world(rule, ready)
    else:  # most runs: from a charge under way, so that most end in a capture to share
        world = _charging_connect_world(rule, ready)
        world.now += timedelta(minutes=20)
        world.meter_wh += 4_000
        world.feed(MeterReading(world.meter_wh, 11_000, world.now))
    for action, n in steps:
        _connect_act(world, action, n)
    _drain(world)
    for n, amount in enumerate(refunds):  # refunds after the session, results interleaved
        world.feed(RefundRequested(f"late{n}", amount))
        if n % 2 and world.outstanding:
            world.carry_out(world.outstanding.pop(0), n)
    world.owner_ready = True
    world.feed(OwnerReady())
    while world.outstanding:
        world.carry_out(world.outstanding.pop(0), 1)

    r = world.reservation
    event(f"{r.hold.value} {r.transfer_status} reversals={len(world.reversals)}")
    transfers = [e for e in world.emitted if isinstance(e, TransferToOwner)]
    assert len(world.transfers) <= 1, f"transferred twice: {world.transfers}"
    assert len({t.attempt for t in transfers}) == len(transfers), "an attempt asked twice"
    if r.hold is not Hold.CAPTURED:
        assert not transfers and r.owner_share == 0 and r.transfer_status is None
        return
    expected = after_refunds(split(rule, r.captured_amount, billed_wh(r)), r.refunded_amount)
    assert (r.owner_share, r.operator_share) == (expected.owner, expected.operator)
    assert r.transferred_amount == world.transferred
    assert r.reversed_amount == world.reversed
    assert r.reversing_amount == 0
    if expected.owner == 0 and not world.transfers:
        assert r.transfer_status in (NOTHING, None) or r.transfer_status == ACCRUED
        return
    assert r.transfer_status == TRANSFERRED, r
    if not world.reversal_refused:
        # Everything settled: the owner holds exactly their share, nothing lost.
        assert world.transferred - world.reversed == r.owner_share
    assert world.transferred <= world.max_owner_share


def _charging_connect_world(rule: SplitRule, ready: bool) -> ConnectWorld:
    charging = _charging_world()
    values = {f.name: getattr(charging, f.name) for f in fields(World)}
    world = ConnectWorld(**values, owner_ready=ready)
    world.reservation = replace(world.reservation, owner_id="own_1", split=rule)
    return world


def test_a_share_accrues_until_the_owner_is_ready_then_moves_once() -> None:
    world = _charging_connect_world(SplitRule(commission_basis_points=2000), ready=False)
    world.now += timedelta(minutes=30)
    world.meter_wh += 10_000
    world.feed(MeterReading(world.meter_wh, 11_000, world.now))
    world.stop_transaction()
    world.now += timedelta(minutes=2)
    world.status = "Available"
    world.feed(ChargerChanged(world.now))
    world.carry_out(world.outstanding.pop(), 0)  # captured: 10 kWh x 0.40 + 1.00 = 500
    assert world.reservation.captured_amount == 500
    (transfer,) = world.outstanding
    assert transfer == TransferToOwner("own_1", 400, 1)  # 80 % of 500
    world.carry_out(world.outstanding.pop(), 0)
    assert world.reservation.transfer_status == ACCRUED and not world.transfers
    world.owner_ready = True
    world.feed(OwnerReady())
    world.feed(OwnerReady())  # twice: one transfer
    assert world.outstanding == [TransferToOwner("own_1", 400, 2)]
    world.carry_out(world.outstanding.pop(), 0)
    assert world.transfers == {"transfer:r1:2": ("tr_2", 400)}
    # A refund of 100 of 500: the owner gives back 80, the operator 20.
    world.feed(RefundRequested("rf1", 100))
    world.carry_out(world.outstanding.pop(), 1)
    assert world.outstanding == [ReverseTransfer("tr_2", 80, "rf1")]
    world.carry_out(world.outstanding.pop(), 0)
    r = world.reservation
    assert (r.owner_share, r.operator_share, r.reversed_amount) == (320, 80, 80)
