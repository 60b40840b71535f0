"""The load generator: worker processes full of chargers on raw `websockets` connections.

Every charger sends BootNotification and StatusNotification once connected, then (unless it
is idle) repeats CYCLE: a StartTransaction, MeterValues with four measurands under the
transaction id the server assigned, a Heartbeat, a StopTransaction. OCPP allows one CALL in
flight per direction, so each CALL waits for the previous reply. Frames are serialised once
per action; only their slots (unique id, timestamp, counters) are filled in per send, so the
generator spends its CPU on the sockets rather than on JSON.

In profile mode (Load.profile) chargers behave as deployed instead: each sends a Heartbeat
at a fixed interval, and those in a transaction start it once connected, send MeterValues at
their own interval and stop it at the end. The intervals run in profile time, whose pace the
parent sets: at pace 2 every charger sends twice as often, so a fleet can offer the message
rate of a larger one.

The parent steers the workers through shared memory: a phase number, a measuring window's
number and the pace, which it writes, and per worker counters it reads (chargers ready,
replies, errors), so that its measuring window and the server's CPU readings line up without
any messages between processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import math
import multiprocessing
import os
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing.process import BaseProcess
from queue import Empty
from typing import Any, Protocol

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.protocol import State
from websockets.typing import Subprotocol

from bench.perf.proc import cpu_seconds, raise_open_files_limit
from csms.heap import keep_collections_short

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


class SharedFloat(Protocol):
    value: float


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
class Profile:
    """Chargers as deployed, intervals in seconds of profile time."""

    heartbeat_seconds: float
    meter_seconds: float
    # The chargers in a transaction: the CSMS must accept their ids as id tags.
    transacting: frozenset[str]


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
    # Profile mode: interval and idle do not apply.
    profile: Profile | None = None
    # Handshakes in progress at once, per worker.
    handshakes: int = CONCURRENT_HANDSHAKES
    # Local addresses the chargers connect from, in turn; none: the kernel's choice.
    source_addresses: tuple[str, ...] = ()
    # Several servers' endpoints instead of `url`: each charger connects to the one its path
    # hashes to (see `endpoint`), as a load balancer's `balance uri` spreads them.
    endpoints: tuple[str, ...] = ()

    def endpoint(self, charger_id: str) -> str:
        """The URL charger `charger_id` connects to."""
        if not self.endpoints:
            return f"{self.url}/{charger_id}"
        return f"{self.endpoints[spread(charger_id, len(self.endpoints))]}/{charger_id}"


def uri_hash(path: str) -> int:
    """HAProxy's default hash function (sdbm, 32 bits), which `balance uri` applies to the
    request's path."""
    value = 0
    for byte in path.encode():
        value = (byte + (value << 6) + (value << 16) - value) & 0xFFFFFFFF
    return value


def spread(charger_id: str, endpoints: int) -> int:
    """Which of `endpoints` servers charger `charger_id` connects to: its path /ocpp/<id>
    hashed as `balance uri` hashes it, modulo the servers. The same spread as HAProxy's
    (uniform, the same server each time), though not necessarily the very server its
    consistent-hashing ring would choose."""
    return uri_hash(f"/ocpp/{charger_id}") % endpoints


@dataclass
class Outcome:
    messages: int = 0
    errors: int = 0
    # Reply times in seconds during MEASURE, by the number the parent gave the window.
    windows: dict[int, list[float]] = field(default_factory=dict)
    first_error: str = ""

    @property
    def latencies(self) -> list[float]:
        """The reply times of every measuring window together."""
        return [seconds for window in self.windows.values() for seconds in window]


@dataclass(frozen=True)
class _Steering:
    """Written by the parent only."""

    phase: Shared
    window: Shared  # the measuring window's number
    pace: SharedFloat  # how fast profile time runs


@dataclass(frozen=True)
class _Counters:
    """One worker's, written by it only."""

    ready: Shared
    done: Shared
    errors: Shared


