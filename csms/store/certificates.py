"""Chargers' client certificates (security profile 3): those issued, and who must use one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage.clock import now_text, to_text
from storage.db import Database


@dataclass(frozen=True)
class IssuedCertificate:
    serial: str
    charger_id: str
    not_before: str
    not_after: str
    issued_at: str
    pem: str


class CertificateStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self, serial: str, charger_id: str, not_before: datetime, not_after: datetime, pem: str
    ) -> None:
        await self._db.execute(
            "INSERT INTO charger_certificates"
            " (serial, charger_id, not_before, not_after, issued_at, pem)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (serial) DO NOTHING",
            (serial, charger_id, to_text(not_before), to_text(not_after), now_text(), pem),
        )

    async def list(self, charger_id: str | None = None) -> list[IssuedCertificate]:
        """Every certificate issued (or one charger's), soonest expiry first."""
        where, params = ("WHERE charger_id = ?", (charger_id,)) if charger_id else ("", ())
        rows = await self._db.fetchall(
            "SELECT serial, charger_id, not_before, not_after, issued_at, pem"
            f" FROM charger_certificates {where} ORDER BY not_after, serial",
            params,
        )
        return [IssuedCertificate(**dict(row)) for row in rows]

    async def due(self, before: datetime) -> list[tuple[str, str]]:
        """(charger, not_after) of chargers whose newest certificate ends before `before`."""
        rows = await self._db.fetchall(
            "SELECT charger_id, MAX(not_after) AS not_after FROM charger_certificates"
            " GROUP BY charger_id HAVING MAX(not_after) < ? ORDER BY MAX(not_after), charger_id",
            (to_text(before),),
        )
        return [(row["charger_id"], row["not_after"]) for row in rows]

    async def require(self, charger_id: str, required: bool) -> bool:
        """Put a charger on security profile 3 (or take it off); False when it is unknown.

        Takes effect from the charger's next connection.
        """
        changed = await self._db.execute(
            "UPDATE chargers SET certificate_required = ? WHERE id = ?",
            (int(required), charger_id),
        )
        return changed > 0
