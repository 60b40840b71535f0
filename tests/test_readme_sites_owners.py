"""The README's sites, owners, statements and tariff-bands commands, as written, in the style of
tests/test_quick_start.py: read from README.md and run with bash, one by one, against
`dev.py run`'s demo (its bundled Stripe sandbox stands in for Stripe). What is put in: the
command line (`csms` is this checkout's, on the demo's configuration), the server's HTTP
port (ephemeral here, as CSMS_SERVER_HTTP_PORT), and between `owners link` and `owners
show` what the owner does (the sandbox's hosted onboarding form) and a payout Stripe makes.
The outputs the README shows are compared with the real ones, ids, links and times masked.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.test_quick_start import ROOT, Demo, without_csms_variables

CLI = f"{shlex.quote(sys.executable)} -m csms --config .dev/config.toml "


def section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    return re.split(rf"\n#+ {re.escape(title)}\n", text)[1].split("\n#")[0]


def block(title: str, containing: str) -> str:
    blocks = re.findall(r"^```(\w*)\n(.*?)^```", section(title), re.DOTALL | re.MULTILINE)
    found = [body for language, body in blocks if not language and containing in body]
    assert len(found) == 1, (title, blocks)
    return found[0]


def prompted(text: str) -> list[tuple[str, str]]:
    """`$ command` lines with the output shown under each."""
    steps: list[tuple[str, str]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], ""))
        else:
            command, shown = steps[-1]
            steps[-1] = (command, shown + line + "\n")
    return steps


def commands(text: str) -> list[str]:
    """Plain command lines, a backslash joining a line to the next."""
    return [c for c in re.sub(r"\\\n\s*", "", text).splitlines() if c.strip()]


def masked(text: str) -> list[str]:
    """The lines with Stripe's ids, links and times masked and runs of spaces as one."""
    for pattern, mask in (
        (r"acct_\w+", "acct_X"),
        (r"po_\w+", "po_X"),
        (r"https?://\S+/connect/onboarding/\S+", "LINK"),
        (r"\d{4}-\d\d-\d\dT[\d:.]+Z", "TIME"),
    ):
        text = re.sub(pattern, mask, text)
    return [" ".join(line.split()) for line in text.strip().splitlines()]


class Shell:
    """Runs one README command at a time in `folder`, keeping what it exports."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.env = without_csms_variables() | {"CSMS_SERVER_HTTP_PORT": str(port)}

    def __call__(self, written: str) -> str:
        command = re.sub(r"(^|\$\()csms ", lambda m: m[1] + CLI, written)
        exported = re.fullmatch(r"export (\w+)=\$\((.*)\)", command)
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", exported[2] if exported else command],
            cwd=self.folder, env=self.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, (written, result.stdout, result.stderr)
        if exported:
            self.env[exported[1]] = result.stdout.strip()
            return ""
        return result.stdout


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    running = Demo(tmp_path)
    try:
        yield running
    finally:
        running.stop()


def onboard(link: str) -> str:
    """What the owner does with the link: the sandbox's form, submitted; its base URL."""
    with urllib.request.urlopen(link) as page:
        assert "Hotel Adler" in page.read().decode()
    form = b"action=submit&iban=DE89370400440532013000&tos=on"

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(urllib.request.Request(link, data=form, method="POST"))
    except urllib.error.HTTPError as redirect:  # to our return page (payments.public_base_url)
        assert redirect.code in (302, 303), redirect
        assert urlsplit(redirect.headers["Location"]).path == "/owners/onboarding/done"
    else:
        raise AssertionError("the form did not send the owner to the return page")
    parts = urlsplit(link)
    return f"{parts.scheme}://{parts.netloc}"


def paid_payout(sandbox: str, account: str) -> None:
    body = json.dumps({"amount": 4250, "currency": "eur", "status": "paid"}).encode()
    request = urllib.request.Request(
        f"{sandbox}/_sandbox/accounts/{account}/payouts",
        data=body, method="POST", headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request) as answer:
        assert answer.status in (200, 201)


def until_shown(run: Shell, command: str, shown: str, seconds: float = 60) -> None:
    """`command` again until its output is the README's (Stripe's events arrive by webhook)."""
    deadline = time.monotonic() + seconds
    while (out := run(command)) and masked(out) != masked(shown):
        assert time.monotonic() < deadline, (out, shown)
        time.sleep(0.5)


def test_the_sites_owners_and_statements_commands_work_as_written(
    tmp_path: Path, demo: Demo
) -> None:
    owners = prompted(block("Owners and Stripe Connect onboarding", "csms owners add"))
    sites = commands(block("Sites", "csms sites add"))
    statements = prompted(block("Monthly statements", "csms owners statement"))
    tariffs = commands(block("Tariffs by time of day", "csms tariffs set"))
    _, port = demo.wait_until_running()
    assert demo.process.stdout is not None
    threading.Thread(target=demo.process.stdout.read, daemon=True).start()
    run = Shell(tmp_path, port)

    account = sandbox = ""
    for command, shown in owners:
        if " owners show " in command:
            paid_payout(sandbox, account)
            until_shown(run, command, shown)
            continue
        out = run(command)
        assert masked(out) == masked(shown), (command, out, shown)
        if " owners add " in command:
            account = re.findall(r"acct_\w+", out)[0]
        if " owners link " in command:
            sandbox = onboard(out.split()[0])
    assert account and sandbox

    outputs = [run(command) for command in sites]
    show, listed = outputs[-2], outputs[-1]
    assert "owner:\thotel-adler\n" in show and "chargers:\tCP-1\n" in show
    assert "split:\tcommission_basis_points 1500, fixed_per_kwh 10, operator_minimum 30" in show
    assert "CP-1\tAccepted\toffline\t-\tharbour" in listed.splitlines()

    # 60 kWh at the highest band's 0.45, the session fee, 120 minutes at 0.02.
    saved, assigned = (run(command) for command in tariffs)
    assert saved == "by-time: saved; a session holds at most 29.90 EUR\n"
    assert assigned.startswith("by-time: applies to CP-1")

    text, as_csv, as_html = (run(command) for command, _ in statements)
    assert text.startswith("Statement of Hotel Adler (hotel-adler), 2026-11 (UTC)\n")
    assert (tmp_path / "adler-2026-11.csv").read_text().startswith("kind,date,reference,")
    assert "Hotel Adler" in (tmp_path / "adler-2026-11.html").read_text()
    assert as_csv == as_html == ""  # written to the files: "written to ..." goes to stderr