class _ProfileClock:
    """Profile time: it stands still until the load starts, then runs `pace` times as fast as
    real time, the parent being free to change the pace at any moment. Chargers wait on one
    timer heap, advanced at each poll, rather than each sleeping in real time, which a change
    of pace could not reach."""

    def __init__(self, pace: SharedFloat) -> None:
        self._pace = pace
        self._now = 0.0
        self._real_at_last_tick: float | None = None  # None: not started
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()  # breaks ties, futures do not compare

    def now(self) -> float:
        return self._now

    def start(self) -> None:
        self._real_at_last_tick = time.monotonic()

    def until(self, moment: float) -> asyncio.Future[None]:
        """Done at the first tick when profile time has reached `moment`."""
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (moment, next(self._order), future))
        return future

    def tick(self) -> None:
        if self._real_at_last_tick is None:
            return
        real = time.monotonic()
        self._now += (real - self._real_at_last_tick) * self._pace.value
        self._real_at_last_tick = real
        while self._timers and self._timers[0][0] <= self._now:
            heapq.heappop(self._timers)[2].set_result(None)

    def release(self) -> None:
        """Wake every waiting charger: the load is stopping."""
        for _, _, future in self._timers:
            future.set_result(None)
        self._timers.clear()


class _Worker:
    """The asyncio side of one worker process."""

    def __init__(self, load: Load, steering: _Steering, counters: _Counters) -> None:
        self.load = load
        self._steering = steering
        self._counters = counters
        self.measuring = False
        self.window = 0
        self.started = asyncio.Event()
        self.stopping = asyncio.Event()
        self.clock = _ProfileClock(steering.pace)
        self.windows: dict[int, list[float]] = {}
        self.first_error = ""
        self._collections: asyncio.Task[None] | None = None

    async def run(self) -> None:
        gate = asyncio.Semaphore(self.load.handshakes)
        addresses = self.load.source_addresses
        chargers = [
            asyncio.create_task(
                self._charger(cid, gate, addresses[n % len(addresses)] if addresses else None)
            )
            for n, cid in enumerate(self.load.charger_ids)
        ]
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
            # The phase, then the window: the parent writes them in the opposite order, so a
            # new MEASURE phase is never seen with the previous window's number.
            phase = self._steering.phase.value
            self.window = self._steering.window.value
            if phase >= WARM and not self.started.is_set():
                self._start_profile_time()
                self.started.set()
            self.measuring = phase == MEASURE
            if phase == STOP or os.getppid() != parent or time.monotonic() > give_up:
                self.stopping.set()
                self.clock.release()
                return
            self.clock.tick()
            await asyncio.sleep(POLL_SECONDS)

    def _start_profile_time(self) -> None:
        if self.load.profile is None:
            return
        # Thousands of connections make this process's collections take up to a second, which
        # the reply times would include: the server's own remedy keeps them to milliseconds.
        self._collections = asyncio.create_task(keep_collections_short(1.0, math.inf))
        self.clock.start()

    def error(self, text: str) -> None:
        self._counters.errors.value += 1
        if not self.first_error:
            self.first_error = text[:300]

    async def _charger(
        self, charger_id: str, gate: asyncio.Semaphore, source_address: str | None
    ) -> None:
        try:
            async with gate:
                connection = await connect(
                    self.load.endpoint(charger_id),
                    subprotocols=[OCPP16],
                    compression=None,
                    ping_interval=None,  # the server pings; answering is automatic
                    open_timeout=60,
                    close_timeout=2,
                    max_size=2**20,
                    local_addr=(source_address, 0) if source_address else None,
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
        self._counters.done.value += 1
        if self.measuring:
            self.windows.setdefault(self.window, []).append(seconds)

    def connected(self) -> None:
        self._counters.ready.value += 1


class _Charger:
    def __init__(self, charger_id: str, connection: ClientConnection, worker: _Worker) -> None:
        self._id = charger_id
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
        if worker.load.profile is not None:
            await self._run_profile(worker.load.profile)
            return
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

    async def _run_profile(self, profile: Profile) -> None:
        worker = self._worker
        transacting = self._id in profile.transacting
        if transacting:
            await self._call("StartTransaction")
        worker.connected()
        await worker.started.wait()
        intervals = {"Heartbeat": profile.heartbeat_seconds}
        if transacting:
            intervals["MeterValues"] = profile.meter_seconds
        clock = worker.clock
        # Each action's first CALL at a random point of its interval: no thundering herd.
        start = clock.now()
        due = {action: start + random.uniform(0, every) for action, every in intervals.items()}
        while not worker.stopping.is_set():
            action = min(due, key=due.__getitem__)
            await clock.until(due[action])
            if worker.stopping.is_set():
                break
            await self._call(action)
            # Behind schedule (a slow reply): the next one a whole interval later, not a burst.
            due[action] = max(due[action], clock.now()) + intervals[action]
        # A silent charger would not notice otherwise that the server dropped it.
        if self._connection.state is not State.OPEN:
            worker.error(f"{self._id}: connection lost during the run")
            return
        if transacting:
            await self._call("StopTransaction")

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
    steering: _Steering,
    counters: _Counters,
    results: multiprocessing.Queue[Outcome],
) -> None:
    raise_open_files_limit(len(load.charger_ids) + 64)
    worker = _Worker(load, steering, counters)
    asyncio.run(worker.run())
    results.put(Outcome(windows=worker.windows, first_error=worker.first_error))


