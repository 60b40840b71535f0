"""`csms owners statement`: an owner's monthly statement from the running server
(`/api/owners/{id}/statements/{month}`), as text, JSON, CSV or a printable HTML page.

    csms owners statement hotel --month 2026-11            # the figures, as text
    csms owners statement hotel --month 2026-11 --csv -o hotel-2026-11.csv
    csms owners statement hotel --month 2026-11 --html -o hotel-2026-11.html
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from csms.config import Config
from payments.currency import format_money
from payments.statements import Month, MonthError


def add_statement_command(actions: Any) -> argparse.ArgumentParser:
    statement = actions.add_parser(
        "statement",
        help="an owner's monthly statement: sessions, shares, transfers, payouts",
        description="Months are in the operator's time zone; a session belongs to the month"
        " its charge stopped in.",
    )
    statement.add_argument("id")
    statement.add_argument("--month", required=True, help="YYYY-MM, e.g. 2026-11")
    form = statement.add_mutually_exclusive_group()
    form.add_argument("--csv", action="store_true", help="as CSV")
    form.add_argument("--html", action="store_true", help="as a printable HTML page")
    statement.add_argument("-o", "--output", metavar="FILE", help="write it there, not to stdout")
    return statement


async def statement(config: Config, args: argparse.Namespace) -> int:
    suffix = ".csv" if args.csv else ".html" if args.html else ""
    base = (args.api or f"http://127.0.0.1:{config.server.http_port}").rstrip("/")
    configured = [k for k in config.api.keys.split(",") if k]
    key = args.api_key or os.environ.get("CSMS_API_KEY") or (configured[0] if configured else "")
    try:
        month = Month.parse(args.month)  # nothing else goes into the request's path
    except MonthError as error:
        print(f"csms: owners statement failed: month: {error}", file=sys.stderr)
        return 1  # as when the server refuses it
    url = f"{base}/api/owners/{quote(args.id, safe='')}/statements/{month}{suffix}"
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(url, headers={"X-API-Key": key}) as response,
        ):
            text = await response.text()
    except aiohttp.ClientError as error:
        print(f"csms: cannot reach the server at {base}: {error}", file=sys.stderr)
        return 1
    if response.status >= 400:
        print(f"csms: owners statement failed ({response.status}): {_error(text)}", file=sys.stderr)
        return 1
    if not suffix:
        answer = json.loads(text)
        text = json.dumps(answer, indent=2) if args.json else render(answer)
    if args.output:
        _write(args.output, text if text.endswith("\n") else text + "\n")
        print(f"written to {args.output}", file=sys.stderr)
    else:
        print(text, end="" if text.endswith("\n") else "\n")
    return 0


def _write(path: str, text: str) -> None:
    Path(path).write_text(text, "utf-8")


def _error(text: str) -> str:
    try:
        error = json.loads(text).get("error") or {}
    except (ValueError, AttributeError):
        return text[:500]
    field = f"{error['field']}: " if error.get("field") else ""
    return f"{field}{error.get('message') or text[:500]}"


def render(s: dict[str, Any]) -> str:
    lines = [f"Statement of {s['ownerName']} ({s['ownerId']}), {s['month']} ({s['timeZone']})"]
    for x in s["sessions"]:
        money = lambda amount, c=x["currency"]: format_money(amount, c)  # noqa: E731
        lines.append(
            f"  {x['stoppedAt']}  {x['reservationId']}  {x['chargerName'] or x['chargerId']}"
            f"  {x['siteName'] or '-'}  {x['energyWh']} Wh"
            f"  paid {money(x['captured'])}  refunded {money(x['refunded'])}"
            f"  owner {money(x['ownerShare'])}  operator {money(x['operatorShare'])}"
            f"  transferred {money(x['transferred'])}  reversed {money(x['reversed'])}"
        )
    for m in s["movements"]:
        lines.append(
            f"  {m['at']}  {m['kind']}  {m['stripeId'] or m['id']}  {m['status']}"
            f"  {format_money(m['amount'], m['currency'])}"
        )
    for p in s["payouts"]:
        lines.append(
            f"  {p['at']}  payout {p['id']}  {p['status']}"
            f"  {format_money(p['amount'], p['currency'])}"
        )
    if not s["totals"]:
        lines.append("Nothing this month.")
    for t in s["totals"]:
        money = lambda amount, c=t["currency"]: format_money(amount, c)  # noqa: E731
        lines.append(
            f"Total {t['currency'].upper()}: {t['sessions']} sessions, paid {money(t['captured'])},"
            f" refunded {money(t['refunded'])}, owner {money(t['ownerShare'])},"
            f" operator {money(t['operatorShare'])}; transferred this month"
            f" {money(t['transfersInMonth'])}, reversed {money(t['reversalsInMonth'])},"
            f" paid out {money(t['payoutsPaid'])}"
        )
    return "\n".join(lines)
