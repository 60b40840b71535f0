"""Charging transactions and their meter values.

Chargers queue StartTransaction, MeterValues and StopTransaction while offline and
resend a message whose reply they lost, so every write here is idempotent: the same
StartTransaction gets the same id back, a second StopTransaction changes nothing, and a
meter value sent again is not stored again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from csms.ocpp16.metering import Reading, Sample
from storage.clock import now_text
from storage.db import Connection, Database, Row
from storage.sql import Dialect, row_limit

# OCPP's transactionId is a 32-bit integer (and so is the column on PostgreSQL): a larger
# one a charger names is none of ours, and is never bound to a query.
MAX_TRANSACTION_ID = 2**31 - 1
# The id tag statuses of a start the central system accepted; any other was refused.
ACCEPTED = "Accepted"


@dataclass(frozen=True)
class StartRequest:
    charger_id: str
    connector_id: int
    id_tag: str
    meter_start_wh: int
    started_at: str
    reservation_id: int | None = None


@dataclass(frozen=True)
class Linked:
    """The transaction that meter values were linked to; `refused`: its start was refused
    and it has not stopped, so the charger keeps running what it was told not to."""

    transaction_id: int
    refused: bool


@dataclass(frozen=True)
class Started:
    transaction_id: int
    id_tag_status: str
    duplicate: bool


class StopOutcome(Enum):
    STOPPED = "stopped"
    # Stopped now, although its start was refused: the charger ran it all the same, and
    # the meter moved meanwhile.
    REFUSED_RAN = "refused_ran"
    ALREADY_STOPPED = "already_stopped"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class TransactionFilter:
    """Which transactions a listing or an export covers; None matches anything."""

    charger_id: str | None = None
    connector_id: int | None = None
    id_tag: str | None = None
    started_from: str | None = None  # database time text, inclusive
    started_before: str | None = None  # exclusive
    open: bool | None = None  # True: not stopped yet; False: stopped


class TransactionStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._dialect = db.dialect

    async def start(
        self, request: StartRequest, id_tag_status: str, *, reject_concurrent: bool
    ) -> Started:
        """Open a transaction (or find the one this very StartTransaction opened before).

        With `reject_concurrent`, an Accepted tag that already has a running transaction
        is answered ConcurrentTx; the transaction is still recorded, as the charger may have
        started charging before asking. Running means accepted, not stopped and not lapsed
        (`lapse_on_boot`, `lapse_on_available`): a start that was refused, or one that can
        no longer be running, never locks the tag out.
        """
        key = (request.charger_id, request.connector_id, request.id_tag, request.started_at)

        def start(conn: Connection) -> Started:
            existing = conn.execute(
                "SELECT id, id_tag_status FROM transactions WHERE charger_id = ?"
                " AND connector_id = ? AND id_tag = ? AND started_at = ?",
                key,
            ).fetchone()
            if existing:
                return Started(existing["id"], existing["id_tag_status"], duplicate=True)
            status = id_tag_status
            if status == ACCEPTED and reject_concurrent:
                other = conn.execute(
                    "SELECT id FROM transactions WHERE id_tag = ? AND stopped_at IS NULL"
                    " AND lapsed_at IS NULL AND id_tag_status = ?",
                    (request.id_tag, ACCEPTED),
                ).fetchone()
                if other:
                    status = "ConcurrentTx"
            now = now_text()
            cursor = conn.execute(
                "INSERT INTO transactions (charger_id, connector_id, id_tag, id_tag_status,"
                " reservation_id, meter_start_wh, started_at, energy_wh, metered_at,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    *key[:3],
                    status,
                    request.reservation_id,
                    request.meter_start_wh,
                    request.started_at,
                    request.meter_start_wh,
                    request.started_at,
                    now,
                    now,
                ),
            )
            return Started(cursor.fetchone()["id"], status, duplicate=False)

        return await self._db.write(start)

    async def record_meter_values(
        self,
        charger_id: str,
        connector_id: int,
        transaction_id: int | None,
        samples: Sequence[Sample],
        reading: Reading,
    ) -> Linked | None:
        """Store samples; returns the transaction they were linked to (None: not linked).

        A transaction id the charger names but that is not its own is not trusted: the
        samples are kept, unlinked. They are telemetry (`durable=False`, see storage.db):
        what is billed comes from StartTransaction and StopTransaction, which are durable.
        """

        def record(conn: Connection) -> Linked | None:
            linked = None
            if transaction_id is not None:
                linked = _linked(conn, charger_id, transaction_id)
            owner = linked.transaction_id if linked else None
            _insert_samples(conn, self._dialect, charger_id, connector_id, owner, samples)
            if owner is not None:
                _update_reading(conn, owner, reading)
            return linked

        return await self._db.write(record, durable=False)

    async def stop(
        self,
        charger_id: str,
        transaction_id: int,
        *,
        meter_stop_wh: int,
        stopped_at: str,
        reason: str,
        id_tag: str | None,
        samples: Sequence[Sample],
    ) -> StopOutcome:
        if not 0 < transaction_id <= MAX_TRANSACTION_ID:
            return StopOutcome.UNKNOWN  # none of ours: nothing to look up

        def stop(conn: Connection) -> StopOutcome:
            row = conn.execute(
                "SELECT connector_id, stopped_at, id_tag_status, meter_start_wh FROM transactions"
                " WHERE id = ? AND charger_id = ?",
                (transaction_id, charger_id),
            ).fetchone()
            if row is None:
                return StopOutcome.UNKNOWN
            if row["stopped_at"] is not None:
                return StopOutcome.ALREADY_STOPPED
            _insert_samples(
                conn, self._dialect, charger_id, row["connector_id"], transaction_id, samples
            )
            conn.execute(
                "UPDATE transactions SET meter_stop_wh = ?, stopped_at = ?, stop_reason = ?,"
                " stop_id_tag = ?, energy_wh = ?, metered_at = ?, updated_at = ? WHERE id = ?",
                (
                    meter_stop_wh,
                    stopped_at,
                    reason,
                    id_tag,
                    meter_stop_wh,
                    stopped_at,
                    now_text(),
                    transaction_id,
                ),
            )
            ran = row["id_tag_status"] != ACCEPTED and meter_stop_wh > row["meter_start_wh"]
            return StopOutcome.REFUSED_RAN if ran else StopOutcome.STOPPED

        return await self._db.write(stop)

    async def lapse_on_boot(self, charger_id: str) -> int:
        """The charger booted: none of its open transactions can still be running.

        Returns how many lapsed (`start` no longer counts them for their tags)."""
        now = now_text()
        return await self._db.execute(
            "UPDATE transactions SET lapsed_at = ?, updated_at = ? WHERE charger_id = ?"
            " AND stopped_at IS NULL AND lapsed_at IS NULL",
            (now, now, charger_id),
        )

    async def lapse_on_available(self, charger_id: str, connector_id: int, at: str) -> int:
        """The connector reported Available at `at` (the charger's time, database form): the
        transactions on it that started no later can no longer be running."""
        now = now_text()
        return await self._db.execute(
            "UPDATE transactions SET lapsed_at = ?, updated_at = ? WHERE charger_id = ?"
            " AND connector_id = ? AND stopped_at IS NULL AND lapsed_at IS NULL"
            " AND started_at <= ?",
            (now, now, charger_id, connector_id, at),
        )

    async def get(self, transaction_id: int) -> Row | None:
        return await self._db.fetchone("SELECT * FROM transactions WHERE id = ?", (transaction_id,))

    async def find(
        self, where: TransactionFilter, *, before: int | None = None, limit: int = -1
    ) -> list[Row]:
        """Matching transactions, newest (highest id) first, those below id `before`."""
        conditions: list[str] = []
        params: list[object] = []
        for condition, value in (
            ("charger_id = ?", where.charger_id),
            ("connector_id = ?", where.connector_id),
            ("id_tag = ?", where.id_tag),
            ("started_at >= ?", where.started_from),
            ("started_at < ?", where.started_before),
            ("id < ?", before),
        ):
            if value is not None:
                conditions.append(condition)
                params.append(value)
        if where.open is not None:
            conditions.append("stopped_at IS NULL" if where.open else "stopped_at IS NOT NULL")
        clause = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        return await self._db.fetchall(
            f"SELECT * FROM transactions{clause} ORDER BY id DESC LIMIT ?",
            (*params, row_limit(limit)),
        )

    async def meter_values(self, transaction_id: int) -> list[Row]:
        return await self._db.fetchall(
            "SELECT * FROM meter_values WHERE transaction_id = ? ORDER BY timestamp, id",
            (transaction_id,),
        )

    async def open_on(self, charger_id: str, connector_id: int) -> list[Row]:
        return await self._db.fetchall(
            "SELECT * FROM transactions WHERE charger_id = ? AND connector_id = ?"
            " AND stopped_at IS NULL ORDER BY id",
            (charger_id, connector_id),
        )


def _linked(conn: Connection, charger_id: str, transaction_id: int) -> Linked | None:
    """The charger's own transaction of that id, or None."""
    if not 0 < transaction_id <= MAX_TRANSACTION_ID:
        return None
    row = conn.execute(
        "SELECT id_tag_status, stopped_at FROM transactions WHERE id = ? AND charger_id = ?",
        (transaction_id, charger_id),
    ).fetchone()
    if row is None:
        return None
    refused = row["id_tag_status"] != ACCEPTED and row["stopped_at"] is None
    return Linked(transaction_id, refused)


def _insert_samples(
    conn: Connection,
    dialect: Dialect,
    charger_id: str,
    connector_id: int,
    transaction_id: int | None,
    samples: Sequence[Sample],
) -> None:
    """Store the samples not stored before.

    A charger resends a MeterValues whose reply it lost: a sample whose key (`Sample.key`)
    this charger, connector and transaction already have is that same sample, and is not
    stored again (nor is a second one with the same key in one message). The check and
    the insert are one unit of work, and a charger's messages are handled one at a time;
    on PostgreSQL the charger's row stays locked until the commit, for a charger whose old
    connection on one node is still being served as it reconnects to another.
    """
    if not samples:
        return
    if dialect.for_update:  # SQLite has one writer at a time already
        conn.execute(
            f"SELECT 1 FROM chargers WHERE id = ?{dialect.for_update}", (charger_id,)
        ).fetchall()
    fresh = _not_stored(conn, dialect, charger_id, connector_id, transaction_id, samples)
    if not fresh:
        return
    received = now_text()
    conn.executemany(
        "INSERT INTO meter_values (charger_id, connector_id, transaction_id, timestamp,"
        " measurand, phase, unit, context, location, format, value, normalised, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                charger_id,
                connector_id,
                transaction_id,
                s.timestamp,
                s.measurand,
                s.phase,
                s.unit,
                s.context,
                s.location,
                s.format,
                s.value,
                # For queries in SQL; the exact value is `value` in `unit` (see metering).
                None if s.normalised is None else float(s.normalised),
                received,
            )
            for s in fresh
        ],
    )