def wait_for_chargers(
    chargers: int,
    ready: Callable[[], int],
    failure: Callable[[], str | int],
    processes: Sequence[BaseProcess],
    timeout: float,
) -> None:
    """Until `ready()` reaches `chargers`; RuntimeError when `failure()` tells one, when a
    worker process dies, or after `timeout` seconds."""
    give_up = time.monotonic() + timeout
    while ready() < chargers:
        if text := failure():
            raise RuntimeError(str(text))
        if any(not process.is_alive() for process in processes):
            raise RuntimeError("a load generator process died")
        if time.monotonic() > give_up:
            raise RuntimeError(f"only {ready()} of {chargers} chargers ready after {timeout:.0f} s")
        time.sleep(0.05)


class Generator:
    """The worker processes of one load, one per core given to the generator."""

    def __init__(self, load: Load, workers: int) -> None:
        # Fork: the parent is single-threaded here and a worker is running in milliseconds.
        context = multiprocessing.get_context("fork")
        workers = max(1, min(workers, len(load.charger_ids)))
        self._steering = _Steering(
            context.RawValue("i", CONNECT), context.RawValue("i", 0), context.RawValue("d", 1.0)
        )
        self._counters = [
            _Counters(context.RawValue("q", 0), context.RawValue("q", 0), context.RawValue("q", 0))
            for _ in range(workers)
        ]
        self._results: multiprocessing.Queue[Outcome] = context.Queue()
        self.chargers = len(load.charger_ids)
        self._processes: list[BaseProcess] = [
            context.Process(
                target=_worker_main,
                args=(
                    replace(load, charger_ids=load.charger_ids[n::workers]),
                    self._steering,
                    self._counters[n],
                    self._results,
                ),
                name=f"bench-load-{n}",
                daemon=True,
            )
            for n in range(workers)
        ]

    def __enter__(self) -> Generator:
        for process in self._processes:
            process.start()
        return self

    def __exit__(self, *_: object) -> None:
        for process in self._processes:
            if process.is_alive():
                process.kill()
            process.join(timeout=5)

    def set_phase(self, phase: int, window: int = 0) -> None:
        """`window` numbers a MEASURE phase, whose reply times the outcome keeps apart."""
        self._steering.window.value = window
        self._steering.phase.value = phase

    def set_pace(self, pace: float) -> None:
        """Profile mode: profile time runs `pace` times as fast as real time from now on."""
        self._steering.pace.value = pace

    def ready(self) -> int:
        return sum(counters.ready.value for counters in self._counters)

    def messages(self) -> int:
        return sum(counters.done.value for counters in self._counters)

    def errors(self) -> int:
        return sum(counters.errors.value for counters in self._counters)

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self._processes if p.pid is not None)

    def wait_ready(self, timeout: float, tolerate_failures: bool = False) -> None:
        """Until every charger has connected and booted; RuntimeError on a failure or timeout.
        Tolerating failures: until every charger has connected or failed to (errors())."""
        if tolerate_failures:

            def done() -> int:
                return self.ready() + self.errors()

            wait_for_chargers(self.chargers, done, lambda: "", self._processes, timeout)
            return
        wait_for_chargers(
            self.chargers,
            self.ready,
            lambda: self.errors() and f"chargers failed to connect: {self.finish().first_error}",
            self._processes,
            timeout,
        )

    def finish(self, timeout: float = 30) -> Outcome:
        """Stop every charger and gather the workers' outcomes."""
        self.set_phase(STOP)
        total = Outcome()
        for _ in self._processes:
            with contextlib.suppress(Empty):  # a dead worker: its counters still count
                outcome = self._results.get(timeout=timeout)
                for window, latencies in outcome.windows.items():
                    total.windows.setdefault(window, []).extend(latencies)
                total.first_error = total.first_error or outcome.first_error
        for process in self._processes:
            process.join(timeout=5)
        total.messages = self.messages()
        total.errors = self.errors()
        return total
