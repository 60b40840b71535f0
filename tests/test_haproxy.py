"""HAProxy in front of csms nodes (bench.haproxy, deploy/haproxy.cfg), for real: two
`csms serve` processes behind Debian's haproxy. HTTP and chargers' WebSockets pass through,
a charger reaches the same node each time, a killed node is taken out and its chargers
reconnect to the other, and the nodes receive X-Forwarded-For and X-Forwarded-Proto.

Without HAProxy (and no way to install it) these tests skip with the reason; under CI
(CI=true) they fail instead, so that a missing install shows."""

from __future__ import annotations

import asyncio
import csv
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from websockets.protocol import State

from bench.haproxy import (
    EXAMPLE_NODES,
    Node,
    RunningHaproxy,
    Unavailable,
    check_config,
    ensure_installed,
    render,
)
from tests.ocpp_client import RawCharger
from tests.waiting import eventually

SHIPPED = Path(__file__).resolve().parent.parent / "deploy" / "haproxy.cfg"
BOOT = {"chargePointVendor": "csms-tests", "chargePointModel": "proxy"}
CHARGERS = [f"CP-PROXY-{n:02}" for n in range(10)]
FORWARDED = ("x-forwarded-for", "x-forwarded-proto")


@pytest.fixture(scope="module", autouse=True)
def haproxy() -> None:
    try:
        ensure_installed()
    except Unavailable as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"HAProxy is needed under CI: {error}")
        pytest.skip(str(error))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Proxy:
    """Where a test reaches the HAProxy it started (all on 127.0.0.1)."""

    ocpp_url: str  # ws://…/ocpp: a charger's URL without its id
    http_url: str
    stats_url: str  # the status page as CSV


def start(nodes: list[Node], stack: ExitStack) -> Proxy:
    """HAProxy for `nodes`, health checks every 200 ms, stopped with `stack`; its log is
    printed at the end (pytest shows it when the test failed)."""
    ocpp_port, http_port, stats_port = free_port(), free_port(), free_port()
    config = render(
        nodes,
        ocpp_port,
        http_port,
        stats_port,
        bind_host="127.0.0.1",
        check_interval_ms=200,
        run_as=None,
    )
    proxy = stack.enter_context(RunningHaproxy(config))
    stack.callback(lambda: print(proxy.log()[-5000:]))
    return Proxy(
        ocpp_url=f"ws://127.0.0.1:{ocpp_port}/ocpp",
        http_url=f"http://127.0.0.1:{http_port}",
        stats_url=f"http://127.0.0.1:{stats_port}/;csv",
    )


async def server_states(session: aiohttp.ClientSession, proxy: Proxy) -> dict[str, str]:
    """`backend/server` -> its status (UP, DOWN, "UP 1/3"…) on HAProxy's status page."""
    async with session.get(proxy.stats_url) as response:
        text = await response.text()
    rows = csv.DictReader(text.removeprefix("# ").splitlines())
    return {
        f"{row['pxname']}/{row['svname']}": row["status"]
        for row in rows
        if row["svname"] not in ("FRONTEND", "BACKEND")
    }


async def wait_all_up(proxy: Proxy) -> None:
    """Until HAProxy's own health checks have seen every server up."""
    async with aiohttp.ClientSession() as session:

        async def all_up() -> bool:
            return set((await server_states(session, proxy)).values()) == {"UP"}

        await eventually(all_up, timeout=10)


@dataclass
class CsmsNode:
    node: Node
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.node.http_port}"


