"""The effect runner: a commit's effects start at once, and an outbox read taken before an
effect finished does not start it again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from payments import reservation as machine
from payments.coordinator import Coordinator
from payments.effects import EffectExecutor
from payments.outbox import Outbox, PendingEffect
from payments.reservations_store import ReservationStore
from payments.runner import EffectRunner
from tests.waiting import eventually

EFFECT = PendingEffect(7, "res_1", machine.RemoteStart("PAYTAG"), "res_1:remote_start:1", 0)


class FakeCoordinator:
    def __init__(self) -> None:
        self.committed: Callable[[Sequence[PendingEffect]], None] = lambda _: None
        self.handled: list[int | None] = []

    def on_effects(self, committed: Callable[[Sequence[PendingEffect]], None]) -> None:
        self.committed = committed

    def clock(self) -> datetime:
        return datetime.now(UTC)

    async def tick(self) -> int:
        return 0

    async def handle(self, reservation_id: str, event: Any, *, effect_id: int) -> None:
        self.handled.append(effect_id)


class FakeOutbox:
    """An outbox whose reads take a while and show what was pending when they began."""

    def __init__(self) -> None:
        self.pending = [EFFECT]
        self.read_started = asyncio.Event()
        self.release_read = asyncio.Event()

    async def due(self, now: datetime, **_: Any) -> list[PendingEffect]:
        snapshot = list(self.pending)
        self.read_started.set()
        await self.release_read.wait()
        return snapshot

    async def next_at(self, now: datetime) -> str | None:
        return None


class FakeReservations:
    async def load_for_driver(self, reservation_id: str) -> tuple[Any, str, None]:
        return object(), "token", None


class FakeExecutor:
    def __init__(self) -> None:
        self.runs = 0

    async def execute(self, pending: PendingEffect, *_: Any, **__: Any) -> Any:
        self.runs += 1
        return machine.RemoteStartAnswered(accepted=True)


def _runner() -> tuple[EffectRunner, FakeOutbox, FakeCoordinator, FakeExecutor]:
    outbox, coordinator, executor = FakeOutbox(), FakeCoordinator(), FakeExecutor()
    runner = EffectRunner(
        cast(Outbox, outbox),
        cast(ReservationStore, FakeReservations()),
        cast(Coordinator, coordinator),
        cast(EffectExecutor, executor),
        idle_poll=60,
    )
    return runner, outbox, coordinator, executor


async def test_a_committed_effect_starts_without_an_outbox_read() -> None:
    runner, outbox, coordinator, executor = _runner()
    runner.start()
    try:
        await outbox.read_started.wait()  # the runner's first look, held open
        coordinator.committed([EFFECT])
        await eventually(lambda: _true(coordinator.handled == [EFFECT.id]))
        assert executor.runs == 1
        # The read that began before the effect finished shows it pending: not run again.
        outbox.pending = []
        outbox.release_read.set()
        await asyncio.sleep(0.05)
        assert executor.runs == 1 and coordinator.handled == [EFFECT.id]
    finally:
        await runner.stop()


async def _true(value: bool) -> bool:
    return value
