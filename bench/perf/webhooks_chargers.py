"""Idle chargers in worker processes, each noting when a RemoteStartTransaction reaches it.

Every charger connects, sends BootNotification and StatusNotification Available (a charger
whose cable is in then sends Preparing, as a real one does when the driver plugs in), and
then only answers: RemoteStartTransaction and RemoteStopTransaction with Accepted, any other
CALL with the CALLERROR NotSupported. The moment a RemoteStartTransaction frame reaches the
charger is read from CLOCK_MONOTONIC first thing, so it compares with times taken in other
processes of this machine. No transaction is started, so none is left to stop.

Sockets live in the workers (one process holds at most a few thousand), never in the parent.
The parent reads per-worker counters from shared memory and gets each worker's arrival times
when it stops the fleet.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from queue import Empty
from typing import Any, Protocol

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

from bench.perf.load import wait_for_chargers
from bench.perf.proc import raise_open_files_limit

OCPP16 = Subprotocol("ocpp1.6")
CALL, CALLRESULT, CALLERROR = 2, 3, 4
# Handshakes under way at once per worker: quick, without overrunning the listen backlog.
CONCURRENT_HANDSHAKES = 64
POLL_SECONDS = 0.02
# Files a worker holds besides its chargers' sockets.
FILES_MARGIN = 64
ACCEPTED_COMMANDS = frozenset({"RemoteStartTransaction", "RemoteStopTransaction"})


def monotonic() -> float:
    """The clock every process of a run reads, so that their times can be subtracted."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


class Shared(Protocol):
    """A number in shared memory (multiprocessing RawValue), written by one process."""

    value: int


@dataclass(frozen=True)
class Plan:
    url: str  # the chargers' endpoint; each appends "/<its id>"
    charger_ids: tuple[str, ...]
    plugged: frozenset[str] = frozenset()  # cable in: Preparing after Available
    # Longest life of a worker, whatever the parent does.
    deadline_seconds: float = 900.0


@dataclass
class Report:
    """What the workers saw: errors, and each charger's RemoteStart arrivals (monotonic)."""

    errors: int = 0
    first_error: str = ""
    remote_starts: dict[str, list[float]] = field(default_factory=dict)
    unexpected_calls: dict[str, int] = field(default_factory=dict)


class _Worker:
    def __init__(self, plan: Plan, stop: Shared, ready: Shared, errors: Shared, starts: Shared):
        self.plan = plan
        self._stop = stop
        self._ready = ready
        self._errors = errors
        self._starts = starts
        self.stopping = asyncio.Event()
        self.report = Report()
        self._booted = 0

    async def run(self) -> None:
        gate = asyncio.Semaphore(CONCURRENT_HANDSHAKES)
        chargers = [asyncio.create_task(self._charger(cid, gate)) for cid in self.plan.charger_ids]
        await self._follow_parent()
        _, late = await asyncio.wait(chargers, timeout=10)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def _follow_parent(self) -> None:
        parent = os.getppid()
        give_up = time.monotonic() + self.plan.deadline_seconds

        def over() -> bool:
            return bool(self._stop.value) or os.getppid() != parent or time.monotonic() > give_up

        while not over():  # noqa: ASYNC110 (shared memory cannot be awaited: poll it)
            await asyncio.sleep(POLL_SECONDS)
        self.stopping.set()

    def error(self, text: str) -> None:
        self._errors.value += 1
        self.report.errors += 1
        if not self.report.first_error:
            self.report.first_error = text[:300]

    def booted(self) -> None:
        self._ready.value += 1
        self._booted += 1
        if self._booted == len(self.plan.charger_ids):
            # Everything a worker keeps for its connections exists now: out of the collector's
            # sight, a full collection over thousands of them (up to a second) cannot delay
            # the moment a RemoteStart is read.
            gc.freeze()

    def remote_start(self, charger_id: str, at: float) -> None:
        self.report.remote_starts.setdefault(charger_id, []).append(at)
        self._starts.value += 1

    def unexpected(self, action: str) -> None:
        calls = self.report.unexpected_calls
        calls[action] = calls.get(action, 0) + 1

    async def _charger(self, charger_id: str, gate: asyncio.Semaphore) -> None:
        try:
            async with gate:
                connection = await connect(
                    f"{self.plan.url}/{charger_id}",
                    subprotocols=[OCPP16],
                    compression=None,
                    ping_interval=None,  # the server pings; answering is automatic
                    open_timeout=120,
                    close_timeout=2,
                )
        except (OSError, InvalidHandshake, TimeoutError) as error:
            self.error(f"{charger_id}: connect: {error!r}")
            return
        try:
            async with connection:
                await _Charger(charger_id, connection, self).run()
        except (ConnectionClosed, ConnectionError) as error:
            if not self.stopping.is_set():
                self.error(f"{charger_id}: connection closed: {error!r}")


