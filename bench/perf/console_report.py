"""The console benchmark's results as a table, and whether a run measured what it says."""

from __future__ import annotations

from typing import Any

# A live computation slower than this, at 1,000 chargers, is a problem worth a look: the
# stream's values are refreshed every second, and the computation shares the loop.
LIVE_BUDGET_MS = 100.0


def _ms(figure: dict[str, Any]) -> str:
    return f"{figure['median_ms']:,.1f} / {figure['p95_ms']:,.1f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def table(results: dict[str, Any]) -> str:
    sizes = results["sizes"]
    rows: list[tuple[str, list[str]]] = [
        ("chargers (online)", [f"{s['chargers']:,} ({s['online']:,})" for s in sizes]),
        ("reservations (active)", [
            f"{s['fleet']['reservations']:,} ({s['fleet']['active_reservations']:,})"
            for s in sizes
        ]),
        ("transactions (open)", [
            f"{s['fleet']['transactions']:,} ({s['fleet']['open_transactions']:,})"
            for s in sizes
        ]),
        ("live values", [f"{s['live_values']:,}" for s in sizes]),
        ("live() ms, median / p95", [_ms(s["live_ms"]) for s in sizes]),
        ("overview() ms", [_ms(s["overview_ms"]) for s in sizes]),
        ("/console/events 1st frame ms", [_ms(s["events_first_frame_ms"]) for s in sizes]),
        ("GET /api/chargers, whole fleet ms", [_ms(s["api_chargers_ms"]) for s in sizes]),
        ("  pages of 500", [str(s["api_chargers_pages"]) for s in sizes]),
        ("GET /api/chargers, 1st page ms", [_ms(s["api_chargers_page_ms"]) for s in sizes]),
    ]  # fmt: skip
    for n, window in enumerate(sizes[0]["windows"]):
        count = window["streams"]
        rows.append(
            (f"server CPU, {count} stream(s)", [_share(s["windows"][n]["server_cpu_share"])
                                                  for s in sizes])
        )  # fmt: skip
        if count:
            rows.append((f"  console's share, {count}", [
                _share(s["console_cpu_per_s"][str(count)]) for s in sizes
            ]))  # fmt: skip
    if results["backend"] == "postgresql":
        rows.append(("PostgreSQL CPU, most streams", [
            _share(s["windows"][-1]["postgres_cpu_share"]) for s in sizes
        ]))  # fmt: skip
    width = max(len(label) for label, _ in rows) + 2
    column = max(16, *(len(cell) + 2 for _, cells in rows for cell in cells))
    lines = [f"console cost on {results['backend']} ({results['cpus']} CPUs)"]
    lines += [label.ljust(width) + "".join(c.rjust(column) for c in cells) for label, cells in rows]
    settings = results["settings"]
    lines += [
        "",
        f"times: median / p95 of {settings['runs']} runs; CPU: share of one core over"
        f" {settings['window_seconds']:g} s windows; the console's share is the window's"
        " minus the one with no stream open",
    ]
    lines += [f"  - {note}" for note in notes(results)]
    return "\n".join(lines)


def notes(results: dict[str, Any]) -> list[str]:
    found = []
    for size in results["sizes"]:
        live = size["live_ms"]["median_ms"]
        if size["chargers"] >= 1000 and live > LIVE_BUDGET_MS:
            found.append(
                f"live() takes {live:,.0f} ms at {size['chargers']:,} chargers: over the"
                f" {LIVE_BUDGET_MS:g} ms a once-a-second refresh can afford"
            )
        for window in size["windows"]:
            if window["other_cpu_busy"] > 0.5:
                found.append(
                    f"{size['chargers']:,} chargers, {window['streams']} streams: other"
                    f" processes used {window['other_cpu_busy']:.0%} of a core (noisy)"
                )
    return found


def sound(results: dict[str, Any]) -> bool:
    """Every stream lived through its window, and the console and the API saw the fleet."""
    for size in results["sizes"]:
        if size["seen_chargers"] != size["chargers"] or size["seen_online"] != size["online"]:
            return False
        if size["api_chargers_seen"] != size["chargers"]:
            return False
        if any(window["errors"] for window in size["windows"]):
            return False
    return True