@contextmanager
def csms_node(folder: Path, name: str) -> Iterator[CsmsNode]:
    """`csms serve` with its own SQLite file, started (not yet ready) on free ports of
    127.0.0.1; stopped at exit."""
    node = Node(name, "127.0.0.1", ocpp_port=free_port(), http_port=free_port())
    env = {
        **os.environ,
        "CSMS_SERVER_OCPP_HOST": "127.0.0.1",
        "CSMS_SERVER_OCPP_PORT": str(node.ocpp_port),
        "CSMS_SERVER_HTTP_HOST": "127.0.0.1",
        "CSMS_SERVER_HTTP_PORT": str(node.http_port),
        "CSMS_DATABASE_PATH": str(folder / f"{name}.db"),
        "CSMS_OCPP_UNKNOWN_CHARGERS": "accept",
        "CSMS_API_KEYS": "haproxy-test-key",
        "CSMS_STRIPE_SANDBOX_PORT": "0",
        "CSMS_LOG_LEVEL": "warning",
    }
    log = folder / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "csms", "serve"],
            env=env,
            cwd=folder,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield CsmsNode(node, process, log)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def healthz(session: aiohttp.ClientSession, base_url: str) -> tuple[int, dict[str, Any]]:
    async with session.get(f"{base_url}/healthz") as response:
        return response.status, await response.json()


async def wait_ready(session: aiohttp.ClientSession, node: CsmsNode) -> None:
    async def ready() -> bool:
        if node.process.poll() is not None:
            raise RuntimeError(f"{node.node.name} exited:\n{node.log.read_text()}")
        try:
            return (await healthz(session, node.http_url))[0] == 200
        except aiohttp.ClientError:
            return False

    await eventually(ready, timeout=30)


@dataclass
class Cluster:
    """Two independent csms nodes behind one HAProxy."""

    nodes: list[CsmsNode]
    proxy: Proxy


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    with ExitStack() as stack:
        nodes = [stack.enter_context(csms_node(tmp_path, f"node{n}")) for n in (1, 2)]
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(wait_ready(session, node) for node in nodes))
        proxy = start([node.node for node in nodes], stack)
        await wait_all_up(proxy)
        yield Cluster(nodes, proxy)


async def connected_per_node(session: aiohttp.ClientSession, nodes: list[CsmsNode]) -> list[int]:
    """How many chargers each node holds, asked of the node itself."""
    return [(await healthz(session, node.http_url))[1]["chargersConnected"] for node in nodes]


@asynccontextmanager
async def booted(proxy: Proxy, charger_id: str) -> AsyncIterator[RawCharger]:
    """A charger connected through the proxy with subprotocol ocpp1.6, its BootNotification
    answered with a CALLRESULT that accepts it."""
    async with RawCharger.connect(proxy.ocpp_url, charger_id) as charger:
        assert charger.connection.subprotocol == "ocpp1.6"
        reply = await charger.call("BootNotification", BOOT)
        assert reply["status"] == "Accepted"
        yield charger


@dataclass
class Placed:
    node: int  # index in Cluster.nodes
    charger: RawCharger


async def placement(
    session: aiohttp.ClientSession, cluster: Cluster, stack: AsyncExitStack
) -> dict[str, Placed]:
    """Connects CHARGERS one by one, kept open on `stack`; which node each one reached."""
    placed = {}
    for charger_id in CHARGERS:
        before = await connected_per_node(session, cluster.nodes)
        charger = await stack.enter_async_context(booted(cluster.proxy, charger_id))
        after = await connected_per_node(session, cluster.nodes)
        grown = [n for n, (b, a) in enumerate(zip(before, after, strict=True)) if a == b + 1]
        assert len(grown) == 1 and sum(after) == sum(before) + 1, (before, after)
        placed[charger_id] = Placed(grown[0], charger)
    return placed


def nodes_of(placed: dict[str, Placed]) -> dict[str, int]:
    return {charger_id: p.node for charger_id, p in placed.items()}


def test_the_shipped_config_is_the_rendered_one() -> None:
    assert SHIPPED.read_text() == render(EXAMPLE_NODES), (
        "regenerate it: python -m bench.haproxy > deploy/haproxy.cfg"
    )


def test_haproxy_accepts_the_shipped_config() -> None:
    check_config(SHIPPED)


@pytest.mark.parametrize(
    "nodes",
    [[], [Node("a", "10.0.0.1"), Node("a", "10.0.0.2")], [Node("node 1", "10.0.0.1")]],
    ids=["none", "same-name", "space-in-name"],
)
def test_render_refuses_nodes_it_cannot_name(nodes: list[Node]) -> None:
    with pytest.raises(ValueError, match="name"):
        render(nodes)