class _Charger:
    def __init__(self, charger_id: str, connection: ClientConnection, worker: _Worker) -> None:
        self.charger_id = charger_id
        self._connection = connection
        self._worker = worker
        self._count = 0
        self._waiting: dict[str, asyncio.Future[list[Any]]] = {}

    async def run(self) -> None:
        reader = asyncio.create_task(self._read())
        try:
            await self._boot()
            self._worker.booted()
            stop = asyncio.create_task(self._worker.stopping.wait())
            await asyncio.wait({reader, stop}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _boot(self) -> None:
        boot = await self._call(
            "BootNotification", {"chargePointVendor": "Bench", "chargePointModel": "Webhooks"}
        )
        if boot.get("status") != "Accepted":
            self._worker.error(f"{self.charger_id}: BootNotification {boot}")
        await self._status("Available")
        if self.charger_id in self._worker.plan.plugged:
            await self._status("Preparing")

    async def _status(self, status: str) -> None:
        await self._call(
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": status},
        )

    async def _call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        self._count += 1
        unique_id = f"b{self._count}"
        reply: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting[unique_id] = reply
        await self._connection.send(orjson.dumps([CALL, unique_id, action, payload]).decode())
        frame = await reply
        if frame[0] != CALLRESULT:
            self._worker.error(f"{self.charger_id}: {action}: {frame}")
            return {}
        result: dict[str, Any] = frame[2]
        return result

    async def _read(self) -> None:
        try:
            async for message in self._connection:
                arrived = monotonic()  # before anything else: the frame is here now
                frame = orjson.loads(message)
                if frame[0] == CALL:
                    await self._answer(frame, arrived)
                elif (waiting := self._waiting.pop(frame[1], None)) is not None:
                    waiting.set_result(frame)
        finally:
            # A CALL still waiting for its reply will not get one.
            for waiting in self._waiting.values():
                if not waiting.done():
                    waiting.set_exception(ConnectionError("connection lost"))

    async def _answer(self, frame: list[Any], arrived: float) -> None:
        _, unique_id, action, _payload = frame
        if action == "RemoteStartTransaction":
            self._worker.remote_start(self.charger_id, arrived)
        if action in ACCEPTED_COMMANDS:
            answer: list[Any] = [CALLRESULT, unique_id, {"status": "Accepted"}]
        else:
            self._worker.unexpected(action)
            answer = [CALLERROR, unique_id, "NotSupported", f"{action} is not supported", {}]
        await self._connection.send(orjson.dumps(answer).decode())


def _worker_main(
    plan: Plan,
    stop: Shared,
    ready: Shared,
    errors: Shared,
    starts: Shared,
    reports: multiprocessing.Queue[Report],
) -> None:
    raise_open_files_limit(len(plan.charger_ids) + FILES_MARGIN)
    worker = _Worker(plan, stop, ready, errors, starts)
    asyncio.run(worker.run())
    reports.put(worker.report)


class Fleet:
    """The worker processes holding one plan's chargers, split evenly between them."""

    def __init__(self, plan: Plan, workers: int) -> None:
        context = multiprocessing.get_context("fork")
        workers = max(1, min(workers, len(plan.charger_ids)))
        self.chargers = len(plan.charger_ids)
        self._stop = context.RawValue("i", 0)
        self._ready = [context.RawValue("q", 0) for _ in range(workers)]
        self._errors = [context.RawValue("q", 0) for _ in range(workers)]
        self._starts = [context.RawValue("q", 0) for _ in range(workers)]
        self._reports: multiprocessing.Queue[Report] = context.Queue()
        self._processes: list[BaseProcess] = [
            context.Process(
                target=_worker_main,
                args=(
                    Plan(plan.url, plan.charger_ids[n::workers], plan.plugged,
                         plan.deadline_seconds),
                    self._stop, self._ready[n], self._errors[n], self._starts[n], self._reports,
                ),
                name=f"bench-chargers-{n}",
                daemon=True,
            )
            for n in range(workers)
        ]  # fmt: skip

    def __enter__(self) -> Fleet:
        for process in self._processes:
            process.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.value = 1
        for process in self._processes:
            process.join(timeout=15)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes if p.pid is not None]

    def ready(self) -> int:
        return sum(value.value for value in self._ready)

    def errors(self) -> int:
        return sum(value.value for value in self._errors)

    def remote_starts(self) -> int:
        return sum(value.value for value in self._starts)

    def wait_ready(self, timeout: float) -> None:
        """Until every charger has booted; RuntimeError on a failure or at `timeout`."""
        wait_for_chargers(
            self.chargers,
            self.ready,
            lambda: self.errors() and f"chargers failed: {self.finish().first_error}",
            self._processes,
            timeout,
        )

    def finish(self, timeout: float = 30) -> Report:
        """Stop every charger and gather what the workers saw."""
        self._stop.value = 1
        total = Report()
        for _ in self._processes:
            with contextlib.suppress(Empty):  # a dead worker: its counters still count
                report = self._reports.get(timeout=timeout)
                total.remote_starts.update(report.remote_starts)
                for action, count in report.unexpected_calls.items():
                    total.unexpected_calls[action] = total.unexpected_calls.get(action, 0) + count
                total.first_error = total.first_error or report.first_error
        for process in self._processes:
            process.join(timeout=5)
        total.errors = self.errors()
        return total
