"""The load generator: worker processes full of chargers on raw `websockets` connections.

Every charger sends BootNotification and StatusNotification once connected, then (unless it
is idle) repeats CYCLE: a StartTransaction, MeterValues with four measurands under the
transaction id the server assigned, a Heartbeat, a StopTransaction. OCPP allows one CALL in
flight per direction, so each CALL waits for the previous reply. Frames are serialised once
per action; only their slots (unique id, timestamp, counters) are filled in per send, so the
generator spends its CPU on the sockets rather than on JSON.

The parent steers the workers through shared memory: a phase number it writes, and per
worker counters it reads (chargers ready, replies, errors), so that its measuring window and
the server's CPU readings line up without any messages between processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from queue import Empty
from typing import Any, Protocol

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

from bench.perf.proc import cpu_seconds, raise_open_files_limit

OCPP16 = Subprotocol("ocpp1.6")
# Phases, written by the parent only.
CONNECT, WARM, MEASURE, STOP = range(4)

# Handshakes in progress at once per worker: enough to connect thousands quickly, few enough
# not to overrun the server's listen backlog.
CONCURRENT_HANDSHAKES = 64
# How often a worker reads the phase, and checks that its parent is still there.
POLL_SECONDS = 0.01

CYCLE = (
    "StartTransaction",
    *("MeterValues",) * 5,
    "Heartbeat",
    *("MeterValues",) * 5,
    "StopTransaction",
)
ENERGY_PER_SAMPLE_WH = 183

_SLOT = re.compile(r'"@(\w+)@"')


class Shared(Protocol):
    """A number in shared memory (multiprocessing RawValue): one process writes it."""

    value: int


class Template:
    """One CALL serialised once. Slots are written as "@name@" in the payload and filled
    with ready-made JSON text (quotes included for strings) at each send."""

    def __init__(self, action: str, payload: Mapping[str, Any]) -> None:
        parts = _SLOT.split(json.dumps([2, "@id@", action, payload], separators=(",", ":")))
        self._literals = parts[0::2]
        self._slots = parts[1::2]

    def render(self, values: Mapping[str, str]) -> str:
        out = [self._literals[0]]
        for slot, literal in zip(self._slots, self._literals[1:], strict=True):
            out.append(values[slot])
            out.append(literal)
        return "".join(out)


def _sampled(value: str, measurand: str, unit: str, **extra: str) -> dict[str, str]:
    return {
        "value": value,
        "context": "Sample.Periodic",
        "measurand": measurand,
        "unit": unit,
        **extra,
    }


TEMPLATES = {
    "BootNotification": Template(
        "BootNotification",
        {
            "chargePointVendor": "Bench",
            "chargePointModel": "PerfLoad",
            "chargePointSerialNumber": "@serial@",
            "firmwareVersion": "1.0.0",
        },
    ),
    "StatusNotification": Template(
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": "@ts@"},
    ),
    "Heartbeat": Template("Heartbeat", {}),
    "StartTransaction": Template(
        "StartTransaction",
        {"connectorId": 1, "idTag": "@tag@", "meterStart": "@wh@", "timestamp": "@ts@"},
    ),
    "MeterValues": Template(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": "@tx@",
            "meterValue": [
                {
                    "timestamp": "@ts@",
                    "sampledValue": [
                        _sampled("@whtext@", "Energy.Active.Import.Register", "Wh"),
                        _sampled("11040", "Power.Active.Import", "W"),
                        _sampled("16.0", "Current.Import", "A"),
                        _sampled("@soc@", "SoC", "Percent", location="EV"),
                    ],
                }
            ],
        },
    ),
    "StopTransaction": Template(
        "StopTransaction",
        {
            "transactionId": "@tx@",
            "idTag": "@tag@",
            "meterStop": "@wh@",
            "timestamp": "@ts@",
            "reason": "EVDisconnected",
        },
    ),
}


def ocpp_now() -> str:
    """UTC with milliseconds: a charger's successive StartTransactions (a whole CYCLE of round
    trips apart) never share a timestamp, which the CSMS would take for a resend."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


