"""python -m bench.perf.relay [--calls N]

What routing a command through another node costs, against sending it from the node that
holds the charger, in the same run: two whole central systems on one PostgreSQL database
(a temporary cluster), 20 chargers connected to node b that answer every CALL at once.
`ChangeConfiguration` is sent N times from b itself (local) and N times from a (relayed over
LISTEN/NOTIFY to b and back): one at a time, then to the 20 chargers at once (a charger
takes one CALL at a time, as OCPP says). Prints p50 / p99 / max in milliseconds, and the
commands per second.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

from bench.pg.cluster import TemporaryCluster
from csms.app import CentralSystem
from csms.config import load_config, with_overrides
from csms.logs import configure_logging
from csms.ocpp16.commands import Answered, ChargerCommands
from tests.ocpp_client import RawCharger

PAYLOAD = {"key": "HeartbeatInterval", "value": "300"}
BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}
CHARGERS = 20


def node(url: str, folder: Path, name: str) -> CentralSystem:
    config = with_overrides(
        load_config(env={}),
        server={"ocpp_host": "127.0.0.1", "ocpp_port": 0, "http_host": "127.0.0.1", "http_port": 0},
        ocpp={"unknown_chargers": "accept"},
        database={"path": str(folder / f"{name}.db"), "url": url},
        cluster={"node_id": name},
        stripe={"sandbox_port": 0},
        api={"keys": "bench"},
        log={"level": "error"},
    )
    return CentralSystem(config)


async def answer_forever(charger: RawCharger) -> None:
    while True:
        frame = await charger.receive()
        if frame[0] == 2:
            await charger.send([3, frame[1], {"status": "Accepted"}])


async def timed(commands: ChargerCommands, calls: int, together: int) -> list[float]:
    """`calls` commands, `together` at a time, each group to as many different chargers."""
    took: list[float] = []

    async def one(charger: int) -> None:
        started = time.perf_counter()
        result = await commands.send(f"CP-{charger}", "ChangeConfiguration", PAYLOAD)
        took.append((time.perf_counter() - started) * 1000)
        assert isinstance(result, Answered), result

    for _ in range(calls // together):
        await asyncio.gather(*(one(n) for n in range(1, together + 1)))
    return took


def line(name: str, took: list[float], seconds: float | None = None) -> str:
    ordered = sorted(took)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    rate = f"  {len(took) / seconds:,.0f} commands/s" if seconds else ""
    return (
        f"{name:<28} p50 {statistics.median(ordered):6.2f}  p99 {p99:6.2f}"
        f"  max {ordered[-1]:6.2f} ms{rate}"
    )


async def measure(url: str, calls: int) -> list[str]:
    with tempfile.TemporaryDirectory() as folder:
        async with (
            node(url, Path(folder), "a") as a,
            node(url, Path(folder), "b") as b,
            contextlib.AsyncExitStack() as chargers,
        ):
            answering = []
            for n in range(1, CHARGERS + 1):
                cp = await chargers.enter_async_context(
                    RawCharger.connect(f"ws://127.0.0.1:{b.ocpp.port}/ocpp", f"CP-{n}")
                )
                await cp.call("BootNotification", BOOT)
                answering.append(asyncio.create_task(answer_forever(cp)))
            async with asyncio.timeout(10):
                while a.view.holder(f"CP-{CHARGERS}") != "b":  # noqa: ASYNC110 - b's news
                    await asyncio.sleep(0.01)
            try:
                await timed(a.commands, 100, 1)  # warm up both paths
                lines = []
                for name, commands in (("local (on b)", b.commands), ("relayed", a.commands)):
                    lines.append(line(f"{name}, one at a time", await timed(commands, calls, 1)))
                    started = time.perf_counter()
                    took = await timed(commands, calls, CHARGERS)
                    seconds = time.perf_counter() - started
                    lines.append(line(f"{name}, {CHARGERS} at once", took, seconds))
            finally:
                for task in answering:
                    task.cancel()
                await asyncio.gather(*answering, return_exceptions=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.perf.relay", description=__doc__)
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    configure_logging("console", "error")
    with TemporaryCluster() as url:
        for text in asyncio.run(measure(url, args.calls)):
            print(text)


if __name__ == "__main__":
    main()
