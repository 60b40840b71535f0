"""Limits that hold cluster-wide: how many attempts one subject (a client address) may make
in a span of time, counted in the database that every node shares.

Contract of `WindowCounter` (one per scope, e.g. driver session starts or failed logins):
- Fixed windows, each subject its own: a subject's window opens at its first counted
  attempt and lasts `window` seconds; every attempt in it is counted, once; the first
  attempt after it has ended opens a new one.
- A subject is over the limit while its open window has counted `limit` attempts or more,
  and until that window ends. `allow` counts an attempt and lets it through while the
  count, this attempt included, is at most `limit`.

Why fixed windows rather than a sliding window estimated from two:
- The count is exact, and so is the moment a block ends, which a refusal announces
  (Retry-After); an estimate would announce a guess.
- A window is one row, changed by one atomic statement (`INSERT ... ON CONFLICT DO UPDATE
  SET count = count + 1 ... RETURNING`), so attempts on several nodes at once are counted
  once each, with no read before the write and no lock held across a round trip.
- A window never ends later because of the attempts it refuses, so counting those too
  keeps nobody out for longer than one window.
The price: a subject that spends its whole allowance at the end of one window and again
at the start of the next makes up to twice `limit` attempts in little more than one
window. For limits that curb abuse, not ones that bill, that is acceptable.

Cost: counting an attempt is that one statement; asking whether a subject is over the
limit is one read of one row by its key, and no query at all for a subject this node
already knows to be over it. That cache holds only windows that have reached the limit,
which stay so until they end, so it is never wrong; it is bounded (`capacity`: the entry
remembered longest ago is forgotten first), and an entry goes once its window has ended.

Durability: counters are written with `durable=False`. A crash of the machine (not of the
process) may lose the last attempts counted, which forgives those attempts once; waiting
for the disk instead would put an fsync in the way of every failed login and every start.

Old windows: a node that counts deletes its scope's ended windows at most once every
`sweep_every` seconds, in the same unit of work as an attempt, so the table holds about
one row per subject seen within the last window and sweep.

Every node must use the same limit and window for a scope; times are the nodes' clocks,
which agree to well within a window (NTP).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.clock import to_text, utc_now
from storage.db import Connection, Database

_COUNT = (
    "INSERT INTO rate_limits (scope, subject, window_start, count) VALUES (?, ?, ?, 1)"
    " ON CONFLICT (scope, subject) DO UPDATE SET"
    " count = CASE WHEN rate_limits.window_start > ? THEN rate_limits.count + 1 ELSE 1 END,"
    " window_start = CASE WHEN rate_limits.window_start > ?"
    " THEN rate_limits.window_start ELSE excluded.window_start END"
    " RETURNING window_start, count"
)
_OPEN = (
    "SELECT window_start, count FROM rate_limits"
    " WHERE scope = ? AND subject = ? AND window_start > ?"
)
_SWEEP = "DELETE FROM rate_limits WHERE scope = ? AND window_start <= ?"


@dataclass(frozen=True, slots=True)
class Window:
    """A subject's open window: when it started and ends, and the attempts it counted."""

    started_at: datetime
    ends_at: datetime
    count: int


class WindowCounter:
    """Attempts per subject in fixed windows, counted in the shared database (see above)."""

    def __init__(
        self,
        db: Database,
        scope: str,
        *,
        limit: int,
        window: float,
        clock: Callable[[], datetime] = utc_now,
        capacity: int = 10_000,
        sweep_every: float = 60.0,
    ) -> None:
        """ValueError for an empty scope, a limit or capacity under 1, or a window or
        sweep interval that is not positive."""
        if not scope:
            raise ValueError("a rate limit's scope must not be empty")
        for name, value in (("limit", limit), ("capacity", capacity)):
            if value < 1:
                raise ValueError(f"a rate limit's {name} must be at least 1, got {value}")
        for name, seconds in (("window", window), ("sweep_every", sweep_every)):
            if not seconds > 0:
                raise ValueError(f"a rate limit's {name} must be positive, got {seconds}")
        self._db = db
        self.scope = scope
        self.limit = limit
        self.window = timedelta(seconds=window)
        self._clock = clock
        self._capacity = capacity
        self._sweep_every = timedelta(seconds=sweep_every)
        self._next_sweep: datetime | None = None  # None: at the next attempt
        self._over: OrderedDict[str, Window] = OrderedDict()  # subjects known over the limit

    def __len__(self) -> int:
        """How many subjects this node remembers as over the limit (at most `capacity`)."""
        return len(self._over)

    async def hit(self, subject: str) -> Window:
        """Count one attempt of `subject`'s: one statement. Its window, this attempt counted."""
        now = self._clock()
        sweep = self._next_sweep is None or now >= self._next_sweep
        if sweep:
            self._next_sweep = now + self._sweep_every
        cutoff = to_text(now - self.window)

        def count(conn: Connection) -> tuple[str, int]:
            if sweep:
                conn.execute(_SWEEP, (self.scope, cutoff))
            params = (self.scope, subject, to_text(now), cutoff, cutoff)
            row = conn.execute(_COUNT, params).fetchone()
            return row["window_start"], int(row["count"])

        window = self._window(*await self._db.write(count, durable=False))
        self._remember(subject, window)
        return window

    async def allow(self, subject: str) -> bool:
        """Count one attempt and say whether it is within the limit. A subject known to be
        over it is refused with no query (and that attempt is not counted)."""
        if self._known_over(subject, self._clock()) is not None:
            return False
        return (await self.hit(subject)).count <= self.limit

    async def current(self, subject: str) -> Window | None:
        """`subject`'s open window, or None when it has none: one read of one row, or none
        for a subject known to be over the limit."""
        now = self._clock()
        known = self._known_over(subject, now)
        if known is not None:
            return known
        row = await self._db.fetchone(_OPEN, (self.scope, subject, to_text(now - self.window)))
        if row is None:
            return None
        window = self._window(row["window_start"], int(row["count"]))
        self._remember(subject, window)
        return window

    def _window(self, started: str, count: int) -> Window:
        started_at = datetime.fromisoformat(started)
        return Window(started_at, started_at + self.window, count)

    def _known_over(self, subject: str, now: datetime) -> Window | None:
        window = self._over.get(subject)
        if window is not None and window.ends_at <= now:
            del self._over[subject]
            return None
        return window

    def _remember(self, subject: str, window: Window) -> None:
        if window.count < self.limit:
            self._over.pop(subject, None)
            return
        self._over[subject] = window
        self._over.move_to_end(subject)
        while len(self._over) > self._capacity:
            self._over.popitem(last=False)
