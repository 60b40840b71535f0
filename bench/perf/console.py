"""What the operator console costs, against the read operators use today.

    python -m bench.perf.console [--quick] [--postgresql] [--output DIR]

For each fleet size (100, 1,000 and 5,000 chargers of two connectors; --quick: 100), a
fresh database is filled (bench.perf.console_fleet: reservations, some active, and
transactions), a real central system is started on it (`csms serve` with config.toml and
bench.perf.servers' settings, as the other benchmarks start it) and a tenth of the fleet
connects over WebSocket and boots (bench.perf.load, idle). Then, side by side in that run:

1. computations, median and p95 over N runs: `ConsoleFacts.live()` and `overview()`,
   called in this process on the server's database (each call computes afresh), online
   chargers read as the cluster view reads them (charger_connections, live nodes only);
2. over HTTP from the same fleet: a new `/console/events` until its first frame (a fresh
   live computation in the server), and the baseline, `GET /api/chargers` walked to the
   end of the fleet 500 a page (and its default first page of 50);
3. the server process's CPU over a window (20 s; --quick: 2 s) with 0, 1, 10 and 50
   console streams open, each a client of its own logged in through the login form.
   During every window, the charging sessions' energy grows each second (as MeterValues
   would make it), so that each open stream is sent a frame a second.

On PostgreSQL (--postgresql, or CSMS_TEST_BACKEND=postgresql as the tests set it) a
temporary durable cluster holds a fresh database per size; its processes' CPU is reported
apart from the server's.

Writes DIR/console.json (default bench/results/) and prints a table. Exits 1 when the run
could not be made or was not sound (a stream that failed, a figure missing, or not the
whole fleet seen by the console and the API).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import psycopg

from bench.faults.processes import free_port
from bench.perf.command import finish
from bench.perf.console_fleet import fill, online_ids
from bench.perf.console_measure import measure_running
from bench.perf.console_report import sound, table
from bench.perf.load import Generator, Load
from bench.perf.proc import wait_idle
from bench.perf.servers import CONFIG, ROOT, ServerProcess, csms_process_env


@dataclass(frozen=True)
class ConsoleSettings:
    sizes: tuple[int, ...]  # chargers
    runs: int  # timings per figure
    window_seconds: float  # each CPU window
    streams: tuple[int, ...]  # open console streams per window (0 is always measured first)

    @classmethod
    def full(cls) -> ConsoleSettings:
        return cls((100, 1000, 5000), 30, 20.0, (1, 10, 50))

    @classmethod
    def quick(cls) -> ConsoleSettings:
        return cls((100,), 5, 2.0, (1, 10, 50))


@dataclass(frozen=True)
class Database:
    """Where one size's fleet lives: a SQLite file, or a PostgreSQL database's URL."""

    target: str
    postgres_pid: int | None = None  # the postmaster, whose processes' CPU is reported too


def measure(settings: ConsoleSettings, postgresql: bool) -> dict[str, Any]:
    started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with (
        tempfile.TemporaryDirectory(prefix="csms-console-") as folder,
        _databases(Path(folder), postgresql) as database_for,
    ):
        sizes = []
        for chargers in settings.sizes:
            print(f"console: {chargers:,} chargers", file=sys.stderr, flush=True)
            folder_n = Path(folder) / f"fleet-{chargers}"
            folder_n.mkdir()
            sizes.append(measure_size(chargers, settings, folder_n, database_for(chargers)))
    return {
        "started_at": started_at,
        "backend": "postgresql" if postgresql else "sqlite",
        "settings": asdict(settings),
        "cpus": os.cpu_count(),
        "sizes": sizes,
    }


def measure_size(
    chargers: int, settings: ConsoleSettings, folder: Path, database: Database
) -> dict[str, Any]:
    fleet = asyncio.run(fill(database.target, chargers))
    ocpp_port, http_port = free_port(), free_port()
    env = csms_process_env(folder, ocpp_port, http_port)
    if database.target.startswith("postgresql"):
        env["CSMS_DATABASE_URL"] = database.target
    else:
        env["CSMS_DATABASE_PATH"] = database.target
    command = [sys.executable, "-m", "csms", "--config", str(CONFIG), "serve"]
    server = ServerProcess("csms", command, env, folder / "csms.log")
    server.start([ocpp_port, http_port])
    online = tuple(online_ids(chargers))
    try:
        load = Load(f"ws://127.0.0.1:{ocpp_port}/ocpp", online, idle=True)
        with Generator(load, 1) as generator:
            generator.wait_ready(30 + len(online) * 0.05)
            wait_idle(server.pid, 60)
            try:
                figures = asyncio.run(
                    measure_running(
                        f"http://127.0.0.1:{http_port}",
                        env["CSMS_API_KEYS"].split(",")[0],
                        database.target,
                        server.pid,
                        database.postgres_pid,
                        settings,
                    )
                )
            except (RuntimeError, aiohttp.ClientError, TimeoutError) as error:
                raise RuntimeError(f"{error!r}\n{server.tail()}") from None
            generator.finish()
        server.check_alive()
    finally:
        server.stop()
    return {"chargers": chargers, "online": len(online), "fleet": fleet.as_dict(), **figures}


@contextmanager
def _databases(folder: Path, postgresql: bool) -> Iterator[Any]:
    """A function giving each size its own, empty database."""
    if not postgresql:
        yield lambda chargers: Database(str(folder / f"csms-{chargers}.db"))
        return
    from bench.pg.cluster import TemporaryCluster, Unavailable

    try:
        cluster = TemporaryCluster()
        with cluster as admin:
            postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])

            def database(chargers: int) -> Database:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f"CREATE DATABASE console_{chargers}")
                return Database(f"{admin.rsplit('/', 1)[0]}/console_{chargers}", postmaster)

            yield database
    except Unavailable as error:
        raise RuntimeError(f"PostgreSQL: {error}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.perf.console",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument(
        "--postgresql",
        action="store_true",
        default=os.environ.get("CSMS_TEST_BACKEND") == "postgresql",
        help="on a temporary PostgreSQL cluster (default: SQLite)",
    )
    parser.add_argument(
        "--output",
        metavar="DIR",
        type=Path,
        default=ROOT / "bench" / "results",
        help="where to write console.json (default: bench/results)",
    )
    args = parser.parse_args(argv)
    settings = ConsoleSettings.quick() if args.quick else ConsoleSettings.full()
    args.output.mkdir(parents=True, exist_ok=True)
    return finish(
        "bench.perf.console",
        lambda: measure(settings, args.postgresql),
        table,
        args.output / "console.json",
        sound,
    )


if __name__ == "__main__":
    sys.exit(main())
