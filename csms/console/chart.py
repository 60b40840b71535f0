"""A paid session's meter chart: energy and power over time, as inline SVG. Pure.

The operator's page of a session shows how it charged without a script or a chart library:
the transaction's meter readings become one SVG with two lines and two axes,

- energy: kWh delivered in the session (the register less the meter at the start),
  cumulative, on the left axis;
- power: kW, the power the charger reported at that time, else the one the energy gained
  since the reading before implies, on the right axis;

time runs along the bottom, in UTC. The picture has a <title> and a <desc> that say the
same in words, for a screen reader. With fewer than two readings there is no line to draw:
a sentence says so instead. Everything that comes from a charger (numbers, times) is
escaped; the output is markup to embed as it is.

Readings come from the stored meter values (`readings_of`), read by the same rule billing
uses (`csms.ocpp16.metering.readings`): Outlet before Inlet, the total before phases.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from markupsafe import Markup

from csms.ocpp16.metering import Sample, readings

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 64, 24, 44  # margins around the plot, for the axes' labels
TICKS = 5  # about this many ticks on each axis


@dataclass(frozen=True)
class Point:
    """One reading of the session: energy delivered so far (Wh) and power (W), either may
    be unknown at that time."""

    at: datetime
    energy_wh: int | None
    power_w: int | None


@dataclass(frozen=True)
class Series:
    """What is drawn: (time, kWh) and (time, kW), oldest first."""

    energy: list[tuple[datetime, float]]
    power: list[tuple[datetime, float]]


def readings_of(rows: Iterable[Mapping[str, Any]], meter_start_wh: int | None) -> list[Point]:
    """The session's points from its stored meter values (rows of `meter_values`): one per
    time with an energy register or an active power, energy counted from `meter_start_wh`
    (else from the first register read)."""
    samples = [sample for row in rows if (sample := _sample(row)) is not None]
    points: list[Point] = []
    start = meter_start_wh
    for reading in readings(samples):
        at = _moment(reading.at)
        if at is None:
            continue
        energy = reading.energy_wh
        if energy is not None:
            if start is None:
                start = energy
            energy = max(energy - start, 0)
        points.append(Point(at, energy, reading.power_w))
    return points


def series(points: Sequence[Point]) -> Series:
    """Energy in kWh where known; power in kW where reported, else derived from the energy
    gained since the previous energy reading (nothing before the first one)."""
    energy: list[tuple[datetime, float]] = []
    power: list[tuple[datetime, float]] = []
    previous: tuple[datetime, int] | None = None
    for p in sorted(points, key=lambda p: p.at):
        if p.power_w is not None:
            power.append((p.at, p.power_w / 1000))
        elif p.energy_wh is not None and previous is not None:
            hours = (p.at - previous[0]).total_seconds() / 3600
            if hours > 0:
                power.append((p.at, max(p.energy_wh - previous[1], 0) / 1000 / hours))
        if p.energy_wh is not None:
            energy.append((p.at, p.energy_wh / 1000))
            previous = (p.at, p.energy_wh)
    return Series(energy, power)


def meter_chart(points: Sequence[Point], *, label: str = "Meter readings") -> Markup:
    """The chart as a <figure> holding an inline SVG; with fewer than two points, a
    <figure> holding a sentence instead."""
    drawn = series(points)
    times = [at for at, _ in drawn.energy] + [at for at, _ in drawn.power]
    if len(points) < 2 or len(set(times)) < 2:
        return Markup(
            '<figure class="meter-chart" id="meter-chart"><p class="muted" id="chart-empty">'
            "{}: not enough meter readings for a chart yet ({} so far).</p></figure>"
        ).format(label, len(points))
    first, last = min(times), max(times)
    top_kwh = nice_ceiling(max((v for _, v in drawn.energy), default=0))
    top_kw = nice_ceiling(max((v for _, v in drawn.power), default=0))

    def x(at: datetime) -> float:
        return LEFT + (at - first).total_seconds() / (last - first).total_seconds() * plot_w

    def y(value: float, top: float) -> float:
        return TOP + plot_h - value / top * plot_h

    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [
        Markup(
            '<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {w} {h}" '
            'width="100%" preserveAspectRatio="xMidYMid meet" '
            'aria-labelledby="chart-title chart-desc" class="meter-chart">'
            '<title id="chart-title">{title}</title><desc id="chart-desc">{desc}</desc>'
        ).format(w=WIDTH, h=HEIGHT, title=label, desc=describe(drawn)),
        _grid(plot_w, plot_h, top_kwh, top_kw, first, last),
        _line("energy", [(x(at), y(v, top_kwh)) for at, v in drawn.energy]),
        _line("power", [(x(at), y(v, top_kw)) for at, v in drawn.power]),
        _legend(plot_w),
        Markup("</svg>"),
    ]
    return Markup('<figure class="meter-chart" id="meter-chart">{}</figure>').format(
        Markup("").join(parts)
    )


def describe(drawn: Series) -> str:
    """The chart in one sentence or two, for those who cannot see it."""
    said = []
    if drawn.energy:
        (t0, e0), (t1, e1) = drawn.energy[0], drawn.energy[-1]
        said.append(
            f"Energy rose from {e0:.3f} kWh at {_clock(t0)} to {e1:.3f} kWh at {_clock(t1)} UTC."
        )
    if drawn.power:
        peak = max(v for _, v in drawn.power)
        said.append(f"Power peaked at {peak:.1f} kW; the latest was {drawn.power[-1][1]:.1f} kW.")
    return " ".join(said) or "No energy or power readings."


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above `value` (at least 1 for
    nothing), so that an axis ends on a round number."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 2.5, 5, 10):
        if value <= factor * power * (1 + 1e-9):
            return factor * power
    return 10 * power


def _grid(
    plot_w: int, plot_h: int, top_kwh: float, top_kw: float, first: datetime, last: datetime
) -> Markup:
    """Both value axes with their ticks and labels, the time axis, and the axes' titles."""
    bottom, right = TOP + plot_h, LEFT + plot_w
    out = [
        Markup(
            '<g class="axes" stroke="currentColor" stroke-width="1">'
            '<line x1="{l}" y1="{t}" x2="{l}" y2="{b}"/>'
            '<line x1="{r}" y1="{t}" x2="{r}" y2="{b}"/>'
            '<line x1="{l}" y1="{b}" x2="{r}" y2="{b}"/></g>'
        ).format(l=LEFT, r=right, t=TOP, b=bottom)
    ]
    ticks = [Markup('<g class="ticks" font-size="11" fill="currentColor">')]
    for i in range(TICKS + 1):
        ty = TOP + plot_h - i * plot_h / TICKS
        ticks.append(
            Markup(
                '<line x1="{a}" y1="{y:.1f}" x2="{l}" y2="{y:.1f}" stroke="currentColor"/>'
                '<line x1="{r}" y1="{y:.1f}" x2="{b}" y2="{y:.1f}" stroke="currentColor"/>'
                '<text class="tick-energy" x="{tl}" y="{ty:.1f}" text-anchor="end">{e}</text>'
                '<text class="tick-power" x="{tr}" y="{ty:.1f}" text-anchor="start">{p}</text>'
            ).format(
                a=LEFT - 4,
                l=LEFT,
                r=right,
                b=right + 4,
                y=ty,
                tl=LEFT - 6,
                tr=right + 6,
                ty=ty + 4,
                e=_number(top_kwh * i / TICKS),
                p=_number(top_kw * i / TICKS),
            )
        )
    span = (last - first).total_seconds()
    for i in range(TICKS + 1):
        tx = LEFT + i * plot_w / TICKS
        at = datetime.fromtimestamp(first.timestamp() + span * i / TICKS, UTC)
        ticks.append(
            Markup(
                '<line x1="{x:.1f}" y1="{b}" x2="{x:.1f}" y2="{b4}" stroke="currentColor"/>'
                '<text class="tick-time" x="{x:.1f}" y="{by}" text-anchor="middle">{t}</text>'
            ).format(x=tx, b=bottom, b4=bottom + 4, by=bottom + 16, t=_clock(at, span))
        )
    ticks.append(
        Markup(
            '<text class="axis-title" x="{cx}" y="{h}" text-anchor="middle">Time (UTC)</text>'
            '<text class="axis-title" x="14" y="{cy}" text-anchor="middle" '
            'transform="rotate(-90 14 {cy})">Energy (kWh)</text>'
            '<text class="axis-title" x="{rx}" y="{cy}" text-anchor="middle" '
            'transform="rotate(90 {rx} {cy})">Power (kW)</text></g>'
        ).format(cx=LEFT + plot_w / 2, h=HEIGHT - 6, cy=TOP + plot_h / 2, rx=WIDTH - 14)
    )
    return Markup("").join(out + ticks)


