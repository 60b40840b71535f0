"""Which node holds each connected charger, and the chargers' online flag with it.

Contract: a charger has one row (`charger_connections`) once it has connected. The node
that accepts its WebSocket writes itself in (`connected`), and takes itself out when that
connection closes (`disconnected`); each write sets the charger's `online` flag in the
same commit, so the two never disagree. A holder counts only while its node's lease lives
(`storage.nodes`): `links` leaves out the others, and `sweep` (run on one node at a time)
takes them out and marks their chargers offline.

Each connection of a charger has the next `generation`; news about a charger carries it,
so a node applying news out of order keeps the newest. The session id tells a connection
from the next: `disconnected` for an old one, after the charger connected again (here or
on another node), changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage.clock import to_text
from storage.db import Connection, Database
from storage.nodes import alive


@dataclass(frozen=True)
class Link:
    """A charger's latest connection: the node holding it (None: offline) and its number."""

    charger_id: str
    node_id: str | None
    generation: int


class ChargerConnections:
    def __init__(self, db: Database, node_id: str) -> None:
        self._db = db
        self.node_id = node_id

    async def connected(self, charger_id: str, session_id: str, now: datetime) -> int:
        """Record this node's new connection of the charger; its generation."""
        at = to_text(now)

        def record(conn: Connection) -> int:
            row = conn.execute(
                "INSERT INTO charger_connections (charger_id, node_id, session_id, generation,"
                " connected_at) VALUES (?, ?, ?, 1, ?) ON CONFLICT (charger_id) DO UPDATE SET"
                " node_id = excluded.node_id, session_id = excluded.session_id,"
                " generation = charger_connections.generation + 1,"
                " connected_at = excluded.connected_at RETURNING generation",
                (charger_id, self.node_id, session_id, at),
            ).fetchone()
            conn.execute(
                "UPDATE chargers SET online = 1, connected_at = ?, last_seen_at = ? WHERE id = ?",
                (at, at, charger_id),
            )
            return int(row["generation"])

        return await self._db.write(record, durable=False)

    async def disconnected(self, charger_id: str, session_id: str, now: datetime) -> int | None:
        """Take this connection out unless a newer one replaced it; its generation when it
        was the current one (the charger is offline now), else None."""

        def forget(conn: Connection) -> int | None:
            row = conn.execute(
                "UPDATE charger_connections SET node_id = NULL, session_id = NULL"
                " WHERE charger_id = ? AND session_id = ? RETURNING generation",
                (charger_id, session_id),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE chargers SET online = 0, disconnected_at = ? WHERE id = ?",
                (to_text(now), charger_id),
            )
            return int(row["generation"])

        return await self._db.write(forget, durable=False)

    async def start(self, now: datetime) -> None:
        """At this node's start: it holds no connection yet, whatever its last run left, and
        a charger no live node holds is offline."""
        at = to_text(now)

        def reset(conn: Connection) -> None:
            conn.execute(
                "UPDATE charger_connections SET node_id = NULL, session_id = NULL"
                " WHERE node_id = ?",
                (self.node_id,),
            )
            conn.execute(
                "UPDATE chargers SET online = 0, disconnected_at = ? WHERE online = 1 AND id NOT IN"
                " (SELECT charger_id FROM charger_connections"
                f" WHERE node_id IS NOT NULL AND {alive('node_id')})",
                (at, at),
            )

        await self._db.write(reset)

    async def sweep(self, now: datetime) -> list[Link]:
        """The connections held by nodes whose lease ran out: taken out, their chargers
        marked offline."""
        at = to_text(now)

        def sweep(conn: Connection) -> list[Link]:
            rows = conn.execute(
                "UPDATE charger_connections SET node_id = NULL, session_id = NULL"
                f" WHERE node_id IS NOT NULL AND NOT {alive('node_id')}"
                " RETURNING charger_id, generation",
                (at,),
            ).fetchall()
            gone = sorted((Link(row[0], None, int(row[1])) for row in rows), key=_by_charger)
            for link in gone:
                conn.execute(
                    "UPDATE chargers SET online = 0, disconnected_at = ? WHERE id = ?",
                    (at, link.charger_id),
                )
            conn.execute("DELETE FROM nodes WHERE expires_at <= ?", (at,))
            return gone

        return await self._db.write(sweep)

    async def links(self, now: datetime) -> list[Link]:
        """Every charger's latest connection; node None where no live node holds it."""
        rows = await self._db.fetchall(
            "SELECT charger_id, CASE WHEN node_id IS NOT NULL AND"
            f" {alive('node_id')} THEN node_id END, generation FROM charger_connections",
            (to_text(now),),
        )
        return [Link(row[0], row[1], int(row[2])) for row in rows]


def _by_charger(link: Link) -> str:
    return link.charger_id
