"""Limits counted in the database (storage/limits.py): the window's edges, the limit, the
end of a window and the sweep of old ones, concurrent attempts each counted once, on the
backend the suite runs on; then, on PostgreSQL, two whole nodes limiting one client as one
(driver starts and chargers' failed logins)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from csms.app import CentralSystem
from csms.config_values import migrations
from storage.db import Database, open_database
from storage.limits import Window, WindowCounter
from tests.backends import BACKEND
from tests.conftest import MakeConfig, ocpp_url
from tests.test_charger_security import OTHER, PASSWORD, basic, secure, upgrade

START = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
postgresql_only = pytest.mark.skipif(
    BACKEND != "postgresql", reason="several nodes share a database only on PostgreSQL"
)


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def target(tmp_path: Path, database_url: str) -> str:
    return database_url or str(tmp_path / "limits.db")


@pytest.fixture
async def db(target: str) -> AsyncIterator[Database]:
    database = await open_database(target, migrations(BACKEND))
    yield database
    await database.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def counter(db: Database, clock: Clock, **options: Any) -> WindowCounter:
    settings = {"limit": 3, "window": 60.0, "clock": clock, **options}
    return WindowCounter(db, "test", **settings)


def spy(db: Database, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many reads and writes `db` is handed from now on."""
    queries = {"read": 0, "write": 0}

    def counting(kind: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            queries[kind] += 1
            return method(*args, **kwargs)

        return call

    monkeypatch.setattr(db, "fetchone", counting("read", db.fetchone))
    monkeypatch.setattr(db, "write", counting("write", db.write))
    return queries


async def _subjects(db: Database, scope: str = "test") -> list[str]:
    rows = await db.fetchall(
        "SELECT subject FROM rate_limits WHERE scope = ? ORDER BY subject", (scope,)
    )
    return [row["subject"] for row in rows]


# The counter


async def test_a_window_opens_at_the_first_attempt_and_ends_a_window_later(
    db: Database, clock: Clock
) -> None:
    limits = counter(db, clock)
    assert await limits.current("10.0.0.1") is None
    first = await limits.hit("10.0.0.1")
    assert first == Window(START, START + timedelta(seconds=60), 1)
    clock.advance(59.999)
    assert await limits.hit("10.0.0.1") == Window(START, first.ends_at, 2)
    assert await limits.current("10.0.0.1") == Window(START, first.ends_at, 2)
    clock.advance(0.001)  # the window's end belongs to the next one
    assert await limits.current("10.0.0.1") is None
    assert await limits.hit("10.0.0.1") == Window(clock.now, clock.now + limits.window, 1)


async def test_the_limit_is_per_subject_and_per_scope(db: Database, clock: Clock) -> None:
    limits = counter(db, clock)
    assert [await limits.allow("10.0.0.1") for _ in range(4)] == [True, True, True, False]
    assert await limits.allow("10.0.0.2")
    other_scope = WindowCounter(db, "other", limit=3, window=60, clock=clock)
    assert await other_scope.allow("10.0.0.1")
    current = await limits.current("10.0.0.1")
    assert current is not None and current.count == 3  # the refusal was not counted
    clock.advance(60)
    assert await limits.allow("10.0.0.1")  # a new window


async def test_refusals_counted_elsewhere_do_not_lengthen_the_window(
    db: Database, clock: Clock
) -> None:
    # Two nodes' counters on one table: the other one counts every refused attempt.
    here, there = counter(db, clock), counter(db, clock)
    for _ in range(3):
        assert await here.allow("10.0.0.1")
    clock.advance(30)
    assert [await there.allow("10.0.0.1") for _ in range(5)] == [False] * 5
    window = await there.current("10.0.0.1")
    assert window is not None and window.ends_at == START + timedelta(seconds=60)
    clock.advance(30)
    assert await here.allow("10.0.0.1")


async def test_a_subject_known_over_the_limit_costs_no_query(
    db: Database, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    limits = counter(db, clock, limit=2)
    await limits.hit("10.0.0.1")
    queries = spy(db, monkeypatch)
    assert await limits.current("10.0.0.1") is not None
    assert queries == {"read": 1, "write": 0}  # under the limit: asked each time
    await limits.hit("10.0.0.1")
    assert queries == {"read": 1, "write": 1}
    for _ in range(3):
        assert not await limits.allow("10.0.0.1")
        assert await limits.current("10.0.0.1") is not None
    assert queries == {"read": 1, "write": 1}
    assert len(limits) == 1
    clock.advance(60)  # the window has ended: asked again, and forgotten here
    assert await limits.current("10.0.0.1") is None
    assert queries == {"read": 2, "write": 1}
    assert len(limits) == 0


async def test_what_is_remembered_here_is_bounded(db: Database, clock: Clock) -> None:
    limits = counter(db, clock, limit=1, capacity=5)
    for n in range(20):
        await limits.hit(f"10.0.0.{n}")
    assert len(limits) == 5
    assert len(await _subjects(db)) == 20  # the database still knows them all
    assert not await limits.allow("10.0.0.0")


async def test_ended_windows_are_swept(db: Database, clock: Clock) -> None:
    limits = counter(db, clock, sweep_every=120)
    others = WindowCounter(db, "other", limit=3, window=600, clock=clock)
    await limits.hit("10.0.0.1")  # the first attempt sweeps: nothing to sweep yet
    await others.hit("10.0.0.1")
    clock.advance(61)
    await limits.hit("10.0.0.2")
    assert await _subjects(db) == ["10.0.0.1", "10.0.0.2"]  # not yet: once every 120 s
    clock.advance(59)  # 120 s after the first sweep
    await limits.hit("10.0.0.3")
    assert await _subjects(db) == ["10.0.0.2", "10.0.0.3"]  # 10.0.0.1's window ended
    assert await _subjects(db, "other") == ["10.0.0.1"]  # another scope, its own window


async def test_concurrent_attempts_are_counted_once_each(db: Database, target: str) -> None:
    # Two connections (two nodes' on PostgreSQL), attempts handed over all at once.
    other = await open_database(target, migrations(BACKEND))
    try:
        clock = Clock(datetime.now(UTC))
        limits = [counter(node, clock, limit=40) for node in (db, other)]
        windows = await asyncio.gather(*(limits[n % 2].hit("10.0.0.1") for n in range(60)))
    finally:
        await other.close()
    assert sorted(window.count for window in windows) == list(range(1, 61))
    assert len({window.started_at for window in windows}) == 1


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"limit": 0}, "limit must be at least 1, got 0"),
        ({"capacity": 0}, "capacity must be at least 1"),
        ({"window": 0}, "window must be positive"),
        ({"window": float("nan")}, "window must be positive"),
        ({"sweep_every": -1}, "sweep_every must be positive"),
    ],
)
def test_bad_settings_are_refused(db: Database, options: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        counter(db, Clock(), **options)


def test_a_scope_is_required(db: Database) -> None:
    with pytest.raises(ValueError, match="scope must not be empty"):
        WindowCounter(db, "", limit=1, window=1)


# Two nodes, one client


@pytest.fixture
async def two_nodes(
    make_config: MakeConfig, tmp_path: Path
) -> AsyncIterator[tuple[CentralSystem, CentralSystem]]:
    def node(name: str) -> CentralSystem:
        return CentralSystem(
            make_config(
                cluster={"node_id": name},
                # Each node's Stripe sandbox keeps its state beside this file.
                database={"path": str(tmp_path / f"{name}.db")},
                payments={"start_limit_count": 2, "start_limit_window": 600},
                ocpp={"auth_failures_allowed": 2, "auth_failure_window": 60},
            )
        )

    async with node("node-a") as a, node("node-b") as b:
        yield a, b


async def start(
    system: CentralSystem, http: aiohttp.ClientSession, headers: dict[str, str] | None = None
) -> int:
    """A driver's start on a charger that is not connected: 503 unless rate limited."""
    async with http.post(
        f"http://127.0.0.1:{system.http.port}/start",
        data={"cp": "CP-NOPE", "conn": "1", "csrf": "token"},
        headers={"Cookie": "csms_csrf=token", **(headers or {})},
        allow_redirects=False,
    ) as response:
        return response.status


@postgresql_only
async def test_driver_starts_are_limited_across_nodes(
    two_nodes: tuple[CentralSystem, CentralSystem],
) -> None:
    a, b = two_nodes
    async with aiohttp.ClientSession() as http:
        # Counted alone, each node would let two through: four in all.
        assert [await start(node, http) for node in (a, b, a, b)] == [503, 503, 429, 429]


@postgresql_only
async def test_charger_login_failures_are_limited_across_nodes(
    two_nodes: tuple[CentralSystem, CentralSystem],
) -> None:
    a, b = two_nodes
    await secure(a, "CP-1", 1)
    wrong, right = basic("CP-1", OTHER), basic("CP-1", PASSWORD)
    assert await upgrade(f"{ocpp_url(a)}/CP-1", wrong) == 401
    assert await upgrade(f"{ocpp_url(b)}/CP-1", wrong) == 401
    for node in (a, b):
        assert await upgrade(f"{ocpp_url(node)}/CP-1", right) == 429
