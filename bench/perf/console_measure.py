"""The console benchmark's readings against one running central system and its fleet (see
bench.perf.console): computation times in this process, HTTP times, and the server's CPU
with console streams open.

Times are the median and p95 (nearest rank) of `runs` runs, after one not counted (the
first of each pays for imports, compiled statements and cold caches).
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

import aiohttp

from bench.perf.console_fleet import PASSWORD, USER
from bench.perf.console_http import TIMEOUT, Stream, chargers_seconds, first_frame_seconds, login
from bench.perf.proc import cpu_seconds, machine_busy_seconds, tree_cpu_seconds, wait_idle
from csms.cluster.view import ClusterView
from csms.config_values import migrations
from csms.console.facts import ConsoleFacts
from csms.store.connections import ChargerConnections
from payments.reservations_store import ReservationStore
from storage.clock import to_text, utc_now
from storage.db import Database

if TYPE_CHECKING:
    from bench.perf.console import ConsoleSettings

# How much a charging session's energy grows each second during the CPU windows.
WH_PER_SECOND = 3
API_PAGE = 500  # the management API's largest page


def timing(seconds: list[float]) -> dict[str, Any]:
    ordered = sorted(seconds)
    rank = max(1, math.ceil(0.95 * len(ordered)))
    return {
        "runs": len(ordered),
        "median_ms": statistics.median(ordered) * 1e3,
        "p95_ms": ordered[rank - 1] * 1e3,
    }


async def _timed(runs: int, call: Callable[[], Awaitable[object]]) -> list[float]:
    await call()
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        seconds.append(time.perf_counter() - started)
    return seconds


class _Connected:
    """The cluster view as ConsoleFacts asks it (`is_online`), from the same rows the view
    reloads from: each charger's latest connection, held by a node whose lease lives."""

    def __init__(self, online: set[str]) -> None:
        self._online = online

    def is_online(self, charger_id: str) -> bool:
        return charger_id in self._online


async def computations(target: str, runs: int) -> dict[str, Any]:
    dialect = "postgresql" if target.startswith("postgresql") else "sqlite"
    db = await Database.open(target, migrations(dialect), synchronous="normal")
    try:
        links = await ChargerConnections(db, "bench").links(utc_now())
        view = _Connected({link.charger_id for link in links if link.node_id is not None})
        facts = ConsoleFacts(
            db,
            cast(ClusterView, view),
            ReservationStore(db).held_before_start,
            "UTC",
            timedelta(minutes=15),
            live_interval=0.0,  # every call computes afresh
        )
        values = await facts.live()
        overview = await facts.overview()
        return {
            "live_ms": timing(await _timed(runs, facts.live)),
            "overview_ms": timing(await _timed(runs, facts.overview)),
            "live_values": len(values),
            "seen_online": overview.online,
            "seen_chargers": overview.online + overview.offline,
            "attention_items": len(overview.attention),
        }
    finally:
        await db.close()


async def http_timings(base: str, api_key: str, runs: int) -> dict[str, Any]:
    operator = await login(base, USER, PASSWORD)
    async with operator, aiohttp.ClientSession(timeout=TIMEOUT) as api:
        frame = await first_frame_seconds(operator, base)
        first = await _timed(runs, lambda: first_frame_seconds(operator, base))
        _, chargers, pages = await chargers_seconds(api, base, api_key, API_PAGE)
        walk = await _timed(runs, lambda: chargers_seconds(api, base, api_key, API_PAGE))
        page = await _timed(runs, lambda: chargers_seconds_first(api, base, api_key))
    return {
        "events_first_frame_ms": timing(first),
        "first_frame_bytes": frame[1],
        "api_chargers_ms": timing(walk),
        "api_chargers_seen": chargers,
        "api_chargers_pages": pages,
        "api_chargers_page_ms": timing(page),
    }


async def chargers_seconds_first(api: aiohttp.ClientSession, base: str, api_key: str) -> None:
    """The default first page (50), as a list view asks it."""
    async with api.get(f"{base}/api/chargers", headers={"X-API-Key": api_key}) as response:
        if response.status != 200:
            raise RuntimeError(f"/api/chargers: HTTP {response.status}")
        await response.read()


