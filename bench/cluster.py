"""A whole cluster on this machine: PostgreSQL in a temporary directory, the Stripe sandbox,
several `csms serve` nodes and HAProxy in front of them, all on 127.0.0.1.

    with LocalCluster(folder, nodes=3) as cluster:
        cluster.ocpp_url, cluster.http_url        # through HAProxy
        cluster.nodes[1].kill()                   # SIGKILL one node
        cluster.nodes[1].start()                  # and bring it back

What `python3 dev.py cluster` runs, and the `node-kill` fault run and the scale benchmark
start. Every process writes its log into `folder`; leaving the block stops them all (nodes
with SIGTERM, then SIGKILL if one lingers) and deletes the database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from bench.haproxy import Node as ProxiedNode
from bench.haproxy import RunningHaproxy, render
from bench.pg.cluster import TemporaryCluster, free_port

WEBHOOK_SECRET = "whsec_local_cluster"
API_KEY = "local-cluster-key"
STRIPE_KEY = "sk_test_local_cluster"


@dataclass
class NodeProcess:
    """One `csms serve` process, started again with the same ports and node id."""

    name: str
    env: dict[str, str]
    log: Path
    ocpp_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    kills: int = 0

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ocpp_url(self) -> str:
        return f"ws://127.0.0.1:{self.ocpp_port}/ocpp"

    def start(self) -> None:
        env = {
            **self.env,
            "CSMS_CLUSTER_NODE_ID": self.name,
            "CSMS_SERVER_OCPP_PORT": str(self.ocpp_port),
            "CSMS_SERVER_HTTP_PORT": str(self.http_port),
        }
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "csms", "serve"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self, signum: int = signal.SIGKILL) -> int:
        """Stop the node with `signum`; its exit code."""
        assert self.process is not None
        self.process.send_signal(signum)
        code = self.process.wait(timeout=60)
        self.kills += 1
        return code

    def stop(self) -> None:
        if not self.running():
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def wait_healthy(self, timeout: float = 60) -> None:
        wait_healthy(self.http_url, timeout, self)


def wait_healthy(base: str, timeout: float, node: NodeProcess | None = None) -> None:
    """Until GET `base`/healthz answers 200; RuntimeError (with the log's end) otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node is not None and not node.running():
            raise RuntimeError(f"{node.name} exited:\n{_tail(node.log)}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(
        f"{base} not healthy after {timeout} s" + (f":\n{_tail(node.log)}" if node else "")
    )


def _tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class LocalCluster:
    def __init__(
        self,
        folder: Path,
        nodes: int = 3,
        *,
        extra_env: dict[str, str] | None = None,
        lease: float = 3.0,
        check_interval_ms: int = 300,
    ) -> None:
        self.folder = folder
        self.count = nodes
        self.extra_env = extra_env or {}
        self.lease = lease
        self.check_interval_ms = check_interval_ms
        self.ocpp_port, self.http_port, self.stripe_port, self.stats_port = (
            free_port() for _ in range(4)
        )
        self.database_url = ""
        self.nodes: list[NodeProcess] = []
        self.sandbox: subprocess.Popen[bytes] | None = None
        self.proxy: RunningHaproxy | None = None
        self._stack = ExitStack()

    @property
    def ocpp_url(self) -> str:
        return f"ws://127.0.0.1:{self.ocpp_port}/ocpp"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def stripe_url(self) -> str:
        return f"http://127.0.0.1:{self.stripe_port}"

    @property
    def stats_url(self) -> str:
        return f"http://127.0.0.1:{self.stats_port}/stats"

    def __enter__(self) -> LocalCluster:
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            self.database_url = self._stack.enter_context(TemporaryCluster())
            self._start_sandbox()
            env = self.node_env()
            self.nodes = [
                NodeProcess(f"node{i}", env, self.folder / f"node{i}.log")
                for i in range(1, self.count + 1)
            ]
            self._stack.callback(self._stop_nodes)
            for node in self.nodes:  # the first migrates; the others wait for its lock
                node.start()
            for node in self.nodes:
                node.wait_healthy()
            self.proxy = self._stack.enter_context(RunningHaproxy(self.haproxy_config()))
            wait_healthy(self.http_url, 30)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def node_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CSMS_SERVER_OCPP_HOST": "127.0.0.1",
            "CSMS_SERVER_HTTP_HOST": "127.0.0.1",
            "CSMS_DATABASE_URL": self.database_url,
            "CSMS_CLUSTER_LEASE": str(self.lease),
            "CSMS_OCPP_UNKNOWN_CHARGERS": "accept",
            "CSMS_API_KEYS": API_KEY,
            "CSMS_STRIPE_API_KEY": STRIPE_KEY,
            "CSMS_STRIPE_API_BASE": self.stripe_url,
            "CSMS_STRIPE_WEBHOOK_SECRETS": WEBHOOK_SECRET,
            # Drivers come back from Checkout through the load balancer, to any node.
            "CSMS_PAYMENTS_PUBLIC_BASE_URL": self.http_url,
            "CSMS_LOG_LEVEL": "info",
            **self.extra_env,
        }

    def haproxy_config(self) -> str:
        return render(
            [ProxiedNode(n.name, "127.0.0.1", n.ocpp_port, n.http_port) for n in self.nodes],
            self.ocpp_port,
            self.http_port,
            self.stats_port,
            bind_host="127.0.0.1",
            check_interval_ms=self.check_interval_ms,
            run_as=None,
        )

    def _start_sandbox(self) -> None:
        with (self.folder / "sandbox.log").open("ab") as log:
            self.sandbox = subprocess.Popen(
                [
                    sys.executable, "-m", "simulators.stripe_sandbox",
                    "--port", str(self.stripe_port),
                    # Stripe's webhooks reach whichever node the load balancer picks.
                    "--webhook-url", f"{self.http_url}/api/stripe/webhook",
                    "--webhook-secret", WEBHOOK_SECRET,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        self._stack.callback(self._stop_sandbox)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.stripe_url}/v1/balance", timeout=2).close()
                return
            except urllib.error.HTTPError:
                return  # it answers
            except OSError:
                if self.sandbox.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the Stripe sandbox did not start") from None
                time.sleep(0.1)

    def _stop_sandbox(self) -> None:
        if self.sandbox is not None and self.sandbox.poll() is None:
            self.sandbox.terminate()
            try:
                self.sandbox.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.sandbox.kill()

    def _stop_nodes(self) -> None:
        for node in self.nodes:
            node.stop()
