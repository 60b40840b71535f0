"""The README's quick start, as written: the commands it gives for exploring the running
`dev.py run` are read from README.md and run with bash against the same demo, on the
configuration dev.py writes. Only the port (ephemeral here), the path of the command line
(this checkout's code) and the session's id (this run's) are put in."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import dev

ROOT = Path(__file__).resolve().parent.parent


def quick_start() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]


def explore_commands(section: str) -> str:
    blocks = [b for b in re.findall(r"```sh\n(.*?)```", section, re.DOTALL) if "curl" in b]
    assert len(blocks) == 1, blocks
    return blocks[0]


def without_csms_variables() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_")}
    return env | {"PYTHONPATH": str(ROOT)}  # `python -m csms` runs this checkout


class Demo:
    """`dev.py run`'s demo, in `folder` as the repository's folder, on ephemeral ports."""

    def __init__(self, folder: Path) -> None:
        config = dev.dev_config(folder / ".dev")
        ports = {
            f"CSMS_{name}": value
            for name, value in (
                ("SERVER_OCPP_HOST", "127.0.0.1"),
                ("SERVER_OCPP_PORT", "0"),
                ("SERVER_HTTP_HOST", "127.0.0.1"),
                ("SERVER_HTTP_PORT", "0"),
                ("STRIPE_SANDBOX_PORT", "0"),
            )
        }
        command = [sys.executable, "-m", "csms", "--config", str(config), "demo", "--stay"]
        self.process = subprocess.Popen(
            command,
            cwd=folder,
            env=without_csms_variables() | ports,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output = ""

    def wait_until_running(self) -> tuple[str, int]:
        """The session's id and the HTTP port, once the demo says it keeps running (it
        gives up by itself within minutes, ending the output)."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output += line
            running = re.search(r"HTTP on http://127\.0\.0\.1:(\d+)", line)
            if running:
                session = re.search(r"Paid charging session (res_\w+) on CP-DEMO", self.output)
                assert session, self.output
                return session[1], int(running[1])
        raise AssertionError(f"the demo ended: {self.output}")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    running = Demo(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def test_the_quick_start_commands_work_as_written(tmp_path: Path, demo: Demo) -> None:
    section = quick_start()
    example = re.search(r"Paid charging session (res_\w+) on CP-DEMO", section)
    assert example, "the README shows the demo's summary"
    script = explore_commands(section)
    session, port = demo.wait_until_running()
    for written, actual in (
        ("localhost:8080", f"localhost:{port}"),
        (".venv/bin/csms", f"{shlex.quote(sys.executable)} -m csms"),
        (example[1], session),
    ):
        assert written in script, written
        script = script.replace(written, actual)

    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=without_csms_variables(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    # Each curl prints one JSON document (no newline after it), then the charger list.
    decoder, out = json.JSONDecoder(), result.stdout
    health, end = decoder.raw_decode(out)
    payment, end = decoder.raw_decode(out, end)
    chargers = out[end:].splitlines()
    assert health["status"] == "ok"
    assert payment["reservationId"] == session and payment["state"] == "Completed"
    assert payment["capturedAmount"] > 0
    assert [line.split("\t")[:3] for line in chargers] == [["CP-DEMO", "Accepted", "online"]]
    # The command line worked on the run's database, not on a csms.db of its own here.
    assert sorted(p.name for p in tmp_path.iterdir()) == [".dev"]


def test_the_demo_prints_a_console_login_that_works(demo: Demo) -> None:
    """The README's way into the console after `dev.py run`: the printed user and password."""
    _, port = demo.wait_until_running()
    assert demo.process.stdout is not None
    line = demo.process.stdout.readline()
    login = re.search(
        r"console: (http://127\.0\.0\.1:\d+/console), user (\w+), password (\S+) ", line
    )
    assert login, line
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(f"http://127.0.0.1:{port}/console/login", timeout=10) as form:
        token = re.search(r'name="token" value="([^"]+)"', form.read().decode())
    assert token
    fields = {"name": login[2], "password": login[3], "token": token[1], "next": "/console"}
    with opener.open(
        f"http://127.0.0.1:{port}/console/login",
        data=urllib.parse.urlencode(fields).encode(),
        timeout=10,
    ) as answer:  # redirected to the overview, logged in
        page = answer.read().decode()
        assert answer.status == 200 and answer.url == login[1]
    assert f"{login[2]} <span" in page and "<h1>Overview</h1>" in page
