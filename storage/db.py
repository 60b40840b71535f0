"""The database every store of the process shares: SQLite (embedded, the default) or
PostgreSQL (several nodes), behind one seam.

One thread owns the connection and runs every statement; the event loop hands it jobs and
awaits their results. What a job costs is mostly that hand-over, so a store gives a whole
unit of work as one plain function (`write`), not a statement at a time. The function gets
a `Connection` (`storage.sql`): `?` placeholders, rows readable by index and by column
name, on either backend.

Writes are group-committed. The writes that queue up while the thread is busy (typically
waiting for the previous commit's fsync) run together in one transaction, each in a
savepoint of its own, and every one is answered only after their COMMIT. A write that
raises rolls back to its savepoint alone; a COMMIT that fails fails them all. Under load
one fsync covers many chargers' messages; a lone write costs what it did on its own.

A write that breaks a rule the database enforces (a unique key, a check, an append-only
table) raises `Conflict`, whichever the backend. On PostgreSQL a group's statements are
sent without waiting for each answer (pipelined); if one fails, the group is rolled back
and run again unit by unit, each unit's statements answered before the next unit runs, so
that the failure stays its own unit's. A write that loses a race with another node (a
deadlock, a serialization failure) runs again, up to `RETRIES` times: a unit of work
touches only its connection and its arguments, so running it again is safe.

Jobs run in the order they were handed over, so a read sees every write handed over
before it.

A write is durable unless it says otherwise: its commit is on disk before it is answered.
Telemetry (heartbeats, statuses, meter values) may say `durable=False`: a group of those
alone commits without waiting for the disk (SQLite `synchronous=NORMAL`, PostgreSQL
`synchronous_commit=off`), which survives a crash of the process but not of the machine,
and is made durable by the next durable commit. So one slow fsync holds up only what
needs it.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from storage.migrate import Migration
from storage.sql import Connection, Dialect, Row

__all__ = ["Conflict", "Connection", "Database", "Row", "open_database"]

T = TypeVar("T")
Work = Callable[[Connection], Any]
RETRIES = 5


class Conflict(Exception):
    """A write broke a rule the database enforces: a unique key, a check, append-only."""


class _StatementFailed(Exception):
    """A statement of a group sent at once failed: the group runs again unit by unit."""


class Backend(Protocol):
    """One backend's connection, used only on the database thread."""

    name: str
    connection: Connection
    pipelines: bool  # sends a group's statements without waiting for each answer
    conflicts: tuple[type[BaseException], ...]  # the driver's integrity errors
    retryable: tuple[type[BaseException], ...]  # lost a race: run the unit again
    errors: tuple[type[BaseException], ...]  # every error of the driver

    def reopen_if_lost(self) -> bool: ...
    def lost(self) -> bool:
        """The connection broke: what it was doing may or may not have happened."""
        ...

    def begin(self, durable: bool) -> None: ...
    def savepoint(self) -> None: ...
    def settle(self) -> None:
        """Wait for the answers to the unit's statements (sent pipelined, on PostgreSQL):
        raises its first error, so that the error is the unit's."""
        ...

    def rollback_to_savepoint(self) -> None: ...
    def release_savepoint(self) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


@dataclass(slots=True)
class _Job:
    work: Work
    context: contextvars.Context  # the caller's: its log context goes with the work
    future: asyncio.Future[Any]
    write: bool
    durable: bool
    outcome: tuple[bool, Any] = (False, None)

    def run(self, backend: Backend) -> None:
        try:
            self.outcome = (True, self.context.run(self.work, backend.connection))
        except BaseException as error:  # handed to the awaiting coroutine, raised there
            self.failed(backend, error)

    def failed(self, backend: Backend, error: BaseException) -> None:
        if isinstance(error, backend.conflicts):
            conflict = Conflict(str(error).strip())
            conflict.__cause__ = error
            error = conflict
        self.outcome = (False, error)


