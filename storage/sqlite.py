"""The SQLite backend: one file in WAL mode, the embedded default.

Checkpoints (copying the write-ahead log into the database file, with an fsync of its own)
run on a second connection and thread of their own, every `CHECKPOINT_EVERY` seconds, so
that no commit waits for one: SQLite would otherwise run one inside whichever commit
filled the log past 1,000 pages, holding up every write queued behind it.

A group of writes that are all telemetry commits with `synchronous=NORMAL`: no fsync of
its own; the next durable commit's fsync covers the whole log.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from contextlib import suppress

from storage.migrate import Migration, apply_migrations
from storage.sql import Connection, Dialect

CHECKPOINT_EVERY = 1.0
DIALECT = Dialect(
    name="sqlite",
    json_values="SELECT value FROM json_each(?)",
    skip_locked="",
    for_update="",
)


class SqliteBackend:
    name = "sqlite"
    pipelines = False  # in-process: every statement is answered as it runs
    conflicts: tuple[type[BaseException], ...] = (sqlite3.IntegrityError,)
    retryable: tuple[type[BaseException], ...] = ()  # one writer: no race to lose
    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)

    def __init__(self, conn: sqlite3.Connection, synchronous: str) -> None:
        self._conn = conn
        self.connection: Connection = conn
        self._synchronous = synchronous.upper()
        self._synchronous_now = self._synchronous

    def reopen_if_lost(self) -> bool:
        return False  # a file does not go away

    def lost(self) -> bool:
        return False

    def begin(self, durable: bool) -> None:
        wanted = self._synchronous if durable else "NORMAL"
        if wanted != self._synchronous_now:
            self._conn.execute(f"PRAGMA synchronous={wanted}")
            self._synchronous_now = wanted
        self._conn.execute("BEGIN IMMEDIATE")

    def savepoint(self) -> None:
        self._conn.execute("SAVEPOINT unit")

    def settle(self) -> None:
        pass  # every statement was answered when it ran

    def rollback_to_savepoint(self) -> None:
        self._conn.execute("ROLLBACK TO unit")

    def release_savepoint(self) -> None:
        self._conn.execute("RELEASE unit")

    def commit(self) -> None:
        self._conn.execute("COMMIT")

    def rollback(self) -> None:
        # SQLite may have rolled back already, as it does after some errors.
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def close(self) -> None:
        self._conn.close()


def connect(path: str, migrations: Sequence[Migration], synchronous: str) -> SqliteBackend:
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
    return SqliteBackend(conn, synchronous)


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
