"""Several nodes on one PostgreSQL database: commands routed to the node that holds the
charger, a webhook on one node starting a charge held by another, a connection replaced
across nodes, effects and jobs taken over from a node whose lease ran out, deadlines
firing once. Each node is a whole central system on its own ports; the Stripe sandbox is
shared, as Stripe is. (The same, killed with SIGKILL behind HAProxy: `bench.faults
node-kill`.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import orjson
import pytest
from websockets.exceptions import ConnectionClosed

from csms.app import CentralSystem
from payments.reservation import ExpireCheckout, Tick
from simulators.stripe_sandbox import StripeSandbox
from storage.clock import to_text, utc_now
from tests.backends import BACKEND
from tests.conftest import API_HEADERS, MakeConfig, ocpp_url
from tests.ocpp_client import RawCharger
from tests.payflow import TARIFF, Driver, charger
from tests.waiting import eventually

pytestmark = pytest.mark.skipif(
    BACKEND != "postgresql", reason="several nodes need PostgreSQL (CSMS_TEST_BACKEND)"
)
SECRET = "whsec_cluster_tests"
BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}


def holds(predicate: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return predicate()

    return check


@dataclass
class Clock:
    """The nodes' shared clock, which a test may move forward."""

    ahead: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        return utc_now() + self.ahead


@dataclass
class Nodes:
    a: CentralSystem
    b: CentralSystem
    clock: Clock


@pytest.fixture
async def sandbox() -> AsyncIterator[StripeSandbox]:
    running = StripeSandbox(webhook_secret=SECRET)
    await running.start(host="127.0.0.1", port=0)
    yield running
    await running.stop()


@pytest.fixture
async def nodes(make_config: MakeConfig, sandbox: StripeSandbox) -> AsyncIterator[Nodes]:
    """Nodes a and b on one database; Stripe's webhooks go to a."""
    clock = Clock()

    def node(name: str) -> CentralSystem:
        return CentralSystem(
            make_config(
                cluster={"node_id": name, "lease": 2.0},
                stripe={
                    "api_key": "sk_test_cluster",
                    "api_base": sandbox.base_url,
                    "webhook_secrets": SECRET,
                },
                tariff=TARIFF,
                payments={"minimum_energy_wh": 100},
            ),
            clock=clock,
        )

    async with node("node-a") as a, node("node-b") as b:
        sandbox.webhook_url = f"http://127.0.0.1:{a.http.port}/api/stripe/webhook"
        yield Nodes(a, b, clock)


async def _command(
    system: CentralSystem, charger_id: str, operation: str, body: dict[str, Any]
) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{system.http.port}/api/chargers/{charger_id}/commands/{operation}"
        async with http.post(url, json=body, headers=API_HEADERS) as response:
            return {"status": response.status, "body": await response.json()}


async def _answer(cp: RawCharger, action: str, reply: list[Any]) -> None:
    """The charger's side of one CALL: the next frame is `action`; answer with `reply`
    (the frame after the message id: [3, payload] or [4, code, description, details])."""
    frame = await cp.receive()
    assert frame[0] == 2 and frame[2] == action, frame
    await cp.send([reply[0], frame[1], *reply[1:]])


async def test_a_command_on_one_node_reaches_a_charger_on_another(
    nodes: Nodes,
) -> None:
    a, b = nodes.a, nodes.b
    async with RawCharger.connect(ocpp_url(b), "CP-1") as cp:
        await cp.call("BootNotification", BOOT)
        await eventually(holds(lambda: a.view.is_online("CP-1")))
        assert a.view.holder("CP-1") == "node-b"

        # A reply bigger than one notification: it goes through cluster_mail.
        keys = [{"key": f"Key{i}", "readonly": True, "value": "x" * 100} for i in range(80)]
        answering = asyncio.create_task(
            _answer(cp, "GetConfiguration", [3, {"configurationKey": keys}])
        )
        reply = await _command(a, "CP-1", "GetConfiguration", {})
        await answering
        assert reply["status"] == 200, reply
        assert len(reply["body"]["configurationKey"]) == 80

        answering = asyncio.create_task(
            _answer(cp, "Reset", [4, "NotSupported", "no reset here", {}])
        )
        reply = await _command(a, "CP-1", "Reset", {"type": "Soft"})
        await answering
        assert reply["status"] == 502 and "NotSupported" in str(reply["body"]), reply
        assert b.relay.served == 2
    await eventually(holds(lambda: not a.view.is_online("CP-1")))
    reply = await _command(a, "CP-1", "Reset", {"type": "Soft"})
    assert reply["status"] == 404, reply  # offline: nothing was sent


