"""Chargers, their connectors' statuses and what they report about themselves."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from csms.clock import normalise_ocpp_time
from csms.ocpp16.auth import PROFILE_TLS_CERTIFICATE
from storage.clock import now_text
from storage.db import Connection, Database, Row
from storage.sql import row_limit

# BootNotification field -> column.
_BOOT_FIELDS = {
    "chargePointVendor": "vendor",
    "chargePointModel": "model",
    "chargePointSerialNumber": "serial_number",
    "chargeBoxSerialNumber": "charge_box_serial_number",
    "firmwareVersion": "firmware_version",
    "iccid": "iccid",
    "imsi": "imsi",
    "meterType": "meter_type",
    "meterSerialNumber": "meter_serial_number",
}


@dataclass(frozen=True)
class ConnectorStatus:
    connector_id: int
    status: str
    error_code: str
    info: str | None
    vendor_id: str | None
    vendor_error_code: str | None
    status_at: str


def connector_details(row: Row) -> dict[int, dict[str, Any]]:
    """A charger row's connector details: connector id -> {"plugType", "maxPowerKw"}."""
    text = row["connector_details"]
    return {int(k): v for k, v in orjson.loads(text).items()} if text else {}


class ChargerStore:
    """What chargers report of themselves is telemetry, written with `durable=False` (see
    storage.db): a power cut may lose its last second, a process crash loses nothing."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, charger_id: str) -> Row | None:
        return await self._db.fetchone("SELECT * FROM chargers WHERE id = ?", (charger_id,))

    async def get_ignoring_case(self, charger_id: str) -> Row | None:
        """The charger an id names: its own, else the one whose id differs only in case
        (charge point ids are CiStrings in OCPP: compared without case)."""
        row = await self.get(charger_id)
        if row is None:
            row = await self._db.fetchone(
                "SELECT * FROM chargers WHERE lower(id) = lower(?) ORDER BY id LIMIT 1",
                (charger_id,),
            )
        return row

    async def list(self) -> list[Row]:
        return await self._db.fetchall("SELECT * FROM chargers ORDER BY id")

    async def find(
        self,
        after: str = "",
        limit: int = -1,
        *,
        registration_status: str | None = None,
        only_ids: Collection[str] | None = None,
        except_ids: Collection[str] | None = None,
        site_id: str | None = None,
    ) -> list[Row]:
        """Chargers in id order after `after`, filtered; `limit` -1 means all.

        `only_ids` and `except_ids` let a caller filter on what only it knows (who is
        connected right now); they go in as one JSON parameter, however many there are.
        """
        conditions = ["id > ?"]
        params: list[object] = [after]
        if registration_status is not None:
            conditions.append("registration_status = ?")
            params.append(registration_status)
        if site_id is not None:
            conditions.append("site_id = ?")
            params.append(site_id)
        if only_ids is not None:
            conditions.append(f"id IN ({self._db.dialect.json_values})")
            params.append(orjson.dumps(list(only_ids)).decode())
        if except_ids is not None:
            conditions.append(f"id NOT IN ({self._db.dialect.json_values})")
            params.append(orjson.dumps(list(except_ids)).decode())
        return await self._db.fetchall(
            f"SELECT * FROM chargers WHERE {' AND '.join(conditions)} ORDER BY id LIMIT ?",
            (*params, row_limit(limit)),
        )

    async def register(
        self,
        charger_id: str,
        *,
        name: str | None = None,
        location: str | None = None,
        registration_status: str = "Accepted",
    ) -> bool:
        """Add a charger; False when it, or an id that differs only in case, was registered
        already (nothing changes then)."""
        return await self._insert(
            {
                "id": charger_id,
                "name": name,
                "location": location,
                "registration_status": registration_status,
            }
        )

    async def register_with_password(
        self,
        charger_id: str,
        security_profile: int,
        password_hash: str,
        *,
        name: str | None = None,
        location: str | None = None,
        registration_status: str = "Accepted",
    ) -> bool:
        """register() with a password in one statement: it never exists without it."""
        return await self._insert(
            {
                "id": charger_id,
                "name": name,
                "location": location,
                "registration_status": registration_status,
                "security_profile": security_profile,
                "password_hash": password_hash,
            }
        )

    async def _insert(self, columns: dict[str, object]) -> bool:
        """Insert a charger unless its id, compared without case, is taken already.

        Charge point ids are CiStrings in OCPP: CP-1 and cp-1 name one charger.
        """
        values = {**columns, "created_at": now_text()}
        names, marks = ", ".join(values), ", ".join("?" * len(values))

        def insert(conn: Connection) -> bool:
            taken = conn.execute(
                "SELECT 1 FROM chargers WHERE lower(id) = lower(?)", (columns["id"],)
            ).fetchone()
            if taken:
                return False
            row = conn.execute(
                f"INSERT INTO chargers ({names}) VALUES ({marks})"
                " ON CONFLICT (id) DO NOTHING RETURNING id",
                tuple(values.values()),
            ).fetchone()
            return row is not None

        return await self._db.write(insert)

    async def set_security(
        self, charger_id: str, security_profile: int, password_hash: str | None
    ) -> bool:
        """Profile 1 or 2 with a password hash, or 0 with None; False when there is no such charger.
        Profile 3 (a client certificate) keeps the stored profile and password: another
        profile later takes it off 3 again.

        Takes effect from the charger's next connection.
        """
        if security_profile == PROFILE_TLS_CERTIFICATE:
            changed = await self._db.execute(
                "UPDATE chargers SET certificate_required = 1 WHERE id = ?", (charger_id,)
            )
            return changed > 0
        changed = await self._db.execute(
            "UPDATE chargers SET security_profile = ?, password_hash = ?, certificate_required = 0"
            " WHERE id = ?",
            (security_profile, password_hash, charger_id),
        )
        return changed > 0

    async def update(
        self,
        charger_id: str,
        *,
        name: str | None,
        location: str | None,
        registration_status: str,
    ) -> bool:
        """Set what the operator manages; False when there is no such charger."""
        changed = await self._db.execute(
            "UPDATE chargers SET name = ?, location = ?, registration_status = ? WHERE id = ?",
            (name, location, registration_status, charger_id),
        )
        return changed > 0

    async def set_time_zone(self, charger_id: str, time_zone: str | None) -> None:
        """The IANA zone its receipts give times in; None: the operator's."""
        await self._db.execute(
            "UPDATE chargers SET time_zone = ? WHERE id = ?", (time_zone, charger_id)
        )

    async def set_site(self, charger_id: str, site_id: str | None) -> None:
        """The site it belongs to; None: none. Raises Conflict when there is no such site."""
        await self._db.execute(
            "UPDATE chargers SET site_id = ? WHERE id = ?", (site_id, charger_id)
        )

    async def set_connector_details(
        self, charger_id: str, details: Mapping[int, Mapping[str, object]]
    ) -> None:
        """Each connector's plug type and maximum power as the operator entered them
        (connector id -> {"plugType", "maxPowerKw"}); an empty mapping removes them all."""
        text = (
            orjson.dumps({str(k): dict(v) for k, v in sorted(details.items())}).decode()
            if details
            else None
        )
        await self._db.execute(
            "UPDATE chargers SET connector_details = ? WHERE id = ?", (text, charger_id)
        )

    async def delete(self, charger_id: str) -> bool:
        """Remove a charger with its connectors and status history; False when unknown.

        Raises Conflict while transactions refer to it: they are billing
        records, so they are never deleted along with it.
        """
        return await self._db.execute("DELETE FROM chargers WHERE id = ?", (charger_id,)) > 0

    async def record_boot(self, charger_id: str, boot: Mapping[str, Any]) -> str:
        """Store what a BootNotification says; returns the charger's registration status."""
        columns = list(_BOOT_FIELDS.values())
        values = [boot.get(field) for field in _BOOT_FIELDS]
        now = now_text()
        assignments = ", ".join(f"{column} = ?" for column in columns)

        def record(conn: Connection) -> Row | None:
            conn.execute(
                f"UPDATE chargers SET {assignments}, last_boot_at = ?, last_seen_at = ?"
                " WHERE id = ?",
                (*values, now, now, charger_id),
            )
            return conn.execute(
                "SELECT registration_status FROM chargers WHERE id = ?", (charger_id,)
            ).fetchone()

        row = await self._db.write(record, durable=False)
        # A charger deleted while connected is treated as unknown: it may not proceed.
        return row["registration_status"] if row else "Rejected"

    async def record_seen(self, charger_id: str) -> None:
        await self._db.execute(
            "UPDATE chargers SET last_seen_at = ? WHERE id = ?",
            (now_text(), charger_id),
            durable=False,
        )

    async def record_status(self, charger_id: str, status: Mapping[str, Any]) -> None:
        """A StatusNotification: the connector's current status, and one more history row."""
        row = (
            charger_id,
            status["connectorId"],
            status["status"],
            status["errorCode"],
            status.get("info"),
            status.get("vendorId"),
            status.get("vendorErrorCode"),
        )
        received = now_text()
        timestamp = normalise_ocpp_time(status["timestamp"]) if "timestamp" in status else None

        def record(conn: Connection) -> None:
            conn.execute(
                "INSERT INTO status_history (charger_id, connector_id, status, error_code, info,"
                " vendor_id, vendor_error_code, timestamp, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*row, timestamp, received),
            )
            # A status queued while offline can arrive after a newer one: keep the newest.
            conn.execute(
                "INSERT INTO connectors (charger_id, connector_id, status, error_code, info,"
                " vendor_id, vendor_error_code, status_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (charger_id, connector_id) DO UPDATE SET status = excluded.status,"
                " error_code = excluded.error_code, info = excluded.info,"
                " vendor_id = excluded.vendor_id, vendor_error_code = excluded.vendor_error_code,"
                " status_at = excluded.status_at WHERE excluded.status_at >= connectors.status_at",
                (*row, timestamp or received),
            )

        await self._db.write(record, durable=False)

    async def connectors(self, charger_id: str) -> list[ConnectorStatus]:
        rows = await self._db.fetchall(
            "SELECT connector_id, status, error_code, info, vendor_id, vendor_error_code,"
            " status_at FROM connectors WHERE charger_id = ? ORDER BY connector_id",
            (charger_id,),
        )
        return [ConnectorStatus(**dict(row)) for row in rows]

    async def all_statuses(self) -> list[tuple[str, int, str, str]]:
        """Every connector's latest status: (charger id, connector id, status, its time)."""
        rows = await self._db.fetchall(
            "SELECT charger_id, connector_id, status, status_at FROM connectors"
        )
        return [(row[0], row[1], row[2], row[3]) for row in rows]

    async def connectors_of(self, charger_ids: Collection[str]) -> dict[str, list[ConnectorStatus]]:
        """Several chargers' connectors in one query: charger id -> its connectors, in order."""
        rows = await self._db.fetchall(
            "SELECT charger_id, connector_id, status, error_code, info, vendor_id,"
            " vendor_error_code, status_at FROM connectors"
            f" WHERE charger_id IN ({self._db.dialect.json_values})"
            " ORDER BY charger_id, connector_id",
            (orjson.dumps(list(charger_ids)).decode(),),
        )
        found: dict[str, list[ConnectorStatus]] = {charger_id: [] for charger_id in charger_ids}
        for row in rows:
            fields = dict(row)
            found[fields.pop("charger_id")].append(ConnectorStatus(**fields))
        return found

    async def status_history(self, charger_id: str, connector_id: int) -> list[Row]:
        return await self._db.fetchall(
            "SELECT * FROM status_history WHERE charger_id = ? AND connector_id = ? ORDER BY id",
            (charger_id, connector_id),
        )

    async def recent_status_history(self, charger_id: str, limit: int) -> list[Row]:
        """The latest `limit` status changes of all its connectors, newest first."""
        return await self._db.fetchall(
            "SELECT * FROM status_history WHERE charger_id = ? ORDER BY id DESC LIMIT ?",
            (charger_id, limit),
        )

    async def record_diagnostics_status(self, charger_id: str, status: str) -> None:
        await self._db.execute(
            "UPDATE chargers SET diagnostics_status = ?, diagnostics_status_at = ? WHERE id = ?",
            (status, now_text(), charger_id),
            durable=False,
        )

    async def record_firmware_status(self, charger_id: str, status: str) -> None:
        await self._db.execute(
            "UPDATE chargers SET firmware_status = ?, firmware_status_at = ? WHERE id = ?",
            (status, now_text(), charger_id),
            durable=False,
        )

    async def record_data_transfer(
        self, charger_id: str, request: Mapping[str, Any], status: str
    ) -> None:
        await self._db.execute(
            "INSERT INTO data_transfers (charger_id, vendor_id, message_id, data, status,"
            " received_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                charger_id,
                request["vendorId"],
                request.get("messageId"),
                request.get("data"),
                status,
                now_text(),
            ),
            durable=False,
        )
