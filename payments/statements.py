"""An owner's monthly statement, computed from plain rows. Pure: no I/O, integer minor units.

Which month a thing belongs to, in the operator's time zone (`[operator] time_zone`):
- a **session** belongs to the month its charge stopped in (the charger's StopTransaction
  time; a session settled without one: its last meter reading, else when it was paid);
- a **transfer** or **reversal** to the month Stripe confirmed it (its `transfers` row);
- a **payout** to the month it was first reported (its `payouts` row).
A session's refunds, transfer and reversals are shown as they stand now, whatever month
they happened in: a statement made again later shows a later refund on the session it
belongs to (and the reversal it caused among that later month's movements).

The Stripe fee is shown where the payment records it: the capture's answer carries the
charge's balance transaction and its fee (payments.stripe_gateway.CaptureResult). Where
Stripe did not say it (a capture made elsewhere, a balance transaction not there yet or in
another currency, a payment captured before fees were kept) it is blank (None), never 0;
a total adds the known fees (None: none known).

The figures must add up, and `build` checks that they do rather than print a wrong
number: for every session, and for the totals of each currency,
    owner share + operator share == captured - refunded,
both shares >= 0, refunded <= captured, and each session's shares are the ones its
split rule gives (payments.split). A statement that does not add up raises
`StatementDoesNotAddUp`, naming the session; the operator sees it as an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from payments.split import SplitRule, after_refunds, split


class MonthError(ValueError):
    """A month that is not YYYY-MM; `field` is "month"."""

    field = "month"


class StatementDoesNotAddUp(ValueError):
    """The figures disagree: a bug or a damaged record, never a number to print."""


_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        found = _MONTH.match(text)
        # Up to 9998: a month's end is the next month's start, and dates end with 9999.
        if found is None or not 1970 <= int(found.group(1)) <= 9998:
            raise MonthError(f"a month as YYYY-MM (e.g. 2026-11, 1970 to 9998), got {text[:20]!r}")
        return cls(int(found.group(1)), int(found.group(2)))

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def bounds(self, zone: tzinfo) -> tuple[datetime, datetime]:
        """The month in `zone` as [start, end) instants in UTC."""
        start = datetime(self.year, self.month, 1, tzinfo=zone)
        following = (self.year + 1, 1) if self.month == 12 else (self.year, self.month + 1)
        end = datetime(*following, 1, tzinfo=zone)
        return start.astimezone(UTC), end.astimezone(UTC)


@dataclass(frozen=True)
class SessionRow:
    """One paid session of the owner's, as the store read it."""

    reservation_id: str
    stopped_at: datetime
    charger_id: str
    charger_name: str | None
    site_name: str | None
    currency: str
    energy_wh: int
    captured: int
    refunded: int
    owner_share: int
    operator_share: int
    transferred: int
    reversed: int
    transfer_status: str | None
    split: SplitRule | None
    stripe_fee: int | None = None  # None: not known


@dataclass(frozen=True)
class MovementRow:
    """A transfer to the owner's account or a reversal from it (`transfers`)."""

    id: str
    reservation_id: str
    kind: str  # transfer, reversal
    amount: int
    currency: str
    status: str  # succeeded, failed
    stripe_id: str | None
    at: datetime


@dataclass(frozen=True)
class PayoutRow:
    id: str
    amount: int
    currency: str
    status: str
    arrival_date: str | None
    at: datetime


@dataclass(frozen=True)
class Totals:
    currency: str
    sessions: int = 0
    energy_wh: int = 0
    captured: int = 0
    stripe_fee: int | None = None  # the sum of the known fees; None: none known
    refunded: int = 0
    owner_share: int = 0
    operator_share: int = 0
    transferred: int = 0  # by this month's sessions (as they stand now)
    reversed: int = 0
    transfers_in_month: int = 0  # succeeded movements confirmed this month
    reversals_in_month: int = 0
    payouts_paid: int = 0  # this month's payouts that Stripe reports paid
    net: int = 0  # captured - refunded


@dataclass(frozen=True)
class Statement:
    owner_id: str
    owner_name: str
    month: Month
    time_zone: str
    start: datetime
    end: datetime
    sessions: tuple[SessionRow, ...]
    movements: tuple[MovementRow, ...]
    payouts: tuple[PayoutRow, ...]
    totals: tuple[Totals, ...] = field(default=())  # one per currency, by currency


