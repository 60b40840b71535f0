"""A LocalCluster (bench/cluster.py) as the benchmarks see it: what bench/perf's readings and
webhook measurements ask of a server under test (measure.Watched, webhooks_stack.System),
answered for several `csms serve` nodes on one PostgreSQL database behind HAProxy.

- CPU: the nodes' processes together; PostgreSQL's (the postmaster and the backends it
  forked, the reaped ones included) and HAProxy's apart.
- Stripe calls and commits: each node's /metrics, added up.
- What was stored, and which node holds a charger: read from PostgreSQL itself.
- HAProxy here adds one response header to what deploy/haproxy.cfg does, X-Served-By with
  the node that answered, so that a webhook's node is known.
- The Stripe sandbox delivers no webhook of its own, as in webhooks_stack.Stack: the bench
  signs and delivers the events itself, so that its delivery is csms's only news of each.
"""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

from bench.cluster import API_KEY, STRIPE_KEY, WEBHOOK_SECRET, LocalCluster
from bench.cluster import _tail as tail
from bench.perf.proc import tree_cpu_seconds
from bench.perf.webhooks_confirmation import SERVED_BY
from bench.perf.webhooks_stack import database_counts, stripe_calls

_HTTP_BACKEND = "    default_backend http_nodes"


class BenchCluster(LocalCluster):
    """LocalCluster whose HAProxy names, in X-Served-By, the node that answered, and whose
    Stripe sandbox delivers no webhook."""

    def __enter__(self) -> BenchCluster:
        super().__enter__()
        try:
            request = urllib.request.Request(
                f"{self.stripe_url}/_sandbox/webhooks",
                data=json.dumps({"url": None}).encode(),
                headers={"Content-Type": "application/json"},
            )
            urllib.request.urlopen(request, timeout=10).close()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def haproxy_config(self) -> str:
        config = super().haproxy_config()
        if _HTTP_BACKEND not in config:
            raise RuntimeError("bench.haproxy's configuration has no http_nodes frontend")
        return config.replace(
            _HTTP_BACKEND, f"    http-response set-header {SERVED_BY} %s\n{_HTTP_BACKEND}"
        )


class ClusterSystem:
    """A running BenchCluster, as measure.Watched and webhooks_stack.System."""

    def __init__(self, cluster: LocalCluster, idle_share: float = 0.05) -> None:
        self.cluster = cluster
        self.base = cluster.http_url
        self.http_port = cluster.http_port
        self.ocpp_url = cluster.ocpp_url
        self.stripe_base = cluster.stripe_url
        self.stripe_key = STRIPE_KEY
        self.webhook_secret = WEBHOOK_SECRET
        self.api_key = API_KEY
        self.idle_share = idle_share
        self._postmaster: int | None = None

    @property
    def server_pids(self) -> list[int]:
        pids = []
        for node in self.cluster.nodes:
            assert node.process is not None
            pids.append(node.process.pid)
        return pids

    @property
    def pid(self) -> list[int]:
        """measure.Watched: the nodes, whose CPU counts together."""
        return self.server_pids

    @property
    def helper_pids(self) -> list[int]:
        helpers = [self.cluster.sandbox, self.cluster.proxy and self.cluster.proxy.process]
        return [process.pid for process in helpers if process is not None]

    @property
    def endpoints(self) -> tuple[str, ...]:
        """Each node's own chargers' endpoint, in the nodes' order."""
        return tuple(node.ocpp_url for node in self.cluster.nodes)

    def check_alive(self) -> None:
        for node in self.cluster.nodes:
            if not node.running():
                raise RuntimeError(f"{node.name} exited:\n{tail(node.log)}")
        sandbox = self.cluster.sandbox
        if sandbox is None or sandbox.poll() is not None:
            raise RuntimeError("the Stripe sandbox exited")

    def stripe_calls(self) -> Counter[str]:
        return sum((stripe_calls(node.http_url) for node in self.cluster.nodes), Counter())

    def database_counts(self) -> Counter[str]:
        return sum((database_counts(node.http_url) for node in self.cluster.nodes), Counter())

    def stored_event_ids(self) -> set[str]:
        return {row[0] for row in self._query("SELECT id FROM webhook_events")}

    def audit_lines(self) -> Counter[str]:
        rows = self._query(
            "SELECT stripe_id, COUNT(*) FROM money_audit"
            " WHERE actor = 'stripe' AND stripe_id IS NOT NULL GROUP BY stripe_id"
        )
        return Counter({stripe_id: count for stripe_id, count in rows})

    def nodes_of(self, charger_ids: Sequence[str]) -> dict[str, str]:
        rows = self._query(
            "SELECT charger_id, node_id FROM charger_connections"
            " WHERE node_id IS NOT NULL AND charger_id = ANY(%s)",
            [list(charger_ids)],
        )
        return dict(rows)

    def chargers_per_node(self) -> dict[str, int]:
        """The connections the database holds, per node (every node's name, 0 for none)."""
        rows = self._query(
            "SELECT node_id, COUNT(*) FROM charger_connections"
            " WHERE node_id IS NOT NULL GROUP BY node_id"
        )
        found = dict(rows)
        return {node.name: found.get(node.name, 0) for node in self.cluster.nodes}

    def register_tags(self, tags: Sequence[str]) -> None:
        """Id tags csms accepts, so that the chargers' StartTransactions are Accepted."""
        self._query(
            "INSERT INTO id_tags (id_tag, blocked, created_at)"
            " SELECT tag, 0, '2020-01-01T00:00:00.000Z' FROM unnest(CAST(%s AS text[])) AS tag"
            " ON CONFLICT (id_tag) DO NOTHING",
            [list(tags)],
            rows=False,
        )

    def postgres_counts(self) -> Counter[str]:
        """PostgreSQL's own counts for the database so far: deadlocks it broke (each after
        deadlock_timeout, 1 s) and transactions rolled back."""
        ((deadlocks, rollbacks),) = self._query(
            "SELECT deadlocks, xact_rollback FROM pg_stat_database"
            " WHERE datname = current_database()"
        )
        return Counter({"deadlocks": deadlocks, "rollbacks": rollbacks})

    def postgres_cpu_seconds(self) -> float:
        return tree_cpu_seconds(self._postmaster_pid())

    def tails(self) -> str:
        return "\n".join(f"--- {n.name}\n{tail(n.log)}" for n in self.cluster.nodes)

    def _postmaster_pid(self) -> int:
        if self._postmaster is None:
            ((folder,),) = self._query("SHOW data_directory")
            # Its first line is the postmaster's process id.
            self._postmaster = int(Path(folder, "postmaster.pid").read_text().split()[0])
        return self._postmaster

    def _query(self, sql: str, params: Sequence[Any] = (), rows: bool = True) -> list[Any]:
        with psycopg.connect(self.cluster.database_url, autocommit=True) as conn:
            cursor = conn.execute(sql, params)  # type: ignore[arg-type]
            return cursor.fetchall() if rows else []
