"""Nodes of a cluster: one lease per node, and everything a node holds hangs off it.

Contract:
- A node joins with an id (`cluster.node_id`, or host name and process id), and renews
  its lease every `lease / 3` seconds; a clean stop deletes it.
- A node is alive while its lease has not run out. What a node holds (a charger's
  connection, an effect it carries out, a job it leads) is held while it is alive; once its
  lease has run out, another node may take it over. `alive(column)` is that test in SQL.
- `lead(job)` makes this node the one that runs `job` cluster-wide (deadlines,
  reconciliation, alerts) unless another live node does; a leader keeps its jobs until it
  stops or dies, so a job does not wander between nodes.
- A node whose renewal fails (the database is unreachable) leads nothing from the moment
  its lease may have run out: another node may have taken over by then.

Leases compare the nodes' clocks, which must agree to well within the lease (NTP does).
On SQLite there is one node, and the same rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from storage.clock import to_text, utc_now
from storage.db import Connection, Database

log = structlog.get_logger()


# What a cluster-wide job asks before each run: whether this node runs `job` now.
Leader = Callable[[str], Awaitable[bool]]


async def sole_node(job: str) -> bool:
    """The Leader of a process that is the only one (a test, a command-line tool)."""
    return True


def default_node_id(backend: str) -> str:
    """On SQLite, the one node ("local"): a process that starts again is the same node and
    takes back at once what the previous one held. On PostgreSQL, the host name and the
    process id, unique among nodes: a node started again with no `cluster.node_id` is a new
    one, and what its previous run held is taken over when that lease runs out."""
    if backend == "sqlite":
        return "local"
    return f"{socket.gethostname()}-{os.getpid()}"


def alive(column: str) -> str:
    """SQL: `column` names a node whose lease has not run out at the `?` parameter."""
    return f"{column} IN (SELECT id FROM nodes WHERE expires_at > ?)"


@dataclass(frozen=True)
class Member:
    """A node as the cluster's table has it."""

    id: str
    started_at: str
    renewed_at: str
    expires_at: str
    alive: bool
    jobs: tuple[str, ...]  # the cluster-wide jobs it leads


class Node:
    def __init__(
        self,
        db: Database,
        node_id: str,
        *,
        lease: float = 15.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.id = node_id
        self._db = db
        self._lease = timedelta(seconds=lease)
        self._clock = clock
        self._valid_until = datetime.min.replace(tzinfo=clock().tzinfo)
        self.started_at = clock()
        self._task: asyncio.Task[None] | None = None

    @property
    def lease_seconds(self) -> float:
        return self._lease.total_seconds()

    def holds_lease(self) -> bool:
        """Whether this node's lease is surely still its own, by its last renewal."""
        return self._clock() < self._valid_until

    async def join(self) -> None:
        """Take (or take back, after a restart) this node's row, and start renewing it."""
        self.started_at = self._clock()
        await self.renew()
        self._task = asyncio.create_task(self._renew_forever(), name="node-lease")
        log.info("cluster.node_joined", node=self.id, lease=self.lease_seconds)

    async def leave(self) -> None:
        """Stop renewing and give up the lease at once: other nodes take over now."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._valid_until = datetime.min.replace(tzinfo=self._clock().tzinfo)
        await self._db.write(lambda conn: _leave(conn, self.id))

    async def renew(self) -> None:
        """Extend the lease; the row is written again if it was deleted meanwhile (by hand,
        or by a node's sweep that thought this one dead)."""
        now = self._clock()
        expires = now + self._lease
        await self._db.execute(
            "INSERT INTO nodes (id, started_at, renewed_at, expires_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at,"
            " renewed_at = excluded.renewed_at, expires_at = excluded.expires_at",
            (self.id, to_text(self.started_at), to_text(now), to_text(expires)),
        )
        self._valid_until = expires

    async def lead(self, job: str) -> bool:
        """Whether this node runs `job` now: it led it already, or nobody alive does."""
        if not self.holds_lease():
            return False
        now = to_text(self._clock())
        holder = await self._db.write(lambda conn: _take_job(conn, job, self.id, now))
        return holder == self.id

    async def members(self) -> list[Member]:
        """Every node with a lease row (live, or dead and not swept yet), in id order."""
        now = to_text(self._clock())

        def read(conn: Connection) -> list[Member]:
            jobs: dict[str, list[str]] = {}
            for row in conn.execute("SELECT name, node_id FROM job_leases ORDER BY name"):
                jobs.setdefault(row["node_id"], []).append(row["name"])
            rows = conn.execute(
                "SELECT id, started_at, renewed_at, expires_at FROM nodes ORDER BY id"
            ).fetchall()
            return [
                Member(
                    row["id"],
                    row["started_at"],
                    row["renewed_at"],
                    row["expires_at"],
                    alive=row["expires_at"] > now,
                    jobs=tuple(jobs.get(row["id"], ())),
                )
                for row in rows
            ]

        return await self._db.read(read)

    async def _renew_forever(self) -> None:
        every = self.lease_seconds / 3
        while True:
            await asyncio.sleep(every)
            try:
                await self.renew()
            except Exception as error:  # the database is away: try again at the next turn
                log.warning("cluster.lease_not_renewed", node=self.id, error=str(error))


def _take_job(conn: Connection, job: str, node_id: str, now: str) -> str:
    conn.execute(
        "INSERT INTO job_leases (name, node_id, since) VALUES (?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET node_id = excluded.node_id, since = excluded.since"
        f" WHERE job_leases.node_id <> excluded.node_id AND NOT job_leases.{alive('node_id')}",
        (job, node_id, now, now),
    )
    row = conn.execute("SELECT node_id FROM job_leases WHERE name = ?", (job,)).fetchone()
    return str(row["node_id"])


def _leave(conn: Connection, node_id: str) -> None:
    conn.execute("DELETE FROM job_leases WHERE node_id = ?", (node_id,))
    conn.execute("DELETE FROM nodes WHERE id = ?", (node_id,))
