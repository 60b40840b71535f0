"""Schema migrations: applied once, in order, atomically; old databases upgrade with their data.

The SQLite cases open files of their own; the PostgreSQL cases (the same rules, and nodes
starting together) run when the suite runs on PostgreSQL (tests/backends.py)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from csms.config_values import migrations
from csms.store.transactions import TransactionStore
from storage.db import Conflict, Database, open_database
from storage.migrate import DIALECT_FOLDERS, Migration, MigrationError, load_migrations
from tests.backends import BACKEND

FROZEN_V1 = Path(__file__).parent / "data" / "csms-schema-1.sql"
sqlite_only = pytest.mark.sqlite_only
postgresql_only = pytest.mark.skipif(BACKEND != "postgresql", reason="PostgreSQL's own case")


def _applied(path: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT component, version FROM schema_migrations ORDER BY 1, 2"
        ).fetchall()


@sqlite_only
async def test_fresh_database_gets_every_migration(tmp_path: Path) -> None:
    db = await Database.open(str(tmp_path / "new.db"), migrations())
    await db.close()
    assert _applied(tmp_path / "new.db") == [(m.component, m.version) for m in migrations()]


@sqlite_only
async def test_reopening_applies_nothing_twice(tmp_path: Path) -> None:
    path = str(tmp_path / "db.db")
    for _ in range(2):
        db = await Database.open(path, migrations())
        await db.close()
    assert len(_applied(tmp_path / "db.db")) == len(migrations())


@sqlite_only
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


@sqlite_only
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


@pytest.mark.parametrize(
    ("component", "package"), [("csms", "csms.store"), ("payments", "payments")]
)
def test_every_migration_exists_for_both_backends(component: str, package: str) -> None:
    shipped = {
        dialect: [(m.version, m.name) for m in load_migrations(component, package, dialect)]
        for dialect in DIALECT_FOLDERS
    }
    assert shipped["sqlite"] == shipped["postgresql"]


async def _postgres_applied(url: str) -> list[tuple[str, int]]:
    db = await open_database(url, [])
    try:
        rows = await db.fetchall("SELECT component, version FROM schema_migrations ORDER BY 1, 2")
        return [(row[0], row[1]) for row in rows]
    finally:
        await db.close()


@postgresql_only
async def test_nodes_starting_together_apply_each_migration_once(database_url: str) -> None:
    nodes = await asyncio.gather(
        *(open_database(database_url, migrations("postgresql")) for _ in range(3))
    )
    for node in nodes:
        await node.close()
    assert await _postgres_applied(database_url) == sorted(
        (m.component, m.version) for m in migrations("postgresql")
    )


@postgresql_only
async def test_postgres_enforces_the_same_rules(database_url: str) -> None:
    db = await open_database(database_url, migrations("postgresql"))
    try:
        await db.execute(
            "INSERT INTO money_audit (at, actor, action) VALUES ('2026-01-01', 'system', 'x')"
        )
        with pytest.raises(Conflict, match="append-only"):
            await db.execute("UPDATE money_audit SET action = 'y'")
        with pytest.raises(Conflict, match="append-only"):
            await db.execute("DELETE FROM money_audit")
        with pytest.raises(Conflict, match="append-only"):
            await db.execute("TRUNCATE money_audit")
        await db.execute(
            "INSERT INTO webhook_events (id, type, outcome, received_at) VALUES"
            " ('evt_1', 't', 'o', 'x')"
        )
        with pytest.raises(Conflict):
            await db.execute(
                "INSERT INTO webhook_events (id, type, outcome, received_at) VALUES"
                " ('evt_1', 't', 'o', 'x')"
            )
        insert = (
            "INSERT INTO reservations (id, charger_id, connector_id, id_tag, token, state, hold,"
            " currency, hold_amount, data, created_at, updated_at) VALUES"
            " (?, 'CP-1', 1, ?, ?, ?, 'none', 'eur', 100, '{}', 'x', 'x')"
        )
        await db.execute(insert, ("r1", "t1", "k1", "Charging"))
        await db.execute(insert, ("r2", "t2", "k2", "Completed"))  # ended: not active
        with pytest.raises(Conflict, match="one_active_reservation_per_connector"):
            await db.execute(insert, ("r3", "t3", "k3", "PendingPayment"))
    finally:
        await db.close()


@postgresql_only
async def test_a_failing_postgres_migration_leaves_the_old_schema(database_url: str) -> None:
    current = migrations("postgresql")
    broken = Migration(
        "csms",
        len([m for m in current if m.component == "csms"]) + 1,
        "broken",
        "CREATE TABLE half_done (x INTEGER);\nINSERT INTO no_such_table VALUES (1);",
    )
    with pytest.raises(MigrationError, match="broken"):
        await open_database(database_url, [*current, broken])
    db = await open_database(database_url, [])
    try:
        tables = {
            row[0]
            for row in await db.fetchall(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        }
    finally:
        await db.close()
    assert "half_done" not in tables and "chargers" in tables
    assert len(await _postgres_applied(database_url)) == len(current)