@dataclass(frozen=True)
class Load:
    url: str  # the chargers' endpoint; each charger appends "/<its id>"
    charger_ids: tuple[str, ...]
    # Seconds between one charger's CALLs; None: the next CALL as soon as the reply is in.
    interval: float | None = None
    # Connect, boot, then only hold the connection open.
    idle: bool = False
    # Longest life of a worker, whatever the parent does: everything stops by itself.
    deadline_seconds: float = 600.0


@dataclass
class Outcome:
    messages: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, MEASURE phase only
    first_error: str = ""


class _Worker:
    """The asyncio side of one worker process."""

    def __init__(
        self,
        load: Load,
        phase: Shared,
        ready: Shared,
        done: Shared,
        errors: Shared,
    ) -> None:
        self.load = load
        self._phase = phase
        self._ready = ready
        self._done = done
        self._errors = errors
        self.measuring = False
        self.started = asyncio.Event()
        self.stopping = asyncio.Event()
        self.latencies: list[float] = []
        self.first_error = ""

    async def run(self) -> None:
        gate = asyncio.Semaphore(CONCURRENT_HANDSHAKES)
        chargers = [asyncio.create_task(self._charger(cid, gate)) for cid in self.load.charger_ids]
        await self._follow_parent()
        # Chargers finish their CALL in flight (or think time), then close cleanly.
        _, late = await asyncio.wait(chargers, timeout=10)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def _follow_parent(self) -> None:
        parent = os.getppid()
        give_up = time.monotonic() + self.load.deadline_seconds
        while True:
            phase = self._phase.value
            if phase >= WARM:
                self.started.set()
            self.measuring = phase == MEASURE
            if phase == STOP or os.getppid() != parent or time.monotonic() > give_up:
                self.stopping.set()
                return
            await asyncio.sleep(POLL_SECONDS)

    def error(self, text: str) -> None:
        self._errors.value += 1
        if not self.first_error:
            self.first_error = text[:300]

    async def _charger(self, charger_id: str, gate: asyncio.Semaphore) -> None:
        try:
            async with gate:
                connection = await connect(
                    f"{self.load.url}/{charger_id}",
                    subprotocols=[OCPP16],
                    compression=None,
                    ping_interval=None,  # the server pings; answering is automatic
                    open_timeout=60,
                    close_timeout=2,
                    max_size=2**20,
                )
        except (OSError, InvalidHandshake, TimeoutError) as error:
            self.error(f"{charger_id}: connect: {error!r}")
            return
        try:
            async with connection:
                await _Charger(charger_id, connection, self).run()
        except ConnectionClosed as error:
            if not self.stopping.is_set():
                self.error(f"{charger_id}: connection closed: {error!r}")

    def reply(self, seconds: float) -> None:
        self._done.value += 1
        if self.measuring:
            self.latencies.append(seconds)

    def connected(self) -> None:
        self._ready.value += 1


class _Charger:
    def __init__(self, charger_id: str, connection: ClientConnection, worker: _Worker) -> None:
        self._connection = connection
        self._worker = worker
        self._count = 0
        self._transaction_id = 0
        self._energy_wh = random.randrange(1_000_000)
        self._soc = 20
        self._values = {"serial": json.dumps(charger_id), "tag": json.dumps(charger_id[:20])}

    async def run(self) -> None:
        worker = self._worker
        await self._call("BootNotification")
        await self._call("StatusNotification")
        worker.connected()
        await worker.started.wait()
        if worker.load.idle:
            await worker.stopping.wait()
            return
        interval = worker.load.interval
        loop = asyncio.get_running_loop()
        # A random phase spreads the chargers' CALLs evenly over the interval.
        next_at = loop.time() + random.uniform(0, interval or 0)
        for action in _forever(CYCLE):
            if interval is not None:
                delay = next_at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                # Behind schedule (a slow reply): send now rather than in a burst.
                next_at = max(next_at, loop.time()) + interval
            if worker.stopping.is_set():
                return
            await self._call(action)

    async def _call(self, action: str) -> None:
        self._count += 1
        unique_id = str(self._count)
        values = self._values
        values["id"] = f'"{unique_id}"'
        values["ts"] = f'"{ocpp_now()}"'
        if action == "MeterValues":
            self._energy_wh += ENERGY_PER_SAMPLE_WH
            self._soc = 20 + (self._soc - 19) % 80
            values["whtext"] = f'"{self._energy_wh}"'
            values["soc"] = f'"{self._soc}"'
        values["wh"] = str(self._energy_wh)
        values["tx"] = str(self._transaction_id)
        frame = TEMPLATES[action].render(values)
        sent = time.perf_counter()
        await self._connection.send(frame)
        reply = await self._connection.recv(decode=False)
        elapsed = time.perf_counter() - sent
        assert isinstance(reply, bytes)
        if not reply.startswith(b'[3,"%s"' % unique_id.encode()):
            self._worker.error(f"{action}: {reply[:300]!r}")
        elif action == "StartTransaction":
            # The echo server assigns no id: any number will do for it.
            result = orjson.loads(reply)[2]
            self._transaction_id = result.get("transactionId", self._count)
        self._worker.reply(elapsed)


