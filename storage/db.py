"""One SQLite database in WAL mode, shared by every store of the process.

One thread owns the connection and runs every statement; the event loop hands it jobs and
awaits their results. What a job costs is mostly that hand-over, so a store gives a whole
unit of work as one plain function (`write`), not a statement at a time.

Writes are group-committed. The writes that queue up while the thread is busy (typically
waiting for the previous commit's fsync) run together in one transaction, each in a
savepoint of its own, and every one is answered only after their COMMIT. A write that
raises rolls back to its savepoint alone; a COMMIT that fails fails them all. Under load
one fsync covers many chargers' messages; a lone write costs what it did on its own.

Jobs run in the order they were handed over, so a read sees every write handed over
before it.

A write is durable unless it says otherwise: its commit is on disk (fsync) before it is
answered, as `synchronous` asks. Telemetry (heartbeats, statuses, meter values) may say
`durable=False`: a group of those alone commits without an fsync, which survives a crash of
the process but not of the machine, and is made durable by the next durable commit, whose
fsync covers the whole log. So one slow fsync holds up only what needs it.

Checkpoints (copying the write-ahead log into the database file, with an fsync of its own)
run on a second connection and thread of their own, every `CHECKPOINT_EVERY` seconds, so
that no commit waits for one: SQLite would otherwise run one inside whichever commit
filled the log past 1,000 pages, holding up every write queued behind it.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, TypeVar

from storage.migrate import Migration, apply_migrations

Row = sqlite3.Row
T = TypeVar("T")
CHECKPOINT_EVERY = 1.0
Work = Callable[[sqlite3.Connection], Any]


@dataclass(slots=True)
class _Job:
    work: Work
    context: contextvars.Context  # the caller's: its log context goes with the work
    future: asyncio.Future[Any]
    write: bool
    durable: bool
    outcome: tuple[bool, Any] = (False, None)

    def run(self, conn: sqlite3.Connection) -> None:
        try:
            self.outcome = (True, self.context.run(self.work, conn))
        except BaseException as error:  # handed to the awaiting coroutine, raised there
            self.outcome = (False, error)


class Database:
    def __init__(
        self,
        conn: sqlite3.Connection,
        loop: asyncio.AbstractEventLoop,
        checkpointer: Checkpointer,
        synchronous: str,
    ) -> None:
        self._conn = conn
        self._synchronous = synchronous.upper()
        self._synchronous_now = self._synchronous
        self._checkpointer = checkpointer
        self._loop = loop
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()  # None: stop
        self._closing = False
        # Read by the metrics; writes / commits is the mean size of a commit group.
        self.commits = 0
        self.writes = 0
        self._stopped: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(target=self._serve, name="sqlite", daemon=True)
        self._thread.start()

    @classmethod
    async def open(
        cls, path: str, migrations: Sequence[Migration], *, synchronous: str = "full"
    ) -> Database:
        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            try:
                conn.row_factory = sqlite3.Row
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("PRAGMA busy_timeout=5000")
                apply_migrations(conn, migrations)
                conn.execute("PRAGMA wal_autocheckpoint=0")  # the Checkpointer's job
            except BaseException:
                conn.close()
                raise
            return conn

        # Opening and migrating may take a while: off the event loop, like everything else.
        conn = await asyncio.to_thread(connect)
        return cls(conn, asyncio.get_running_loop(), Checkpointer(path), synchronous)

    async def close(self) -> None:
        """Finish the jobs already handed over, then close the connection."""
        if not self._closing:
            self._closing = True
            self._jobs.put(None)
            self._checkpointer.stop()
        await asyncio.shield(self._stopped)

    async def write(self, work: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        """Run `work(conn)` in a transaction (shared with other writes) and return its result
        once that transaction is committed. `work` runs on the database thread, so it uses
        the connection and plain data only; raising rolls back what it did, and only that."""
        return await self._submit(work, write=True, durable=durable)

    async def execute(self, sql: str, params: Sequence[Any] = (), *, durable: bool = True) -> int:
        """One statement, committed before it returns; returns the rows changed."""
        return await self.write(lambda conn: conn.execute(sql, params).rowcount, durable=durable)

    async def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work(conn)` outside any transaction: several queries for one trip."""
        return await self._submit(work)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return await self._submit(lambda conn: conn.execute(sql, params).fetchone())

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await self._submit(lambda conn: conn.execute(sql, params).fetchall())

    def _submit(
        self, work: Work, *, write: bool = False, durable: bool = False
    ) -> asyncio.Future[Any]:
        if self._closing:
            raise RuntimeError("the database is closed")
        future = self._loop.create_future()
        self._jobs.put(_Job(work, contextvars.copy_context(), future, write, durable))
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
            self._run(ready)
            if ready:
                self._call_soon(_settle, ready)
        self._conn.close()
        self._call_soon(self._stopped.set_result, None)

    def _run(self, jobs: list[_Job]) -> None:
        """In order; the writes queued ahead of a read commit first, as one group."""
        group: list[_Job] = []
        for job in jobs:
            if job.write:
                group.append(job)
                continue
            if group:
                self._commit(group)
                group = []
            job.run(self._conn)
        if group:
            self._commit(group)

    def _commit(self, writes: list[_Job]) -> None:
        conn = self._conn
        try:
            self._set_synchronous(any(job.durable for job in writes))
            conn.execute("BEGIN IMMEDIATE")
            for job in writes:
                conn.execute("SAVEPOINT unit")
                job.run(conn)
                if not job.outcome[0]:
                    conn.execute("ROLLBACK TO unit")
                conn.execute("RELEASE unit")
            conn.execute("COMMIT")
            self.commits += 1
            self.writes += sum(1 for job in writes if job.outcome[0])
        except sqlite3.Error as error:  # locked, disk full, I/O: none of them is durable
            if conn.in_transaction:
                # SQLite may have rolled back already, as it does after some errors.
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            for job in writes:
                if job.outcome[0] or job.outcome[1] is None:  # a failure keeps its own error
                    job.outcome = (False, error)

    def _set_synchronous(self, durable: bool) -> None:
        wanted = self._synchronous if durable else "NORMAL"
        if wanted != self._synchronous_now:
            self._conn.execute(f"PRAGMA synchronous={wanted}")
            self._synchronous_now = wanted

    def _call_soon(self, callback: Callable[..., object], *args: object) -> None:
        # RuntimeError: the event loop is closed, so nobody is waiting any more.
        with suppress(RuntimeError):
            self._loop.call_soon_threadsafe(callback, *args)


def _settle(jobs: list[_Job]) -> None:
    """On the event loop: hand each job's outcome to whoever awaits it."""
    for job in jobs:
        if job.future.done():  # cancelled while it ran
            continue
        succeeded, value = job.outcome
        if succeeded:
            job.future.set_result(value)
        else:
            job.future.set_exception(value)


class Checkpointer:
    """Passive checkpoints on a connection of their own: they never block the writer."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout=5000")
            while not self._stopping.wait(CHECKPOINT_EVERY):
                # Busy (another process holds the database): the next round tries again.
                with suppress(sqlite3.Error):
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            conn.close()
