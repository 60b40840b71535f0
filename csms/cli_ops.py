"""Operator commands of the `csms` CLI: API keys, payments, refunds, reviews and OCPP commands.

Refunds, reviews and charger commands are carried out by the running server (the charger
is connected to it; money moves through its outbox), so those call its HTTP API; API keys
and the payment list are read from and written to the database directly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import aiohttp

from csms.config import Config
from csms.config_values import open_database
from csms.store.api_keys import ApiKeys
from payments.pricing import format_money
from payments.reservations_store import ReservationStore


def add_operator_commands(commands: Any) -> None:
    keys = commands.add_parser("apikeys", help="create management API keys")
    keys_commands = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = keys_commands.add_parser("create", help="create a key; it is shown only once")
    create.add_argument("name", help="who or what uses the key")
    create.add_argument(
        "--user", help="the operator user it acts for, with its role (default: none, admin)"
    )
    create.set_defaults(run=_create_key)

    payments = commands.add_parser("payments", help="list paid sessions, act on reviews")
    payments_commands = payments.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = payments_commands.add_parser("list", help="newest first")
    listing.add_argument("--state", help="e.g. Charging, Completed, NeedsReview")
    listing.add_argument("--charger", metavar="ID")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(run=_list_payments)
    review = payments_commands.add_parser(
        "review",
        help="a way out of NeedsReview: retry the capture, release the hold, or resolve",
        description="Act on a payment in NeedsReview through the running server; the audit "
        "log names the API key used.",
    )
    review.add_argument("reservation_id")
    action = review.add_mutually_exclusive_group(required=True)
    action.add_argument(
        "--retry-capture", action="store_true", help="capture from the hold still on the card"
    )
    action.add_argument("--release", action="store_true", help="give the hold back to the card")
    action.add_argument(
        "--resolve", metavar="NOTE", help="close the review (no hold left) with a note"
    )
    review.add_argument(
        "--amount",
        type=int,
        help="with --retry-capture: minor units (default: the session's price, within the hold)",
    )
    _api_options(review)
    review.set_defaults(run=_review)

    refund = commands.add_parser("refund", help="refund all or part of a captured payment")
    refund.add_argument("reservation_id")
    refund.add_argument("--amount", type=int, help="minor units (default: all that is left)")
    refund.add_argument("--reason", required=True)
    refund.add_argument("--idempotency-key", help="the same key refunds only once")
    _api_options(refund)
    refund.set_defaults(run=_refund)

    command = commands.add_parser("command", help="send an OCPP command to a connected charger")
    command.add_argument("charge_point_id")
    command.add_argument(
        "operation", help="any of the 26, e.g. Reset, GetConfiguration, GetLog, InstallCertificate"
    )
    command.add_argument("payload", nargs="?", default="{}", help='JSON, e.g. \'{"type": "Soft"}\'')
    _api_options(command)
    command.set_defaults(run=_command)


def _api_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", metavar="URL", help="server (default: this config's HTTP port)")
    parser.add_argument(
        "--api-key", help="default: $CSMS_API_KEY, else the first of the config's api.keys"
    )


async def _create_key(config: Config, args: argparse.Namespace) -> int:
    db = await open_database(config)
    try:
        key = await ApiKeys(db).create(args.name, args.user)
    except ValueError as error:  # an unknown or disabled user
        print(f"csms: --user: {str(error).partition(': ')[2]}", file=sys.stderr)
        return 2
    finally:
        await db.close()
    print(key)
    print("Keep it now: only its digest is stored.", file=sys.stderr)
    return 0


async def _list_payments(config: Config, args: argparse.Namespace) -> int:
    db = await open_database(config)
    try:
        found = await ReservationStore(db).page(
            state=args.state,
            charger_id=args.charger,
            since=None,
            until=None,
            before=None,
            limit=args.limit,
        )
    finally:
        await db.close()
    for r in found:
        money = r.tariff.currency
        print(
            f"{r.id}\t{r.created_at:%Y-%m-%d %H:%M}\t{r.charger_id}/{r.connector_id}\t{r.state}"
            f"\thold {format_money(r.hold_amount, money)}"
            f"\tcaptured {format_money(r.captured_amount, money)}"
            f"\trefunded {format_money(r.refunded_amount, money)}"
        )
    return 0


async def _refund(config: Config, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"reason": args.reason}
    if args.amount is not None:
        body["amount"] = args.amount
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else {}
    return await _call(
        config, args, "POST", f"/api/payments/{args.reservation_id}/refunds", body, headers
    )


async def _review(config: Config, args: argparse.Namespace) -> int:
    path = f"/api/payments/{args.reservation_id}/review/"
    if args.amount is not None and not args.retry_capture:
        print("csms: --amount goes with --retry-capture", file=sys.stderr)
        return 2
    if args.retry_capture:
        body = {} if args.amount is None else {"amount": args.amount}
        return await _call(config, args, "POST", path + "retry-capture", body, {})
    if args.release:
        return await _call(config, args, "POST", path + "release", {}, {})
    return await _call(config, args, "POST", path + "resolve", {"note": args.resolve}, {})


async def _command(config: Config, args: argparse.Namespace) -> int:
    try:
        payload = json.loads(args.payload)
    except ValueError:
        print(f"csms: the payload is not JSON: {args.payload!r}", file=sys.stderr)
        return 2
    path = f"/api/chargers/{args.charge_point_id}/commands/{args.operation}"
    return await _call(config, args, "POST", path, payload, {})


async def _call(
    config: Config,
    args: argparse.Namespace,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
) -> int:
    base = (args.api or f"http://127.0.0.1:{config.server.http_port}").rstrip("/")
    configured = [k for k in config.api.keys.split(",") if k]
    key = args.api_key or os.environ.get("CSMS_API_KEY") or (configured[0] if configured else "")
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                method, base + path, json=body, headers={"X-API-Key": key, **headers}
            ) as response,
        ):
            answer = await response.json(content_type=None)
    except aiohttp.ClientError as error:
        print(f"csms: cannot reach the server at {base}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(answer, indent=2))
    return 0 if response.status < 400 else 1
