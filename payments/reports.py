"""Reports for finance: energy, sessions and revenue per day and per charger.

What is counted, in the operator's time zone (`[operator] time_zone`):
- **paid sessions**: the captured payments whose charge stopped in the day (the charger's
  StopTransaction time, else its last meter reading, else when it was paid:
  `payments.statements_store.stop_moment`, as owners' statements count them), with the energy
  they were billed for (`billed_wh`), what was captured and what was refunded of it (as the
  refunds stand now, whatever day they happened), and revenue = captured - refunded;
- **transactions**: every OCPP transaction that stopped in the day, paid or not (an id tag
  session, a free one), with the energy its meter delivered (stop register - start register).

Money is kept per currency, in integer minor units, and never added across currencies: a
day or a charger has one `Money` per currency it took money in. A day of the range with
nothing to count is still a row, with zeros, so that the daily report has every day.

`daily` and `by_charger` are pure: they group plain rows. `Reports` reads those rows; a
session stops within its card hold's life of its creation (7 days at most), so the
sessions read are those created from `LOOKBACK` before the range's start to its end.

Contract: the reads go through the database's thread and touch only their arguments' rows;
nothing is written.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from payments.codec import decode_reservation
from payments.ports import ChargerInfo
from payments.reservation_model import Hold
from payments.reservation_transfers import billed_wh
from payments.statements_store import LOOKBACK, stop_moment
from storage.clock import to_text
from storage.db import Database

MAX_DAYS = 366
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

ChargerLookup = Callable[[str], Awaitable[ChargerInfo | None]]


class RangeError(ValueError):
    """A date range that cannot be reported on; `field` is "from" or "to"."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_day(text: str | None, field: str) -> date:
    if not text or not _DATE.match(text):
        given = (text or "")[:20]
        raise RangeError(field, f"a date as YYYY-MM-DD (e.g. 2026-11-30), got {given!r}")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise RangeError(field, f"not a date: {text!r}") from None
    if not 1970 <= day.year <= 9998:
        raise RangeError(field, "a date from 1970 to 9998")
    return day


@dataclass(frozen=True)
class DateRange:
    """Days `first` to `last`, both included, in the operator's time zone."""

    first: date
    last: date

    @classmethod
    def parse(cls, first: str | None, last: str | None) -> DateRange:
        """From the query's `from` and `to`: from <= to, at most `MAX_DAYS` days."""
        start, end = parse_day(first, "from"), parse_day(last, "to")
        if end < start:
            raise RangeError("to", f"must not be before from ({start.isoformat()})")
        if (end - start).days + 1 > MAX_DAYS:
            raise RangeError("to", f"a range of at most {MAX_DAYS} days")
        return cls(start, end)

    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    def bounds(self, zone: tzinfo) -> tuple[datetime, datetime]:
        """The range in `zone` as [start, end) instants in UTC."""
        start = datetime.combine(self.first, time(), tzinfo=zone)
        end = datetime.combine(self.last + timedelta(days=1), time(), tzinfo=zone)
        return start.astimezone(UTC), end.astimezone(UTC)


@dataclass(frozen=True)
class PaidSession:
    """A captured payment, as the store read it."""

    reservation_id: str
    charger_id: str
    stopped_at: datetime
    currency: str
    energy_wh: int  # billed
    captured: int
    refunded: int


@dataclass(frozen=True)
class Transaction:
    """A stopped OCPP transaction, paid or not."""

    charger_id: str
    stopped_at: datetime
    energy_wh: int  # delivered


@dataclass(frozen=True)
class Money:
    """Paid sessions in one currency, amounts in its minor units."""

    currency: str
    sessions: int = 0
    energy_wh: int = 0
    captured: int = 0
    refunded: int = 0

    @property
    def revenue(self) -> int:
        return self.captured - self.refunded

    def plus(self, session: PaidSession) -> Money:
        return Money(
            self.currency,
            self.sessions + 1,
            self.energy_wh + session.energy_wh,
            self.captured + session.captured,
            self.refunded + session.refunded,
        )


@dataclass
class Figures:
    """What a day or a charger counts: transactions, and paid sessions by currency."""

    transactions: int = 0
    transaction_energy_wh: int = 0
    money: dict[str, Money] = field(default_factory=dict)

    def add_session(self, session: PaidSession) -> None:
        current = self.money.get(session.currency, Money(session.currency))
        self.money[session.currency] = current.plus(session)

    def add_transaction(self, transaction: Transaction) -> None:
        self.transactions += 1
        self.transaction_energy_wh += transaction.energy_wh

    def currencies(self) -> tuple[Money, ...]:
        return tuple(self.money[c] for c in sorted(self.money))


@dataclass(frozen=True)
class DayRow:
    day: date
    transactions: int
    transaction_energy_wh: int
    money: tuple[Money, ...]


@dataclass(frozen=True)
class ChargerRow:
    charger_id: str
    name: str | None
    transactions: int
    transaction_energy_wh: int
    money: tuple[Money, ...]


def local_day(moment: datetime, zone: tzinfo) -> date:
    return moment.astimezone(zone).date()