class Database:
    """The jobs' thread over one backend. Open with `open_database` (or `Database.open`)."""

    def __init__(self, backend: Backend, loop: asyncio.AbstractEventLoop, dialect: Dialect) -> None:
        self._backend = backend
        self.dialect = dialect
        self.backend = backend.name
        self._loop = loop
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()  # None: stop
        self._closing = False
        self._on_close: list[Callable[[], None]] = []
        # Read by the metrics; writes / commits is the mean size of a commit group.
        self.commits = 0
        self.writes = 0
        self.retries = 0
        self.regroups = 0  # groups run again unit by unit after a statement failed
        self._stopped: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(target=self._serve, name=backend.name, daemon=True)
        self._thread.start()

    @classmethod
    async def open(
        cls, target: str, migrations: Sequence[Migration], *, synchronous: str = "full"
    ) -> Database:
        return await open_database(target, migrations, synchronous=synchronous)

    def when_closed(self, callback: Callable[[], None]) -> None:
        """`callback()` runs on close, after the last job (a backend's helper threads)."""
        self._on_close.append(callback)

    async def close(self) -> None:
        """Finish the jobs already handed over, then close the connection."""
        if not self._closing:
            self._closing = True
            self._jobs.put(None)
            for callback in self._on_close:
                callback()
        await asyncio.shield(self._stopped)

    async def write(self, work: Callable[[Connection], T], *, durable: bool = True) -> T:
        """Run `work(conn)` in a transaction (shared with other writes) and return its result
        once that transaction is committed. `work` runs on the database thread, so it uses
        the connection and plain data only; raising rolls back what it did, and only that."""
        return await self._submit(work, write=True, durable=durable)

    async def execute(self, sql: str, params: Sequence[Any] = (), *, durable: bool = True) -> int:
        """One statement, committed before it returns; returns the rows changed."""
        return await self.write(lambda conn: conn.execute(sql, params).rowcount, durable=durable)

    async def read(self, work: Callable[[Connection], T]) -> T:
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
        with suppress(*self._backend.errors):
            self._backend.close()
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
            self._read(job)
        if group:
            self._commit(group)

    def _read(self, job: _Job) -> None:
        """A read changes nothing, so one that met a lost connection runs again, once."""
        backend = self._backend
        job.run(backend)
        if not job.outcome[0] and isinstance(job.outcome[1], backend.errors):
            with suppress(*backend.errors):
                if backend.reopen_if_lost():
                    job.run(backend)

    def _commit(self, writes: list[_Job]) -> None:
        if self._backend.pipelines and self._commit_at_once(writes):
            return
        self._commit_unit_by_unit(writes)

    def _commit_at_once(self, writes: list[_Job]) -> bool:
        """The group's statements sent without waiting for their answers, which come back
        with the COMMIT's: a round trip only where a unit reads a result. When a statement
        fails, the database refuses everything after it up to the COMMIT, and which unit it
        belonged to is not known: then everything is rolled back, nothing is answered, and
        the caller runs the group again unit by unit (False). A unit that raises by itself
        rolls back to its savepoint, as ever."""
        backend = self._backend
        try:
            backend.begin(any(job.durable for job in writes))
            for job in writes:
                backend.savepoint()
                job.run(backend)
                if not job.outcome[0]:
                    if isinstance(job.outcome[1], (Conflict, *backend.errors)):
                        raise _StatementFailed
                    backend.rollback_to_savepoint()
                backend.release_savepoint()
            backend.commit()
        except (_StatementFailed, *backend.errors) as error:
            if backend.lost():  # the COMMIT may or may not have happened: never run twice
                self._fail(writes, error)
                return True
            with suppress(*backend.errors):
                backend.rollback()
            for job in writes:
                job.outcome = (False, None)
            self.regroups += 1
            return False
        self._committed(writes)
        return True

    def _commit_unit_by_unit(self, writes: list[_Job]) -> None:
        """Each unit's statements answered before the next unit runs, so that a unit whose
        statement fails rolls back to its savepoint alone (and runs again if it lost a race
        with another node)."""
        backend = self._backend
        try:
            backend.begin(any(job.durable for job in writes))
            for job in writes:
                self._run_unit(job)
            backend.commit()
        except backend.errors as error:  # locked, disk full, I/O, connection lost
            self._fail(writes, error)
            return
        self._committed(writes)

    def _committed(self, writes: list[_Job]) -> None:
        self.commits += 1
        self.writes += sum(1 for job in writes if job.outcome[0])

    def _fail(self, writes: list[_Job], error: BaseException) -> None:
        """The group's transaction failed: none of it is durable."""
        with suppress(*self._backend.errors):
            self._backend.rollback()
        for job in writes:
            if job.outcome[0] or job.outcome[1] is None:  # a failure keeps its own error
                job.outcome = (False, error)

    def _run_unit(self, job: _Job) -> None:
        backend = self._backend
        for attempt in range(RETRIES + 1):
            backend.savepoint()
            job.run(backend)
            if job.outcome[0]:
                try:
                    backend.settle()
                except backend.errors as error:
                    job.failed(backend, error)
            if job.outcome[0]:
                backend.release_savepoint()
                return
            backend.rollback_to_savepoint()
            backend.release_savepoint()
            cause = job.outcome[1]
            if not isinstance(cause, backend.retryable) or attempt == RETRIES:
                return
            self.retries += 1

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


def is_postgres(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


async def open_database(
    target: str, migrations: Sequence[Migration], *, synchronous: str = "full"
) -> Database:
    """A SQLite file path, or a `postgresql://` URL; migrated to the current schema.

    `synchronous` ("full" or "normal") applies to SQLite: "normal" survives a crash of the
    process, not of the machine. PostgreSQL's durability is the server's own setting."""
    loop = asyncio.get_running_loop()
    if is_postgres(target):
        from storage import postgres  # psycopg is imported only when PostgreSQL is used

        backend = await asyncio.to_thread(postgres.connect, target, migrations)
        return Database(backend, loop, postgres.DIALECT)
    from storage import sqlite

    backend = await asyncio.to_thread(sqlite.connect, target, migrations, synchronous)
    db = Database(backend, loop, sqlite.DIALECT)
    checkpointer = sqlite.Checkpointer(target)
    db.when_closed(checkpointer.stop)
    return db
