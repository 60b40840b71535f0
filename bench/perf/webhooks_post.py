"""The webhook load generator: worker processes POSTing pre-signed Stripe events to csms.

Each worker renders and signs its share of a stream before the parent says go, so that the
measuring window holds nothing but sending; a repeated delivery is the very same bytes as
its original, signature included. Requests go over raw HTTP/1.1 keep-alive connections (a
fixed number of them, one request in flight on each), which costs the generator a few
microseconds per request where an HTTP client library would cost tens.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from queue import Empty
from typing import Protocol

import orjson

from bench.perf.webhooks_chargers import monotonic
from bench.perf.webhooks_driver import signature
from bench.perf.webhooks_events import Stream

WAIT, GO, ABORT = range(3)
POLL_SECONDS = 0.001
_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_CLOSE = re.compile(rb"\r\nconnection:\s*close", re.IGNORECASE)


class Shared(Protocol):
    value: int


@dataclass(frozen=True)
class Target:
    port: int
    secret: str  # the webhook signing secret csms is configured with
    path: str = "/api/stripe/webhook"


@dataclass
class Outcome:
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    applied: Counter[str] = field(default_factory=Counter)  # what csms said it did
    errors: int = 0  # any answer but 2xx, or none
    first_error: str = ""
    latencies: list[float] = field(default_factory=list)  # seconds
    started: float = 0.0  # CLOCK_MONOTONIC: first request out
    ended: float = 0.0  # last answer in
    cpu_seconds: float = 0.0  # the generator's own, from go to the last answer

    def add(self, other: Outcome) -> None:
        self.sent += other.sent
        self.statuses.update(other.statuses)
        self.applied.update(other.applied)
        self.errors += other.errors
        self.first_error = self.first_error or other.first_error
        self.latencies.extend(other.latencies)
        self.started = min((t for t in (self.started, other.started) if t), default=0.0)
        self.ended = max(self.ended, other.ended)
        self.cpu_seconds += other.cpu_seconds


def render(stream: Stream, target: Target) -> list[bytes]:
    """Each delivery as the bytes of its HTTP request, signed now; a repeat shares them."""
    timestamp = int(time.time())
    by_id: dict[str, bytes] = {}
    requests = []
    for delivery in stream.deliveries:
        request = by_id.get(delivery.event_id)
        if request is None:
            event = {**stream.templates[delivery.template], "id": delivery.event_id}
            # Stripe sends its events indented by two spaces.
            body = orjson.dumps(event, option=orjson.OPT_INDENT_2)
            head = (
                f"POST {target.path} HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{target.port}\r\n"
                "User-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)\r\n"
                "Content-Type: application/json; charset=utf-8\r\n"
                f"Stripe-Signature: {signature(body, target.secret, timestamp)}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            request = by_id[delivery.event_id] = head.encode() + body
        requests.append(request)
    return requests


class _Worker:
    def __init__(self, requests: list[bytes], target: Target, connections: int) -> None:
        self._requests = requests
        self._target = target
        self._connections = connections
        self._next: Iterator[int] = iter(range(len(requests)))
        self.outcome = Outcome()

    async def run(self, phase: Shared, ready: Shared, deadline: float) -> None:
        streams = [await self._open() for _ in range(self._connections)]
        ready.value = 1
        parent = os.getppid()
        while phase.value == WAIT and os.getppid() == parent:  # noqa: ASYNC110 (shared memory)
            await asyncio.sleep(POLL_SECONDS)
        if phase.value != GO:
            return
        self.outcome.started = monotonic()
        cpu_at_start = time.process_time()
        give_up = time.monotonic() + deadline
        await asyncio.gather(*(self._send_all(*stream, give_up) for stream in streams))
        self.outcome.ended = monotonic()
        self.outcome.cpu_seconds = time.process_time() - cpu_at_start

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self._target.port)

    async def _send_all(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, give_up: float
    ) -> None:
        outcome = self.outcome
        for index in self._next:  # shared by every connection: the next request not yet sent
            if time.monotonic() > give_up:
                self._error("the run's deadline passed")
                continue
            outcome.sent += 1
            sent = time.perf_counter()
            try:
                writer.write(self._requests[index])
                status, body, keep_alive = await _answer(reader)
            except (OSError, ValueError, asyncio.IncompleteReadError) as error:
                self._error(f"no answer: {error!r}")
                writer.close()
                reader, writer = await self._open()
                continue
            outcome.latencies.append(time.perf_counter() - sent)
            outcome.statuses[status] += 1
            if 200 <= status < 300:
                outcome.applied[str(orjson.loads(body).get("applied"))] += 1
            else:
                self._error(f"HTTP {status}: {body[:200]!r}")
            if not keep_alive:
                writer.close()
                reader, writer = await self._open()
        writer.close()

    def _error(self, text: str) -> None:
        self.outcome.errors += 1
        self.outcome.first_error = self.outcome.first_error or text[:300]


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = _LENGTH.search(head)
    body = await reader.readexactly(int(length.group(1))) if length else b""
    return status, body, _CLOSE.search(head) is None


def _worker_main(
    stream: Stream,
    target: Target,
    connections: int,
    deadline: float,
    phase: Shared,
    ready: Shared,
    outcomes: multiprocessing.Queue[Outcome],
) -> None:
    worker = _Worker(render(stream, target), target, connections)
    asyncio.run(worker.run(phase, ready, deadline))
    outcomes.put(worker.outcome)


class Poster:
    """Worker processes sharing a stream's deliveries and `connections` between them."""

    def __init__(
        self,
        stream: Stream,
        target: Target,
        connections: int,
        processes: int = 1,
        deadline: float = 300.0,
    ) -> None:
        context = multiprocessing.get_context("fork")
        processes = max(1, min(processes, connections))
        self._phase = context.RawValue("i", WAIT)
        self._ready = [context.RawValue("i", 0) for _ in range(processes)]
        self._outcomes: multiprocessing.Queue[Outcome] = context.Queue()
        self._processes: list[BaseProcess] = []
        for n in range(processes):
            share = Stream(stream.templates, stream.deliveries[n::processes])
            args = (share, target, connections // processes + (n < connections % processes),
                    deadline, self._phase, self._ready[n], self._outcomes)  # fmt: skip
            self._processes.append(
                context.Process(
                    target=_worker_main, args=args, name=f"bench-webhooks-{n}", daemon=True
                )
            )

    def __enter__(self) -> Poster:
        for process in self._processes:
            process.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._phase.value == WAIT:
            self._phase.value = ABORT
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)

    def wait_ready(self, timeout: float) -> None:
        """Until every worker has its requests signed and its connections open."""
        give_up = time.monotonic() + timeout
        while not all(ready.value for ready in self._ready):
            if any(not p.is_alive() for p in self._processes):
                raise RuntimeError("a webhook generator process died before the start")
            if time.monotonic() > give_up:
                raise RuntimeError(f"webhook generators not ready after {timeout:.0f} s")
            time.sleep(0.01)

    def go(self) -> None:
        self._phase.value = GO

    def wait_done(self, timeout: float) -> Outcome:
        """Every worker's outcome, together; a worker that never reports is an error."""
        total = Outcome()
        give_up = time.monotonic() + timeout
        for _ in self._processes:
            try:
                total.add(self._outcomes.get(timeout=max(0.1, give_up - time.monotonic())))
            except Empty:
                total.errors += 1
                total.first_error = total.first_error or "a generator process did not report"
        for process in self._processes:
            process.join(timeout=5)
        return total
