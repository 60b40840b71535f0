"""`csms reconcile`: compare payments with Stripe now, through the running server.

The server does the work (`POST /api/reconcile`): it holds the chargers' facts the state
machine reads, and its runner carries out what the findings lead to (releasing a late
hold, say). The command prints the summary as a table, or as JSON with --json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import aiohttp

from csms.config import Config
from payments.currency import format_money
from payments.reconcile import parse_since
from storage.clock import utc_now


def add_reconcile_command(commands: Any) -> None:
    reconcile = commands.add_parser(
        "reconcile",
        help="compare payments with Stripe now and record what Stripe says",
        description="Ask the running server to reconcile now: list the Stripe objects it"
        " created in the window (Checkout Sessions, PaymentIntents, charges, refunds,"
        " disputes), compare them with its books, release late holds, record captures,"
        " refunds and disputes made outside csms, and send disagreements to review (audit"
        " actor: reconciler). Safe to run at any time, also while a scheduled run is on.",
    )
    reconcile.add_argument(
        "--since",
        metavar="ISO|DURATION",
        help="objects created since this time (ISO 8601, UTC unless it says otherwise) or"
        " this long ago (90m, 24h, 7d, 1d12h); default: [payments] reconcile_window_hours",
    )
    reconcile.add_argument("--json", action="store_true", help="print the summary as JSON")
    reconcile.add_argument("--api", metavar="URL", help="server (default: this config's HTTP port)")
    reconcile.add_argument(
        "--api-key", help="default: $CSMS_API_KEY, else the first of the config's api.keys"
    )
    reconcile.set_defaults(run=_reconcile)


async def _reconcile(config: Config, args: argparse.Namespace) -> int:
    body: dict[str, str] = {}
    if args.since is not None:
        try:
            parse_since(args.since, utc_now())  # refused here rather than by the server
        except ValueError as error:
            print(f"csms: --since: {error}", file=sys.stderr)
            return 2
        body["since"] = args.since
    base = (args.api or f"http://127.0.0.1:{config.server.http_port}").rstrip("/")
    configured = [k for k in config.api.keys.split(",") if k]
    key = args.api_key or os.environ.get("CSMS_API_KEY") or (configured[0] if configured else "")
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{base}/api/reconcile", json=body, headers={"X-API-Key": key}) as response,
        ):
            answer = await response.json(content_type=None)
    except (aiohttp.ClientError, ValueError) as error:
        print(f"csms: cannot reach the server at {base}: {error}", file=sys.stderr)
        return 1
    if response.status >= 400:
        message = (answer.get("error") or {}).get("message") if isinstance(answer, dict) else None
        print(f"csms: reconcile failed ({response.status}): {message or answer}", file=sys.stderr)
        return 1
    print(json.dumps(answer, indent=2) if args.json else render(answer))
    return 0


_RESOURCES = {
    "checkout_sessions": ("Checkout Sessions", "Checkout Session"),
    "payment_intents": ("PaymentIntents", "PaymentIntent"),
    "charges": ("charges", "charge"),
    "refunds": ("refunds", "refund"),
    "disputes": ("disputes", "dispute"),
}
_COLUMNS = ("KIND", "PAYMENT", "STRIPE ID", "AMOUNT", "OUTCOME", "DETAIL")
_AMOUNT = _COLUMNS.index("AMOUNT")  # right-aligned


def render(summary: dict[str, Any]) -> str:
    """The summary of `POST /api/reconcile` as a table for a terminal."""
    listed = ", ".join(
        f"{name} not listed" if count is None else f"{count} {name if count != 1 else one}"
        for key, (name, one) in _RESOURCES.items()
        if (count := summary["listed"].get(key)) is not None or key in summary["listed"]
    )
    lines = [
        f"Reconciled with Stripe: objects created since {summary['since']}",
        f"Listed {listed}; {summary['reservations']} payments compared.",
        "",
    ]
    # Findings an earlier run applied are in the JSON; the table shows what is new.
    findings = [f for f in summary["findings"] if f["outcome"] != "already_applied"]
    earlier = summary.get("alreadyApplied") or 0
    if not findings:
        lines.append("Our books agree with Stripe: nothing to do.")
        if earlier:
            lines.append(
                f"({earlier} finding{'s' if earlier != 1 else ''} applied by an earlier run.)"
            )
        return "\n".join(lines)
    rows = [
        (
            f["kind"],
            f["reservationId"] or "-",
            f["stripeId"],
            format_money(f["amount"], f["currency"])
            if f["amount"] is not None and f["currency"]
            else ("-" if f["amount"] is None else str(f["amount"])),
            f["outcome"].replace("_", " "),
            f["detail"],
        )
        for f in findings
    ]
    widths = [max(len(row[n]) for row in [_COLUMNS, *rows]) for n in range(len(_COLUMNS) - 1)]
    for row in [_COLUMNS, *rows]:
        cells = [
            cell.rjust(width) if n == _AMOUNT else cell.ljust(width)
            for n, (cell, width) in enumerate(zip(row, widths, strict=False))
        ]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    counts = ", ".join(f"{kind} {n}" for kind, n in summary["counts"].items())
    totals = (
        f"{summary['applied']} applied, {summary['reported']} reported, {summary['failed']} failed"
    )
    if earlier:
        totals += f", {earlier} applied by an earlier run"
    lines += ["", f"{counts}: {totals}."]
    return "\n".join(lines)
