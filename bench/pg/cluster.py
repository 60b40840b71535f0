"""A throwaway PostgreSQL cluster, from Debian's package, that a test or benchmark starts itself.

    with TemporaryCluster() as url:   # postgresql://csms@127.0.0.1:PORT/csms
        ...

`initdb` runs in a temporary directory; the server listens on 127.0.0.1 on a free port and
on a unix socket in that directory, trusts local connections (nothing else can reach it)
and is durable like a production one: fsync on, synchronous_commit on, full-page writes.
At exit it is stopped and the directory deleted, even when the body raised.

PostgreSQL refuses to run as root: run as root, the server runs as the `postgres` system
user (created when missing), which owns the directory.

`ensure_installed()` finds the binaries under /usr/lib/postgresql/*/bin, and installs
Debian's `postgresql` when they are missing and we may (root, apt-get), without creating or
starting Debian's own cluster.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SERVER_USER = "postgres"
DATABASE = "csms"
SUPERUSER = "csms"
CREATECLUSTER_CONF = Path("/etc/postgresql-common/createcluster.conf")

# Durable, as in production; sized for a small machine. A benchmark on this cluster pays
# for an fsync at each commit, as SQLite with synchronous=FULL does.
SETTINGS = {
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "shared_buffers": "128MB",
    "max_connections": "200",
    "max_wal_size": "1GB",
    "checkpoint_timeout": "5min",
    "logging_collector": "off",
    "log_min_messages": "warning",
}


class Unavailable(RuntimeError):
    """PostgreSQL is not installed and cannot be installed here; the message says why."""


def bin_dir() -> Path | None:
    """The directory of the newest installed `initdb` and `pg_ctl`, or None."""
    found = []
    for candidate in Path("/usr/lib/postgresql").glob("*/bin"):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            version = re.match(r"\d+", candidate.parent.name)
            found.append((int(version[0]) if version else 0, candidate))
    if found:
        return max(found)[1]
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(initdb).resolve().parent
    return None


def ensure_installed() -> Path:
    """The binaries' directory; installs Debian's `postgresql` first when it is missing and we
    are root with apt-get. Raises Unavailable with the reason otherwise."""
    found = bin_dir()
    if found:
        return found
    if os.geteuid() != 0:
        raise Unavailable("PostgreSQL is not installed, and installing it needs root")
    if not shutil.which("apt-get"):
        raise Unavailable("PostgreSQL is not installed, and there is no apt-get to install it")
    quiet = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends"]
    try:
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=quiet)
        # postgresql-common first, told not to create (and start) a cluster of its own when
        # the server package is installed: the tests and benchmarks start their own.
        subprocess.run([*install, "postgresql-common"], check=True, env=quiet)
        _no_main_cluster()
        subprocess.run([*install, "postgresql"], check=True, env=quiet)
    except (OSError, subprocess.CalledProcessError) as error:
        raise Unavailable(f"installing PostgreSQL with apt-get failed: {error}") from error
    found = bin_dir()
    if not found:
        raise Unavailable("apt-get installed postgresql, but no initdb/pg_ctl was found")
    return found


def _no_main_cluster() -> None:
    if not CREATECLUSTER_CONF.exists():
        return
    text = CREATECLUSTER_CONF.read_text()
    if re.search(r"^\s*create_main_cluster\s*=", text, re.MULTILINE):
        return  # the machine's own choice stands
    CREATECLUSTER_CONF.write_text(text.rstrip("\n") + "\ncreate_main_cluster = false\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TemporaryCluster:
    """Context manager: a fresh cluster with one database; yields its URL."""

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        self.settings = {**SETTINGS, **(settings or {})}
        self.bin: Path | None = None
        self.dir: Path | None = None
        self.port = 0
        self.url = ""
        self._user: str | None = None
        self._running = False

    @property
    def data(self) -> Path:
        assert self.dir is not None
        return self.dir / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.dir is not None
        return self.dir / "socket"

    def __enter__(self) -> str:
        self.bin = ensure_installed()
        self.dir = Path(tempfile.mkdtemp(prefix="csms-pg-"))
        try:
            self._start()
        except BaseException:
            self._cleanup()
            raise
        return self.url

    def __exit__(self, *exc_info: object) -> None:
        self._cleanup()

    # -- steps

    def _start(self) -> None:
        assert self.dir is not None
        self.socket_dir.mkdir()
        if os.geteuid() == 0:
            self._user = _server_user()
            shutil.chown(self.dir, self._user)
            shutil.chown(self.socket_dir, self._user)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        )
        for attempt in range(3):  # a free port may be taken before the server binds it
            self.port = free_port()
            self._write_settings()
            try:
                self._run(
                    "pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60"
                )
            except subprocess.CalledProcessError:
                if attempt == 2:
                    raise
                continue
            break
        self._running = True
        self._run(
            "createdb", "-h", str(self.socket_dir), "-p", str(self.port), "-U", SUPERUSER, DATABASE
        )
        self.url = f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def log(self) -> Path:
        assert self.dir is not None
        return self.dir / "server.log"

    def _write_settings(self) -> None:
        settings = {
            **self.settings,
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
        }
        conf = self.data / "postgresql.auto.conf"
        lines = [f"{name} = {_quote(value)}" for name, value in settings.items()]
        conf.write_text("# written by bench.pg.cluster\n" + "\n".join(lines) + "\n")
        if self._user:
            shutil.chown(conf, self._user)

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        assert self.bin is not None
        command = [str(self.bin / program), *args]
        try:
            return subprocess.run(
                command,
                check=True,
                capture_output=True,
                text=True,
                user=self._user,
                group=self._user,
                extra_groups=[] if self._user else None,
                cwd=self.dir,
                env={**os.environ, "LC_ALL": "C", "PGTZ": "UTC"},
            )
        except subprocess.CalledProcessError as error:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            error.add_note(f"{program}: {error.stderr.strip()}\n{log}".strip())
            raise

    def _cleanup(self) -> None:
        if self._running:
            self._running = False
            try:
                self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "30")
            except subprocess.CalledProcessError:
                self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


def _quote(value: str) -> str:
    if value.startswith("'") or re.fullmatch(r"[A-Za-z0-9_.]+", value):
        return value
    return "'" + value.replace("'", "''") + "'"


def _server_user() -> str:
    """The system user the server runs as when we are root; created when missing."""
    try:
        subprocess.run(["id", "-u", SERVER_USER], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVER_USER,
            ],
            check=True,
        )
    return SERVER_USER
