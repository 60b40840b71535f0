"""Tariffs by time of day: price bands and the time fee's excluded window, in the local
wall-clock time of a session's zone. Pure: no I/O, integer Wh and microseconds.

Rules:
- A band is a price per kWh for a span of the day, "HH:MM" to "HH:MM" ("24:00" is the
  midnight that ends the day), on some weekdays (`days`, "mon" to "sun"; none named: every
  day). A span whose end is at or before its start runs past midnight into the next day;
  its weekdays are the days on which it starts. Bands never overlap (checked when a tariff
  is made); the time no band covers is priced at the tariff's own `price_per_kwh`: that is
  part 0 of a session's energy, the band `bands[i]` is part i + 1.
- The excluded window of the time fee ("22:00" to "07:00": no time fee at night) is such a
  span on every day.
- Times are the zone's wall-clock time, so a day may have 23 or 25 hours. The boundary
  "HH:MM" of a day is the first instant at which the clock shows that time or later: in the
  hour repeated when the clocks go back, the first of the two (the repeat stays on the same
  side of the boundary: a band 02:00-02:30 lasts 30 minutes that day, one 01:00-03:00 three
  hours); in the hour skipped when they go forward, the instant of the jump (a band
  02:00-02:30 is empty that day, one 01:00-03:00 lasts one hour).
- The energy a reading adds is shared among the bands in proportion to the time each
  covers of the interval since the previous reading, to the microsecond; the parts are
  whole Wh, rounded by largest remainder (ties to the lower part), so they add up to the
  gain exactly. A reading at the same instant as the previous one adds to the band in
  force at that instant. An interval longer than `MAX_SPAN` (a charger clock gone wrong)
  is shared as its last `MAX_SPAN` is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
MAX_SPAN = timedelta(days=31)
_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])|24:00")
_MICRO = timedelta(microseconds=1)
_DAY = "(mon|tue|wed|thu|fri|sat|sun)"
_DAY_LIST = re.compile(rf"{_DAY}(-{_DAY})?(,{_DAY}(-{_DAY})?)*")


class BandError(ValueError):
    """A band or window that cannot be used; `field` names it, e.g. "bands[1].start"."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Window:
    """A span of every day, in the zone's wall-clock time: start to end ("HH:MM")."""

    start: str
    end: str


@dataclass(frozen=True)
class Band:
    """A price per kWh (minor units) from start to end ("HH:MM") on `days` (none: all)."""

    start: str
    end: str
    price_per_kwh: int
    days: tuple[str, ...] = ()
    name: str = ""

    @property
    def weekdays(self) -> frozenset[int]:
        return frozenset(DAYS.index(d) for d in self.days) if self.days else frozenset(range(7))


def minute_of_day(text: str, field: str) -> int:
    """ "07:30" -> 450; "24:00" -> 1440. BandError naming `field` otherwise."""
    if not isinstance(text, str) or not _TIME.fullmatch(text):
        raise BandError(field, f"not a time HH:MM (00:00 to 24:00), got {text!r}")
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _span(start: str, end: str, field: str) -> tuple[int, int]:
    first = minute_of_day(start, f"{field}.start")
    last = minute_of_day(end, f"{field}.end")
    if first == MINUTES_PER_DAY:
        raise BandError(f"{field}.start", "24:00 can only end a span")
    if first == last:
        raise BandError(f"{field}.end", "must differ from the start")
    return first, last


def check_window(window: Window, field: str = "time_fee_excluded") -> None:
    _span(window.start, window.end, field)


