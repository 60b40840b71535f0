"""`storage.db.Database`'s shape on PostgreSQL: one thread owns one psycopg connection.

The event loop hands the thread units of work, each a plain function `fn(conn)`; the writes
that queue up while the thread is busy (typically waiting for the previous COMMIT) run in
one transaction, each in a savepoint of its own, and are answered after that COMMIT. A unit
that raises rolls back to its savepoint alone; a COMMIT that fails fails them all. This is
the measurement's version of the seam, not the storage backend.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg

T = TypeVar("T")


@dataclass(slots=True)
class _Job:
    work: Callable[[psycopg.Connection[Any]], Any]
    future: asyncio.Future[Any]
    outcome: tuple[bool, Any] = (False, None)

    def run(self, conn: psycopg.Connection[Any]) -> None:
        try:
            self.outcome = (True, self.work(conn))
        except BaseException as error:
            self.outcome = (False, error)


class GroupCommitDatabase:
    def __init__(
        self, conn: psycopg.Connection[Any], loop: asyncio.AbstractEventLoop, pipeline: bool
    ) -> None:
        self._conn = conn
        self._pipeline = pipeline
        self._loop = loop
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.commits = 0
        self.writes = 0
        self._stopped: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(target=self._serve, name="postgres", daemon=True)
        self._thread.start()

    @classmethod
    async def open(cls, url: str, *, pipeline: bool = False) -> GroupCommitDatabase:
        """`pipeline`: send each group in pipeline mode, so that a statement whose result the
        unit does not read costs no round trip of its own. (A failing statement then aborts
        the rest of the pipeline up to the next read: the measurement has no failing units;
        the storage backend would have to handle that.)"""
        # autocommit: the thread sends BEGIN and COMMIT itself, around a whole group.
        conn = await asyncio.to_thread(psycopg.connect, url, autocommit=True)
        return cls(conn, asyncio.get_running_loop(), pipeline)

    async def close(self) -> None:
        self._jobs.put(None)
        await asyncio.shield(self._stopped)

    def write(self, work: Callable[[psycopg.Connection[Any]], T]) -> asyncio.Future[T]:
        future = self._loop.create_future()
        self._jobs.put(_Job(work, future))
        return future

    # -- on the database thread

    def _serve(self) -> None:
        stopping = False
        while not stopping:
            jobs = [self._jobs.get()]
            with suppress(queue.Empty):
                while True:
                    jobs.append(self._jobs.get_nowait())
            stopping = None in jobs
            ready = [job for job in jobs if job is not None]
            if ready:
                self._commit(ready)
                with suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(_settle, ready)
        self._conn.close()
        with suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._stopped.set_result, None)

    def _commit(self, writes: list[_Job]) -> None:
        if not self._pipeline:
            self._group(writes)
            return
        try:
            with self._conn.pipeline():
                self._group(writes)
        except psycopg.Error as error:  # raised at the pipeline's final sync
            for job in writes:
                job.outcome = (False, error)

    def _group(self, writes: list[_Job]) -> None:
        conn = self._conn
        try:
            conn.execute("BEGIN")
            for job in writes:
                conn.execute("SAVEPOINT unit")
                job.run(conn)
                if not job.outcome[0]:
                    conn.execute("ROLLBACK TO SAVEPOINT unit")
                conn.execute("RELEASE SAVEPOINT unit")
            conn.execute("COMMIT")
            self.commits += 1
            self.writes += sum(1 for job in writes if job.outcome[0])
        except psycopg.Error as error:
            with suppress(psycopg.Error):
                conn.execute("ROLLBACK")
            for job in writes:
                if job.outcome[0] or job.outcome[1] is None:
                    job.outcome = (False, error)


def _settle(jobs: list[_Job]) -> None:
    for job in jobs:
        if job.future.done():
            continue
        succeeded, value = job.outcome
        if succeeded:
            job.future.set_result(value)
        else:
            job.future.set_exception(value)
