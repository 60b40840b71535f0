"""Tariffs and where they apply: the settings an operator keeps, by id, and their
assignments to a whole charger (connector 0) or to one of its connectors.

Contract: each write is one statement committed before it returns. A reservation
snapshots its tariff when it is created, so changing or unassigning a tariff changes no
session already begun. `for_connector` picks the connector's own tariff, else the
charger's, else None: then the configured default applies (the caller's choice).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from payments.pricing import Tariff
from storage.clock import to_text
from storage.db import Database
from storage.sql import row_limit


class TariffStore:
    """The `tariffs` and `tariff_assignments` tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def put(self, tariff_id: str, tariff: Tariff, now: datetime) -> None:
        await self.db.execute(
            "INSERT INTO tariffs (id, settings, created_at, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET settings = excluded.settings,"
            " updated_at = excluded.updated_at",
            (tariff_id, orjson.dumps(tariff.to_dict()).decode(), to_text(now), to_text(now)),
        )

    async def all(self) -> dict[str, Tariff]:
        rows = await self.db.fetchall("SELECT id, settings FROM tariffs ORDER BY id")
        return {row["id"]: Tariff.from_dict(orjson.loads(row["settings"])) for row in rows}

    async def assign(self, tariff_id: str, charger_id: str, connector_id: int = 0) -> None:
        await self.db.execute(
            "INSERT INTO tariff_assignments (charger_id, connector_id, tariff_id) VALUES (?, ?, ?)"
            " ON CONFLICT (charger_id, connector_id) DO UPDATE SET tariff_id = excluded.tariff_id",
            (charger_id, connector_id, tariff_id),
        )

    async def for_connector(self, charger_id: str, connector_id: int) -> Tariff | None:
        """The connector's own tariff, else the charger's, else None (the default applies)."""
        row = await self.db.fetchone(
            "SELECT t.settings FROM tariff_assignments a JOIN tariffs t ON t.id = a.tariff_id"
            " WHERE a.charger_id = ? AND a.connector_id IN (?, 0)"
            " ORDER BY a.connector_id DESC LIMIT 1",
            (charger_id, connector_id),
        )
        return Tariff.from_dict(orjson.loads(row["settings"])) if row else None

    async def assignments(
        self, tariff_id: str, after: tuple[str, int] = ("", -1), limit: int = -1
    ) -> list[dict[str, Any]]:
        """Where a tariff applies, in (charger, connector) order after `after`; -1: all."""
        rows = await self.db.fetchall(
            "SELECT charger_id, connector_id FROM tariff_assignments WHERE tariff_id = ?"
            " AND (charger_id, connector_id) > (?, ?) ORDER BY charger_id, connector_id LIMIT ?",
            (tariff_id, *after, row_limit(limit)),
        )
        return [dict(row) for row in rows]

    async def of_charger(self, charger_id: str) -> dict[int, str]:
        """A charger's assignments: connector (0: the whole charger) -> tariff id."""
        rows = await self.db.fetchall(
            "SELECT connector_id, tariff_id FROM tariff_assignments WHERE charger_id = ?"
            " ORDER BY connector_id",
            (charger_id,),
        )
        return {row["connector_id"]: row["tariff_id"] for row in rows}

    async def unassign(self, charger_id: str, connector_id: int | None = None) -> None:
        """Drop the assignment on `connector_id` (0: the whole charger's), or all when None."""
        if connector_id is None:
            await self.db.execute(
                "DELETE FROM tariff_assignments WHERE charger_id = ?", (charger_id,)
            )
        else:
            await self.db.execute(
                "DELETE FROM tariff_assignments WHERE charger_id = ? AND connector_id = ?",
                (charger_id, connector_id),
            )