def _not_stored(
    conn: Connection,
    dialect: Dialect,
    charger_id: str,
    connector_id: int,
    transaction_id: int | None,
    samples: Sequence[Sample],
) -> list[Sample]:
    """The samples whose key is not stored yet, each key once, in their order."""
    timestamps = json.dumps(sorted({s.timestamp for s in samples}))
    transaction = "transaction_id IS NULL" if transaction_id is None else "transaction_id = ?"
    rows = conn.execute(
        "SELECT timestamp, measurand, phase, location, context, unit, value FROM meter_values"
        f" WHERE {transaction} AND timestamp IN ({dialect.json_values})"
        " AND charger_id = ? AND connector_id = ?",
        (
            *(() if transaction_id is None else (transaction_id,)),
            timestamps,
            charger_id,
            connector_id,
        ),
    ).fetchall()
    seen = {tuple(row) for row in rows}
    fresh = []
    for s in samples:
        if s.key not in seen:
            seen.add(s.key)
            fresh.append(s)
    return fresh


def _update_reading(conn: Connection, transaction_id: int, reading: Reading) -> None:
    """Keep the transaction's latest energy and power; late, older samples do not roll it back."""
    if reading.at is None:
        return
    conn.execute(
        "UPDATE transactions SET energy_wh = COALESCE(?, energy_wh),"
        " power_w = COALESCE(?, power_w), metered_at = ?, updated_at = ?"
        " WHERE id = ? AND stopped_at IS NULL AND (metered_at IS NULL OR metered_at <= ?)",
        (reading.energy_wh, reading.power_w, reading.at, now_text(), transaction_id, reading.at),
    )