async def test_http_and_chargers_pass_through_and_a_charger_keeps_its_node(
    cluster: Cluster,
) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(4):
            status, body = await healthz(session, cluster.proxy.http_url)
            assert (status, body["status"]) == (200, "ok")
        async with AsyncExitStack() as stack:
            first = nodes_of(await placement(session, cluster, stack))
        assert set(first.values()) == {0, 1}, first  # both nodes take chargers

        async def all_gone() -> bool:
            return sum(await connected_per_node(session, cluster.nodes)) == 0

        await eventually(all_gone, timeout=10)
        async with AsyncExitStack() as stack:  # reconnecting, each reaches its node again
            assert nodes_of(await placement(session, cluster, stack)) == first


async def test_a_killed_node_is_taken_out_and_its_chargers_reconnect_elsewhere(
    cluster: Cluster,
) -> None:
    victim, survivor = cluster.nodes
    proxy = cluster.proxy
    async with aiohttp.ClientSession() as session, AsyncExitStack() as stack:
        placed = await placement(session, cluster, stack)
        orphans = [charger_id for charger_id, p in placed.items() if p.node == 0]
        assert orphans, nodes_of(placed)

        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait()

        async def dropped() -> bool:  # the proxy closes the sockets of the dead node's chargers
            return all(placed[c].charger.connection.state is State.CLOSED for c in orphans)

        await eventually(dropped, timeout=10)
        assert all(p.charger.connection.state is State.OPEN for p in placed.values() if p.node)

        async def marked_down() -> bool:
            states = await server_states(session, proxy)
            return states["ocpp_nodes/node1"] == states["http_nodes/node1"] == "DOWN"

        await eventually(marked_down, timeout=20)
        states = await server_states(session, proxy)
        assert states["ocpp_nodes/node2"] == states["http_nodes/node2"] == "UP"

        for _ in range(10):
            status, body = await healthz(session, proxy.http_url)
            assert (status, body["status"]) == (200, "ok")
        for charger_id in orphans:
            await stack.enter_async_context(booted(proxy, charger_id))
        for n in range(10):
            await stack.enter_async_context(booted(proxy, f"CP-AFTER-{n}"))
        status, body = await healthz(session, survivor.http_url)
        assert (status, body["chargersConnected"]) == (200, len(CHARGERS) + 10)


async def test_forwarded_headers_reach_the_nodes() -> None:
    """On HTTP requests and on the WebSocket upgrade, as a stand-in node that echoes them
    sees them."""
    expected = {"x-forwarded-for": "127.0.0.1", "x-forwarded-proto": "http"}
    async with echo_node() as node:
        with ExitStack() as stack:
            proxy = start([node], stack)
            await wait_all_up(proxy)
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{proxy.http_url}/echo") as response:
                    assert await response.json() == expected
                async with session.ws_connect(
                    f"{proxy.ocpp_url}/CP-1", protocols=("ocpp1.6",)
                ) as ws:
                    assert ws.protocol == "ocpp1.6"
                    assert await ws.receive_json() == expected


@asynccontextmanager
async def echo_node() -> AsyncIterator[Node]:
    """A stand-in node, the same app on both ports: /healthz answers 200; /echo, and a
    WebSocket on /ocpp/<id>, answer with the X-Forwarded-* headers they received."""

    def forwarded(request: web.Request) -> dict[str, str]:
        return {name: request.headers.get(name, "") for name in FORWARDED}

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def echo(request: web.Request) -> web.Response:
        return web.json_response(forwarded(request))

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("ocpp1.6",))
        await ws.prepare(request)
        await ws.send_json(forwarded(request))
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/healthz", ok)
    app.router.add_get("/echo", echo)
    app.router.add_get("/ocpp/{id}", websocket)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        node = Node("echo", "127.0.0.1", ocpp_port=free_port(), http_port=free_port())
        for port in (node.ocpp_port, node.http_port):
            await web.TCPSite(runner, node.host, port).start()
        yield node
    finally:
        await runner.cleanup()