def _line(kind: str, xy: list[tuple[float, float]]) -> Markup:
    if not xy:
        return Markup("")
    points = " ".join(f"{px:.1f},{py:.1f}" for px, py in xy)
    dash = ' stroke-dasharray="6 3"' if kind == "power" else ""
    colour = "#1565c0" if kind == "energy" else "#c62828"
    return Markup(
        '<polyline class="{k}" fill="none" stroke="{c}" stroke-width="2"{d} points="{p}"/>'
    ).format(k=kind, c=colour, d=Markup(dash), p=points)


def _legend(plot_w: int) -> Markup:
    x = LEFT + 8
    return Markup(
        '<g class="legend" font-size="11" fill="currentColor">'
        '<line x1="{x}" y1="{y}" x2="{x2}" y2="{y}" stroke="#1565c0" stroke-width="2"/>'
        '<text x="{t}" y="{ty}">Energy (kWh)</text>'
        '<line x1="{x3}" y1="{y}" x2="{x4}" y2="{y}" stroke="#c62828" stroke-width="2" '
        'stroke-dasharray="6 3"/><text x="{t2}" y="{ty}">Power (kW)</text></g>'
    ).format(x=x, x2=x + 20, y=TOP - 10, t=x + 24, ty=TOP - 6, x3=x + 120, x4=x + 140, t2=x + 144)


def _number(value: float) -> str:
    """An axis label without needless decimals: 0, 2.5, 10, 0.25."""
    return f"{Decimal(str(round(value, 3))).normalize():f}"


def _clock(at: datetime, span: float = 3600) -> str:
    """The time of day, as precise as a chart spanning `span` seconds needs."""
    text = at.astimezone(UTC).strftime("%H:%M:%S.%f")
    return text[:5] if span >= 300 else text[:8] if span >= 10 else text[:12]


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _sample(row: Mapping[str, Any]) -> Sample | None:
    """A stored meter value as the sample it was; None when it is no number."""
    if row["normalised"] is None:
        return None
    try:
        normalised = Decimal(str(row["normalised"]))
    except InvalidOperation:
        return None
    return Sample(
        timestamp=str(row["timestamp"]),
        measurand=str(row["measurand"]),
        phase=row["phase"],
        unit=row["unit"],
        context=str(row["context"] or ""),
        location=str(row["location"] or "Outlet"),
        format=str(row["format"] or "Raw"),
        value=str(row["value"]),
        normalised=normalised,
    )
