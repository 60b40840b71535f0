"""The node-kill fault run in its CI size: three csms nodes on one PostgreSQL database
behind HAProxy, nodes killed with SIGKILL while two chargers do two paid sessions each;
nothing lost, every hold settled, every kilowatt-hour billed, and at least one kill of a
node holding a charger mid-session, within two minutes.

It starts PostgreSQL and HAProxy of its own (Debian's packages, installed when missing and
we may): without them it skips with the reason; under CI (CI=true) it fails instead, so
that a missing install shows."""

from __future__ import annotations

import os

import pytest

from bench import haproxy
from bench.pg import cluster
from tests.fault_runs import MUST_BE_ZERO, quick_run


def missing() -> str | None:
    """Why node-kill cannot run here (no PostgreSQL or HAProxy, and no way to install it)."""
    try:
        cluster.ensure_installed()
        haproxy.ensure_installed()
    except (cluster.Unavailable, haproxy.Unavailable) as error:
        return str(error)
    return None


@pytest.fixture(scope="module", autouse=True)
def postgresql_and_haproxy() -> None:
    why = missing()
    if why and os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"node-kill needs PostgreSQL and HAProxy under CI: {why}")
    if why:
        pytest.skip(why)


# Its own PostgreSQL: once, in the SQLite pass, is enough.
@pytest.mark.sqlite_only(reason="node-kill starts a PostgreSQL cluster of its own")
def test_nodes_killed_mid_session_lose_nothing() -> None:
    run = quick_run(("node-kill",), timeout=300)
    cases = run.cases("node-kill")
    run.assert_clean()
    [line] = run.summary
    for count in MUST_BE_ZERO:
        assert count in line, line
    assert "sessions    0" not in line and "kills 0" not in line, line
    assert cases["mid-session"] == (1, 0, 0), run.lines
    for check in ("chargers-back", "taken-over"):
        assert cases[check][0] >= 1 and cases[check][1] == 0, run.lines
    # A reservation whose POST /api/payments died with its node held the connector for a
    # while (the hand-over window), and nobody was refused it for longer.
    assert cases.get("stray-reservation", (0, 0, 0))[1] == 0, run.lines
