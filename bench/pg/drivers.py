"""Which PostgreSQL driver, and in which shape: measured on the units of work of the hot path.

    python -m bench.pg.drivers [--units 10000] [--concurrency 50,200] [--pool 10]

One temporary cluster (bench.pg.cluster: fsync and synchronous_commit on), and in the same
run the SQLite baseline through the project's own `storage.db.Database`. Each variant gets
fresh tables, the same seed rows and the same units, offered by N concurrent asyncio tasks:

- sqlite:         storage.db.Database (one thread, group commit, savepoint per unit)
- storage-postgres: the same Database on PostgreSQL (storage/postgres.py: psycopg 3
                  synchronous on one thread, group commit, each group sent pipelined: a
                  round trip only where a unit reads a result)
- psycopg-pool:   psycopg 3 async, AsyncConnectionPool, one transaction per unit
- asyncpg-pool:   asyncpg, its pool, one transaction per unit

Units alternate between a payment transition (load a reservation by id, update it, queue
an outbox effect with ON CONFLICT DO NOTHING on its idempotency key, append an audit line)
and a charger's meter value (insert a meter_values row, update the transaction). Every unit
is durable (SQLite synchronous=FULL; PostgreSQL synchronous_commit=on).

Reported per variant: units/s, p50 and p99 latency of a unit as its task sees it, CPU of
this process per unit (all threads), CPU of the PostgreSQL server per unit, commits per
unit, and WAL fsyncs per unit as the server counts them (pg_stat_wal.wal_sync; SQLite: one
per commit in WAL mode with synchronous=FULL, checkpoints aside). Written to
bench/results/pg_drivers.json.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import closing
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import psycopg

try:
    import asyncpg
    from psycopg_pool import AsyncConnectionPool
except ImportError as missing:  # not in the test extras: only this measurement needs them
    raise SystemExit(f"{missing}: pip install asyncpg psycopg-pool") from missing

from bench.pg.cluster import TemporaryCluster
from storage.db import Database, open_database
from storage.migrate import Migration

RESULTS = Path(__file__).resolve().parents[1] / "results" / "pg_drivers.json"
RESERVATIONS = 2000
TRANSACTIONS = 2000
# About the size of a stored reservation (payments.codec): the row is rewritten whole.
DATA = json.dumps({"tariff": {"currency": "eur", "per_kwh": 35, "session_fee": 50}, "x": "y" * 400})

SCHEMA = """
CREATE TABLE reservations (
    id TEXT PRIMARY KEY, charger_id TEXT NOT NULL, connector_id INTEGER NOT NULL,
    state TEXT NOT NULL, hold TEXT NOT NULL, captured_amount INTEGER NOT NULL DEFAULT 0,
    energy_wh INTEGER NOT NULL DEFAULT 0, data TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE effects (
    id {serial} PRIMARY KEY, reservation_id TEXT NOT NULL REFERENCES reservations (id),
    kind TEXT NOT NULL, payload TEXT NOT NULL, idempotency_key TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL DEFAULT 'pending', next_attempt_at TEXT NOT NULL,
    created_at TEXT NOT NULL);
CREATE INDEX effects_due ON effects (next_attempt_at) WHERE status = 'pending';
CREATE TABLE money_audit (
    id {serial} PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    reservation_id TEXT, amount INTEGER, currency TEXT, detail TEXT);
CREATE TABLE transactions (
    id INTEGER PRIMARY KEY, charger_id TEXT NOT NULL, connector_id INTEGER NOT NULL,
    energy_wh INTEGER, power_w INTEGER, metered_at TEXT);
CREATE TABLE meter_values (
    id {serial} PRIMARY KEY, charger_id TEXT NOT NULL, connector_id INTEGER NOT NULL,
    transaction_id INTEGER, timestamp TEXT NOT NULL, measurand TEXT NOT NULL,
    value TEXT NOT NULL, received_at TEXT NOT NULL);
CREATE INDEX meter_values_by_transaction ON meter_values (transaction_id, timestamp);
"""
TABLES = ("meter_values", "transactions", "money_audit", "effects", "reservations")

# The statements: {pN} is the Nth parameter, in the style "?", "%s" or "$" ($N).
LOAD = "SELECT data, state FROM reservations WHERE id = {p1}{lock}"
UPDATE = (
    "UPDATE reservations SET state = {p1}, hold = {p2}, captured_amount = {p3}, data = {p4},"
    " updated_at = {p5} WHERE id = {p6}"
)
EFFECT = (
    "INSERT INTO effects (reservation_id, kind, payload, idempotency_key, next_attempt_at,"
    " created_at) VALUES ({p1}, {p2}, {p3}, {p4}, {p5}, {p6})"
    " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
)
AUDIT = (
    "INSERT INTO money_audit (at, actor, action, reservation_id, amount, currency, detail)"
    " VALUES ({p1}, {p2}, {p3}, {p4}, {p5}, {p6}, {p7})"
)
METER = (
    "INSERT INTO meter_values (charger_id, connector_id, transaction_id, timestamp, measurand,"
    " value, received_at) VALUES ({p1}, {p2}, {p3}, {p4}, {p5}, {p6}, {p7})"
)
METERED = (
    "UPDATE transactions SET energy_wh = {p1}, power_w = {p2}, metered_at = {p3} WHERE id = {p4}"
)


def sql(template: str, style: str, lock: str = "") -> str:
    marks = {f"p{n}": style if style in ("?", "%s") else f"${n}" for n in range(1, 8)}
    return template.format(lock=lock, **marks)


def payment_params(i: int) -> dict[str, tuple[Any, ...]]:
    """The parameters of payment unit i; units 2k and 2k+2 queue the same effect (a retried
    transition), so half the outbox inserts meet their ON CONFLICT."""
    rid = f"r{i % RESERVATIONS}"
    now = f"2025-01-01T00:00:{i % 60:02d}Z"
    key = f"{rid}:capture:{i // 4}"
    return {
        "load": (rid,),
        "update": ("Settling", "Captured", i, DATA, now, rid),
        "effect": (rid, "capture", '{"amount": 1234}', key, now, now),
        "audit": (now, "system", "captured", rid, 1234, "eur", None),
    }


def meter_params(i: int) -> dict[str, tuple[Any, ...]]:
    tx = i % TRANSACTIONS
    now = f"2025-01-01T00:00:{i % 60:02d}Z"
    return {
        "meter": (f"cp{tx}", 1, tx, now, "Energy.Active.Import.Register", str(i), now),
        "metered": (i, 7400, now, tx),
    }


class SyncUnits:
    """Units as plain functions of a DB-API-like connection (sqlite3, psycopg)."""

    def __init__(self, style: str, lock: str) -> None:
        self.load = sql(LOAD, style, lock)
        self.update, self.effect, self.audit = (sql(s, style) for s in (UPDATE, EFFECT, AUDIT))
        self.meter, self.metered = sql(METER, style), sql(METERED, style)

    def unit(self, i: int) -> Callable[[Any], Any]:
        if i % 2:
            m = meter_params(i)

            def telemetry(conn: Any) -> None:
                conn.execute(self.meter, m["meter"])
                conn.execute(self.metered, m["metered"])

            return telemetry
        p = payment_params(i)

        def payment(conn: Any) -> int:
            row = conn.execute(self.load, p["load"]).fetchone()
            assert row is not None
            conn.execute(self.update, p["update"])
            queued = conn.execute(self.effect, p["effect"]).fetchone()
            conn.execute(self.audit, p["audit"])
            return queued is not None

        return payment


# -- the variants: each returns (run one unit, close)

Variant = tuple[Callable[[int], Awaitable[Any]], Callable[[], Awaitable[Any]], Callable[[], int]]


async def sqlite_variant(path: str) -> Variant:
    schema = SCHEMA.format(serial="INTEGER")
    db = await Database.open(path, [Migration("bench", 1, "schema", schema)])
    await db.write(lambda conn: seed(conn, "?"))
    units = SyncUnits("?", "")
    return (lambda i: db.write(units.unit(i))), db.close, lambda: db.commits


async def storage_postgres_variant(url: str) -> Variant:
    db = await open_database(url, [])  # the tables are made and seeded by reset_postgres
    units = SyncUnits("?", " FOR UPDATE")
    return (lambda i: db.write(units.unit(i))), db.close, lambda: db.commits


async def psycopg_pool_variant(url: str, size: int) -> Variant:
    pool = AsyncConnectionPool(url, min_size=size, max_size=size, open=False)
    await pool.open(wait=True)
    load, update, effect, audit, meter, metered = (
        sql(LOAD, "%s", " FOR UPDATE"),
        *(sql(s, "%s") for s in (UPDATE, EFFECT, AUDIT, METER, METERED)),
    )
    commits = itertools.count()

    async def unit(i: int) -> Any:
        async with pool.connection() as conn, conn.transaction():
            if i % 2:
                m = meter_params(i)
                await conn.execute(meter, m["meter"])
                await conn.execute(metered, m["metered"])
            else:
                p = payment_params(i)
                row = await (await conn.execute(load, p["load"])).fetchone()
                assert row is not None
                await conn.execute(update, p["update"])
                await (await conn.execute(effect, p["effect"])).fetchone()
                await conn.execute(audit, p["audit"])
        next(commits)

    return unit, pool.close, lambda: next(commits)


async def asyncpg_pool_variant(url: str, size: int) -> Variant:
    pool = await asyncpg.create_pool(url, min_size=size, max_size=size)
    load, update, effect, audit, meter, metered = (
        sql(LOAD, "$", " FOR UPDATE"),
        *(sql(s, "$") for s in (UPDATE, EFFECT, AUDIT, METER, METERED)),
    )
    commits = itertools.count()

    async def unit(i: int) -> Any:
        async with pool.acquire() as conn, conn.transaction():
            if i % 2:
                m = meter_params(i)
                await conn.execute(meter, *m["meter"])
                await conn.execute(metered, *m["metered"])
            else:
                p = payment_params(i)
                row = await conn.fetchrow(load, *p["load"])
                assert row is not None
                await conn.execute(update, *p["update"])
                await conn.fetchrow(effect, *p["effect"])
                await conn.execute(audit, *p["audit"])
        next(commits)

    return unit, pool.close, lambda: next(commits)


def seed(conn: Any, style: str) -> None:
    res = sql(
        "INSERT INTO reservations (id, charger_id, connector_id, state, hold, data,"
        " updated_at) VALUES ({p1}, {p2}, 1, 'Charging', 'Authorised', {p3}, 'now')",
        style,
    )
    tx = sql(
        "INSERT INTO transactions (id, charger_id, connector_id) VALUES ({p1}, {p2}, 1)", style
    )
    cursor = conn.cursor()
    cursor.executemany(res, [(f"r{n}", f"cp{n}", DATA) for n in range(RESERVATIONS)])
    cursor.executemany(tx, [(n, f"cp{n}") for n in range(TRANSACTIONS)])


def reset_postgres(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {', '.join(TABLES)}")
        with conn.transaction():
            conn.execute(SCHEMA.format(serial="BIGSERIAL"))
            seed(conn, "%s")
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")


COUNT = "SELECT (SELECT count(*) FROM money_audit), (SELECT count(*) FROM meter_values)"


def count_postgres(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute(COUNT).fetchone()
    assert row is not None
    return row[0], row[1]


def count_sqlite(path: str) -> tuple[int, int]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(COUNT).fetchone()


def server_stats(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        wal = conn.execute("SELECT wal_sync FROM pg_stat_wal").fetchone()
        xact = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    assert wal is not None and xact is not None
    return {"wal_sync": int(wal[0]), "xact_commit": int(xact[0])}


def server_cpu(cluster: TemporaryCluster) -> float:
    """CPU seconds of the server: the postmaster, its live children, and its reaped ones."""
    ticks = os.sysconf("SC_CLK_TCK")
    pid = int((cluster.data / "postmaster.pid").read_text().split()[0])
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ppid, utime, stime, cutime, cstime = (int(fields[n]) for n in (1, 11, 12, 13, 14))
        if int(entry.name) == pid:
            total += utime + stime + cutime + cstime
        elif ppid == pid:
            total += utime + stime
    return total / ticks


@dataclass
class Result:
    variant: str
    concurrency: int
    units: int
    seconds: float
    units_per_s: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_unit: float
    server_cpu_ms_per_unit: float | None
    commits_per_unit: float
    fsyncs_per_unit: float | None
    failed: int
    rows_ok: bool
    notes: list[str] = field(default_factory=list)


async def offer(
    run: Callable[[int], Awaitable[Any]], units: int, concurrency: int
) -> tuple[list[float], int]:
    counter = itertools.count()
    latencies: list[float] = []
    failed = 0

    async def task() -> None:
        nonlocal failed
        for i in counter:
            if i >= units:
                return
            start = time.perf_counter()
            try:
                await run(i)
            except Exception:
                failed += 1
            latencies.append(time.perf_counter() - start)

    await asyncio.gather(*(task() for _ in range(concurrency)))
    return latencies, failed


async def measure(
    name: str,
    variant: Variant,
    units: int,
    concurrency: int,
    stats: Callable[[], Any] | None,
    count: Callable[[], tuple[int, int]],
) -> Result:
    run, close, commits = variant
    warm_up = min(500, units)
    await offer(run, warm_up, concurrency)  # warm-up: connections, prepared statements
    commits_before = commits()
    before = await asyncio.to_thread(stats) if stats else None
    cpu, wall = time.process_time(), time.perf_counter()
    latencies, failed = await offer(run, units, concurrency)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    committed = commits() - commits_before
    await close()  # the server's backends exit: their CPU and counters are accounted
    after = await asyncio.to_thread(stats) if stats else None
    latencies.sort()
    result = Result(
        variant=name,
        concurrency=concurrency,
        units=units,
        seconds=round(wall, 2),
        units_per_s=round(units / wall),
        p50_ms=round(statistics.median(latencies) * 1000, 2),
        p99_ms=round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        cpu_ms_per_unit=round(cpu / units * 1000, 3),
        server_cpu_ms_per_unit=None,
        commits_per_unit=round(committed / units, 3),
        fsyncs_per_unit=None,
        failed=failed,
        # Every unit's rows are there: audit lines (payment units), meter values (telemetry).
        rows_ok=await asyncio.to_thread(count) == (units // 2 + warm_up // 2,) * 2,
    )
    if before and after:
        result.server_cpu_ms_per_unit = round((after["cpu"] - before["cpu"]) / units * 1000, 3)
        result.fsyncs_per_unit = round((after["wal_sync"] - before["wal_sync"]) / units, 3)
        result.notes.append(
            f"server commits/unit {(after['xact_commit'] - before['xact_commit']) / units:.3f}"
            " (includes the measurement's own queries)"
        )
    else:
        result.fsyncs_per_unit = result.commits_per_unit
        result.notes.append("fsyncs: one per commit (WAL, synchronous=FULL), checkpoints aside")
    return result


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    results: list[Result] = []
    levels = [int(c) for c in str(args.concurrency).split(",")]
    cluster = TemporaryCluster()
    with cluster as url, tempfile.TemporaryDirectory() as scratch:
        print(f"PostgreSQL {postgres_version(url)} at {url}; {args.units} units per run\n")
        print(HEADER, flush=True)

        def stats() -> dict[str, Any]:
            return {**server_stats(url), "cpu": server_cpu(cluster)}

        for concurrency in levels:
            for name in args.variants.split(","):
                if name == "sqlite":
                    path = str(Path(scratch) / f"bench-{concurrency}.db")
                    variant = await sqlite_variant(path)
                    result = await measure(
                        name, variant, args.units, concurrency, None, partial(count_sqlite, path)
                    )
                else:
                    await asyncio.to_thread(reset_postgres, url)
                    if name == "storage-postgres":
                        variant = await storage_postgres_variant(url)
                    elif name == "psycopg-pool":
                        variant = await psycopg_pool_variant(url, args.pool)
                    elif name == "asyncpg-pool":
                        variant = await asyncpg_pool_variant(url, args.pool)
                    else:
                        raise SystemExit(f"unknown variant {name}")
                    result = await measure(
                        name, variant, args.units, concurrency, stats, partial(count_postgres, url)
                    )
                results.append(result)
                print_row(result)
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "versions": {
            "psycopg": psycopg.__version__,
            "psycopg_impl": psycopg.pq.__impl__,
            "asyncpg": asyncpg.__version__,
            "sqlite": sqlite3.sqlite_version,
            "postgresql": VERSION[0],
        },
        "settings": {"units": args.units, "pool": args.pool, "mix": "payment:telemetry 1:1"},
        "results": [asdict(r) for r in results],
    }


VERSION: list[str] = [""]


def postgres_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    VERSION[0] = row[0] if row else "?"
    return VERSION[0]


HEADER = (
    f"{'variant':<20}{'tasks':>6}{'units/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
    f"{'cpu ms/u':>10}{'pg cpu ms/u':>12}{'commits/u':>10}{'fsyncs/u':>9}"
)


def print_row(r: Result) -> None:
    server = "-" if r.server_cpu_ms_per_unit is None else f"{r.server_cpu_ms_per_unit:.3f}"
    print(
        f"{r.variant:<20}{r.concurrency:>6}{r.units_per_s:>9}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}"
        f"{r.cpu_ms_per_unit:>10.3f}{server:>12}{r.commits_per_unit:>10.3f}"
        f"{r.fsyncs_per_unit or 0:>9.3f}"
        + (f"  failed {r.failed}" if r.failed else "")
        + ("" if r.rows_ok else "  ROWS MISSING"),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=10000, help="units per run")
    parser.add_argument(
        "--concurrency", default="50,200", help="concurrent tasks; several: comma-separated"
    )
    parser.add_argument("--pool", type=int, default=10, help="connections in each pool")
    parser.add_argument(
        "--variants",
        default="sqlite,storage-postgres,psycopg-pool,asyncpg-pool",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
