"""Messages between the nodes of a cluster, over PostgreSQL's LISTEN/NOTIFY.

Each node listens on a channel of its own (`send` reaches one node) and on the cluster's
(`broadcast` reaches every other node). A message is a JSON object with a kind `t`; the
bus adds `from`, the sending node, and hands each message it receives to the handler
registered for its kind. Nothing else is needed to run several nodes: no broker, no
second system to deploy, back up and watch.

Contract and its limits:
- Delivery is at most once, in order per sender. A message is lost when the receiver is
  not listening at that moment (it died, or its listening connection dropped): whatever
  rides on the bus must stand that. Commands time out at the sender; the cluster view
  (csms/cluster/view.py) reloads from the database whenever the listener reconnects.
- A body too big for a notification (PostgreSQL takes at most 8000 bytes) goes through
  the `cluster_mail` table, and the notification carries its row id.
- On SQLite there is one node: `LocalBus` delivers nothing and routes nowhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson
import psycopg
import structlog

from storage.clock import now_text

log = structlog.get_logger()

Message = dict[str, Any]
Handler = Callable[[Message], Awaitable[None]]
CLUSTER_CHANNEL = "csms_cluster"
INLINE_LIMIT = 7000  # bytes of a notification's payload; PostgreSQL's limit is 8000
RECONNECT_AFTER = (0.2, 0.5, 1.0, 2.0, 5.0)  # seconds, then 5 s between tries


class Unreachable(Exception):
    """The message could not be handed to the database for delivery."""


class Bus(Protocol):
    node_id: str
    shared: bool  # there may be other nodes to tell

    def on(self, kind: str, handler: Handler) -> None: ...
    def on_reconnect(self, callback: Callable[[], Awaitable[None]]) -> None: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def send(self, node_id: str, message: Message) -> None: ...
    async def broadcast(self, message: Message) -> None: ...


def node_channel(node_id: str) -> str:
    """A channel name for any node id: an identifier of at most 63 bytes."""
    return "csms_node_" + hashlib.sha256(node_id.encode()).hexdigest()[:32]


class LocalBus:
    """The only node: nothing to tell, nowhere to route."""

    shared = False

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id

    def on(self, kind: str, handler: Handler) -> None:
        pass

    def on_reconnect(self, callback: Callable[[], Awaitable[None]]) -> None:
        pass

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, node_id: str, message: Message) -> None:
        raise Unreachable(f"node {node_id} is not this one, and there is no other")

    async def broadcast(self, message: Message) -> None:
        pass


class PgBus:
    shared = True

    def __init__(self, url: str, node_id: str) -> None:
        self.node_id = node_id
        self._url = url
        self._handlers: dict[str, Handler] = {}
        self._reconnected: list[Callable[[], Awaitable[None]]] = []
        self._sender: psycopg.AsyncConnection[Any] | None = None
        self._send_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self.received = 0  # read by tests and the metrics
        self.sent = 0

    def on(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

    def on_reconnect(self, callback: Callable[[], Awaitable[None]]) -> None:
        """`callback()` runs each time the listener is back after losing its connection:
        messages sent meanwhile were lost."""
        self._reconnected.append(callback)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="cluster-bus")
        await self._listening.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sender is not None:
            await self._sender.close()

    async def send(self, node_id: str, message: Message) -> None:
        await self._notify(node_channel(node_id), message)

    async def broadcast(self, message: Message) -> None:
        await self._notify(CLUSTER_CHANNEL, message)

    async def _notify(self, channel: str, message: Message) -> None:
        payload = orjson.dumps({**message, "from": self.node_id}).decode()
        try:
            async with self._send_lock:
                conn = await self._sending_connection()
                if len(payload.encode()) > INLINE_LIMIT:
                    row = await (
                        await conn.execute(
                            "INSERT INTO cluster_mail (body, created_at) VALUES (%s, %s)"
                            " RETURNING id",
                            [payload, now_text()],
                        )
                    ).fetchone()
                    assert row is not None
                    payload = orjson.dumps({"t": "mail", "id": row[0]}).decode()
                await conn.execute("SELECT pg_notify(%s, %s)", [channel, payload])
        except psycopg.Error as error:
            raise Unreachable(str(error).strip()) from error
        self.sent += 1

    async def _sending_connection(self) -> psycopg.AsyncConnection[Any]:
        if self._sender is None or self._sender.closed or self._sender.broken:
            self._sender = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
        return self._sender

    # -- receiving

    async def _listen_forever(self) -> None:
        failures = 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True
                ) as conn:
                    await conn.execute(f'LISTEN "{node_channel(self.node_id)}"')
                    await conn.execute(f'LISTEN "{CLUSTER_CHANNEL}"')
                    if failures:
                        log.info("cluster.bus_reconnected", node=self.node_id)
                        for callback in self._reconnected:
                            await callback()
                    failures = 0
                    self._listening.set()
                    async for notify in conn.notifies():
                        await self._deliver(notify.payload)
            except psycopg.Error as error:
                delay = RECONNECT_AFTER[min(failures, len(RECONNECT_AFTER) - 1)]
                failures += 1
                log.warning("cluster.bus_lost", error=str(error).strip(), retry_in=delay)
                self._listening.set()  # start() does not wait for a database that is away
                await asyncio.sleep(delay)

    async def _deliver(self, payload: str) -> None:
        try:
            message = orjson.loads(payload)
            if message.get("t") == "mail":
                message = await self._collect(message["id"])
            if message is None or message.get("from") == self.node_id:
                return  # our own broadcast
            handler = self._handlers.get(message.get("t", ""))
            if handler is None:
                log.warning("cluster.message_unknown", kind=message.get("t"))
                return
            self.received += 1
            await handler(message)
        except Exception:  # one bad message must not stop the listener
            log.exception("cluster.message_failed", payload=payload[:200])

    async def _collect(self, mail_id: int) -> Message | None:
        """A big message's body (read on the sending connection: the listening one is busy
        listening). Every receiver of a broadcast reads it; `sweep_mail` deletes it later."""
        async with self._send_lock:
            conn = await self._sending_connection()
            cursor = await conn.execute("SELECT body FROM cluster_mail WHERE id = %s", [mail_id])
            row = await cursor.fetchone()
        return orjson.loads(row[0]) if row else None
