"""The PostgreSQL backend (psycopg 3): several nodes sharing one database.

One connection per process, owned by the database thread, in autocommit mode: the thread
sends BEGIN and COMMIT itself around a whole group of writes (`storage.db`). Inside a group
the connection is in pipeline mode: statements go out without waiting for their answers, so
a group costs a round trip only where a unit reads a result, and at the COMMIT. (psycopg 3,
synchronous on this thread, was chosen over asyncpg and psycopg's async pool by measurement:
`python -m bench.pg.drivers`.) A group of telemetry alone commits with
`synchronous_commit = off`.

The connection speaks the seam's SQL (`storage.sql`): `?` placeholders are rewritten to
psycopg's `%s` (once per distinct statement), booleans go in as 0 and 1, whole numbers
that PostgreSQL returns as numeric (a SUM of bigints) come back as int, and rows read by
index and by column name.

A connection found lost at the start of a job (the server restarted, a failover) is
opened again, and a read that met it lost runs again; a group of writes whose connection
broke fails, as any failed commit does, since it may or may not have been committed.

Migrations take a cluster-wide advisory lock, so nodes starting together apply each one
once, and the rest wait for it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.adapt import Loader

from storage.migrate import Migration, MigrationError
from storage.sql import Connection, Cursor, Dialect

DIALECT = Dialect(
    name="postgresql",
    json_values="SELECT jsonb_array_elements_text(CAST(? AS jsonb))",
    skip_locked=" FOR UPDATE SKIP LOCKED",
    for_update=" FOR UPDATE",
)
MIGRATION_LOCK = 7_061_001  # pg_advisory_lock key: one node migrates at a time


@functools.lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    """`?` placeholders to `%s`, and a literal `%` to `%%`, outside quoted text."""
    out: list[str] = []
    quote = ""
    for char in sql:
        if char == "%":
            out.append("%%")
            continue
        if quote:
            if char == quote:
                quote = ""
        elif char in ("'", '"'):
            quote = char
        elif char == "?":
            out.append("%s")
            continue
        out.append(char)
    return "".join(out)


def _param(value: Any) -> Any:
    return int(value) if value is True or value is False else value


class _WholeNumbers(Loader):
    """numeric as int when it is whole (SUM and AVG of integers), else float."""

    def load(self, data: Any) -> int | float:
        number = Decimal(bytes(data).decode())
        return int(number) if number == number.to_integral_value() else float(number)


@functools.lru_cache(maxsize=1024)
def _row_class(names: tuple[str, ...]) -> type[tuple[Any, ...]]:
    index = {name: i for i, name in enumerate(names)}
    get = tuple.__getitem__

    class PgRow(tuple[Any, ...]):
        __slots__ = ()

        def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
            return get(self, index[key]) if isinstance(key, str) else get(self, key)

        def keys(self) -> list[str]:
            return list(names)

    return PgRow


def _rows(cursor: Any) -> Callable[[Sequence[Any]], Any]:
    description = cursor.description
    if description is None:
        return tuple
    cls = _row_class(tuple(column.name for column in description))
    return lambda values: tuple.__new__(cls, values)


class PgConnection:
    """The seam's Connection over a psycopg connection. Inside a group of writes it is in
    pipeline mode: statements go out without waiting for their answers, and a cursor's
    `rowcount` (which needs the answer) first waits for everything sent."""

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw
        self.pipeline: psycopg.Pipeline | None = None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        cursor = self.raw.execute(translate(sql), [_param(p) for p in params])
        return cursor if self.pipeline is None else _Pipelined(cursor, self.pipeline)

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Cursor:
        cursor = self.raw.cursor()
        cursor.executemany(translate(sql), [[_param(p) for p in row] for row in params])
        return cursor if self.pipeline is None else _Pipelined(cursor, self.pipeline)


class _Pipelined:
    """A cursor in pipeline mode: fetching waits for its own answer (psycopg does that);
    the number of rows changed waits for every answer up to it."""

    def __init__(self, cursor: psycopg.Cursor[Any], pipeline: psycopg.Pipeline) -> None:
        self._cursor = cursor
        self._pipeline = pipeline

    @property
    def rowcount(self) -> int:
        self._pipeline.sync()
        return self._cursor.rowcount

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)


def _open(url: str) -> psycopg.Connection[Any]:
    raw = psycopg.connect(url, autocommit=True, row_factory=_rows)
    raw.adapters.register_loader("numeric", _WholeNumbers)
    return raw


class PostgresBackend:
    name = "postgresql"
    pipelines = True
    conflicts: tuple[type[BaseException], ...] = (psycopg.IntegrityError,)
    retryable: tuple[type[BaseException], ...] = (
        pg_errors.DeadlockDetected,
        pg_errors.SerializationFailure,
    )
    errors: tuple[type[BaseException], ...] = (psycopg.Error,)

    def __init__(self, url: str, raw: psycopg.Connection[Any]) -> None:
        self._url = url
        self._conn = PgConnection(raw)
        self._pipeline: psycopg.Pipeline | None = None  # its context, while in a group

    @property
    def connection(self) -> Connection:
        return self._conn

    def reopen_if_lost(self) -> bool:
        """Open the connection again if it was lost; True when it was."""
        if not (self._conn.raw.broken or self._conn.raw.closed):
            return False
        self._conn = PgConnection(_open(self._url))
        return True

    def lost(self) -> bool:
        return self._conn.raw.broken or self._conn.raw.closed

    def _execute(self, sql: str) -> None:
        self._conn.raw.execute(sql)

    def begin(self, durable: bool) -> None:
        """BEGIN waits for its answer (a connection lost since the last job is opened again
        here, before anything was done); the group's statements then go out pipelined."""
        self.reopen_if_lost()
        try:
            self._execute("BEGIN")
        except psycopg.OperationalError:
            if not self.reopen_if_lost():
                raise
            self._execute("BEGIN")
        if not durable:
            self._execute("SET LOCAL synchronous_commit = off")
        self._pipeline = self._conn.raw.pipeline()
        self._conn.pipeline = self._pipeline.__enter__()

    def savepoint(self) -> None:
        self._execute("SAVEPOINT unit")

    def settle(self) -> None:
        """Wait for the answers to everything sent: raises the unit's first error."""
        if self._conn.pipeline is not None:
            self._conn.pipeline.sync()

    def rollback_to_savepoint(self) -> None:
        with suppress(psycopg.Error):  # the error being rolled back, if not raised yet
            self.settle()
        self._execute("ROLLBACK TO SAVEPOINT unit")
        self.settle()

    def release_savepoint(self) -> None:
        self._execute("RELEASE SAVEPOINT unit")

    def commit(self) -> None:
        self._execute("COMMIT")
        self._leave_pipeline()

    def rollback(self) -> None:
        with suppress(psycopg.Error):
            self._leave_pipeline()
        if not self._conn.raw.closed:
            self._execute("ROLLBACK")

    def _leave_pipeline(self) -> None:
        """Out of pipeline mode, once every answer is in: raises the first error."""
        pipeline, self._pipeline = self._pipeline, None
        self._conn.pipeline = None
        if pipeline is not None:
            pipeline.__exit__(None, None, None)

    def close(self) -> None:
        self._conn.raw.close()


