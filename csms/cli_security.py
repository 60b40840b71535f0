"""`csms security-events`: the security events chargers reported, read from the database
(as GET /api/security-events lists them), newest first."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from csms.clock import normalise_ocpp_time
from csms.config import Config
from csms.config_values import open_database
from csms.store.security import EventFilter, SecurityStore


def add_security_command(commands: Any) -> None:
    events = commands.add_parser(
        "security-events",
        help="list the security events chargers reported, newest first",
        description="One line per event: id, when it happened, charger, type, CRITICAL for"
        " the types the specification marks critical (each raised an operator alert), and"
        " the charger's techInfo.",
    )
    events.add_argument("--charger", metavar="ID", help="only this charger's")
    events.add_argument("--type", metavar="TYPE", help="e.g. TamperDetectionActivated")
    events.add_argument("--critical", action="store_true", help="only critical ones")
    events.add_argument(
        "--from", dest="since", metavar="ISO", help="happened at or after (default zone: UTC)"
    )
    events.add_argument("--to", dest="until", metavar="ISO", help="happened before")
    events.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    events.set_defaults(run=_list_events)


async def _list_events(config: Config, args: argparse.Namespace) -> int:
    times: dict[str, str | None] = {}
    for option, text in (("--from", args.since), ("--to", args.until)):
        try:
            times[option] = normalise_ocpp_time(text) if text else None
        except ValueError:
            print(f"csms: {option}: not an ISO 8601 date-time: {text!r}", file=sys.stderr)
            return 2
    if args.limit < 1:
        print("csms: --limit: at least 1", file=sys.stderr)
        return 2
    where = EventFilter(
        charger_id=args.charger,
        type=args.type,
        critical=True if args.critical else None,
        since=times["--from"],
        until=times["--to"],
    )
    db = await open_database(config)
    try:
        rows = await SecurityStore(db).events(where, limit=args.limit)
    finally:
        await db.close()
    for row in rows:
        critical = "CRITICAL" if row["critical"] else "-"
        print(
            f"{row['id']}\t{row['timestamp']}\t{row['charger_id']}\t{row['type']}"
            f"\t{critical}\t{row['tech_info'] or '-'}"
        )
    return 0