async def test_a_second_connection_on_another_node_replaces_the_first(
    nodes: Nodes,
) -> None:
    a, b = nodes.a, nodes.b
    async with RawCharger.connect(ocpp_url(a), "CP-1") as first:
        await first.call("BootNotification", BOOT)
        async with RawCharger.connect(ocpp_url(b), "CP-1") as second:
            await second.call("BootNotification", BOOT)
            with pytest.raises(ConnectionClosed) as closed:
                await first.receive()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
            await eventually(holds(lambda: a.view.holder("CP-1") == "node-b"))
            assert b.view.holder("CP-1") == "node-b"
            # The old connection's close on a does not take the charger offline.
            await asyncio.sleep(0.3)
            row = await a.chargers.get("CP-1")
            assert row is not None and row["online"] == 1
            assert a.sessions.get("CP-1") is None and b.sessions.get("CP-1") is not None
        await eventually(holds(lambda: not a.view.is_online("CP-1")))
        row = await a.chargers.get("CP-1")
        assert row is not None and row["online"] == 0


async def test_a_webhook_on_one_node_starts_and_settles_a_charge_held_by_another(
    nodes: Nodes,
) -> None:
    a, b = nodes.a, nodes.b
    sim = charger(b, unplug_after_stop=0.1)
    await sim.start()
    try:
        await eventually(holds(lambda: a.view.is_online("CP-1")))
        async with aiohttp.ClientSession() as http:
            driver = Driver(a, http)  # the driver's requests and Stripe's webhooks land on a
            reservation_id = await driver.start_charging(sim)
            # The driver's live page on a follows the charge held by b.
            _, token, _ = await a.reservations.load_for_driver(reservation_id)
            live = await _first_event(http, f"http://127.0.0.1:{a.http.port}/session/{token}")
            assert live["stage"] == "charging" and live["energy"] != "0.00 kWh", live
            status, _ = await driver.post(f"/api/payments/{reservation_id}/stop")
            assert status == 200
            done = await driver.wait_for_state(reservation_id, "Completed")
        assert 0 < done["capturedAmount"] <= done["holdAmount"]
        relayed = await a.db.fetchone(
            "SELECT COUNT(*) AS n FROM effects WHERE reservation_id = ?"
            " AND kind IN ('RemoteStart', 'RemoteStop') AND status = 'done'",
            (reservation_id,),
        )
        assert relayed is not None and relayed["n"] == 2
        # The start followed the plug-in on b; the stop, asked on a, was carried out on b.
        assert b.relay.served == 1
    finally:
        await sim.stop()


async def test_an_effect_of_a_dead_node_is_taken_over_and_marked_repeated(
    nodes: Nodes,
) -> None:
    a = nodes.a
    now = await _dead_node(nodes)
    reservation = await _pending_reservation(a)
    await a.db.execute(
        "INSERT INTO effects (reservation_id, kind, payload, idempotency_key, next_attempt_at,"
        " created_at, claimed_by) VALUES (?, 'ExpireCheckout', ?, 'ghost-1', ?, ?, 'node-dead')",
        (reservation, '{"session_id": "cs_ghost"}', to_text(now), to_text(now)),
    )
    due = await a.outbox.due(now + timedelta(seconds=1), reservation_id=reservation)
    ghost = [p for p in due if p.idempotency_key == "ghost-1"]
    assert ghost and ghost[0].taken_over and ghost[0].effect == ExpireCheckout("cs_ghost")
    row = await a.db.fetchone("SELECT claimed_by FROM effects WHERE idempotency_key = 'ghost-1'")
    assert row is not None and row["claimed_by"] == "node-a"
    # A live node's effects are its own: b does not take a's.
    b = nodes.b
    assert not [p for p in await b.outbox.due(now + timedelta(seconds=1)) if p.id == ghost[0].id]


async def _first_event(http: aiohttp.ClientSession, page: str) -> dict[str, Any]:
    """The first server-sent event of a driver's live session page."""
    async with http.get(f"{page}/events") as stream:
        async for line in stream.content:
            if line.startswith(b"data: "):
                return dict(orjson.loads(line[6:]))
    raise AssertionError("the stream ended without an event")


async def _dead_node(nodes: Nodes) -> datetime:
    """A node "node-dead" whose lease ran out a second ago; now."""
    now = nodes.clock()
    await nodes.a.db.execute(
        "INSERT INTO nodes (id, started_at, renewed_at, expires_at) VALUES (?, ?, ?, ?)",
        ("node-dead", to_text(now), to_text(now), to_text(now - timedelta(seconds=1))),
    )
    return now