def _forever(cycle: tuple[str, ...]) -> Iterator[str]:
    while True:
        yield from cycle


def _worker_main(
    load: Load,
    phase: Shared,
    ready: Shared,
    done: Shared,
    errors: Shared,
    results: multiprocessing.Queue[Outcome],
) -> None:
    raise_open_files_limit(len(load.charger_ids) + 64)
    worker = _Worker(load, phase, ready, done, errors)
    asyncio.run(worker.run())
    results.put(Outcome(latencies=worker.latencies, first_error=worker.first_error))


class Generator:
    """The worker processes of one load, one per core given to the generator."""

    def __init__(self, load: Load, workers: int) -> None:
        # Fork: the parent is single-threaded here and a worker is running in milliseconds.
        context = multiprocessing.get_context("fork")
        workers = max(1, min(workers, len(load.charger_ids)))
        self._phase = context.RawValue("i", CONNECT)
        self._ready = [context.RawValue("q", 0) for _ in range(workers)]
        self._done = [context.RawValue("q", 0) for _ in range(workers)]
        self._errors = [context.RawValue("q", 0) for _ in range(workers)]
        self._results: multiprocessing.Queue[Outcome] = context.Queue()
        self.chargers = len(load.charger_ids)
        self._processes: list[BaseProcess] = [
            context.Process(
                target=_worker_main,
                args=(
                    Load(load.url, load.charger_ids[n::workers], load.interval, load.idle,
                         load.deadline_seconds),
                    self._phase,
                    self._ready[n],
                    self._done[n],
                    self._errors[n],
                    self._results,
                ),
                name=f"bench-load-{n}",
                daemon=True,
            )
            for n in range(workers)
        ]  # fmt: skip

    def __enter__(self) -> Generator:
        for process in self._processes:
            process.start()
        return self

    def __exit__(self, *_: object) -> None:
        for process in self._processes:
            if process.is_alive():
                process.kill()
            process.join(timeout=5)

    def set_phase(self, phase: int) -> None:
        self._phase.value = phase

    def ready(self) -> int:
        return sum(value.value for value in self._ready)

    def messages(self) -> int:
        return sum(value.value for value in self._done)

    def errors(self) -> int:
        return sum(value.value for value in self._errors)

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self._processes if p.pid is not None)

    def wait_ready(self, timeout: float) -> None:
        """Until every charger has connected and booted; RuntimeError on a failure or timeout."""
        give_up = time.monotonic() + timeout
        while self.ready() < self.chargers:
            if self.errors():
                raise RuntimeError(f"chargers failed to connect: {self.finish().first_error}")
            if any(not p.is_alive() for p in self._processes):
                raise RuntimeError("a load generator process died")
            if time.monotonic() > give_up:
                raise RuntimeError(
                    f"only {self.ready()} of {self.chargers} chargers ready after {timeout:.0f} s"
                )
            time.sleep(0.05)

    def finish(self, timeout: float = 30) -> Outcome:
        """Stop every charger and gather the workers' outcomes."""
        self.set_phase(STOP)
        total = Outcome()
        for _ in self._processes:
            with contextlib.suppress(Empty):  # a dead worker: its counters still count
                outcome = self._results.get(timeout=timeout)
                total.latencies.extend(outcome.latencies)
                total.first_error = total.first_error or outcome.first_error
        for process in self._processes:
            process.join(timeout=5)
        total.messages = self.messages()
        total.errors = self.errors()
        return total
