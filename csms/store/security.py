"""What chargers report through the security extension of OCPP 1.6: security events, and
the progress of signed firmware updates and log uploads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from storage.clock import now_text
from storage.db import Connection, Database, Row
from storage.sql import row_limit

ReportKind = Literal["firmware", "log"]

# The columns on `chargers` holding each kind's latest report.
_LATEST = {
    "firmware": (
        "signed_firmware_status",
        "signed_firmware_request_id",
        "signed_firmware_status_at",
    ),
    "log": ("log_status", "log_request_id", "log_status_at"),
}


@dataclass(frozen=True)
class SecurityEvent:
    """A SecurityEventNotification as stored; `timestamp` normalised (csms.clock)."""

    charger_id: str
    type: str
    timestamp: str
    tech_info: str | None
    critical: bool


@dataclass(frozen=True)
class EventFilter:
    """Which events to list; None matches any. `since` inclusive, `until` exclusive, both
    compared with the event's own timestamp."""

    charger_id: str | None = None
    type: str | None = None
    critical: bool | None = None
    since: str | None = None
    until: str | None = None


class SecurityStore:
    """Security events are kept durably (an operator may have to account for them); the
    firmware and log progress reports are telemetry, written with `durable=False`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record_event(self, event: SecurityEvent) -> int:
        """Store one event; a critical one is due an operator alert. Returns its id."""

        def record(conn: Connection) -> int:
            row = conn.execute(
                "INSERT INTO security_events (charger_id, type, timestamp, tech_info, critical,"
                " alert_due, received_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    event.charger_id,
                    event.type,
                    event.timestamp,
                    event.tech_info,
                    int(event.critical),
                    int(event.critical),
                    now_text(),
                ),
            ).fetchone()
            return int(row["id"])

        return await self._db.write(record)

    async def events(
        self, where: EventFilter, *, before: int | None = None, limit: int = -1
    ) -> list[Row]:
        """Matching events with an id below `before`, newest first; `limit` -1 means all."""
        conditions: list[str] = ["1 = 1"]
        params: list[object] = []
        for column, value in (
            ("charger_id = ?", where.charger_id),
            ("type = ?", where.type),
            ("critical = ?", None if where.critical is None else int(where.critical)),
            ("timestamp >= ?", where.since),
            ("timestamp < ?", where.until),
            ("id < ?", before),
        ):
            if value is not None:
                conditions.append(column)
                params.append(value)
        return await self._db.fetchall(
            f"SELECT * FROM security_events WHERE {' AND '.join(conditions)}"
            " ORDER BY id DESC LIMIT ?",
            (*params, row_limit(limit)),
        )

    async def record_report(
        self, charger_id: str, kind: ReportKind, status: str, request_id: int | None
    ) -> None:
        """A SignedFirmwareStatusNotification ("firmware") or LogStatusNotification ("log"):
        one more history row, and the charger's latest of that kind."""
        status_column, request_column, at_column = _LATEST[kind]
        received = now_text()

        def record(conn: Connection) -> None:
            conn.execute(
                "INSERT INTO log_firmware_statuses (charger_id, kind, status, request_id,"
                " received_at) VALUES (?, ?, ?, ?, ?)",
                (charger_id, kind, status, request_id, received),
            )
            conn.execute(
                f"UPDATE chargers SET {status_column} = ?, {request_column} = ?,"
                f" {at_column} = ? WHERE id = ?",
                (status, request_id, received, charger_id),
            )

        await self._db.write(record, durable=False)

    async def reports(
        self,
        charger_id: str,
        kind: ReportKind | None = None,
        *,
        before: int | None = None,
        limit: int = -1,
    ) -> list[Row]:
        """A charger's firmware and log progress reports, newest first."""
        conditions = ["charger_id = ?"]
        params: list[object] = [charger_id]
        if kind is not None:
            conditions.append("kind = ?")
            params.append(kind)
        if before is not None:
            conditions.append("id < ?")
            params.append(before)
        return await self._db.fetchall(
            f"SELECT * FROM log_firmware_statuses WHERE {' AND '.join(conditions)}"
            " ORDER BY id DESC LIMIT ?",
            (*params, row_limit(limit)),
        )
