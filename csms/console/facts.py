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
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from csms.cluster.view import ClusterView
from payments.alerts import LIVE_HOLDS
from payments.currency import format_money
from payments.reservation_model import ACTIVE, State
from storage.clock import to_text, utc_now
from storage.db import Database

HeldBeforeStart = Callable[[list[str]], Awaitable[dict[tuple[str, int], str]]]
_ACTIVE = tuple(sorted(str(s) for s in ACTIVE))
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
        self._last: tuple[float, dict[str, str]] | None = None
        self._computing: asyncio.Lock = asyncio.Lock()

    async def live(self, computed_after: float | None = None) -> dict[str, str]:
        """The live values, at most `live_interval` seconds old, and computed after the
        monotonic time `computed_after` when given (a page just rendered must not be sent
        values older than itself)."""
        async with self._computing:
            last = self._last
            if (
                last is not None
                and time.monotonic() - last[0] < self._interval
                and (computed_after is None or last[0] > computed_after)
            ):
                return last[1]
            values = await self._compute_live()
            self._last = (time.monotonic(), values)
            return values

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
        for status, count in Counter(s for (_, n), s in statuses.items() if n > 0).items():
            values[f"overview:connectors:{status}"] = str(count)
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
        before = self._clock() - self._offline_after
        rows = await self._db.fetchall(
            "SELECT id, last_seen_at FROM chargers WHERE registration_status = 'Accepted'"
            " ORDER BY id"
        )
        found = []
        for row in rows:
            seen: Any = row["last_seen_at"]
            if self._view.is_online(row["id"]) or seen is None or seen >= to_text(before):
                continue
            found.append(
                Attention(
                    "offline", row["id"], f"offline since {seen}", f"/console/chargers/{row['id']}"
                )
            )
        return found
