"""The results: the project's targets checked, a side-by-side table, JSON files, a plot."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.perf.fleet import summary as fleet_summary
from bench.perf.servers import BARE, CSMS, ECHO, SPECS
from bench.perf.webhooks import summary as webhooks_summary

# Below this share of one core at saturation, a server was waiting rather than working.
BUSY = 0.9
# Above this share of a core taken by other processes during a window, its figures are noisy.
NOISE = 0.25


@dataclass(frozen=True)
class Target:
    name: str
    value: float | None
    limit: float
    unit: str
    rule: str  # "<", "<=" or ">="

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        if self.rule == ">=":
            return self.value >= self.limit
        return self.value < self.limit if self.rule == "<" else self.value <= self.limit

    def verdict(self) -> str:
        if self.value is None:
            return "NOT MEASURED (no figure)"
        share = self.value / self.limit
        if self.rule == ">=":
            if self.met:
                return f"met, {share - 1:.0%} above the limit"
            return f"NOT MET, {1 - share:.0%} short of the limit ({share:.2f}x the limit)"
        if self.met:
            return f"met, {1 - share:.0%} below the limit"
        return f"NOT MET, {share - 1:.0%} over the limit ({share:.2f}x the limit)"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "target": f"{self.rule} {self.limit:g}{'' if self.unit == 'x' else ' '}{self.unit}",
            "met": self.met,
            "verdict": self.verdict(),
        }


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def targets(
    servers: dict[str, Any], fleet: dict[str, Any], webhooks: dict[str, Any]
) -> list[Target]:
    def cpu(key: str) -> float | None:
        return servers[key]["saturation"]["cpu_us_per_message"]

    csms = servers[CSMS.key]
    offered = csms["latency"]["offered_per_s"]
    windows = fleet["windows"]
    fleet_rate = windows["target_rate"]["offered_per_s"]
    return [
        Target("server CPU per message, csms vs echo", _ratio(cpu(CSMS.key), cpu(ECHO.key)),
               2.0, "x", "<="),
        Target("server CPU per message, csms vs bare ocpp", _ratio(cpu(CSMS.key), cpu(BARE.key)),
               0.5, "x", "<="),
        Target(f"p99 latency at {offered:g} msg/s", csms["latency"]["p99_ms"], 50.0, "ms", "<"),
        Target("memory per connected charger", csms["memory"]["bytes_per_charger"] / 1000, 30.0,
               "kB", "<"),
        Target("chargers connected to one server", fleet["chargers"], fleet["target"]["chargers"],
               "", ">="),
        Target("fleet p99 at the target's profile", windows["profile"]["p99_ms"], 50.0, "ms", "<"),
        Target(f"fleet p99 at {fleet_rate:.0f} msg/s (50,000's rate)",
               windows["target_rate"]["p99_ms"], 50.0, "ms", "<"),
        Target("fleet memory per connected charger", fleet["memory"]["bytes_per_charger"] / 1000,
               30.0, "kB", "<"),
        Target("webhook confirmation to RemoteStart p99",
               webhooks["confirmation"]["latency"]["p99_ms"], 25.0, "ms", "<"),
        Target("webhook ingestion (events/s)", webhooks["ingestion"]["events_per_s"], 2000.0, "",
               ">="),
    ]  # fmt: skip


def build(
    started_at: str,
    quick: bool,
    machine: dict[str, Any],
    settings: dict[str, Any],
    servers: dict[str, Any],
    fleet: dict[str, Any],
    webhooks: dict[str, Any],
) -> dict[str, Any]:
    return {
        "started_at": started_at,
        "quick": quick,
        "machine": machine,
        "settings": settings,
        "servers": servers,
        "fleet": fleet,
        "webhooks": webhooks,
        "targets": [target.as_dict() for target in targets(servers, fleet, webhooks)],
        "notes": notes(servers),
    }


def notes(servers: dict[str, Any]) -> list[str]:
    found = []
    for spec in SPECS:
        figures = servers[spec.key]
        saturation = figures["saturation"]
        if saturation["server_cpu_busy"] < BUSY:
            found.append(
                f"{spec.label} used {saturation['server_cpu_busy']:.0%} of a core at"
                f" saturation (load generator {saturation['generator_cpu_busy']:.0%}, other"
                f" processes {saturation['other_cpu_busy']:.0%}): it was waiting, on the"
                " generator, on its disk or for a CPU, so its messages/s is a lower bound and"
                " its CPU per message (fewer messages per wake-up) an upper bound"
            )
        for phase in ("memory", "saturation", "latency"):
            if figures[phase]["errors"]:
                first = figures[phase].get("first_error", "")
                found.append(
                    f"{spec.label}: {figures[phase]['errors']} errors during {phase} {first}"
                )
        for phase in ("saturation", "latency"):
            other = figures[phase]["other_cpu_busy"]
            if other > NOISE:
                found.append(
                    f"{spec.label}: other processes used {other:.0%} of a core during {phase}:"
                    " its figures there are noisy (rerun on a quiet machine)"
                )
        latency = figures["latency"]
        if latency["messages_per_s"] < 0.9 * latency["offered_per_s"]:
            found.append(
                f"{spec.label} kept up with only {latency['messages_per_s']:.0f} of the"
                f" {latency['offered_per_s']:g} msg/s offered: its latencies are under overload"
            )
    return found


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _busy(window: dict[str, Any]) -> str:
    keys = ("server_cpu_busy", "generator_cpu_busy", "other_cpu_busy")
    return "/".join(f"{window[key]:.0%}" for key in keys)


def table(results: dict[str, Any]) -> str:
    servers = results["servers"]
    offered = servers[CSMS.key]["latency"]["offered_per_s"]
    csms_cpu = servers[CSMS.key]["saturation"]["cpu_us_per_message"]
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, pick: Callable[[dict[str, Any]], str]) -> None:
        rows.append((label, [pick(servers[spec.key]) for spec in SPECS]))

    row("messages/s at saturation", lambda s: _number(s["saturation"]["messages_per_s"], 0))
    row("  CPU busy: server/generator/other", lambda s: _busy(s["saturation"]))
    row("server CPU us per message", lambda s: _number(s["saturation"]["cpu_us_per_message"]))
    row(
        "  csms / this server",
        lambda s: _number(_ratio(csms_cpu, s["saturation"]["cpu_us_per_message"]), 2) + "x",
    )
    row(f"p50 latency at {offered:g} msg/s (ms)", lambda s: _number(s["latency"]["p50_ms"], 2))
    row(f"p99 latency at {offered:g} msg/s (ms)", lambda s: _number(s["latency"]["p99_ms"], 2))
    row("  rate achieved (msg/s)", lambda s: _number(s["latency"]["messages_per_s"], 0))
    row("  CPU busy: server/generator/other", lambda s: _busy(s["latency"]))
    row("memory per idle charger (kB)", lambda s: _number(s["memory"]["bytes_per_charger"] / 1e3))
    row(
        "errors (memory/saturation/latency)",
        lambda s: "/".join(str(s[p]["errors"]) for p in ("memory", "saturation", "latency")),
    )
    width = max(len(label) for label, _ in rows) + 2
    columns = [max(16, len(spec.label) + 2) for spec in SPECS]
    lines = [
        " " * width + "".join(spec.label.rjust(c) for spec, c in zip(SPECS, columns, strict=True))
    ]
    for label, cells in rows:
        lines.append(
            label.ljust(width) + "".join(v.rjust(c) for v, c in zip(cells, columns, strict=True))
        )
    settings = results["settings"]
    lines += [
        "",
        f"saturation: {settings['saturation_chargers']} chargers without think time;"
        f" latency: {settings['latency_chargers']} chargers sharing {offered:g} msg/s;"
        f" memory: {settings['idle_chargers']} idle chargers; windows of"
        f" {settings['measure_seconds']:g} s after {settings['warm_seconds']:g} s;"
        f" {settings['workers']} generator process(es) on {results['machine']['cpus']} CPUs",
        "",
        fleet_summary(results["fleet"]),
        "",
        webhooks_summary(results["webhooks"]),
        "",
        "Targets (csms):",
    ]
    for target in results["targets"]:
        value = "-" if target["value"] is None else f"{target['value']:,.2f}"
        lines.append(
            f"  {target['name']:<44}{value:>10}  target {target['target']:<11} {target['verdict']}"
        )
    rate = {key: servers[key]["saturation"]["messages_per_s"] for key in servers}
    versus_echo = _number(_ratio(rate[CSMS.key], rate[ECHO.key]), 2)
    versus_bare = _number(_ratio(rate[CSMS.key], rate[BARE.key]), 2)
    lines.append(
        f"  messages/s: no target stated; csms does {versus_echo}x the echo server's and"
        f" {versus_bare}x the bare ocpp server's"
    )
    if results["notes"]:
        lines += ["", "Notes:", *(f"  - {note}" for note in results["notes"])]
    return "\n".join(lines)


def write(results: dict[str, Any], folder: Path) -> Path:
    """`<timestamp>.json` and a copy as `latest.json`; returns the former."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = results["started_at"].replace("-", "").replace(":", "")
    path = folder / f"{stamp}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    shutil.copyfile(path, folder / "latest.json")
    return path


def plot(results: dict[str, Any], path: Path) -> str:
    """Bars of messages/s and CPU per message per server; a message instead when matplotlib
    is not installed (it is not a dependency of the project)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "plot skipped: matplotlib is not installed (pip install matplotlib)"
    servers = results["servers"]
    labels = [spec.label for spec in SPECS]
    rate = [servers[spec.key]["saturation"]["messages_per_s"] for spec in SPECS]
    cpu = [servers[spec.key]["saturation"]["cpu_us_per_message"] or 0 for spec in SPECS]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    colours = ["#888888", "#4c72b0", "#dd8452"]
    left.bar(labels, rate, color=colours)
    left.set_title("messages/s at saturation (higher is better)")
    right.bar(labels, cpu, color=colours)
    right.set_title("server CPU us per message (lower is better)")
    for axes, values, digits in ((left, rate, 0), (right, cpu, 1)):
        for x, value in enumerate(values):
            axes.annotate(f"{value:,.{digits}f}", (x, value), ha="center", va="bottom")
    figure.suptitle(f"bench.perf {results['started_at']}{' (quick)' if results['quick'] else ''}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return f"plot: {path}"
