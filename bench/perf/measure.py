"""The measurements, run against one server in this order on one server process:

1. warm-up: one charger runs transactions for a moment, so that imports, compiled schemas and
   caches exist before anything is measured;
2. memory: RSS with no charger connected, then with N idle chargers connected (booted, status
   sent, then silent); the difference divided by N;
3. saturation: many chargers, each sending its next CALL as soon as the previous one is
   answered; replies per second and server CPU time per reply over a fixed window;
4. latency: a fixed offered load spread over many chargers with think time; the time from
   sending each CALL to receiving its reply, p50 and p99.

Before each reading the server is left to finish what the previous load started (its CPU use
falls to nearly nothing), so that one phase does not spill into the next.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from bench.perf.load import MEASURE, WARM, Generator, Load
from bench.perf.proc import cpu_seconds, machine_busy_seconds, rss_bytes, wait_idle
from bench.perf.servers import Server

IDLE_TIMEOUT = 60.0


class Watched(Protocol):
    """What a reading needs of the server under test: its process, or its processes when it
    is several nodes, whose CPU time counts together."""

    @property
    def pid(self) -> int | Sequence[int]: ...

    def check_alive(self) -> None: ...


@dataclass(frozen=True)
class Settings:
    workers: int  # load generator processes
    idle_chargers: int  # memory
    saturation_chargers: int
    latency_chargers: int
    offered_rate: float  # messages per second, all latency chargers together
    warm_seconds: float  # load before each measuring window, and the warm-up's length
    measure_seconds: float

    @classmethod
    def full(cls, workers: int) -> Settings:
        return cls(workers, 2000, 200, 500, 500.0, 3.0, 15.0)

    @classmethod
    def quick(cls, workers: int) -> Settings:
        return cls(workers, 200, 40, 100, 500.0, 0.5, 2.0)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def charger_ids(prefix: str, count: int) -> tuple[str, ...]:
    # Short: each id is also the charger's id tag (at most 20 characters in OCPP 1.6).
    return tuple(f"{prefix}{n}" for n in range(count))


def transacting_chargers(settings: Settings) -> list[str]:
    """The chargers that start transactions: the CSMS knows their id tags beforehand."""
    return [
        *charger_ids("w", 1),
        *charger_ids("s", settings.saturation_chargers),
        *charger_ids("l", settings.latency_chargers),
    ]


def _ready_timeout(chargers: int) -> float:
    return 30 + chargers * 0.05


def _settle(server: Server) -> None:
    """Let the server finish what the last chargers' connections or departures started, so
    that it does not spill into the next reading."""
    if not wait_idle(server.pid, IDLE_TIMEOUT):
        raise RuntimeError(f"{server.spec.label} still busy {IDLE_TIMEOUT:.0f} s after the load")


def warm_up(server: Server, seconds: float) -> None:
    """Charger "w0" runs transactions (its id tag must be known)."""
    with Generator(Load(server.url, charger_ids("w", 1)), 1) as generator:
        generator.wait_ready(_ready_timeout(1))
        generator.set_phase(WARM)
        time.sleep(seconds)
        generator.finish()
    server.check_alive()


def memory(server: Server, settings: Settings) -> dict[str, Any]:
    count = settings.idle_chargers
    _settle(server)
    before = rss_bytes(server.pid)
    load = Load(server.url, charger_ids("m", count), idle=True)
    with Generator(load, settings.workers) as generator:
        generator.wait_ready(_ready_timeout(count))
        _settle(server)
        connected = rss_bytes(server.pid)
        outcome = generator.finish()
    server.check_alive()
    return {
        "chargers": count,
        "rss_before_bytes": before,
        "rss_connected_bytes": connected,
        "bytes_per_charger": (connected - before) / count,
        "errors": outcome.errors,
    }


def saturation(server: Server, settings: Settings) -> dict[str, Any]:
    load = Load(server.url, charger_ids("s", settings.saturation_chargers))
    return _window(server, load, settings)


def latency(server: Server, settings: Settings) -> dict[str, Any]:
    count = settings.latency_chargers
    load = Load(server.url, charger_ids("l", count), interval=count / settings.offered_rate)
    return {"offered_per_s": settings.offered_rate, **_window(server, load, settings)}


def _window(server: Server, load: Load, settings: Settings) -> dict[str, Any]:
    """Run `load`, then count replies and CPU over `measure_seconds` after `warm_seconds`."""
    _settle(server)
    with Generator(load, settings.workers) as generator:
        generator.wait_ready(_ready_timeout(len(load.charger_ids)))
        generator.set_phase(WARM)
        time.sleep(settings.warm_seconds)
        start = Reading.take(server, generator)
        generator.set_phase(MEASURE)
        time.sleep(settings.measure_seconds)
        end = Reading.take(server, generator)
        outcome = generator.finish()
    server.check_alive()
    return {
        "chargers": len(load.charger_ids),
        **window_figures(start, end, outcome.latencies),
        "errors": outcome.errors,
        "first_error": outcome.first_error,
    }


def window_figures(start: Reading, end: Reading, latencies: list[float]) -> dict[str, Any]:
    """Messages, CPU and reply times (those given, in seconds) between two readings."""
    wall = end.at - start.at
    messages = end.messages - start.messages
    server_cpu = end.server_cpu - start.server_cpu
    generator_cpu = end.generator_cpu - start.generator_cpu
    ordered = sorted(latencies)
    return {
        "seconds": wall,
        "messages": messages,
        "messages_per_s": messages / wall,
        "server_cpu_seconds": server_cpu,
        "cpu_us_per_message": server_cpu / messages * 1e6 if messages else None,
        # Below ~90 %, the server waited (on the generator, or on its disk).
        "server_cpu_busy": server_cpu / wall,
        "generator_cpu_busy": generator_cpu / wall,
        # Cores' worth of CPU that other processes took during the window: noise.
        "other_cpu_busy": (end.machine_cpu - start.machine_cpu - server_cpu - generator_cpu) / wall,
        "p50_ms": _percentile(ordered, 50),
        "p99_ms": _percentile(ordered, 99),
        "max_ms": ordered[-1] * 1e3 if ordered else None,
    }


@dataclass(frozen=True)
class Reading:
    at: float
    messages: int
    server_cpu: float
    generator_cpu: float
    machine_cpu: float

    @classmethod
    def take(cls, server: Watched, generator: Generator) -> Reading:
        return cls(
            time.perf_counter(),
            generator.messages(),
            cpu_seconds(server.pid),
            generator.cpu_seconds(),
            machine_busy_seconds(),
        )


def _percentile(ordered: list[float], percent: float) -> float | None:
    """Nearest-rank percentile, in milliseconds."""
    if not ordered:
        return None
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1] * 1e3


def measure_server(server: Server, settings: Settings) -> dict[str, Any]:
    warm_up(server, settings.warm_seconds)
    return {
        "memory": memory(server, settings),
        "saturation": saturation(server, settings),
        "latency": latency(server, settings),
    }