def daily(
    dates: DateRange,
    zone: tzinfo,
    sessions: Iterable[PaidSession],
    transactions: Iterable[Transaction],
) -> list[DayRow]:
    """Every day of the range, in order, with zeros where nothing stopped; rows outside the
    range are left out."""
    figures = {day: Figures() for day in dates.days()}
    for s in sessions:
        if (day := local_day(s.stopped_at, zone)) in figures:
            figures[day].add_session(s)
    for t in transactions:
        if (day := local_day(t.stopped_at, zone)) in figures:
            figures[day].add_transaction(t)
    return [
        DayRow(day, f.transactions, f.transaction_energy_wh, f.currencies())
        for day, f in figures.items()
    ]


def by_charger(
    dates: DateRange,
    zone: tzinfo,
    sessions: Iterable[PaidSession],
    transactions: Iterable[Transaction],
    names: dict[str, str | None],
) -> list[ChargerRow]:
    """The chargers with a paid session or a transaction stopped in the range, by id."""
    figures: dict[str, Figures] = {}
    for s in sessions:
        if dates.first <= local_day(s.stopped_at, zone) <= dates.last:
            figures.setdefault(s.charger_id, Figures()).add_session(s)
    for t in transactions:
        if dates.first <= local_day(t.stopped_at, zone) <= dates.last:
            figures.setdefault(t.charger_id, Figures()).add_transaction(t)
    return [
        ChargerRow(
            charger_id,
            names.get(charger_id),
            f.transactions,
            f.transaction_energy_wh,
            f.currencies(),
        )
        for charger_id, f in sorted(figures.items())
    ]


def totals(rows: Iterable[DayRow | ChargerRow]) -> tuple[Money, ...]:
    """The rows' money added up, per currency."""
    summed: dict[str, Money] = {}
    for row in rows:
        for m in row.money:
            before = summed.get(m.currency, Money(m.currency))
            summed[m.currency] = Money(
                m.currency,
                before.sessions + m.sessions,
                before.energy_wh + m.energy_wh,
                before.captured + m.captured,
                before.refunded + m.refunded,
            )
    return tuple(summed[c] for c in sorted(summed))


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Reports:
    """The reports, read from the database, in the operator's time zone."""

    def __init__(self, db: Database, charger_info: ChargerLookup, zone: tzinfo) -> None:
        self.db = db
        self.charger_info = charger_info
        self.zone = zone

    async def daily(self, dates: DateRange, charger_id: str | None = None) -> list[DayRow]:
        sessions, transactions = await self._rows(dates, charger_id)
        return daily(dates, self.zone, sessions, transactions)

    async def chargers(self, dates: DateRange) -> list[ChargerRow]:
        sessions, transactions = await self._rows(dates, None)
        ids = {s.charger_id for s in sessions} | {t.charger_id for t in transactions}
        names: dict[str, str | None] = {}
        for charger_id in sorted(ids):
            info = await self.charger_info(charger_id)
            names[charger_id] = info["name"] if info else None
        return by_charger(dates, self.zone, sessions, transactions, names)

    async def _rows(
        self, dates: DateRange, charger_id: str | None
    ) -> tuple[list[PaidSession], list[Transaction]]:
        start, end = dates.bounds(self.zone)
        return (
            await self.paid_sessions(start, end, charger_id),
            await self.transactions(start, end, charger_id),
        )

    async def paid_sessions(
        self, start: datetime, end: datetime, charger_id: str | None = None
    ) -> list[PaidSession]:
        """Captured payments whose charge stopped in [start, end)."""
        where, args = _charger_filter(charger_id)
        rows = await self.db.fetchall(
            "SELECT data FROM reservations WHERE hold = ? AND created_at >= ? AND created_at < ?"
            f"{where} ORDER BY created_at, id",
            (Hold.CAPTURED.value, to_text(start - LOOKBACK), to_text(end), *args),
        )
        out = []
        for row in rows:
            r = decode_reservation(row["data"])
            stopped = stop_moment(r)
            if start <= stopped < end:
                out.append(
                    PaidSession(
                        r.id,
                        r.charger_id,
                        stopped,
                        r.tariff.currency,
                        billed_wh(r),
                        r.captured_amount,
                        r.refunded_amount,
                    )
                )
        return out

    async def transactions(
        self, start: datetime, end: datetime, charger_id: str | None = None
    ) -> list[Transaction]:
        """OCPP transactions that stopped in [start, end)."""
        where, args = _charger_filter(charger_id)
        rows = await self.db.fetchall(
            "SELECT charger_id, meter_start_wh, meter_stop_wh, stopped_at FROM transactions"
            f" WHERE stopped_at >= ? AND stopped_at < ?{where} ORDER BY stopped_at, id",
            (to_text(start), to_text(end), *args),
        )
        return [
            Transaction(
                row["charger_id"],
                _moment(row["stopped_at"]),
                _delivered(row["meter_start_wh"], row["meter_stop_wh"]),
            )
            for row in rows
        ]


def _charger_filter(charger_id: str | None) -> tuple[str, Sequence[str]]:
    return (" AND charger_id = ?", (charger_id,)) if charger_id is not None else ("", ())


def _delivered(start: int | None, stop: int | None) -> int:
    """The meter's gain; a register that went back (a meter replaced) counts nothing."""
    if start is None or stop is None:
        return 0
    return max(0, stop - start)


def kwh_text(wh: int) -> str:
    """1234 -> "1.234": Wh as kWh, exactly."""
    sign = "-" if wh < 0 else ""
    return f"{sign}{abs(wh) // 1000}.{abs(wh) % 1000:03d}"
