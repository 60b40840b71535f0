"""The session's meter chart: energy and power from the stored readings, two labelled axes, a
text alternative, an empty state, and nothing from a charger reaching the markup unescaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from csms.console.chart import Point, meter_chart, nice_ceiling, readings_of, series

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


def row(at: datetime, measurand: str, value: str, unit: str = "Wh", **extra: object) -> dict:
    return {
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "measurand": measurand,
        "phase": extra.get("phase"),
        "unit": unit,
        "context": "Sample.Periodic",
        "location": extra.get("location", "Outlet"),
        "format": "Raw",
        "value": value,
        "normalised": extra.get("normalised", float(value)),
    }


def svg_of(markup: str) -> ET.Element:
    inner = re.search(r"<svg.*</svg>", markup, re.S)
    assert inner is not None, markup
    return ET.fromstring(inner.group(0))  # well-formed XML, or this raises


def test_readings_count_from_the_meter_start_and_keep_reported_power() -> None:
    rows = [
        row(T0, "Energy.Active.Import.Register", "10000"),
        row(T0, "Power.Active.Import", "11000", unit="W"),
        row(
            T0 + timedelta(minutes=30),
            "Energy.Active.Import.Register",
            "15.5",
            unit="kWh",
            normalised=15500,
        ),
        row(T0 + timedelta(minutes=30), "Power.Active.Import", "7400", unit="W"),
        row(T0 + timedelta(minutes=30), "Voltage", "230", unit="V"),  # not charted
    ]
    points = readings_of(rows, meter_start_wh=10000)
    assert points == [
        Point(T0, 0, 11000),
        Point(T0 + timedelta(minutes=30), 5500, 7400),
    ]
    # No meter start known: counted from the first register read.
    assert [p.energy_wh for p in readings_of(rows, None)] == [0, 5500]


def test_power_is_derived_from_energy_when_not_reported() -> None:
    points = [
        Point(T0, 0, None),
        Point(T0 + timedelta(minutes=15), 2750, None),  # 2.75 kWh in a quarter hour: 11 kW
        Point(T0 + timedelta(minutes=30), 4000, 3000),  # reported: taken as it is
    ]
    drawn = series(points)
    assert drawn.energy == [
        (T0, 0.0),
        (T0 + timedelta(minutes=15), 2.75),
        (T0 + timedelta(minutes=30), 4.0),
    ]
    assert drawn.power == [(T0 + timedelta(minutes=15), 11.0), (T0 + timedelta(minutes=30), 3.0)]


def test_the_chart_has_two_labelled_axes_and_a_text_alternative() -> None:
    points = [Point(T0 + timedelta(minutes=m), m * 180, 10800) for m in range(0, 31, 5)]
    markup = str(meter_chart(points, label="Session res_1"))
    svg = svg_of(markup)
    assert svg.get("role") == "img"
    title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
    assert title is not None and title.text == "Session res_1"
    assert desc is not None and desc.text is not None
    assert "0.000 kWh at 10:00 to 5.400 kWh at 10:30 UTC" in desc.text
    assert "peaked at 10.8 kW" in desc.text
    texts = ["".join(t.itertext()) for t in svg.iter(f"{SVG}text")]
    assert {"Energy (kWh)", "Power (kW)", "Time (UTC)"} <= set(texts)
    energy_ticks = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "tick-energy"]
    power_ticks = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "tick-power"]
    time_ticks = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "tick-time"]
    assert energy_ticks == ["0", "2", "4", "6", "8", "10"]  # 5.4 kWh: the axis ends at 10
    assert power_ticks == ["0", "4", "8", "12", "16", "20"]
    assert time_ticks == ["10:00", "10:06", "10:12", "10:18", "10:24", "10:30"]
    lines = {p.get("class"): p.get("points") for p in svg.iter(f"{SVG}polyline")}
    assert set(lines) == {"energy", "power"}
    energy = [tuple(map(float, xy.split(","))) for xy in (lines["energy"] or "").split()]
    assert len(energy) == 7
    assert energy[0][0] < energy[-1][0] and energy[0][1] > energy[-1][1]  # rising: y goes up


def test_fewer_than_two_readings_say_so_instead() -> None:
    for points in ([], [Point(T0, 0, 11000)]):
        markup = str(meter_chart(points))
        assert "<svg" not in markup
        assert "not enough meter readings for a chart yet" in markup
        assert f"({len(points)} so far)" in markup


def test_everything_is_escaped() -> None:
    points = [Point(T0, 0, None), Point(T0 + timedelta(seconds=90), 300, None)]
    markup = str(meter_chart(points, label='<script>alert("x")</script> & co'))
    assert "<script>" not in markup
    assert "&lt;script&gt;" in markup and "&amp; co" in markup
    svg = svg_of(markup)
    # A short session: the time axis shows seconds.
    assert [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "tick-time"][:2] == [
        "10:00:00",
        "10:00:18",
    ]
    assert "<script>" not in str(meter_chart([], label="<script>"))


def test_nice_ceiling() -> None:
    assert [nice_ceiling(v) for v in (0, 0.3, 1, 1.2, 2.2, 4, 7, 11, 26)] == [
        1,
        0.5,
        1,
        2,
        2.5,
        5,
        10,
        20,
        50,
    ]


def test_a_chart_of_seconds_shows_milliseconds() -> None:
    points = [Point(T0, 0, None), Point(T0 + timedelta(seconds=2), 10, None)]
    svg = svg_of(str(meter_chart(points)))
    ticks = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "tick-time"]
    assert ticks[:2] == ["10:00:00.000", "10:00:00.400"] and ticks[-1] == "10:00:02.000"
