#!/usr/bin/env python3
"""Developer entry point; needs only Python 3.11+.

    python3 dev.py run    set up, then run the central system, the Stripe sandbox and a
                          simulated charger, pay for one charging session, and keep running
                          (settings: .dev/config.toml, for `csms --config` too)
    python3 dev.py test   set up, then run the linter and the whole test suite, on SQLite
                          and then on PostgreSQL (CSMS_TEST_BACKEND=sqlite or postgresql:
                          that one only); arguments go to pytest
    python3 dev.py lint   set up, then run the linter only
    python3 dev.py cluster  set up, then run PostgreSQL, three nodes behind HAProxy, the
                          Stripe sandbox and simulated chargers on this machine, pay for one
                          session through the load balancer, and keep running (--once: stop)

"Set up" creates .venv and installs the project with its test dependencies, once (again
only when pyproject.toml changes).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".installed"


def setup() -> None:
    if STAMP.exists() and STAMP.stat().st_mtime >= (ROOT / "pyproject.toml").stat().st_mtime:
        return
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs before any install
        sys.exit("csms needs Python 3.11 or newer")
    print("Setting up .venv (first run, or pyproject.toml changed)...", flush=True)
    if not PYTHON.exists():  # an existing one is reused: only the dependencies change
        venv.create(VENV, with_pip=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[test]"], check=True)
    STAMP.touch()


def lint() -> int:
    for command in (["ruff", "check", "."], ["ruff", "format", "--check", "."]):
        code = subprocess.run([str(PYTHON), "-m", *command], cwd=ROOT).returncode
        if code:
            return code
    return 0


def browser() -> None:
    """The browser tests drive Debian's Chromium; install it when we may (as root)."""
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print("Chromium is not installed: the browser tests will be skipped.", flush=True)
        return
    print("Installing Chromium for the browser tests (first run only)...", flush=True)
    quiet = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=quiet)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"], check=True, env=quiet
    )


def postgresql() -> None:
    """The PostgreSQL tests start temporary clusters of their own from Debian's `postgresql`;
    install it when we may (as root). Nothing is started here."""
    from bench.pg.cluster import bin_dir, ensure_installed  # the standard library only

    if bin_dir():
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print("PostgreSQL is not installed: the PostgreSQL tests will be skipped.", flush=True)
        return
    print("Installing PostgreSQL for the PostgreSQL tests (first run only)...", flush=True)
    ensure_installed()


def haproxy() -> None:
    """The load balancer's tests run Debian's `haproxy`; install it when we may (as root)."""
    from bench.haproxy import HAPROXY, Unavailable, ensure_installed  # the standard library

    if HAPROXY.exists():
        return
    print("Installing HAProxy for the load balancer's tests (first run only)...", flush=True)
    try:
        ensure_installed()
    except Unavailable as error:
        print(f"{error}: the load balancer's tests will be skipped.", flush=True)


def test(args: list[str]) -> int:
    browser()
    postgresql()
    haproxy()
    code = lint()
    if code:
        return code
    chosen = os.environ.get("CSMS_TEST_BACKEND")
    for backend in (chosen,) if chosen else ("sqlite", "postgresql"):
        print(f"== the test suite on {backend}", flush=True)
        env = {**os.environ, "CSMS_TEST_BACKEND": backend}
        code = subprocess.run([str(PYTHON), "-m", "pytest", *args], cwd=ROOT, env=env).returncode
        if code:
            return code
    return 0


def dev_config(folder: Path) -> Path:
    """`folder`/config.toml with the settings of `run`, written again on each run: `csms
    --config .dev/config.toml ...` then works on the run's database."""
    folder.mkdir(exist_ok=True)
    path = folder / "config.toml"
    path.write_text(
        "# Written by `python3 dev.py run` each time it starts; the other settings are the\n"
        "# defaults (../config.toml documents them). CSMS_* variables override these.\n"
        f"[database]\npath = {json.dumps(str(folder / 'csms.db'))}\n\n"
        '[ocpp]\nunknown_chargers = "accept"\n\n'
        '[log]\nformat = "console"\nlevel = "warning"\n'
    )
    return path


def run() -> int:
    """`csms demo --stay` with .dev/config.toml: its database in .dev/, readable logs."""
    config = dev_config(ROOT / ".dev")
    command = [str(PYTHON), "-m", "csms", "--config", str(config), "demo", "--stay"]
    try:
        return subprocess.run(command, cwd=ROOT).returncode
    except KeyboardInterrupt:
        return 0


def cluster(args: list[str]) -> int:
    """`python -m bench.cluster_demo`, with PostgreSQL and HAProxy installed first."""
    postgresql()
    haproxy()
    command = [str(PYTHON), "-m", "bench.cluster_demo", "--folder", str(ROOT / ".dev" / "cluster")]
    try:
        return subprocess.run([*command, *args], cwd=ROOT).returncode
    except KeyboardInterrupt:
        return 0


def main() -> int:
    command, *args = sys.argv[1:] or ["help"]
    if command not in ("run", "test", "lint", "cluster"):
        print(__doc__)
        return 0 if command == "help" else 2
    setup()
    if command == "run":
        return run()
    if command == "cluster":
        return cluster(args)
    return lint() if command == "lint" else test(args)


if __name__ == "__main__":
    sys.exit(main())
