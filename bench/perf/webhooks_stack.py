"""The processes a webhook measurement runs against: csms started as bench/perf/servers.py
starts it (its real config.toml, `csms_env()`), pointed at the bundled Stripe sandbox running
as a process of its own; and what can be read from them afterwards: csms's /metrics and its
database file. `System` is what a measurement asks of them, which a cluster of nodes behind
a load balancer offers too (bench/perf/cluster_system.py)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import urllib.request
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from prometheus_client.parser import text_string_to_metric_families

from bench.faults.processes import free_port
from bench.perf.servers import CONFIG, ServerProcess, csms_process_env

# The sandbox delivers no webhook in these runs (the bench signs and sends the events itself,
# with csms's secret), so its own signing secret is never used by csms.
SANDBOX_SECRET = "whsec_bench_sandbox_unused"


class System(Protocol):
    """csms (one process or several nodes) and the Stripe sandbox, running."""

    base: str  # csms's HTTP address: webhooks, the API, the driver's pages
    http_port: int  # its port on 127.0.0.1
    ocpp_url: str  # the chargers' endpoint
    stripe_base: str
    stripe_key: str
    webhook_secret: str
    api_key: str
    # CPU share of a core, its csms processes together, below which csms counts as idle.
    idle_share: float

    @property
    def server_pids(self) -> list[int]:
        """csms's processes."""
        ...

    @property
    def helper_pids(self) -> list[int]:
        """The other processes serving it: the sandbox (and a load balancer)."""
        ...

    def check_alive(self) -> None: ...
    def stripe_calls(self) -> Counter[str]: ...
    def database_counts(self) -> Counter[str]: ...
    def stored_event_ids(self) -> set[str]: ...
    def audit_lines(self) -> Counter[str]: ...
    def nodes_of(self, charger_ids: Sequence[str]) -> dict[str, str]: ...
    def tails(self) -> str: ...


def gained_since(now: Counter[str], before: Counter[str]) -> dict[str, int]:
    """What a counter reading (stripe_calls(), database_counts()) gained since `before`."""
    return {key: now[key] - before[key] for key in now if now[key] != before[key]}


class Stack:
    """csms and the Stripe sandbox, each its own process on free ports of 127.0.0.1.

    csms gets csms_env() with its Stripe pointed at the sandbox, plus `extra_env`: a run that
    needs more says why where it passes it.
    """

    def __init__(self, folder: Path, extra_env: dict[str, str] | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.ocpp_port, self.http_port, self.stripe_port = (free_port() for _ in range(3))
        self.base = f"http://127.0.0.1:{self.http_port}"
        self.ocpp_url = f"ws://127.0.0.1:{self.ocpp_port}/ocpp"
        self.stripe_base = f"http://127.0.0.1:{self.stripe_port}"
        env = csms_process_env(folder, self.ocpp_port, self.http_port)
        env["CSMS_STRIPE_API_BASE"] = self.stripe_base  # csms_env's points at nothing
        env.update(extra_env or {})
        self.webhook_secret = env["CSMS_STRIPE_WEBHOOK_SECRETS"].split(",")[0]
        self.api_key = env["CSMS_API_KEYS"].split(",")[0]
        self.stripe_key = env["CSMS_STRIPE_API_KEY"]
        self.database = Path(env["CSMS_DATABASE_PATH"])
        sandbox = [
            sys.executable, "-m", "simulators.stripe_sandbox",
            "--port", str(self.stripe_port),
            "--webhook-secret", SANDBOX_SECRET,
            "--log-level", "warning",
        ]  # fmt: skip
        server = [sys.executable, "-m", "csms", "--config", str(CONFIG), "serve"]
        self.sandbox = ServerProcess("sandbox", sandbox, dict(os.environ), folder / "sandbox.log")
        self.csms = ServerProcess("csms", server, env, folder / "csms.log")
        self.idle_share = 0.05

    @property
    def server_pids(self) -> list[int]:
        return [self.csms.pid]

    @property
    def helper_pids(self) -> list[int]:
        return [self.sandbox.pid]

    def __enter__(self) -> Stack:
        self.sandbox.start([self.stripe_port])
        try:
            self.csms.start([self.ocpp_port, self.http_port])
        except BaseException:
            self.sandbox.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        """csms first: it may be calling the sandbox while it shuts down."""
        self.csms.stop()
        self.sandbox.stop()

    def check_alive(self) -> None:
        self.csms.check_alive()
        self.sandbox.check_alive()

    def stripe_calls(self) -> Counter[str]:
        return stripe_calls(self.base)

    def database_counts(self) -> Counter[str]:
        return database_counts(self.base)

    def stored_event_ids(self) -> set[str]:
        """Once csms has stopped: then its database file is complete."""
        return persisted_event_ids(self.database)

    def audit_lines(self) -> Counter[str]:
        return audit_lines_by_stripe_id(self.database)

    def nodes_of(self, charger_ids: Sequence[str]) -> dict[str, str]:
        """One node: no charger is anywhere else."""
        return {}

    def tails(self) -> str:
        return f"--- csms\n{self.csms.tail()}\n--- sandbox\n{self.sandbox.tail()}"


def _samples(base: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of csms's /metrics: (family, labels, value)."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=30) as response:
        text = response.read().decode()
    return [
        (family.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.name.endswith("_created")
    ]


def stripe_calls(base: str) -> Counter[str]:
    """csms's count of Stripe API calls so far, by operation."""
    calls: Counter[str] = Counter()
    for family, labels, value in _samples(base):
        if family == "csms_stripe_calls":
            calls[labels.get("operation", "?")] += int(value)
    return calls


def database_counts(base: str) -> Counter[str]:
    """csms's SQLite commits and the units of work they carried, so far (empty when the
    server does not count them)."""
    wanted = {"csms_db_commits": "commits", "csms_db_writes": "writes"}
    return Counter(
        {wanted[family]: int(value) for family, _, value in _samples(base) if family in wanted}
    )


def persisted_event_ids(database: Path) -> set[str]:
    """The Stripe event ids csms stored (read once the server has stopped)."""
    with _read_only(database) as db:
        return {row[0] for row in db.execute("SELECT id FROM webhook_events")}


def audit_lines_by_stripe_id(database: Path) -> Counter[str]:
    """How many money audit lines each Stripe object got from webhooks."""
    with _read_only(database) as db:
        rows = db.execute(
            "SELECT stripe_id, COUNT(*) FROM money_audit"
            " WHERE actor = 'stripe' AND stripe_id IS NOT NULL GROUP BY stripe_id"
        )
        return Counter({stripe_id: count for stripe_id, count in rows})


def _read_only(database: Path) -> contextlib.closing[sqlite3.Connection]:
    return contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True))
