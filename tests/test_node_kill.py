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

# The one failure known, until csms is fixed: the scenario kills a node while it creates the
# Checkout Session of POST /api/payments; the driver's request ends in a 502 from the load
# balancer, the reservation stays (its Checkout made by the node that takes the effect over)
# and refuses the connector to the driver ("ConnectorBusy: reserved by another driver")
# until the payment window ends, 30 minutes and more later.
STRAY = "csms bug: a reservation whose POST /api/payments died with its node holds the connector"


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
    strays = cases.get("stray-reservation", (0, 0, 0))[1]
    if not strays:
        run.assert_clean()
    [line] = run.summary
    for count in MUST_BE_ZERO:
        assert count in line or count == "failed checks 0", line
    assert f"failed checks {strays}" in line, line
    assert "sessions    0" not in line and "kills 0" not in line, line
    assert cases["mid-session"] == (1, 0, 0), run.lines
    for check in ("chargers-back", "taken-over"):
        assert cases[check][0] >= 1 and cases[check][1] == 0, run.lines
    assert run.seconds < 120, f"node-kill took {run.seconds:.0f} s"
    if strays:
        pytest.xfail(STRAY)
