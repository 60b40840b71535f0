"""`python -m bench.faults` in its CI size (two chargers, two sessions each), run for the
tests of the fault runs: its output, its summary lines and their counts checked."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass

from bench.faults.__main__ import SCENARIOS

# The counts of a summary line (Report.line) that a clean run has at 0: the money's, the run's.
MONEY = (
    "lost",
    "double captures",
    "unreleased holds",
    "orphan holds",
    "unbilled Wh",
    "free charging",
)
MUST_BE_ZERO = tuple(f"{count} 0" for count in (*MONEY, "failed checks", "crashes"))


@dataclass(frozen=True)
class QuickRun:
    lines: list[str]
    summary: list[str]  # one line per scenario, in the order run
    seconds: float
    clean: bool  # exited 0, saying "all clean"
    stderr: str

    def cases(self, scenario: str) -> dict[str, tuple[int, int, int]]:
        """The scenario's cases: name -> (passed, failed, passed without its events)."""
        case = re.compile(
            rf"  {re.escape(scenario)}: case (\S+) +passed (\d+)  failed (\d+)(?: \((\d+) without)?"
        )
        return {
            m[1]: (int(m[2]), int(m[3]), int(m[4] or 0)) for m in map(case.match, self.lines) if m
        }

    def assert_clean(self) -> None:
        """Fails unless the run is clean and every count that must be 0 is."""
        assert self.clean, "\n".join(self.lines) + self.stderr[-3000:]
        for line in self.summary:
            for count in MUST_BE_ZERO:
                assert count in line, line


def quick_run(scenarios: tuple[str, ...], timeout: float = 900) -> QuickRun:
    """Run `scenarios`, each of which must print its summary line."""
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "bench.faults", "--quick", "--chargers", "2", "--sessions", "2"]
        + [f"--scenario={name}" for name in scenarios],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    print(run.stdout)
    lines = run.stdout.splitlines()
    summary = [line for line in lines if line.split(" ", 1)[0] in SCENARIOS]
    assert [line.split(" ", 1)[0] for line in summary] == list(scenarios), run.stdout + run.stderr
    clean = run.returncode == 0 and "all clean" in lines[-1]
    return QuickRun(lines, summary, time.monotonic() - started, clean, run.stderr)