def connect(url: str, migrations: Sequence[Migration]) -> PostgresBackend:
    raw = _open(url)
    try:
        apply_migrations(raw, migrations)
    except BaseException:
        raw.close()
        raise
    return PostgresBackend(url, raw)


def apply_migrations(raw: psycopg.Connection[Any], migrations: Sequence[Migration]) -> None:
    """Each migration and its record in one transaction, under a cluster-wide lock."""
    raw.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK])
    try:
        raw.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " component TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL,"
            " applied_at TEXT NOT NULL, PRIMARY KEY (component, version))"
        )
        applied = {
            (row[0], row[1])
            for row in raw.execute("SELECT component, version FROM schema_migrations")
        }
        for migration in migrations:
            if (migration.component, migration.version) in applied:
                continue
            try:
                with raw.transaction():
                    raw.execute(migration.sql.encode())  # no parameters: several statements
                    raw.execute(
                        "INSERT INTO schema_migrations (component, version, name, applied_at)"
                        " VALUES (%s, %s, %s, %s)",
                        [
                            migration.component,
                            migration.version,
                            migration.name,
                            datetime.now(UTC).isoformat(),
                        ],
                    )
            except psycopg.Error as exc:
                raise MigrationError(migration, str(exc).strip()) from exc
    finally:
        if not raw.broken:
            raw.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK])
