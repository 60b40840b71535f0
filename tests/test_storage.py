"""The database layer: group commit, one unit's failure kept to itself, order, closing."""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from storage.db import Database
from storage.migrate import Migration

SCHEMA = Migration(
    "test", 1, "items", "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);"
)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(str(tmp_path / "t.db"), [SCHEMA])
    yield database
    await database.close()


def _insert(name: str) -> Callable[[sqlite3.Connection], int]:
    def work(conn: sqlite3.Connection) -> int:
        cursor = conn.execute("INSERT INTO items (name) VALUES (?)", (name,))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    return work


async def _names(db: Database) -> list[str]:
    return [row["name"] for row in await db.fetchall("SELECT name FROM items ORDER BY id")]


async def test_writes_that_arrive_together_share_a_commit(db: Database) -> None:
    ids = await asyncio.gather(*(db.write(_insert(f"n{i}")) for i in range(200)))
    assert sorted(ids) == list(range(1, 201))
    assert len(await _names(db)) == 200
    assert db.writes == 200
    # 200 writes handed over in one turn of the event loop cannot need 200 commits.
    assert 0 < db.commits < 200


async def test_a_failing_write_rolls_back_alone(db: Database) -> None:
    def half_done_then_fails(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO items (name) VALUES ('half')")
        raise ValueError("refused")

    results = await asyncio.gather(
        db.write(_insert("a")),
        db.write(half_done_then_fails),
        db.write(_insert("a")),  # a duplicate: IntegrityError, for this write only
        db.write(_insert("b")),
        return_exceptions=True,
    )
    assert isinstance(results[1], ValueError)
    assert isinstance(results[2], sqlite3.IntegrityError)
    assert await _names(db) == ["a", "b"]


async def test_a_read_sees_every_write_handed_over_before_it(db: Database) -> None:
    pending = [asyncio.ensure_future(db.write(_insert(f"n{i}"))) for i in range(50)]
    await asyncio.sleep(0)  # the writes are handed over, none is awaited yet
    assert len(await _names(db)) == 50
    await asyncio.gather(*pending)


async def test_execute_commits_and_counts_rows(db: Database, tmp_path: Path) -> None:
    await db.write(_insert("a"))
    await db.write(_insert("b"))
    assert await db.execute("UPDATE items SET name = name || '!'") == 2
    # Durable: another connection sees it.
    other = sqlite3.connect(tmp_path / "t.db")
    try:
        assert other.execute("SELECT name FROM items ORDER BY id").fetchall() == [("a!",), ("b!",)]
    finally:
        other.close()


async def test_work_runs_with_the_callers_context(db: Database) -> None:
    request = contextvars.ContextVar("request", default="none")
    request.set("r-42")
    assert await db.write(lambda conn: request.get()) == "r-42"


async def test_closing_finishes_what_was_handed_over(tmp_path: Path) -> None:
    db = await Database.open(str(tmp_path / "c.db"), [SCHEMA])
    pending = asyncio.ensure_future(db.write(_insert("last")))
    await asyncio.sleep(0)
    await db.close()
    assert await pending == 1
    with pytest.raises(RuntimeError, match="closed"):
        await db.write(_insert("late"))
    reopened = await Database.open(str(tmp_path / "c.db"), [SCHEMA])
    try:
        assert await _names(reopened) == ["last"]
    finally:
        await reopened.close()


async def test_only_telemetry_commits_without_an_fsync(db: Database) -> None:
    def synchronous(conn: sqlite3.Connection) -> int:
        return conn.execute("PRAGMA synchronous").fetchone()[0]

    full, normal = 2, 1
    assert await db.write(synchronous) == full
    assert await db.write(synchronous, durable=False) == normal
    # One durable write in a group makes the whole group's commit durable. The first write
    # holds the thread, so that the next two queue up and commit together.
    together = await asyncio.gather(
        db.write(lambda conn: time.sleep(0.1)),
        db.write(synchronous, durable=False),
        db.write(synchronous, durable=True),
    )
    assert together[1:] == [full, full]