def check_bands(bands: Sequence[Band]) -> None:
    """Refuse a band with a bad time, weekday, name or price, or that overlaps another."""
    weeks: list[int] = []
    for i, band in enumerate(bands):
        field = f"bands[{i}]"
        first, last = _span(band.start, band.end, field)
        for day in band.days:
            if day not in DAYS:
                raise BandError(f"{field}.days", f"not a weekday ({', '.join(DAYS)}): {day!r}")
        if len(set(band.days)) != len(band.days):
            raise BandError(f"{field}.days", "names a weekday twice")
        price = band.price_per_kwh
        if not isinstance(price, int) or isinstance(price, bool) or price < 0:
            raise BandError(f"{field}.price_per_kwh", f"must be a whole number >= 0: {price!r}")
        if not isinstance(band.name, str) or len(band.name) > 40:
            raise BandError(f"{field}.name", "must be text of at most 40 characters")
        week = _week_bits(first, last, band.weekdays)
        for j, other in enumerate(weeks):
            if week & other:
                raise BandError(f"{field}.start", f"overlaps bands[{j}]")
        weeks.append(week)


def _week_bits(first: int, last: int, weekdays: frozenset[int]) -> int:
    """The minutes of the week (Monday 00:00 = bit 0) the span covers, as an int bitset."""
    week = MINUTES_PER_DAY * 7
    length = (last - first) % MINUTES_PER_DAY or MINUTES_PER_DAY
    bits = 0
    for day in weekdays:
        begin = day * MINUTES_PER_DAY + first
        run = ((1 << length) - 1) << begin
        bits |= (run | (run >> week)) & ((1 << week) - 1)
    return bits


