"""Sites: where chargers stand, as the operator registers them.

A site has an id of the operator's choice, a name, an address (lines separated by
newlines), an IANA time zone, an owner (`owner_id`, an owner of the payments side, kept as
plain text: the two schemas share no foreign key), a split rule (JSON of
payments.split.SplitRule; None: no split) and a support contact (e-mail, phone, URL).

Chargers belong to at most one site (`chargers.site_id`, set by ChargerStore.set_site). A
site with chargers is not deleted: `delete` says which chargers keep it, in one unit of work
with the delete, so a charger joining meanwhile cannot be orphaned (the foreign key refuses
it too). Values are checked by the caller (the API, the CLI); the store writes what it is
given.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import orjson

from storage.clock import now_text
from storage.db import Connection, Database, Row
from storage.sql import row_limit


@dataclass(frozen=True)
class Site:
    id: str
    name: str
    time_zone: str  # IANA, e.g. Europe/Berlin
    address: str | None = None  # lines separated by newlines
    owner_id: str | None = None
    split: dict[str, object] | None = None  # payments.split.SplitRule.to_dict()
    support_email: str | None = None
    support_phone: str | None = None
    support_url: str | None = None

    @property
    def address_lines(self) -> list[str]:
        return [line.strip() for line in (self.address or "").splitlines() if line.strip()]


_COLUMNS = tuple(f.name for f in fields(Site))


def site_of(row: Row) -> Site:
    values = {name: row[name] for name in _COLUMNS}
    values["split"] = orjson.loads(row["split"]) if row["split"] else None
    return Site(**values)


def _values(site: Site) -> dict[str, object]:
    values = asdict(site)
    values["split"] = orjson.dumps(site.split).decode() if site.split is not None else None
    return values


@dataclass(frozen=True)
class Removal:
    """What `delete` did: removed, or not because chargers still belong to the site."""

    found: bool
    removed: bool
    chargers: tuple[str, ...] = ()  # the site's chargers, when that kept it


class SiteStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, site_id: str) -> Site | None:
        row = await self._db.fetchone("SELECT * FROM sites WHERE id = ?", (site_id,))
        return site_of(row) if row else None

    async def find(self, after: str = "", limit: int = -1) -> list[Site]:
        """Sites in id order after `after`; `limit` -1 means all."""
        rows = await self._db.fetchall(
            "SELECT * FROM sites WHERE id > ? ORDER BY id LIMIT ?", (after, row_limit(limit))
        )
        return [site_of(row) for row in rows]

    async def add(self, site: Site) -> bool:
        """Add a site; False when its id is taken (nothing changes then)."""
        values = _values(site)
        now = now_text()
        values.update(created_at=now, updated_at=now)
        names, marks = ", ".join(values), ", ".join("?" * len(values))

        def insert(conn: Connection) -> bool:
            row = conn.execute(
                f"INSERT INTO sites ({names}) VALUES ({marks}) ON CONFLICT (id) DO NOTHING"
                " RETURNING id",
                tuple(values.values()),
            ).fetchone()
            return row is not None

        return await self._db.write(insert)

    async def update(self, site: Site) -> bool:
        """Replace what the operator manages of a site; False when there is no such site."""
        values = _values(site)
        site_id = values.pop("id")
        values["updated_at"] = now_text()
        assignments = ", ".join(f"{name} = ?" for name in values)
        changed = await self._db.execute(
            f"UPDATE sites SET {assignments} WHERE id = ?", (*values.values(), site_id)
        )
        return changed > 0

    async def chargers(self, site_id: str) -> list[str]:
        """The ids of the site's chargers, in order."""
        rows = await self._db.fetchall(
            "SELECT id FROM chargers WHERE site_id = ? ORDER BY id", (site_id,)
        )
        return [row["id"] for row in rows]

    async def delete(self, site_id: str) -> Removal:
        """Remove a site that no charger belongs to."""

        def delete(conn: Connection) -> Removal:
            chargers = conn.execute(
                "SELECT id FROM chargers WHERE site_id = ? ORDER BY id", (site_id,)
            ).fetchall()
            if chargers:
                return Removal(found=True, removed=False, chargers=tuple(r[0] for r in chargers))
            gone = conn.execute("DELETE FROM sites WHERE id = ? RETURNING id", (site_id,))
            found = gone.fetchone() is not None
            return Removal(found=found, removed=found)

        return await self._db.write(delete)
