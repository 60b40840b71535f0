"""Collections kept short: young garbage is collected at each tick, what is alive is frozen,
and the periodic full collection frees the cycles that died after they were frozen."""

from __future__ import annotations

import asyncio
import gc
import weakref

from csms.heap import keep_collections_short
from tests.waiting import eventually


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def _cycle() -> Node:
    """Two objects that refer to each other: only a collection can free them."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a


async def _true(value: bool) -> bool:
    return value


async def test_young_garbage_goes_at_once_and_frozen_cycles_at_the_thaw() -> None:
    gc.disable()  # only the ticks collect, so what the test sees is theirs
    task = asyncio.create_task(keep_collections_short(freeze_every=0.05, thaw_every=1.0))
    try:
        await eventually(lambda: _true(gc.get_freeze_count() > 0))
        young = weakref.ref(_cycle())  # garbage before any tick: the next one frees it
        alive = _cycle()
        await eventually(lambda: _true(young() is None), timeout=0.5)
        await asyncio.sleep(0.2)  # a few ticks: `alive` is frozen by now
        dead = weakref.ref(alive)
        del alive  # garbage now, but frozen: no ordinary collection sees it
        gc.collect()
        assert dead() is not None
        await eventually(lambda: _true(dead() is None), timeout=5)  # the thaw
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        gc.enable()
    assert gc.get_freeze_count() == 0  # a stopped server leaves the collector as it was
