#!/usr/bin/env python3
"""Developer entry point; needs only Python 3.11+.

    python3 dev.py run    set up, then run the central system with a simulated charger
    python3 dev.py test   set up, then run the linter and the whole test suite
    python3 dev.py lint   set up, then run the linter only

"Set up" creates .venv and installs the project with its test dependencies, once (again
only when pyproject.toml changes).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
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
    print("Setting up .venv (first run only)...", flush=True)
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


def test(args: list[str]) -> int:
    return lint() or subprocess.run([str(PYTHON), "-m", "pytest", *args], cwd=ROOT).returncode


def run() -> int:
    """The central system on :9000/:8080 and one simulated charger that charges now and then."""
    state = ROOT / ".dev"
    state.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "CSMS_DATABASE_PATH": str(state / "csms.db"),
        "CSMS_LOG_FORMAT": "console",
        "CSMS_OCPP_UNKNOWN_CHARGERS": "accept",
    }
    csms = [str(PYTHON), "-m", "csms"]
    subprocess.run([*csms, "tags", "add", "DEMO-TAG"], env=env, check=True, cwd=ROOT)
    server = subprocess.Popen([*csms, "serve"], env=env, cwd=ROOT)
    charger = None
    try:
        _wait_for_health("http://127.0.0.1:8080/healthz", server)
        charger = subprocess.Popen(
            [
                str(PYTHON),
                "-m",
                "simulators.chargepoint",
                "--url",
                "ws://127.0.0.1:9000/ocpp",
                "--id",
                "CP-1",
                "--connectors",
                "2",
                "--speed",
                "60",
                "--meter-interval",
                "5",
                "--id-tag",
                "DEMO-TAG",
                "--start-after",
                "3",
                "--stop-after",
                "30",
            ],
            cwd=ROOT,
        )
        print(
            "\ncsms is running: chargers on ws://127.0.0.1:9000/ocpp/{id}, HTTP on"
            " http://127.0.0.1:8080 (try /healthz).\nSimulated charger CP-1 is connected and"
            " will charge with id tag DEMO-TAG. Ctrl-C stops everything.\n",
            flush=True,
        )
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        for process in (charger, server):
            if process and process.poll() is None:
                process.terminate()
                process.wait(timeout=15)


def _wait_for_health(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"csms exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"csms did not answer {url} within 30 s")


def main() -> int:
    command, *args = sys.argv[1:] or ["help"]
    if command not in ("run", "test", "lint"):
        print(__doc__)
        return 0 if command == "help" else 2
    setup()
    return {"run": run, "lint": lint}.get(command, lambda: test(args))()


if __name__ == "__main__":
    sys.exit(main())
