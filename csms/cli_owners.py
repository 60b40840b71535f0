"""`csms owners`: owners of sites' chargers as Stripe Connect accounts, through the running
server (`/api/owners`): it holds the Stripe client, and its webhooks keep the flags true.

    csms owners add hotel --name "Hotel Adler" --email owner@example.com --country DE
    csms owners link hotel        # prints a new link to Stripe's hosted onboarding
    csms owners list
    csms owners show hotel        # ready or not, Stripe's flags, what is due, payouts
    csms owners refresh hotel     # read the account again from Stripe
    csms owners statement hotel --month 2026-11 [--csv | --html] [-o FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import aiohttp

from csms.cli_statements import add_statement_command, statement
from csms.config import Config
from payments.currency import format_money


def add_owners_commands(commands: Any) -> None:
    owners = commands.add_parser(
        "owners",
        help="owners of sites' chargers: Stripe Connect accounts and their onboarding",
        description="Owners receive their share of sessions through Stripe Connect. Add one"
        " (this creates its Stripe Express account), send it the onboarding link, and it is"
        " ready once Stripe says so.",
    )
    actions = owners.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add an owner and create its Stripe account")
    add.add_argument("id", help="1 to 64 of A-Z a-z 0-9 . _ -")
    add.add_argument("--name", required=True)
    add.add_argument("--email", required=True)
    add.add_argument("--country", required=True, help="ISO 3166-1 alpha-2, e.g. DE")
    link = actions.add_parser("link", help="print a new link to Stripe's hosted onboarding")
    link.add_argument("id")
    listing = actions.add_parser("list", help="every owner, ready or not")
    show = actions.add_parser("show", help="an owner: Stripe's flags, what is due, payouts")
    show.add_argument("id")
    refresh = actions.add_parser("refresh", help="read the owner's account again from Stripe")
    refresh.add_argument("id")
    report = add_statement_command(actions)
    for action in (add, link, listing, show, refresh, report):
        action.add_argument("--json", action="store_true", help="print the answer as JSON")
        action.add_argument("--api", metavar="URL", help="default: this config's HTTP port")
        action.add_argument(
            "--api-key", help="default: $CSMS_API_KEY, else the first of the config's api.keys"
        )
    owners.set_defaults(run=_owners)


async def _owners(config: Config, args: argparse.Namespace) -> int:
    if args.action == "statement":
        return await statement(config, args)
    method, path, body = _request(args)
    base = (args.api or f"http://127.0.0.1:{config.server.http_port}").rstrip("/")
    configured = [k for k in config.api.keys.split(",") if k]
    key = args.api_key or os.environ.get("CSMS_API_KEY") or (configured[0] if configured else "")
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                method, f"{base}{path}", json=body, headers={"X-API-Key": key}
            ) as response,
        ):
            answer = await response.json(content_type=None)
    except (aiohttp.ClientError, ValueError) as error:
        print(f"csms: cannot reach the server at {base}: {error}", file=sys.stderr)
        return 1
    if response.status >= 400:
        error = (answer.get("error") or {}) if isinstance(answer, dict) else {}
        field = f"{error['field']}: " if error.get("field") else ""
        print(
            f"csms: owners {args.action} failed ({response.status}): "
            f"{field}{error.get('message') or answer}",
            file=sys.stderr,
        )
        return 1
    print(json.dumps(answer, indent=2) if args.json else render(args.action, answer))
    return 0


def _request(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None]:
    match args.action:
        case "add":
            body = {"id": args.id, "name": args.name, "email": args.email, "country": args.country}
            return "POST", "/api/owners", body
        case "link":
            return "POST", f"/api/owners/{args.id}/onboarding-link", None
        case "list":
            return "GET", "/api/owners", None
        case "refresh":
            return "POST", f"/api/owners/{args.id}/refresh", None
    return "GET", f"/api/owners/{args.id}", None


def render(action: str, answer: Any) -> str:
    if action == "link":
        return f"{answer['url']}\n(single use; expires {answer['expiresAt']})"
    if action == "list":
        if not answer:
            return "No owners yet: add one with `csms owners add`."
        rows = [("ID", "NAME", "COUNTRY", "STRIPE ACCOUNT", "READY")] + [
            (o["id"], o["name"], o["country"], o["stripeAccountId"] or "-", _ready(o))
            for o in answer
        ]
        widths = [max(len(row[n]) for row in rows) for n in range(4)]
        return "\n".join(
            "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[4]])
            for row in rows
        )
    return _owner(answer)


def _ready(owner: dict[str, Any]) -> str:
    if owner["ready"]:
        return "ready"
    if not owner["stripeAccountId"]:
        return "no Stripe account yet"
    return "not ready: onboarding unfinished" if not owner["detailsSubmitted"] else "not ready"


def _owner(o: dict[str, Any]) -> str:
    yes = {True: "yes", False: "no"}
    lines = [
        f"Owner {o['id']}: {o['name']} <{o['email']}>, {o['country']}",
        f"Stripe account: {o['stripeAccountId'] or '-'}",
        f"Ready: {_ready(o)}" + (f" (since {o['readyAt']})" if o.get("readyAt") else ""),
        f"Details submitted: {yes[o['detailsSubmitted']]}, payouts enabled:"
        f" {yes[o['payoutsEnabled']]}, transfers: {'active' if o['transfersActive'] else 'no'},"
        f" charges enabled: {yes[o['chargesEnabled']]}",
    ]
    if o["requirementsDue"]:
        lines.append("Due at Stripe: " + ", ".join(o["requirementsDue"]))
    payouts = o.get("payouts")
    if payouts:
        lines.append("Payouts:")
        for p in payouts:
            failure = f" ({p['failureMessage']})" if p.get("failureMessage") else ""
            lines.append(
                f"  {p['id']}  {format_money(p['amount'], p['currency'])}  {p['status']}{failure}"
            )
    elif payouts is not None:
        lines.append("Payouts: none yet")
    return "\n".join(lines)
