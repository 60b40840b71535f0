"""Id tags (RFID cards, app tokens) that chargers ask about in Authorize and StartTransaction."""

from __future__ import annotations

from dataclasses import dataclass

from storage.clock import now_text
from storage.db import Database, Row
from storage.sql import row_limit


@dataclass(frozen=True)
class IdTag:
    id_tag: str
    parent_id_tag: str | None
    expiry_date: str | None
    blocked: bool

    @classmethod
    def from_row(cls, row: Row) -> IdTag:
        return cls(row["id_tag"], row["parent_id_tag"], row["expiry_date"], bool(row["blocked"]))


class IdTagStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, id_tag: str) -> IdTag | None:
        row = await self._db.fetchone("SELECT * FROM id_tags WHERE id_tag = ?", (id_tag,))
        return IdTag.from_row(row) if row else None

    async def put(
        self,
        id_tag: str,
        *,
        parent_id_tag: str | None = None,
        expiry_date: str | None = None,
        blocked: bool = False,
    ) -> None:
        await self._db.execute(
            "INSERT INTO id_tags (id_tag, parent_id_tag, expiry_date, blocked, created_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id_tag) DO UPDATE SET"
            " parent_id_tag = excluded.parent_id_tag, expiry_date = excluded.expiry_date,"
            " blocked = excluded.blocked",
            (id_tag, parent_id_tag, expiry_date, int(blocked), now_text()),
        )

    async def list(self, after: str = "", limit: int = -1) -> list[IdTag]:
        """Tags in id order, those after `after`; `limit` -1 means all."""
        rows = await self._db.fetchall(
            "SELECT * FROM id_tags WHERE id_tag > ? ORDER BY id_tag LIMIT ?",
            (after, row_limit(limit)),
        )
        return [IdTag.from_row(row) for row in rows]

    async def search(self, text: str, after: str = "", limit: int = -1) -> list[IdTag]:
        """Tags whose id or parent contains `text` (any case), in id order after `after`."""
        pattern = "%" + "".join("\\" + c if c in "\\%_" else c for c in text.lower()) + "%"
        rows = await self._db.fetchall(
            "SELECT * FROM id_tags WHERE id_tag > ? AND (LOWER(id_tag) LIKE ? ESCAPE '\\'"
            " OR LOWER(COALESCE(parent_id_tag, '')) LIKE ? ESCAPE '\\')"
            " ORDER BY id_tag LIMIT ?",
            (after, pattern, pattern, row_limit(limit)),
        )
        return [IdTag.from_row(row) for row in rows]

    async def delete(self, id_tag: str) -> bool:
        return await self._db.execute("DELETE FROM id_tags WHERE id_tag = ?", (id_tag,)) > 0