class _Energy:
    """The charging sessions' energy, a little more each second, written as the product
    keeps it (the column and the reservation's own record)."""

    def __init__(self, target: str) -> None:
        self._target = target
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _Energy:
        dialect = "postgresql" if self._target.startswith("postgresql") else "sqlite"
        self._db = await Database.open(self._target, migrations(dialect), synchronous="normal")
        record = (
            "CAST(jsonb_set(CAST(data AS jsonb), '{energy_wh}', to_jsonb(energy_wh + ?)) AS TEXT)"
            if dialect == "postgresql"
            else "json_set(data, '$.energy_wh', energy_wh + ?)"
        )
        self._sql = (
            f"UPDATE reservations SET data = {record}, energy_wh = energy_wh + ?,"
            " updated_at = ? WHERE state = 'Charging'"
        )
        self._task = asyncio.create_task(self._grow())
        return self

    async def _grow(self) -> None:
        while True:
            await self._db.execute(
                self._sql, (WH_PER_SECOND, WH_PER_SECOND, to_text(utc_now())), durable=False
            )
            await asyncio.sleep(1.0)

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._db.close()


async def stream_windows(
    base: str, target: str, pid: int, postgres_pid: int | None, settings: ConsoleSettings
) -> list[dict[str, Any]]:
    sessions = [await login(base, USER, PASSWORD) for _ in range(max(settings.streams))]
    windows = []
    try:
        async with _Energy(target):
            for count in (0, *settings.streams):
                await asyncio.to_thread(wait_idle, pid, 30, 0.5, 0.1)
                windows.append(await _window(base, sessions[:count], pid, postgres_pid, settings))
    finally:
        for session in sessions:
            await session.close()
    return windows


async def _window(
    base: str,
    sessions: list[aiohttp.ClientSession],
    pid: int,
    postgres_pid: int | None,
    settings: ConsoleSettings,
) -> dict[str, Any]:
    streams = [Stream(session, base) for session in sessions]
    for stream in streams:
        stream.open()
    try:
        await asyncio.wait_for(asyncio.gather(*(s.first.wait() for s in streams)), 60)
        await asyncio.sleep(1.0)  # the first frames (every value) out of the window
        frames = sum(s.frames for s in streams)
        cpu, machine, own = cpu_seconds(pid), machine_busy_seconds(), cpu_seconds(os.getpid())
        pg = tree_cpu_seconds(postgres_pid) if postgres_pid else 0.0
        started = time.perf_counter()
        await asyncio.sleep(settings.window_seconds)
        wall = time.perf_counter() - started
        cpu = cpu_seconds(pid) - cpu
        pg = (tree_cpu_seconds(postgres_pid) - pg) if postgres_pid else 0.0
        machine = machine_busy_seconds() - machine
        own = cpu_seconds(os.getpid()) - own
        frames = sum(s.frames for s in streams) - frames
        errors = [s.error for s in streams if s.error]
    finally:
        for stream in streams:
            await stream.close()
    return {
        "streams": len(streams),
        "seconds": wall,
        "server_cpu_seconds": cpu,
        "server_cpu_share": cpu / wall,
        "postgres_cpu_share": pg / wall if postgres_pid else None,
        "clients_cpu_share": own / wall,  # this process: the streams' clients, the energy
        "other_cpu_busy": (machine - cpu - pg - own) / wall,
        "frames_per_stream_per_s": frames / len(streams) / wall if streams else None,
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
    }


async def measure_running(
    base: str,
    api_key: str,
    target: str,
    pid: int,
    postgres_pid: int | None,
    settings: ConsoleSettings,
) -> dict[str, Any]:
    figures = await computations(target, settings.runs)
    figures.update(await http_timings(base, api_key, settings.runs))
    windows = await stream_windows(base, target, pid, postgres_pid, settings)
    idle = windows[0]["server_cpu_share"]
    figures["windows"] = windows
    # What the console adds to the server, in CPU seconds per second, by streams open.
    figures["console_cpu_per_s"] = {
        str(w["streams"]): w["server_cpu_share"] - idle for w in windows[1:]
    }
    return figures
