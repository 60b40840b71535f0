"""python -m bench.faults [--quick] [--scenario NAME ...] [--sessions N] [--chargers N]"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from bench.faults import adversarial, node_kill
from bench.faults.ledger import Report
from bench.faults.scenarios import (
    charger_fault,
    full_disk,
    kill_at_random,
    locked_database,
    misbehaving,
    mount_small_disk,
    run_fleet,
    stripe_outage,
    unmount,
    webhook_storm,
)

SCENARIOS = (
    "kill",
    "stripe-outage",
    "webhook-storm",
    "charger-faults",
    "database-locked",
    "disk-full",
    "adversarial",
    "node-kill",
)


async def run(names: list[str], chargers: int, sessions: int, folder: Path) -> list[Report]:
    reports = []
    for name in names:
        where = folder / name
        clocks = {n: [timedelta(0)] for n in range(chargers)}
        match name:
            case "kill":
                report = await run_fleet(name, where, chargers, sessions, chaos=kill_at_random)
            case "stripe-outage":
                report = await run_fleet(name, where, chargers, sessions, chaos=stripe_outage)
            case "webhook-storm":
                report = await run_fleet(name, where, chargers, sessions, chaos=webhook_storm)
            case "charger-faults":
                report = await run_fleet(
                    name,
                    where,
                    chargers,
                    sessions,
                    behaviour=misbehaving,
                    while_charging=charger_fault(clocks),
                    clocks=clocks,
                )
            case "database-locked":
                report = await run_fleet(name, where, chargers, sessions, chaos=locked_database)
            case "adversarial":
                report = await adversarial.run(name, where, chargers, sessions)
            case "node-kill":
                report = await node_kill.run(name, where, chargers, sessions)
            case _:
                report = await _disk_full(where, chargers, sessions)
        print(report.line(), flush=True)
        reports.append(report)
    return reports


async def _disk_full(where: Path, chargers: int, sessions: int) -> Report:
    disk = where / "disk"
    if not await asyncio.to_thread(mount_small_disk, disk):
        report = Report("disk-full")
        report.notes.append("skipped: this machine does not allow mounting a tmpfs (run as root)")
        return report
    try:
        return await run_fleet(
            "disk-full", where, chargers, sessions, chaos=full_disk(disk), database_dir=disk
        )
    finally:
        await asyncio.to_thread(unmount, disk)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the CI-sized run")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS)
    parser.add_argument("--chargers", type=int)
    parser.add_argument("--sessions", type=int, help="sessions per charger")
    parser.add_argument("--keep", metavar="DIR", help="keep databases and logs here")
    args = parser.parse_args()
    chargers = args.chargers or (4 if args.quick else 20)
    sessions = args.sessions or (2 if args.quick else 10)
    logging.basicConfig(level=logging.ERROR)  # the simulators complain about every restart
    folder = Path(args.keep or tempfile.mkdtemp(prefix="csms-faults-"))
    reports = asyncio.run(run(args.scenario or list(SCENARIOS), chargers, sessions, folder))
    for report in reports:
        for case, (passed, failed, idle) in sorted(report.cases.items()):
            untried = f" ({idle} without its order of events)" if idle else ""
            print(f"  {report.scenario}: case {case:<20} passed {passed}  failed {failed}{untried}")
        for note in report.notes[:30]:
            print(f"  {report.scenario}: {note}")
    clean = all(report.clean for report in reports)
    total = sum(r.sessions for r in reports)
    print(f"{total} sessions, {'all clean' if clean else 'PROBLEMS FOUND'}; logs in {folder}")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
