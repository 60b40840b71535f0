"""What every node knows of the whole cluster, in memory: which charger is connected to
which node, and every connector's status. Payments asks both on every event, without a
query (`ChargerControl.is_online`, `connector_status`).

How it stays true:
- This node's own changes are written to the database first (csms/store/connections.py,
  the charger's status row), then applied here, then broadcast; the other nodes apply the
  broadcast. A connection's news carries its generation and a status its time, and only
  newer news is applied, so late or repeated news is harmless.
- A charger that connects to another node is announced; if this node still holds an older
  connection for it, that connection is closed (OCPP allows one per charger), after the
  database confirms the other one is newer.
- Every `resync` seconds, and whenever the bus's listener reconnects (it may have missed
  news), the connections are read again from the database. On one node at a time, the
  same loop sweeps the connections of nodes whose lease ran out: their chargers are
  offline until they reconnect, which they do, through the load balancer, to a live node.
- With one node (SQLite: `LocalBus`) there is nobody to tell and no news to miss: the view
  is this node's own, with no messages and no periodic reading.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import structlog

from csms.cluster.bus import Bus, Message, Unreachable
from csms.ocpp16.live import LiveStatus
from csms.ocpp16.registry import Sessions
from csms.store.chargers import ChargerStore
from csms.store.connections import ChargerConnections
from storage.clock import to_text
from storage.db import Database
from storage.nodes import Leader

log = structlog.get_logger()

CLOSE_POLICY = 1008
MAIL_KEPT = timedelta(minutes=1)


class ClusterView:
    def __init__(
        self,
        bus: Bus,
        db: Database,
        chargers: ChargerStore,
        sessions: Sessions,
        *,
        clock: Callable[[], datetime],
        lead: Leader,
        resync: float,
    ) -> None:
        self.node_id = bus.node_id
        self._bus = bus
        self._db = db
        self._connections = ChargerConnections(db, bus.node_id)
        self._chargers = chargers
        self._sessions = sessions
        self._clock = clock
        self._lead = lead
        self._resync = resync
        self._live = LiveStatus()
        self._online: dict[str, str] = {}  # charger id -> node id
        self._generations: dict[str, int] = {}  # charger id -> the newest connection known
        self._mine: dict[str, tuple[str, int]] = {}  # charger id -> (session, generation) here
        self._outgoing: asyncio.Queue[Message] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing: set[asyncio.Task[None]] = set()
        self._resyncs: list[Callable[[], Awaitable[None]]] = []
        bus.on("online", self._online_elsewhere)
        bus.on("offline", self._offline_elsewhere)
        bus.on("status", self._status_elsewhere)
        bus.on("close", self._close_here)
        bus.on_reconnect(self.reload)

    async def start(self) -> None:
        await self._connections.start(self._clock())
        await self.reload()
        if self._bus.shared:
            self._tasks = [
                asyncio.create_task(self._send_forever(), name="cluster-news"),
                asyncio.create_task(self._resync_forever(), name="cluster-resync"),
            ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def on_resync(self, callback: Callable[[], Awaitable[None]]) -> None:
        """`callback()` runs whenever the view reads the database again: another part's
        in-memory copy that the other nodes' news keep true is brought up to date too."""
        self._resyncs.append(callback)

    def tell(self, message: Message) -> None:
        """Broadcast news of another part to the other nodes, in order with this view's."""
        self._tell(message)

    def _tell(self, message: Message) -> None:
        if self._bus.shared:
            self._outgoing.put_nowait(message)

    # -- what payments and the API ask

    def is_online(self, charger_id: str) -> bool:
        return charger_id in self._online

    def holder(self, charger_id: str) -> str | None:
        return self._online.get(charger_id)

    def holders(self) -> dict[str, str]:
        """A snapshot: every connected charger -> the node its connection is on."""
        return dict(self._online)

    def status(self, charger_id: str, connector_id: int) -> str | None:
        return self._live.status(charger_id, connector_id)

    async def close(self, charger_id: str, reason: str) -> None:
        """Close the charger's connection, on whichever node holds it."""
        node_id = self._online.get(charger_id)
        if node_id is None or node_id == self.node_id:
            await self._close_here({"cp": charger_id, "reason": reason})
            return
        try:
            await self._bus.send(node_id, {"t": "close", "cp": charger_id, "reason": reason})
        except Unreachable as error:
            log.warning("cluster.close_lost", charge_point_id=charger_id, error=str(error))

    async def _close_here(self, message: Message) -> None:
        session = self._sessions.get(message["cp"])
        if session is not None:
            await session.close(CLOSE_POLICY, message["reason"])

    # -- this node's news

    async def connected(self, charger_id: str, session_id: str) -> None:
        generation = await self._connections.connected(charger_id, session_id, self._clock())
        self._mine[charger_id] = (session_id, generation)
        if not self._learn(charger_id, self.node_id, generation):
            # Another node's connection of the charger came after this one, and its news
            # arrived while this one was being recorded: this one gives way.
            self._replaced(charger_id, "another node")
            return
        self._tell(
            {"t": "online", "cp": charger_id, "session": session_id, "generation": generation}
        )

    async def disconnected(self, charger_id: str, session_id: str) -> bool:
        """True when that was the charger's current connection: it is offline now."""
        if self._mine.get(charger_id, ("",))[0] == session_id:
            del self._mine[charger_id]
        generation = await self._connections.disconnected(charger_id, session_id, self._clock())
        if generation is None:
            return False
        self._learn(charger_id, None, generation)
        self._tell({"t": "offline", "cp": charger_id, "generation": generation})
        return True

    def _learn(self, charger_id: str, node_id: str | None, generation: int) -> bool:
        """Apply news of a charger's connection unless newer news was applied already."""
        if generation < self._generations.get(charger_id, 0):
            return False
        self._generations[charger_id] = generation
        if node_id is None:
            self._online.pop(charger_id, None)
        else:
            self._online[charger_id] = node_id
        return True

    def update(self, charger_id: str, connector_id: int, status: str, at: str) -> None:
        """A StatusNotification this node stored: here at once, elsewhere in order."""
        self._live.update(charger_id, connector_id, status, at)
        self._tell(
            {"t": "status", "cp": charger_id, "connector": connector_id, "status": status, "at": at}
        )

    # -- the other nodes' news

    async def _online_elsewhere(self, message: Message) -> None:
        charger_id, generation = message["cp"], message["generation"]
        if not self._learn(charger_id, message["from"], generation):
            return
        mine = self._mine.get(charger_id)
        # A connection of this node still being recorded has no generation yet: `connected`
        # compares when it has one.
        if mine is not None and mine[1] < generation:
            self._replaced(charger_id, message["from"])

    def _replaced(self, charger_id: str, by: str) -> None:
        """Close this node's connection of the charger: OCPP allows one, the newest."""
        session = self._sessions.get(charger_id)
        if session is None:
            return
        log.info("ocpp.connection_replaced", charge_point_id=charger_id, by=by)
        closing = asyncio.create_task(
            session.close(CLOSE_POLICY, "replaced by a new connection on another node")
        )
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    async def _offline_elsewhere(self, message: Message) -> None:
        self._learn(message["cp"], None, message["generation"])

    async def _status_elsewhere(self, message: Message) -> None:
        self._live.update(message["cp"], message["connector"], message["status"], message["at"])

    # -- from the database

    async def reload(self) -> None:
        """Connections and statuses as the database has them (news may have been missed)."""
        await self._reload_connections()
        for charger_id, connector_id, status, at in await self._chargers.all_statuses():
            self._live.update(charger_id, connector_id, status, at)
        for callback in self._resyncs:
            await callback()

    async def _reload_connections(self) -> None:
        for link in await self._connections.links(self._clock()):
            self._learn(link.charger_id, link.node_id, link.generation)

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(self._resync)
            try:
                if await self._lead("sweep"):
                    await self._sweep()
                await self._reload_connections()
                for callback in self._resyncs:
                    await callback()
            except Exception:  # the database is away: the next turn tries again
                log.exception("cluster.resync_failed")

    async def _sweep(self) -> None:
        now = self._clock()
        for link in await self._connections.sweep(now):
            log.info("cluster.charger_swept", charge_point_id=link.charger_id)
            self._learn(link.charger_id, None, link.generation)
            self._tell({"t": "offline", "cp": link.charger_id, "generation": link.generation})
        await self._db.execute(
            "DELETE FROM cluster_mail WHERE created_at < ?", (to_text(now - MAIL_KEPT),)
        )

    async def _send_forever(self) -> None:
        while True:
            message = await self._outgoing.get()
            try:
                await self._bus.broadcast(message)
            except Unreachable as error:  # the others resync from the database
                log.warning("cluster.news_lost", kind=message["t"], error=str(error))
