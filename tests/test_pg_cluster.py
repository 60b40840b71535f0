"""The throwaway PostgreSQL cluster (bench.pg.cluster): it starts, answers, is durable, and
leaves nothing behind, even when the body raises.

Without PostgreSQL (and no way to install it) these tests skip with the reason; under CI
(CI=true) they fail instead, so that a missing install shows."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import psycopg
import pytest

from bench.pg.cluster import TemporaryCluster, Unavailable, ensure_installed


@pytest.fixture(scope="module", autouse=True)
def postgresql() -> None:
    try:
        ensure_installed()
    except Unavailable as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL is needed under CI: {error}")
        pytest.skip(str(error))


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def test_a_cluster_starts_answers_and_is_durable() -> None:
    cluster = TemporaryCluster()
    with cluster as url:
        assert url.startswith("postgresql://") and url.endswith("/csms")
        directory = cluster.dir
        assert directory is not None and (directory / "data" / "PG_VERSION").exists()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            conn.execute("INSERT INTO t VALUES (1, 'one') ON CONFLICT (id) DO NOTHING")
            assert conn.execute("SELECT v FROM t WHERE id = 1").fetchone() == ("one",)
            settings = dict(
                conn.execute(
                    "SELECT name, setting FROM pg_settings WHERE name IN"
                    " ('fsync', 'synchronous_commit', 'full_page_writes', 'listen_addresses')"
                ).fetchall()
            )
        assert settings == {
            "fsync": "on",
            "synchronous_commit": "on",
            "full_page_writes": "on",
            "listen_addresses": "127.0.0.1",
        }
    assert not directory.exists()
    assert refused(cluster.port)


def test_it_is_stopped_and_deleted_when_the_body_raises() -> None:
    cluster = TemporaryCluster()
    directory: Path | None = None
    with pytest.raises(RuntimeError, match="boom"), cluster as url:
        directory = cluster.dir
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        raise RuntimeError("boom")
    assert directory is not None and not directory.exists()
    assert refused(cluster.port)


def test_two_clusters_run_side_by_side() -> None:
    with TemporaryCluster() as first, TemporaryCluster() as second:
        assert first != second
        for url in (first, second):
            with psycopg.connect(url) as conn:
                assert conn.execute("SELECT current_database()").fetchone() == ("csms",)
