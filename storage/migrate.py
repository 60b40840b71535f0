"""Versioned schema migrations: numbered SQL files applied once each, in order, at start-up.

Each component (the OCPP side, the payments side) keeps its own numbered files, so the
two evolve independently; `schema_migrations` records what has been applied. A
migration and its record commit in one transaction, so a crash leaves either the old
schema or the new one, never half of it.

Every migration exists once per backend, with the same number and name: SQLite's in
`schema/`, PostgreSQL's in `schema/postgresql/` (`tests/test_migrations.py` holds them to
that). This runner applies SQLite's; `storage.postgres` applies PostgreSQL's the same way,
under a cluster-wide lock.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

_FILE_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


DIALECT_FOLDERS = {"sqlite": "schema", "postgresql": "schema/postgresql"}


class MigrationError(RuntimeError):
    def __init__(self, migration: Migration, reason: str) -> None:
        super().__init__(
            f"migration {migration.component} {migration.version:04d}_{migration.name} "
            f"failed: {reason}"
        )


@dataclass(frozen=True)
class Migration:
    component: str
    version: int
    name: str
    sql: str


def load_migrations(component: str, package: str, dialect: str = "sqlite") -> list[Migration]:
    """The migrations shipped as `NNNN_name.sql` files in the dialect's folder of `package`."""
    found = []
    folder = resources.files(package)
    for part in DIALECT_FOLDERS[dialect].split("/"):
        folder = folder.joinpath(part)
    for entry in folder.iterdir():
        match = _FILE_NAME.fullmatch(entry.name)
        if match:
            found.append(
                Migration(component, int(match[1]), match[2], entry.read_text(encoding="utf-8"))
            )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    # Numbers may skip (one reserved for a change that ships separately), never repeat.
    if len(set(versions)) != len(versions) or (versions and versions[0] < 1):
        raise RuntimeError(f"{component} migrations must have distinct numbers from 1: {versions}")
    return found


def apply_migrations(conn: sqlite3.Connection, migrations: Sequence[Migration]) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " component TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL, PRIMARY KEY (component, version))"
    )
    rows = conn.execute("SELECT component, version FROM schema_migrations").fetchall()
    applied = {(row[0], row[1]) for row in rows}
    for migration in migrations:
        if (migration.component, migration.version) in applied:
            continue
        record = (
            "INSERT INTO schema_migrations (component, version, name, applied_at) VALUES "
            f"('{migration.component}', {migration.version}, '{migration.name}', "
            f"'{datetime.now(UTC).isoformat()}');"
        )
        # executescript runs the whole file; BEGIN/COMMIT around it makes it atomic.
        try:
            conn.executescript(f"BEGIN;\n{migration.sql}\n{record}\nCOMMIT;")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.rollback()
            raise MigrationError(migration, str(exc)) from exc
