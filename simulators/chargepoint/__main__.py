"""Command line: run one simulated charger, or a fleet, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import signal
import sys
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web

from .behaviour import Behaviour
from .charger import SimulatedCharger
from .client_certificate import CertificateCharger
from .control import Controller, serve_http, serve_stdin
from .fleet import Scenario, fleet_ids, run_fleet

# Options that are a number of seconds, which cannot be negative.
SECONDS_OPTIONS = (
    "plug-after",
    "plug-after-remote-start",
    "unplug-after-stop",
    "start-after",
    "stop-after",
    "offline-after",
    "offline-for",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.chargepoint",
        description="Simulated OCPP 1.6J charge point(s) connecting to a central system.",
    )
    parser.add_argument(
        "--url", required=True, help="CSMS WebSocket base URL, e.g. ws://127.0.0.1:9000/ocpp"
    )
    parser.add_argument(
        "--id", required=True, help="charge point id (fleet members get -1, -2, ...)"
    )
    parser.add_argument(
        "--connectors", type=int, default=1, help="connectors per charger (default 1)"
    )
    parser.add_argument(
        "--count", type=int, default=1, help="number of chargers to run (default 1)"
    )
    parser.add_argument(
        "--power-kw", type=float, default=11.0, help="max charging power (default 11)"
    )
    parser.add_argument(
        "--meter-interval",
        type=float,
        default=10.0,
        help="seconds between MeterValues (default 10)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="energy accrues this many times faster than real time",
    )
    parser.add_argument(
        "--energy-unit", choices=["Wh", "kWh"], default="Wh", help="unit of the energy register"
    )
    parser.add_argument(
        "--password", help="HTTP Basic auth password (username is the charge point id)"
    )
    parser.add_argument(
        "--ca",
        help="the CSMS's CA certificate (PEM) to trust on wss://; with it, each charger keeps"
        " a key and client certificate (security profile 3) in --certificates and asks for one"
        " when ExtendedTriggerMessage(SignChargePointCertificate) says so",
    )
    parser.add_argument(
        "--certificates", default="sim-certificates", help="folder for <id>.key and <id>.pem"
    )
    parser.add_argument("--organisation", default="", help="the O of certificate requests")
    parser.add_argument(
        "--plug-after",
        type=float,
        help="plug in connector 1 (of each charger) this many seconds after start, whether or"
        " not a remote start came: a driver's paid session then starts once paid",
    )
    parser.add_argument(
        "--plug-after-remote-start",
        type=float,
        help="seconds after an accepted remote start (with the cable out) until the driver"
        " plugs in",
    )
    parser.add_argument(
        "--unplug-after-stop",
        type=float,
        help="seconds after a transaction stops until the driver unplugs",
    )
    parser.add_argument(
        "--reject-remote-start", action="store_true", help="answer RemoteStart with Rejected"
    )
    parser.add_argument(
        "--start-after",
        type=float,
        help="plug in connector 1 and start a transaction this long after boot",
    )
    parser.add_argument(
        "--id-tag", default="SIM-TAG", help="idTag for --start-after (default SIM-TAG)"
    )
    parser.add_argument(
        "--stop-after", type=float, help="stop and unplug this long after the start"
    )
    parser.add_argument(
        "--offline-after", type=float, help="drop the connection once, this long after boot"
    )
    parser.add_argument(
        "--offline-for",
        type=float,
        help="seconds to stay offline (default: until the simulator stops)",
    )
    parser.add_argument(
        "--control-stdin",
        action="store_true",
        help="read commands from standard input, one a line (`help` lists them)",
    )
    parser.add_argument(
        "--control-port",
        type=int,
        help="take commands over HTTP on 127.0.0.1:PORT (POST / with the command as the body;"
        " 0: any free port, printed at start)",
    )
    args = parser.parse_args(argv)
    if args.count < 1 or args.connectors < 1:
        parser.error("--count and --connectors must be at least 1")
    for option in SECONDS_OPTIONS:
        value = getattr(args, option.replace("-", "_"))
        if value is not None and not (value >= 0 and math.isfinite(value)):
            parser.error(f"--{option} must be a number of seconds >= 0, not {value:g}")
    if args.control_port is not None and not 0 <= args.control_port <= 65535:
        parser.error(f"--control-port must be 0 to 65535, not {args.control_port}")
    return args


def build_chargers(args: argparse.Namespace) -> list[SimulatedCharger]:
    behaviour = Behaviour(
        reject_remote_start=args.reject_remote_start,
        plug_after=args.plug_after_remote_start,
        unplug_after_stop=args.unplug_after_stop,
    )
    kind: Any = SimulatedCharger
    if args.ca:
        kind = partial(
            CertificateCharger,
            folder=Path(args.certificates),
            trust=Path(args.ca),
            organisation=args.organisation,
        )
    chargers = [
        kind(
            url=args.url,
            charge_point_id=charge_point_id,
            connectors=args.connectors,
            power_kw=args.power_kw,
            meter_interval=args.meter_interval,
            energy_unit=args.energy_unit,
            speed=args.speed,
            # Each charger gets its own knobs so they can be changed independently.
            behaviour=replace(behaviour),
            serial=f"SIM-{number:04d}",
            password=args.password,
        )
        for number, charge_point_id in enumerate(fleet_ids(args.id, args.count), start=1)
    ]
    return chargers


async def main_async(args: argparse.Namespace) -> int:
    chargers = build_chargers(args)
    scenario = Scenario(
        start_after=args.start_after,
        id_tag=args.id_tag,
        stop_after=args.stop_after,
        offline_after=args.offline_after,
        offline_for=args.offline_for,
        plug_after=args.plug_after,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    controller = Controller(chargers)
    runner: web.AppRunner | None = None
    if args.control_port is not None:
        try:
            runner, port = await serve_http(controller, args.control_port)
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            print(f"--control-port {args.control_port}: {reason}", file=sys.stderr)
            return 2
        print(f"control: POST commands to http://127.0.0.1:{port}/", flush=True)
    reader = asyncio.create_task(serve_stdin(controller)) if args.control_stdin else None
    try:
        return await run_fleet(chargers, scenario, stop)
    finally:
        if reader is not None:
            reader.cancel()
        if runner is not None:
            await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