def check_session(s: SessionRow) -> None:
    """Raises StatementDoesNotAddUp unless the session's figures add up."""
    where = f"session {s.reservation_id}"
    numbers = (s.energy_wh, s.captured, s.refunded, s.transferred, s.reversed)
    if min(numbers) < 0 or s.owner_share < 0 or s.operator_share < 0:
        raise StatementDoesNotAddUp(f"{where}: a negative amount")
    if s.refunded > s.captured:
        raise StatementDoesNotAddUp(f"{where}: refunded {s.refunded} > captured {s.captured}")
    if s.owner_share + s.operator_share != s.captured - s.refunded:
        raise StatementDoesNotAddUp(
            f"{where}: owner share {s.owner_share} + operator share {s.operator_share}"
            f" != captured {s.captured} - refunded {s.refunded}"
        )
    if s.split is not None:
        expected = after_refunds(split(s.split, s.captured, s.energy_wh), s.refunded)
        if (expected.owner, expected.operator) != (s.owner_share, s.operator_share):
            raise StatementDoesNotAddUp(
                f"{where}: the shares {s.owner_share}/{s.operator_share} are not its split"
                f" rule's {expected.owner}/{expected.operator}"
            )


def _add_session(t: Totals, s: SessionRow) -> Totals:
    fee = t.stripe_fee
    if s.stripe_fee is not None:
        fee = (fee or 0) + s.stripe_fee
    return Totals(
        currency=t.currency,
        sessions=t.sessions + 1,
        energy_wh=t.energy_wh + s.energy_wh,
        captured=t.captured + s.captured,
        stripe_fee=fee,
        refunded=t.refunded + s.refunded,
        owner_share=t.owner_share + s.owner_share,
        operator_share=t.operator_share + s.operator_share,
        transferred=t.transferred + s.transferred,
        reversed=t.reversed + s.reversed,
        transfers_in_month=t.transfers_in_month,
        reversals_in_month=t.reversals_in_month,
        payouts_paid=t.payouts_paid,
        net=t.net + s.captured - s.refunded,
    )


def totals(
    sessions: tuple[SessionRow, ...],
    movements: tuple[MovementRow, ...],
    payouts: tuple[PayoutRow, ...],
) -> tuple[Totals, ...]:
    """The month's totals, one per currency, checked."""
    by_currency: dict[str, Totals] = {}

    def of(currency: str) -> Totals:
        return by_currency.setdefault(currency, Totals(currency))

    for s in sessions:
        by_currency[s.currency] = _add_session(of(s.currency), s)
    for m in movements:
        t = of(m.currency)
        if m.status == "succeeded":
            name = "transfers_in_month" if m.kind == "transfer" else "reversals_in_month"
            by_currency[m.currency] = _with(t, name, getattr(t, name) + m.amount)
    for p in payouts:
        t = of(p.currency)
        if p.status == "paid":
            by_currency[p.currency] = _with(t, "payouts_paid", t.payouts_paid + p.amount)
    for t in by_currency.values():
        if t.owner_share + t.operator_share != t.captured - t.refunded or t.net != (
            t.captured - t.refunded
        ):
            raise StatementDoesNotAddUp(
                f"totals in {t.currency.upper()}: owner {t.owner_share} + operator"
                f" {t.operator_share} != captured {t.captured} - refunded {t.refunded}"
            )
    return tuple(by_currency[c] for c in sorted(by_currency))


def _with(t: Totals, name: str, value: int) -> Totals:
    values = dict(t.__dict__)
    values[name] = value
    return Totals(**values)


def build(
    owner_id: str,
    owner_name: str,
    month: Month,
    zone: tzinfo,
    sessions: list[SessionRow],
    movements: list[MovementRow],
    payouts: list[PayoutRow],
) -> Statement:
    """The statement of `month` (in `zone`) from the rows that belong to it: rows outside
    the month are left out, the rest sorted by time. Raises StatementDoesNotAddUp."""
    start, end = month.bounds(zone)

    def inside(at: datetime) -> bool:
        return start <= at < end

    kept = tuple(
        sorted(
            (s for s in sessions if inside(s.stopped_at)),
            key=lambda s: (s.stopped_at, s.reservation_id),
        )
    )
    for s in kept:
        check_session(s)
    moved = tuple(sorted((m for m in movements if inside(m.at)), key=lambda m: (m.at, m.id)))
    paid = tuple(sorted((p for p in payouts if inside(p.at)), key=lambda p: (p.at, p.id)))
    return Statement(
        owner_id=owner_id,
        owner_name=owner_name,
        month=month,
        time_zone=str(zone),
        start=start,
        end=end,
        sessions=kept,
        movements=moved,
        payouts=paid,
        totals=totals(kept, moved, paid),
    )
