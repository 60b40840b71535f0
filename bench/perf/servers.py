"""The three servers under test, each its own process on a free port of 127.0.0.1."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.faults.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config.toml"
PR_SET_PDEATHSIG = 1
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class Spec:
    key: str
    label: str


ECHO = Spec("echo", "websockets echo")
BARE = Spec("bare_ocpp", "bare ocpp lib")
CSMS = Spec("csms", "csms")
SPECS = (ECHO, BARE, CSMS)


def csms_process_env(folder: Path, ocpp_port: int, http_port: int) -> dict[str, str]:
    """This process's environment with csms's own settings replaced by csms_env()'s."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_")}
    env.update(csms_env(folder, ocpp_port, http_port))
    return env


def csms_env(folder: Path, ocpp_port: int, http_port: int) -> dict[str, str]:
    """The product as deployed: config.toml with validation and persistence as they are, plus
    what a bench needs: local ports, a fresh database, unknown chargers accepted, payments on
    but pointed at a Stripe that is never called (no sandbox inside the measured process)."""
    return {
        "CSMS_SERVER_OCPP_HOST": "127.0.0.1",
        "CSMS_SERVER_OCPP_PORT": str(ocpp_port),
        "CSMS_SERVER_HTTP_HOST": "127.0.0.1",
        "CSMS_SERVER_HTTP_PORT": str(http_port),
        "CSMS_DATABASE_PATH": str(folder / "csms.db"),
        "CSMS_OCPP_UNKNOWN_CHARGERS": "accept",
        "CSMS_LOG_LEVEL": "warning",
        "CSMS_API_KEYS": "bench-perf-key",
        "CSMS_PAYMENTS_ENABLED": "true",
        "CSMS_STRIPE_API_KEY": "sk_test_bench_perf",
        "CSMS_STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}",
        "CSMS_STRIPE_WEBHOOK_SECRETS": "whsec_bench_perf",
    }


def csms_settings(env: dict[str, str]) -> dict[str, Any]:
    """The settings in force that matter most to the figures, for the results file."""
    from csms.config import ConfigError, load_config

    try:
        config = load_config(CONFIG, env)
    except ConfigError as error:
        raise RuntimeError(f"config error: {error}") from None
    return {
        "database.synchronous": config.database.synchronous,
        "ocpp.unknown_chargers": config.ocpp.unknown_chargers,
        "ocpp.ping_interval": config.ocpp.ping_interval,
        "ocpp.max_frame_bytes": config.ocpp.max_frame_bytes,
        "payments.enabled": config.payments.enabled,
        "log.level": config.log.level,
    }


async def _register_tags(database: Path, tags: list[str]) -> None:
    """Id tags the CSMS accepts, so that StartTransaction takes the Accepted path."""
    from csms.config_values import migrations
    from csms.store.id_tags import IdTagStore
    from storage.db import Database

    # Set-up only; the server opens the database with its own synchronous setting.
    db = await Database.open(str(database), migrations(), synchronous="normal")
    try:
        store = IdTagStore(db)
        for tag in tags:
            await store.put(tag)
    finally:
        await db.close()


def die_with_parent() -> None:
    # Linux: a server gets SIGTERM when the harness dies, even by SIGKILL (a test's timeout).
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class ServerProcess:
    """A server under test as a child process: started, waited for until its ports listen,
    stopped by SIGTERM (killed if it overruns); its output goes to `log`."""

    def __init__(self, label: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.label = label
        self._command = command
        self._env = env
        self.log = log
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def start(self, ports: list[int]) -> None:
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                self._command,
                cwd=ROOT,
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        try:
            self._wait_listening(ports)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def check_alive(self) -> None:
        assert self._process is not None
        if self._process.poll() is not None:
            raise RuntimeError(
                f"{self.label} exited with {self._process.returncode}:\n{self.tail()}"
            )

    def tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def _wait_listening(self, ports: list[int]) -> None:
        give_up = time.monotonic() + START_TIMEOUT
        waiting = list(ports)
        while waiting:
            self.check_alive()
            if time.monotonic() > give_up:
                raise RuntimeError(f"{self.label} not listening after {START_TIMEOUT:.0f} s")
            try:
                with socket.create_connection(("127.0.0.1", waiting[0]), timeout=1):
                    waiting.pop(0)
            except OSError:
                time.sleep(0.05)


class Server:
    """One of the three servers, on a free port, for a `with` block."""

    def __init__(self, spec: Spec, folder: Path, id_tags: list[str]) -> None:
        self.spec = spec
        self.folder = folder / spec.key
        self.folder.mkdir(parents=True, exist_ok=True)
        self._id_tags = id_tags
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/ocpp"
        self.settings: dict[str, Any] = {}
        self._process: ServerProcess | None = None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def __enter__(self) -> Server:
        ports = [self.port]
        if self.spec is CSMS:
            http_port = free_port()
            ports.append(http_port)
            env = csms_process_env(self.folder, self.port, http_port)
            self.settings = csms_settings(env)
            asyncio.run(_register_tags(self.folder / "csms.db", self._id_tags))
            command = [sys.executable, "-m", "csms", "--config", str(CONFIG), "serve"]
        else:
            env = dict(os.environ)
            module = "echo_server" if self.spec is ECHO else "bare_ocpp_server"
            command = [sys.executable, "-m", f"bench.perf.{module}", "--port", str(self.port)]
        self._process = ServerProcess(self.spec.label, command, env, self.folder / "server.log")
        self._process.start(ports)
        return self

    def __exit__(self, *_: object) -> None:
        if self._process is not None:
            self._process.stop()

    def check_alive(self) -> None:
        assert self._process is not None
        self._process.check_alive()

    def tail(self, lines: int = 30) -> str:
        assert self._process is not None
        return self._process.tail(lines)