def zone_of(name: str | None) -> tzinfo:
    """The IANA zone `name`; UTC when none or unknown."""
    try:
        return ZoneInfo(name) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def boundary(day: date, minute: int, zone: tzinfo) -> datetime:
    """The first instant (UTC) at which the clock in `zone` shows `day` at `minute` or
    later: the first of two in a repeated hour, the jump in a skipped one."""
    local = datetime(day.year, day.month, day.day) + timedelta(minutes=minute)
    earlier = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if _wall(earlier, zone) == local:
        return earlier
    later = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if _wall(later, zone) == local:
        return later
    # Skipped: the jump, a whole second, between the two readings of the time.
    low, high = int(min(earlier, later).timestamp()), int(max(earlier, later).timestamp()) + 1
    while high - low > 1:
        middle = (low + high) // 2
        if _wall(datetime.fromtimestamp(middle, UTC), zone) >= local:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _wall(moment: datetime, zone: tzinfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


def _spans(
    first: int, last: int, weekdays: frozenset[int], zone: tzinfo, a: datetime, b: datetime
) -> list[tuple[datetime, datetime]]:
    """The instants [from, to) a span covers on the local days around [a, b)."""
    out = []
    day = a.astimezone(zone).date() - timedelta(days=1)
    end_day = b.astimezone(zone).date()
    while day <= end_day:
        if day.weekday() in weekdays:
            start = boundary(day, first, zone)
            if first < last < MINUTES_PER_DAY:
                stop = boundary(day, last, zone)
            else:  # to midnight, or on into the next day
                stop = boundary(day + timedelta(days=1), last % MINUTES_PER_DAY, zone)
            out.append((start, stop))
        day += timedelta(days=1)
    return out


def _covered(spans: list[tuple[datetime, datetime]], a: datetime, b: datetime) -> int:
    """Microseconds of [a, b) inside the spans."""
    total = 0
    for start, stop in spans:
        overlap = min(stop, b) - max(start, a)
        if overlap > timedelta(0):
            total += overlap // _MICRO
    return total


def time_in_bands(bands: Sequence[Band], zone: tzinfo, a: datetime, b: datetime) -> tuple[int, ...]:
    """Microseconds of [a, b) in each part: index 0 outside every band, i + 1 in bands[i]."""
    a = max(a, b - MAX_SPAN)
    parts = []
    for band in bands:
        first, last = minute_of_day(band.start, "start"), minute_of_day(band.end, "end")
        parts.append(_covered(_spans(first, last, band.weekdays, zone, a, b), a, b))
    whole = max(0, (b - a) // _MICRO)
    return (max(0, whole - sum(parts)), *parts)


def seconds_in_window(window: Window, zone: tzinfo, a: datetime, b: datetime) -> int:
    """Whole seconds of [a, b) inside the window (on every day)."""
    first, last = minute_of_day(window.start, "start"), minute_of_day(window.end, "end")
    spans = _spans(first, last, frozenset(range(7)), zone, max(a, b - MAX_SPAN), b)
    return _covered(spans, a, b) // 1_000_000


def split(gain: int, weights: Sequence[int]) -> tuple[int, ...]:
    """`gain` in whole parts proportional to `weights`, summing to it (largest remainder,
    ties to the lower index). All weights zero: everything to part 0."""
    total = sum(weights)
    if total <= 0:
        return (gain, *([0] * (len(weights) - 1)))
    quotients = [gain * w // total for w in weights]
    remainders = [gain * w % total for w in weights]
    left = gain - sum(quotients)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[:left]:
        quotients[i] += 1
    return tuple(quotients)


def energy_by_band(
    gain: int, bands: Sequence[Band], zone: tzinfo, a: datetime, b: datetime
) -> tuple[int, ...]:
    """The Wh `gain` of the interval between readings at `a` and `b`, by part (index 0:
    outside every band, i + 1: bands[i]), summing to `gain`."""
    a, b = min(a, b), max(a, b)
    if a == b:
        b = a + _MICRO  # the band in force at that instant
    return split(gain, time_in_bands(bands, zone, a, b))


def bands_from_text(text: str) -> list[dict[str, object]]:
    """Bands written on one line, as config.toml carries them, prices in major units:
    "Peak mon-fri 07:00-22:00 0.45; Weekend sat,sun 08:00-20:00 0.35". Each band: an
    optional name, optional weekdays (a range mon-fri or a list sat,sun), the span, the
    price. BandError naming bands[i] otherwise. A word before the span that is meant as
    weekdays but misspelt ("mon-fir", "Mo-Fr", "monday-friday": a range or list with a
    piece that begins like a weekday's name) is refused, never read as part of the name:
    that would make the band apply every day."""
    out: list[dict[str, object]] = []
    for i, item in enumerate(part.strip() for part in text.split(";") if part.strip()):
        field = f"bands[{i}]"
        words = item.split()
        if len(words) < 2:
            raise BandError(field, f"expected [name] [days] HH:MM-HH:MM price, got {item!r}")
        price, span = words[-1], words[-2]
        start, _, end = span.partition("-")
        band: dict[str, object] = {"start": start, "end": end, "price_per_kwh": price}
        rest = words[:-2]
        if rest and (_looks_like_days(rest[-1]) or _meant_as_days(rest[-1])):
            band["days"] = _days(rest.pop(), f"{field}.days")
        band["name"] = " ".join(rest)
        out.append(band)
    return out


def window_from_text(text: str) -> dict[str, str] | None:
    """ "22:00-07:00" as a window; "" as none."""
    if not text.strip():
        return None
    start, _, end = text.strip().partition("-")
    return {"start": start, "end": end}


def _looks_like_days(word: str) -> bool:
    return _DAY_LIST.fullmatch(word.lower()) is not None


_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _meant_as_days(word: str) -> bool:
    """A range or list ("mon-fir", "Mo-Fr", "tu,th") with a piece of at least two letters
    that begins like a weekday's name, or is the start of one: weekdays, if misspelt.
    ("Off-peak" is a name: neither "off" nor "peak" is.)"""
    pieces = re.split(r"[-,]", word.lower())
    if len(pieces) < 2:
        return False
    return any(
        len(piece) >= 2
        and piece.isalpha()
        and any(name.startswith(piece) or piece.startswith(name[:3]) for name in _DAY_NAMES)
        for piece in pieces
    )


def _days(word: str, field: str) -> list[str]:
    days: list[str] = []
    for piece in word.lower().split(","):
        first, _, last = piece.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise BandError(field, f"weekdays are {', '.join(DAYS)}: got {piece!r}")
        if not last:
            days.append(first)
            continue
        i, j = DAYS.index(first), DAYS.index(last)
        days += [DAYS[k % 7] for k in range(i, j + 1 if j >= i else j + 8)]
    return days
