"""The table of `python -m bench.perf.cluster`: one node against several, on PostgreSQL, in
the same run, with the one-node SQLite figures of `python -m bench.perf` (README) beside
them for reference."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Run = dict[str, Any]

# README, "Benchmarks": `python -m bench.perf` on this 2-core machine, one process on SQLite
# (synchronous=full). Not measured by this command; keyed by the table's rows.
REFERENCE_SQLITE = {
    "chargers connected / asked": "19,000",
    "time to connect all (s)": "24",
    "RSS per node, before (MB)": "82",
    "RSS per node, connected (MB)": "417",
    "memory per connected charger (kB)": "17.6",
    "profile offered / achieved (msg/s)": "95 / -",
    "profile p50 / p99 / max (ms)": "1.4 / 7.1 / -",
    "webhook ingestion (events/s)": "2,361",
    "  stored exactly once": "19,800/19,800 yes",
    "webhook to RemoteStart p50 / p99 (ms)": "12.2 / 61.1",
    "  RemoteStarts arrived / sessions": "200 / 200",
}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _spread(values: list[float], digits: int = 0, scale: float = 1.0) -> str:
    low, high = min(values) / scale, max(values) / scale
    if round(low, digits) == round(high, digits):
        return f"{low:,.{digits}f}"
    return f"{low:,.{digits}f}-{high:,.{digits}f}"


def _shares(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    if not total:
        return "-"
    return _spread([count / total * 100 for count in counts.values()]) + " %"


def _relayed(run: Run) -> str:
    nodes = run["confirmation"]["nodes"]
    if not nodes["known"]:
        return "-"
    return f"{nodes['other_node']}/{nodes['known']} ({nodes['other_node_share']:.0%})"


def _join(*parts: str) -> str:
    return " / ".join(parts)


def _of_nodes(run: Run, key: str, digits: int = 0, scale: float = 1.0) -> str:
    return _spread([node[key] for node in run["per_node"]], digits, scale)


def _connected(run: Run) -> str:
    failed = run["connect"]["failed"]
    connected = f"{sum(n['chargers'] for n in run['per_node']):,}"
    return _join(connected, f"{run['chargers']:,}") + (f" ({failed:,} failed)" if failed else "")


def _connect_time(run: Run) -> str:
    connect = run["connect"]
    return f"{connect['seconds']:,.0f} ({connect['per_s']:,.0f}/s)"


def _cores(window: dict[str, Any], *keys: str) -> str:
    return _join(*(f"{window[key]:.2f}" for key in keys))


def _latency(figures: dict[str, Any], *keys: str) -> str:
    return _join(*(_ms(figures[key]) for key in keys))


def _rows() -> list[tuple[str, Callable[[Run], str]]]:
    pg, busy, rate = "postgres_cpu_busy", "server_cpu_busy", "messages_per_s"
    return [
        ("nodes x chargers each", lambda r: f"{r['nodes']} x {_of_nodes(r, 'chargers')}"),
        ("chargers connected / asked", _connected),
        ("generator processes", lambda r: str(r["generator_workers"])),
        ("time to connect all (s)", _connect_time),
        ("  nodes' CPU per charger (ms)", lambda r: _ms(r["connect"]["nodes_cpu_ms_per_charger"])),
        ("  PostgreSQL CPU per charger (ms)",
         lambda r: _ms(r["connect"]["postgres_cpu_ms_per_charger"])),
        ("RSS per node, before (MB)", lambda r: _of_nodes(r, "rss_before_bytes", 0, 1e6)),
        ("RSS per node, connected (MB)", lambda r: _of_nodes(r, "rss_connected_bytes", 0, 1e6)),
        ("memory per connected charger (kB)",
         lambda r: _ms(r["memory"]["bytes_per_charger"] / 1e3)),
        ("open files per node / limit",
         lambda r: _join(_of_nodes(r, "open_files"), _of_nodes(r, "open_files_limit"))),
        ("silent: nodes / PostgreSQL CPU (cores)", lambda r: _cores(r["silent"], busy, pg)),
        ("profile offered / achieved (msg/s)",
         lambda r: _join(*(f"{r['profile'][k]:,.0f}" for k in ("offered_per_s", rate)))),
        ("profile p50 / p99 / max (ms)",
         lambda r: _latency(r["profile"], "p50_ms", "p99_ms", "max_ms")),
        ("  p99 < 50 ms", lambda r: _met(r["profile"]["p99_ms"], r["profile"]["target_p99_ms"])),
        ("  nodes / PostgreSQL / generator (cores)",
         lambda r: _cores(r["profile"], busy, pg, "generator_cpu_busy")),
        ("  processes not of this run (cores)",
         lambda r: f"{r['profile']['other_cpu_busy'] - r['profile'][pg]:.2f}"),
        ("charger errors, whole run", lambda r: str(r["errors"])),
        ("webhook ingestion (events/s)", lambda r: f"{r['ingestion']['events_per_s'] or 0:,.0f}"),
        ("  p50 / p99 (ms)", lambda r: _latency(r["ingestion"]["latency"], "p50_ms", "p99_ms")),
        ("  stored exactly once", lambda r: _stored(r["ingestion"]["persistence"])),
        ("  PostgreSQL deadlocks / rollbacks",
         lambda r: _join(*(str(r["ingestion"]["postgres"].get(k, 0))
                           for k in ("deadlocks", "rollbacks")))),
        ("  nodes / everything else (cores)",
         lambda r: _cores(r["ingestion"], busy, "other_cpu_busy")),
        ("  share of requests per node", lambda r: _shares(r["ingestion"]["requests_per_node"])),
        ("webhook to RemoteStart p50 / p99 (ms)",
         lambda r: _latency(r["confirmation"]["latency"], "p50_ms", "p99_ms")),
        ("  webhook on another node", _relayed),
        ("  p99 other node / same node (ms)", _relayed_p99),
        ("  nodes / outside the run, PostgreSQL in (cores)",
         lambda r: _cores(r["confirmation"], busy, "other_cpu_busy")),
        ("  RemoteStarts arrived / sessions",
         lambda r: _join(*(str(r["confirmation"][k]) for k in ("remote_starts", "sessions")))),
    ]  # fmt: skip


def _relayed_p99(run: Run) -> str:
    nodes = run["confirmation"]["nodes"]
    return _join(
        *(_ms(nodes[key]["p99_ms"]) for key in ("latency_other_node", "latency_same_node"))
    )


def _met(value: float | None, limit: float) -> str:
    if value is None:
        return "-"
    return "met" if value < limit else "NOT met"


def _stored(persistence: dict[str, Any]) -> str:
    once = "yes" if persistence["exactly_once"] else "NO"
    return f"{persistence['events_stored']:,}/{persistence['distinct_events_sent']:,} {once}"


def _columns(results: dict[str, Any]) -> list[tuple[str, Run | None]]:
    runs = results["runs"]
    columns: list[tuple[str, Run | None]] = []
    for key in ("single", "cluster"):
        if key in runs:
            run = runs[key]
            columns.append(
                (f"{run['nodes']} node{'s' if run['nodes'] > 1 else ''}, PostgreSQL", run)
            )
    columns.append(("1 node, SQLite (README)", None))
    return columns


def table(results: dict[str, Any]) -> str:
    columns = _columns(results)
    rows = _rows()
    cells = [
        [label] + [pick(run) if run else REFERENCE_SQLITE.get(label, "") for _, run in columns]
        for label, pick in rows
    ]
    header = [""] + [name for name, _ in columns]
    widths = [max(len(row[i]) for row in [header, *cells]) + 2 for i in range(len(header))]
    lines = [_line(row, widths) for row in [header, *cells]]
    return "\n".join([*lines, "", *_per_node(results), "", *_notes(results)])


def _line(row: list[str], widths: list[int]) -> str:
    right = "".join(cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True))
    return row[0].ljust(widths[0]) + right


def _per_node(results: dict[str, Any]) -> list[str]:
    lines = ["Per node (chargers: in the database / hashed there):"]
    for run in results["runs"].values():
        for node, expected in zip(run["per_node"], run["expected_per_node"], strict=True):
            grown = node["rss_connected_bytes"] - node["rss_before_bytes"]
            per_charger = grown / node["chargers"] / 1e3 if node["chargers"] else None
            lines.append(
                f"  {run['nodes']}-node run, {node['name']}: {node['chargers']:,}/{expected:,}"
                f" chargers, RSS {node['rss_before_bytes'] / 1e6:.0f} ->"
                f" {node['rss_connected_bytes'] / 1e6:.0f} MB ({_ms(per_charger)} kB/charger),"
                f" open files {node['open_files']:,} of {node['open_files_limit']:,}"
            )
    return lines


def _notes(results: dict[str, Any]) -> list[str]:
    machine = results["machine"]
    notes = [
        "Notes:",
        f"  - {machine['cpus']} CPUs, {machine['memory_bytes'] / 2**30:.0f} GiB; open files"
        f" {machine['open_files_hard_limit']:,} per process (hard limit): one node holds at"
        " most ~19,000 chargers, one generator process ~19,000 sockets.",
        "  - The fleet's chargers connect straight to the nodes, spread by hashing /ocpp/<id>"
        " as HAProxy's `balance uri` does: one HAProxy process here holds at most ~10,000"
        " proxied chargers (two descriptors each), so 100,000 need several proxy instances,"
        " as in production. Webhooks, the drivers' pages and the webhook-to-RemoteStart"
        " chargers go through HAProxy.",
        "  - Webhooks run with the fleet connected and paused (no profile traffic); the Stripe"
        " sandbox delivers none itself: the bench signs and posts each event.",
        "  - CPU in cores (2 = the whole machine). 'Processes not of this run' is other work"
        " on the machine at the same time: where it is high, the figures are noisy.",
    ]
    for key, failed in results["failed"].items():
        notes.append(
            f"  - {key} ({failed['nodes']} node(s), {failed['chargers']:,} chargers) FAILED:"
            f" {failed['error'][:1500]}"
        )
    for key, run in results["runs"].items():
        if not all(run["settled"].values()):
            notes.append(
                f"  - {key}: the nodes did not fall quiet within the settle timeout"
                f" ({run['settled']}): the readings after it include unfinished work."
            )
        if run["first_error"]:
            notes.append(f"  - {key}: first charger error: {run['first_error']}")
        for part in ("ingestion", "confirmation"):
            if run[part]["errors"]:
                notes.append(f"  - {key} {part}: {run[part]['first_error']}")
    return notes
