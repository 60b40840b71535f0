"""Schema migrations: applied once, in order, atomically; old databases upgrade with their data."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from csms.app import migrations
from csms.store.transactions import TransactionStore
from storage.db import Database
from storage.migrate import Migration

FROZEN_V1 = Path(__file__).parent / "data" / "csms-schema-1.sql"


def _applied(path: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT component, version FROM schema_migrations ORDER BY 1, 2"
        ).fetchall()


async def test_fresh_database_gets_every_migration(tmp_path: Path) -> None:
    db = await Database.open(str(tmp_path / "new.db"), migrations())
    await db.close()
    assert _applied(tmp_path / "new.db") == [(m.component, m.version) for m in migrations()]


async def test_reopening_applies_nothing_twice(tmp_path: Path) -> None:
    path = str(tmp_path / "db.db")
    for _ in range(2):
        db = await Database.open(path, migrations())
        await db.close()
    assert len(_applied(tmp_path / "db.db")) == len(migrations())


async def test_release_one_database_upgrades_without_losing_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(FROZEN_V1.read_text())
    db = await Database.open(str(path), migrations())
    try:
        charger = await db.fetchone("SELECT * FROM chargers WHERE id = 'CP-OLD'")
        assert charger is not None and charger["name"] == "Car park level 2"
        transaction = await TransactionStore(db).get(7)
        assert transaction is not None
        assert (transaction["meter_start_wh"], transaction["meter_stop_wh"]) == (100, 5100)
        values = await TransactionStore(db).meter_values(7)
        assert [v["normalised"] for v in values] == [2600]
        # New ids continue after the old ones.
        new_id = await db.write(
            lambda conn: (
                conn.execute(
                    "INSERT INTO transactions (charger_id, connector_id, id_tag, id_tag_status,"
                    " meter_start_wh, started_at, created_at, updated_at) VALUES"
                    " ('CP-OLD', 1, 'TAG-OLD', 'Accepted', 0, 'x', 'x', 'x')"
                ).lastrowid
            )
        )
        assert new_id > 7
    finally:
        await db.close()
    assert _applied(path) == [(m.component, m.version) for m in migrations()]


async def test_a_failing_migration_leaves_the_old_schema(tmp_path: Path) -> None:
    path = tmp_path / "db.db"
    broken = Migration(
        "csms",
        len(migrations()) + 1,
        "broken",
        "CREATE TABLE half_done (x INTEGER);\nINSERT INTO no_such_table VALUES (1);",
    )
    with pytest.raises(RuntimeError, match="broken"):
        await Database.open(str(path), [*migrations(), broken])
    with sqlite3.connect(path) as conn:
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    assert "half_done" not in tables
    assert "chargers" in tables
    assert len(_applied(path)) == len(migrations())
