"""Which database the suite runs on: SQLite (the default) or PostgreSQL.

    CSMS_TEST_BACKEND=postgresql python -m pytest

runs every test that opens the product's database on PostgreSQL instead: one temporary
cluster for the session (bench.pg.cluster, Debian's server), and a fresh, empty database
per test, created by `database_url` and dropped after it. Tests about SQLite itself (its
files, the release-1 upgrade) say so with `@pytest.mark.sqlite_only` and are skipped there;
so are those that run whole processes of their own on SQLite, with the reason given.

The cluster trades durability for speed (fsync off): the suite checks behaviour, and a
crash of the machine is not one of its cases. Without PostgreSQL (and no way to install
it) the run stops at once, naming why.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import psycopg
import pytest

BACKEND = os.environ.get("CSMS_TEST_BACKEND", "sqlite")
if BACKEND not in ("sqlite", "postgresql"):
    raise pytest.UsageError(f"CSMS_TEST_BACKEND: sqlite or postgresql, not {BACKEND!r}")
FAST = {"fsync": "off", "full_page_writes": "off"}
_names = itertools.count(1)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: the test is about SQLite itself")


def pytest_report_header() -> str:
    return f"database backend: {BACKEND} (CSMS_TEST_BACKEND)"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if BACKEND == "sqlite":
        return
    for item in items:
        marker = item.get_closest_marker("sqlite_only")
        if marker:
            reason = marker.kwargs.get("reason", "about SQLite itself")
            item.add_marker(pytest.mark.skip(reason=f"{reason}; this pass is on PostgreSQL"))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a temporary cluster's administrative database, for the whole session."""
    from bench.pg.cluster import TemporaryCluster, Unavailable, ensure_installed

    try:
        ensure_installed()
    except Unavailable as error:
        pytest.exit(f"CSMS_TEST_BACKEND=postgresql, but: {error}", returncode=3)
    with TemporaryCluster(FAST) as url:
        yield url


def fresh_database(server: str) -> str:
    """A new, empty database on the server; its URL."""
    name = f"test_{os.getpid()}_{next(_names)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return f"{server.rsplit('/', 1)[0]}/{name}"


def drop_database(server: str, url: str) -> None:
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """On PostgreSQL, a fresh database's URL; on SQLite, "" (the config's path is used)."""
    if BACKEND == "sqlite":
        yield ""
        return
    server = request.getfixturevalue("postgres_server")
    url = fresh_database(server)
    yield url
    drop_database(server, url)
