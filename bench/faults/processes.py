"""The server and the Stripe sandbox as separate processes, so either can be killed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

WEBHOOK_SECRET = "whsec_fault_runs"
API_KEY = "fault-run-key"
# What every fault run's csms is told, on one process or several: short timeouts and retry
# intervals so that a run recovers within seconds, the harness's API key, and the tariff.
CSMS_SETTINGS = {
    "CSMS_OCPP_CALL_TIMEOUT": "3",
    "CSMS_API_KEYS": API_KEY,
    "CSMS_STRIPE_TIMEOUT": "3",
    "CSMS_PAYMENTS_TICK_INTERVAL": "0.2",
    "CSMS_PAYMENTS_RETRY_BASE": "0.1",
    "CSMS_PAYMENTS_RETRY_CEILING": "1",
    "CSMS_PAYMENTS_MINIMUM_ENERGY_WH": "100",
    "CSMS_PAYMENTS_STOP_RETRY_INTERVAL": "2",
    # A reservation whose link died with its node frees the connector after this.
    "CSMS_PAYMENTS_HANDOVER_WINDOW": "15",
    "CSMS_PAYMENTS_START_LIMIT_COUNT": "100000",
    "CSMS_TARIFF_PRICE_PER_KWH": "0.40",
    "CSMS_TARIFF_SESSION_FEE": "0.50",
    "CSMS_TARIFF_IDLE_FEE_PER_MINUTE": "0",
    "CSMS_TARIFF_IDLE_FEE_MAX_MINUTES": "0",
    "CSMS_TARIFF_MAX_ENERGY_WH": "20000",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Processes:
    def __init__(
        self, folder: Path, extra_env: dict[str, str] | None = None, database_url: str = ""
    ) -> None:
        self.ocpp_port, self.http_port, self.stripe_port = (free_port() for _ in range(3))
        self.base = f"http://127.0.0.1:{self.http_port}"
        self.stripe = f"http://127.0.0.1:{self.stripe_port}"
        self.ocpp_url = f"ws://127.0.0.1:{self.ocpp_port}/ocpp"
        self.database = folder / "csms.db"
        self.database_url = database_url  # PostgreSQL instead of the file, when set
        self.logs = folder
        self.extra_env = extra_env or {}
        self.server: subprocess.Popen[bytes] | None = None
        self.sandbox: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CSMS_SERVER_OCPP_HOST": "127.0.0.1",
            "CSMS_SERVER_OCPP_PORT": str(self.ocpp_port),
            "CSMS_SERVER_HTTP_HOST": "127.0.0.1",
            "CSMS_SERVER_HTTP_PORT": str(self.http_port),
            "CSMS_DATABASE_PATH": str(self.database),
            "CSMS_DATABASE_URL": self.database_url,
            "CSMS_OCPP_UNKNOWN_CHARGERS": "accept",
            "CSMS_STRIPE_API_KEY": "sk_test_fault_runs",
            "CSMS_STRIPE_API_BASE": self.stripe,
            "CSMS_STRIPE_WEBHOOK_SECRETS": WEBHOOK_SECRET,
            "CSMS_LOG_LEVEL": "info",
            **CSMS_SETTINGS,
            **self.extra_env,
        }

    def start_sandbox(self) -> None:
        self.sandbox = subprocess.Popen(
            [
                sys.executable, "-m", "simulators.stripe_sandbox",
                "--port", str(self.stripe_port),
                "--webhook-url", f"{self.base}/api/stripe/webhook",
                "--webhook-secret", WEBHOOK_SECRET,
            ],
            stdout=(self.logs / "sandbox.log").open("ab"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def start_server(self) -> None:
        self.server = subprocess.Popen(
            [sys.executable, "-m", "csms", "serve"],
            env=self.env(),
            stdout=(self.logs / "server.log").open("ab"),
            stderr=subprocess.STDOUT,
        )

    def kill_server(self, signum: int = signal.SIGKILL) -> int:
        """Stop the server with `signum`; returns its exit code."""
        assert self.server is not None
        self.server.send_signal(signum)
        code = self.server.wait(timeout=60)
        self.kills += 1
        return code

    def stop(self) -> None:
        for process in (self.server, self.sandbox):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)

    def tail(self, name: str, lines: int = 40) -> str:
        text = (self.logs / name).read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])
