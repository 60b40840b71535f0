"""Garbage-collector pauses kept short in a server that holds many connections.

A collection walks every object of the generations it collects, at about a microsecond
each once the heap is large. A server with tens of thousands of chargers holds millions of
long-lived objects (each connection's protocol state, buffers and tasks) and makes
thousands of short-lived ones a second (keep-alive pings, messages). Left to CPython's own
schedule, full collections over all of them stall the event loop for a second or more
while chargers connect, and young collections grow to 100,000 objects or more, because the
old objects that die offset the new ones in the collector's count.

So, on a timer: collect the young generations (what survived since the last tick: a pause
of milliseconds), then freeze what is alive (`gc.freeze`), which takes it out of every
later collection. What was frozen is never collected while it stays frozen: a closed
connection's objects that refer to each other wait for the next thaw, when one full
collection reclaims them. Thaws are rare, so that pause is too.
"""

from __future__ import annotations

import asyncio
import gc
import time

import structlog

log = structlog.get_logger()


async def keep_collections_short(freeze_every: float, thaw_every: float) -> None:
    """Collect the young and freeze every `freeze_every` seconds; thaw and collect fully
    every `thaw_every` seconds."""
    try:
        gc.collect()  # start-up's garbage, before it would be frozen
        gc.freeze()
        thawed_at = time.monotonic()
        while True:
            await asyncio.sleep(freeze_every)
            if time.monotonic() - thawed_at >= thaw_every:
                _full_collection()
                thawed_at = time.monotonic()
            else:
                gc.collect(1)
            gc.freeze()
    finally:
        gc.unfreeze()


def _full_collection() -> None:
    started = time.perf_counter()
    gc.unfreeze()
    freed = gc.collect()
    log.info(
        "csms.full_collection",
        freed=freed,
        seconds=round(time.perf_counter() - started, 3),
    )
