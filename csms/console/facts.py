"""What the console's overview and its live updates show, read from the shared database.

Read-only. Everything comes from the tables every node writes (connectors, reservations,
transactions, alerts), plus which chargers are online from the cluster view, so a console
served by any node shows the whole fleet. The live values are computed at most once per
`live_interval` however many consoles are open (the last result is shared), so their cost
grows with the fleet, not with the operators watching it.

Live values are a flat map of keys to the text the page shows (see `live`):
`charger:{id}:online`, `connector:{id}:{n}`, `session:{reservation}:state`,
`session:{reservation}:energy` and the `overview:*` counters.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from csms.cluster.view import ClusterView
from payments.alerts import LIVE_HOLDS
from payments.currency import format_money
from payments.reservation_model import ACTIVE, State
from storage.clock import to_text, utc_now
from storage.db import Database

HeldBeforeStart = Callable[[list[str]], Awaitable[dict[tuple[str, int], str]]]
_ACTIVE = tuple(sorted(str(s) for s in ACTIVE))
# A connector's statuses in OCPP 1.6, with Reserved also for a paid session's hold.
CONNECTOR_STATUSES = (
    "Available", "Preparing", "Charging", "SuspendedEVSE", "SuspendedEV", "Finishing",
    "Reserved", "Unavailable", "Faulted",
)  # fmt: skip
# Chargers listed one by one among those offline too long; the rest are counted.
_OFFLINE_SHOWN = 20
# Finished sessions stay in the live values this long, so a page sees them end.
_RECENT = timedelta(hours=1)


@dataclass(frozen=True)
class Attention:
    """One thing on the overview that needs a person."""

    kind: str  # needs_review | dispute | outbox_backlog | offline
    subject: str
    detail: str
    link: str | None = None


@dataclass(frozen=True)
class Overview:
    online: int
    offline: int
    connectors: dict[str, int]  # status -> count ("Reserved" where a payment holds it)
    charging: int
    energy_today_wh: int
    revenue_today: list[str]  # "12.34 EUR", one per currency
    attention: list[Attention] = field(default_factory=list)


def kwh(wh: int) -> str:
    return f"{wh / 1000:.3f} kWh"


class ConsoleFacts:
    def __init__(
        self,
        db: Database,
        view: ClusterView,
        held_before_start: HeldBeforeStart,
        time_zone: str,
        offline_after: timedelta,
        *,
        live_interval: float = 1.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._db = db
        self._view = view
        self._held = held_before_start
        self._zone = ZoneInfo(time_zone)
        self._offline_after = offline_after
        self._interval = live_interval
        self._clock = clock
        self._computed_at = -math.inf  # monotonic
        self._version = 0
        self._values: dict[str, str] = {}
        self._changes: dict[str, str] = {}  # what changed from version - 1 to version
        self._computing: asyncio.Lock = asyncio.Lock()

    async def live(self, computed_after: float | None = None) -> dict[str, str]:
        """The live values, at most `live_interval` seconds old, and computed after the
        monotonic time `computed_after` when given (a page just rendered must not be sent
        values older than itself)."""
        await self._refresh(computed_after)
        return self._values

    async def changes_since(
        self, version: int | None, computed_after: float | None = None
    ) -> tuple[int, dict[str, str]]:
        """(the current version, what changed since `version`): a stream that saw the
        previous version gets only the changes, computed once for all streams; one that saw
        none (None) or fell further behind gets every value."""
        await self._refresh(computed_after)
        if version == self._version:
            return version, {}
        if version == self._version - 1:
            return self._version, self._changes
        return self._version, self._values

    async def _refresh(self, computed_after: float | None) -> None:
        async with self._computing:
            if time.monotonic() - self._computed_at < self._interval and (
                computed_after is None or self._computed_at > computed_after
            ):
                return
            values = await self._compute_live()
            previous = self._values
            self._changes = {k: v for k, v in values.items() if previous.get(k) != v}
            self._values = values
            self._version += 1
            self._computed_at = time.monotonic()

    async def _compute_live(self) -> dict[str, str]:
        values: dict[str, str] = {}
        chargers = [row["id"] for row in await self._db.fetchall("SELECT id FROM chargers")]
        online = 0
        for charger_id in chargers:
            is_online = self._view.is_online(charger_id)
            online += is_online
            values[f"charger:{charger_id}:online"] = "online" if is_online else "offline"
        statuses = await self._connector_statuses(chargers)
        for (charger_id, connector_id), status in statuses.items():
            values[f"connector:{charger_id}:{connector_id}"] = status
        since = to_text(self._clock() - _RECENT)
        rows = await self._db.fetchall(
            "SELECT id, state, energy_wh FROM reservations WHERE state IN"
            f" ({', '.join('?' * len(_ACTIVE))}) OR updated_at >= ?",
            (*_ACTIVE, since),
        )
        for row in rows:
            values[f"session:{row['id']}:state"] = row["state"]
            values[f"session:{row['id']}:energy"] = kwh(row["energy_wh"])
        values["overview:online"] = str(online)
        values["overview:offline"] = str(len(chargers) - online)
        values["overview:charging"] = str(await self._charging())
        counts = Counter(s for (_, n), s in statuses.items() if n > 0)
        # Every status OCPP has, 0 included: a count that falls to 0 must reach the page too.
        for status in sorted(set(CONNECTOR_STATUSES) | set(counts)):
            values[f"overview:connectors:{status}"] = str(counts[status])
        return values

    async def _connector_statuses(self, chargers: list[str]) -> dict[tuple[str, int], str]:
        """Each connector's status as the console shows it: Reserved where the charger says
        Available and a paid session holds it before its charge began."""
        rows = await self._db.fetchall("SELECT charger_id, connector_id, status FROM connectors")
        held = await self._held(chargers) if chargers else {}
        statuses: dict[tuple[str, int], str] = {}
        for row in rows:
            place = (row["charger_id"], row["connector_id"])
            reserved = row["status"] == "Available" and place in held
            statuses[place] = "Reserved" if reserved else row["status"]
        return statuses

    async def _charging(self) -> int:
        row = await self._db.fetchone(
            "SELECT COUNT(*) AS n FROM transactions WHERE stopped_at IS NULL AND lapsed_at IS NULL"
        )
        return int(row["n"]) if row else 0

    async def overview(self) -> Overview:
        live = await self.live()
        connectors = {
            key.removeprefix("overview:connectors:"): int(value)
            for key, value in live.items()
            if key.startswith("overview:connectors:")
        }
        today = self._start_of_today()
        return Overview(
            online=int(live["overview:online"]),
            offline=int(live["overview:offline"]),
            connectors=dict(sorted(connectors.items())),
            charging=int(live["overview:charging"]),
            energy_today_wh=await self._energy_since(today),
            revenue_today=await self._revenue_since(today),
            attention=await self._attention(),
        )

    def _start_of_today(self) -> str:
        local = self._clock().astimezone(self._zone)
        midnight = datetime(local.year, local.month, local.day, tzinfo=self._zone)
        return to_text(midnight)

    async def _energy_since(self, since: str) -> int:
        """Energy of the charges stopped since `since`, and so far of those still running."""
        row = await self._db.fetchone(
            "SELECT COALESCE(SUM(COALESCE(meter_stop_wh, energy_wh, meter_start_wh)"
            " - meter_start_wh), 0) AS wh FROM transactions"
            " WHERE lapsed_at IS NULL AND (stopped_at >= ? OR stopped_at IS NULL)"
            " AND started_at >= ?",
            (since, to_text(self._clock() - timedelta(days=2))),
        )
        return max(int(row["wh"]), 0) if row else 0

    async def _revenue_since(self, since: str) -> list[str]:
        """Captured minus refunded since `since`, per currency."""
        captured = await self._db.fetchall(
            "SELECT currency, SUM(captured_amount) AS amount FROM reservations"
            " WHERE captured_amount > 0 AND updated_at >= ? GROUP BY currency",
            (since,),
        )
        refunded = await self._db.fetchall(
            "SELECT r.currency, SUM(f.amount) AS amount FROM refunds f"
            " JOIN reservations r ON r.id = f.reservation_id"
            " WHERE f.status = 'succeeded' AND f.updated_at >= ? GROUP BY r.currency",
            (since,),
        )
        totals: Counter[str] = Counter()
        for row in captured:
            totals[row["currency"]] += int(row["amount"])
        for row in refunded:
            totals[row["currency"]] -= int(row["amount"])
        return [format_money(amount, currency) for currency, amount in sorted(totals.items())]

    async def _attention(self) -> list[Attention]:
        found: list[Attention] = []
        for row in await self._db.fetchall(
            "SELECT id, hold, hold_amount, currency FROM reservations WHERE state = ?"
            " AND hold IN (?, ?, ?) ORDER BY updated_at",
            (str(State.NEEDS_REVIEW), *LIVE_HOLDS),
        ):
            found.append(
                Attention(
                    "needs_review",
                    row["id"],
                    f"in review with {format_money(row['hold_amount'], row['currency'])}"
                    f" still held ({row['hold']})",
                    f"/console/sessions/{row['id']}",
                )
            )
        for row in await self._db.fetchall(
            "SELECT reservation_id, stripe_id, at FROM money_audit"
            " WHERE action = 'dispute opened' ORDER BY id DESC LIMIT 20"
        ):
            link = f"/console/sessions/{row['reservation_id']}" if row["reservation_id"] else None
            found.append(Attention("dispute", row["stripe_id"] or "", f"opened {row['at']}", link))
        backlog = await self._db.fetchone(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM effects WHERE status = 'pending'"
            " AND created_at < ?",
            (to_text(self._clock() - timedelta(minutes=1)),),
        )
        if backlog and int(backlog["n"]):
            found.append(
                Attention(
                    "outbox_backlog",
                    "outbox",
                    f"{backlog['n']} Stripe or charger effects pending, the oldest since"
                    f" {backlog['oldest']}",
                )
            )
        found.extend(await self._offline_too_long())
        return found

    async def _offline_too_long(self) -> list[Attention]:
        """Chargers offline longer than the setting, the longest first; past
        `_OFFLINE_SHOWN` of them, one line says how many more."""
        before = to_text(self._clock() - self._offline_after)
        rows = await self._db.fetchall(
            "SELECT id, last_seen_at FROM chargers WHERE registration_status = 'Accepted'"
            " AND last_seen_at IS NOT NULL AND last_seen_at < ? ORDER BY last_seen_at, id",
            (before,),
        )
        offline = [row for row in rows if not self._view.is_online(row["id"])]
        found = [
            Attention(
                "offline", row["id"], f"offline since {row['last_seen_at']}",
                f"/console/chargers/{row['id']}",
            )
            for row in offline[:_OFFLINE_SHOWN]
        ]  # fmt: skip
        if len(offline) > _OFFLINE_SHOWN:
            more = len(offline) - _OFFLINE_SHOWN
            found.append(
                Attention(
                    "offline", f"{more} more", "offline as long", "/console/chargers?online=offline"
                )
            )
        return found