async def _pending_reservation(system: CentralSystem) -> str:
    async with RawCharger.connect(ocpp_url(system), "CP-2") as cp:
        await cp.call("BootNotification", BOOT)
        await cp.call(
            "StatusNotification", {"connectorId": 1, "status": "Available", "errorCode": "NoError"}
        )
        async with aiohttp.ClientSession() as http:
            status, created = await Driver(system, http).create("CP-2", 1)
    assert status == 200, created
    return str(created["reservationId"])


async def test_jobs_run_on_one_node_and_move_when_it_leaves(
    nodes: Nodes,
) -> None:
    a, b = nodes.a, nodes.b
    for job in ("deadlines", "reconcile", "alerts", "sweep"):
        leaders = [await a.node.lead(job), await b.node.lead(job)]
        assert leaders.count(True) == 1, (job, leaders)
    first = a if await a.node.lead("deadlines") else b
    other = b if first is a else a
    await first.node.leave()
    assert await other.node.lead("deadlines")


async def test_a_charger_of_a_node_whose_lease_ran_out_is_swept_offline(
    nodes: Nodes,
) -> None:
    a = nodes.a
    now = await _dead_node(nodes)
    await a.chargers.register("CP-7")
    await a.db.execute("UPDATE chargers SET online = 1 WHERE id = 'CP-7'")
    await a.db.execute(
        "INSERT INTO charger_connections (charger_id, node_id, session_id, generation,"
        " connected_at) VALUES ('CP-7', 'node-dead', 's1', 1, ?)",
        (to_text(now),),
    )

    async def swept() -> bool:
        row = await a.chargers.get("CP-7")
        return row is not None and row["online"] == 0

    await eventually(swept, timeout=10)
    row = await a.db.fetchone("SELECT node_id FROM charger_connections WHERE charger_id = 'CP-7'")
    assert row is not None and row["node_id"] is None
    assert not a.view.is_online("CP-7")


async def test_a_deadline_fires_once_with_two_nodes_ticking(nodes: Nodes) -> None:
    """Both nodes wake the same expired reservation while a's transition is not committed
    yet (a slow write shares its commit): b waits for a's row lock, then finds the
    reservation expired already. One transition, one set of effects."""
    a, b = nodes.a, nodes.b
    reservation = await _pending_reservation(a)
    nodes.clock.ahead = timedelta(hours=2)  # past the payment window

    async def b_a_moment_later() -> None:
        await asyncio.sleep(0.2)
        await b.coordinator.handle(reservation, Tick())

    await asyncio.gather(
        a.coordinator.handle(reservation, Tick()),
        a.db.write(lambda conn: time.sleep(0.6)),  # holds a's commit open
        b_a_moment_later(),
    )
    history = await a.reservations.history(reservation)
    assert [h["to_state"] for h in history].count("Expired") == 1, history
    effects = await a.outbox.of_reservation(reservation)
    assert [e["kind"] for e in effects].count("ExpireCheckout") == 1, effects


async def test_the_cluster_api_shows_every_node_its_jobs_and_chargers(nodes: Nodes) -> None:
    a, b = nodes.a, nodes.b
    async with RawCharger.connect(ocpp_url(b), "CP-1") as cp:
        await cp.call("BootNotification", BOOT)
        await eventually(holds(lambda: a.view.holder("CP-1") == "node-b"))
        for job in ("deadlines", "reconcile"):
            await a.node.lead(job)
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{a.http.port}/api/cluster", headers=API_HEADERS) as got,
        ):
            assert got.status == 200
            cluster = await got.json()
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"http://127.0.0.1:{a.http.port}/api/chargers/CP-1", headers=API_HEADERS
            ) as got,
        ):
            charger = await got.json()
    assert cluster["node"] == "node-a" and cluster["backend"] == "postgresql"
    listed = {node["id"]: node for node in cluster["nodes"]}
    assert set(listed) == {"node-a", "node-b"}
    assert all(node["alive"] for node in listed.values())
    assert (listed["node-a"]["chargers"], listed["node-b"]["chargers"]) == (0, 1)
    led = listed["node-a"]["jobs"] + listed["node-b"]["jobs"]
    assert {"deadlines", "reconcile"} <= set(led) and len(led) == len(set(led))
    assert charger["online"] is True and charger["node"] == "node-b"
