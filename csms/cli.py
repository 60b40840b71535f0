"""`csms` command line: run the server, register chargers and id tags."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from contextlib import nullcontext
from pathlib import Path

from csms.api.chargers import PLUG_TYPES, ConnectorDetails
from csms.api.tariffs import TariffAssignment, check_assignment
from csms.api.transactions import transactions_csv
from csms.app import serve
from csms.cli_certs import add_certs_commands
from csms.cli_ops import add_operator_commands
from csms.cli_owners import add_owners_commands
from csms.cli_reconcile import add_reconcile_command
from csms.cli_security import add_security_command
from csms.cli_sites import add_sites_commands
from csms.cli_users import add_users_commands
from csms.clock import normalise_ocpp_time
from csms.config import Config, ConfigError, load_config
from csms.config_values import default_tariff, open_database
from csms.demo import DemoFailed, demo_config, print_summary, run_demo
from csms.logs import configure_logging
from csms.ocpp16.auth import (
    PASSWORD_RULE,
    PROFILE_BASIC,
    PROFILE_TLS_CERTIFICATE,
    hash_password,
    valid_password,
)
from csms.ocpp16.handshake import CHARGE_POINT_ID_RULE, charge_point_id_from_path
from csms.qr import (
    BaseUrlError,
    UnknownChargerError,
    check_base_url,
    connector_url,
    label_sheet_html,
    labels_from_database,
    qr_png,
    qr_svg,
)
from csms.startup import StartupError
from csms.store.certificates import CertificateStore
from csms.store.chargers import ChargerStore, connector_details
from csms.store.id_tags import IdTagStore
from csms.store.sites import SiteStore
from csms.store.transactions import TransactionFilter, TransactionStore
from httpapi.errors import ApiError
from payments.bands import BandError, bands_from_text, window_from_text
from payments.pricing import (
    MONEY_FIELDS,
    TariffError,
    format_money,
    hold_amount,
    tariff_from_major_units,
)
from payments.tariff_store import TariffStore
from storage.clock import utc_now

Command = Callable[[Config, argparse.Namespace], Awaitable[int]]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="csms", description="OCPP 1.6J central system")
    parser.add_argument("--config", metavar="PATH", help="config file (default: ./config.toml)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("serve", help="run the central system").set_defaults(run=_serve)

    demo = commands.add_parser(
        "demo", help="run the server, the Stripe sandbox and a simulated charger; pay and charge"
    )
    demo.add_argument("--json", action="store_true", help="print the summary as JSON")
    demo.add_argument(
        "--energy-kwh", type=float, default=3.0, help="energy to charge before stopping"
    )
    demo.add_argument(
        "--stay", action="store_true", help="keep everything running after the session"
    )
    demo.set_defaults(run=_demo)

    chargers = commands.add_parser("chargers", help="register and list chargers")
    chargers_commands = chargers.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = chargers_commands.add_parser("add", help="register a charger so that it may connect")
    add.add_argument("charge_point_id")
    add.add_argument("--name")
    add.add_argument("--location")
    add.add_argument(
        "--status",
        default="Accepted",
        choices=("Accepted", "Pending", "Rejected"),
        help="registration status its BootNotification is answered with",
    )
    add.add_argument(
        "--password",
        help="its HTTP Basic auth password (AuthorizationKey): 16 to 40 printable ASCII"
        " characters; stored hashed. Sets it on a registered charger too",
    )
    add.add_argument(
        "--security-profile",
        type=int,
        choices=(1, 2, 3),
        help="1: password over ws:// or wss://, 2: password over wss:// only (default with"
        " --password: 1; without one, the charger needs no password), 3: a client certificate"
        " from the operator CA over wss:// (csms certs), no password",
    )
    add.add_argument(
        "--connector",
        action="append",
        default=[],
        metavar="N:PLUG:KW",
        dest="connectors",
        help="a connector's plug type and maximum power for the driver's start page, e.g."
        " 1:Type2:22 (repeatable); plug types: " + ", ".join(PLUG_TYPES),
    )
    add.add_argument("--site", metavar="SITE_ID", help="the site it belongs to (csms sites)")
    add.set_defaults(run=_add_charger)
    chargers_commands.add_parser(
        "list", help="list chargers: id, registration, online, last seen, site"
    ).set_defaults(run=_list_chargers)

    tariffs = commands.add_parser("tariffs", help="set, assign and list tariffs")
    tariff_commands = tariffs.add_subparsers(dest="action", required=True, metavar="ACTION")
    tariff_set = tariff_commands.add_parser(
        "set", help="create or change a tariff (amounts in major units: 0.35 means 35 cents)"
    )
    tariff_set.add_argument("tariff_id")
    tariff_set.add_argument("--currency", required=True, help="ISO 4217 code, e.g. EUR")
    for money in MONEY_FIELDS:
        tariff_set.add_argument(f"--{money.replace('_', '-')}", dest=money, metavar="AMOUNT")
    for whole in _WHOLE_NUMBER_FIELDS:
        tariff_set.add_argument(f"--{whole.replace('_', '-')}", dest=whole, type=int, metavar="N")
    tariff_set.add_argument(
        "--tax-rate-percent",
        dest="tax_rate_percent",
        metavar="PERCENT",
        help="VAT included in the prices (they are gross), e.g. 19",
    )
    tariff_set.add_argument(
        "--bands",
        metavar="BANDS",
        help='prices by time of day in the site\'s zone: "Peak mon-fri 07:00-22:00 0.45; ..."',
    )
    tariff_set.add_argument(
        "--time-fee-excluded",
        dest="time_fee_excluded",
        metavar="HH:MM-HH:MM",
        help="no time fee inside this span of every day, e.g. 22:00-07:00",
    )
    tariff_set.set_defaults(run=_set_tariff)
    assign = tariff_commands.add_parser("assign", help="apply a tariff to a charger or connector")
    assign.add_argument("tariff_id")
    assign.add_argument("charge_point_id")
    assign.add_argument("--connector", type=int, default=0, help="one connector (default: all)")
    assign.set_defaults(run=_assign_tariff)
    tariff_commands.add_parser("list", help="list tariffs").set_defaults(run=_list_tariffs)

    tags = commands.add_parser("tags", help="manage id tags (RFID cards)")
    tags_commands = tags.add_subparsers(dest="action", required=True, metavar="ACTION")
    tag_add = tags_commands.add_parser("add", help="add or update an id tag")
    tag_add.add_argument("id_tag")
    tag_add.add_argument("--parent", help="parent id tag (group)")
    tag_add.add_argument("--expiry", help="expiry date, ISO 8601 (e.g. 2027-01-01T00:00:00Z)")
    tag_add.add_argument("--blocked", action="store_true")
    tag_add.set_defaults(run=_add_tag)
    tags_commands.add_parser("list", help="list id tags").set_defaults(run=_list_tags)

    qr = commands.add_parser(
        "qr",
        help="QR codes for connectors, or a printable sheet of labels",
        usage="csms qr CHARGER [--connector N] [--format {svg,png}] [--output FILE]"
        " [--base-url URL]\n       csms qr --sheet [CHARGER ...] [--output FILE] [--base-url URL]",
        description="Write the QR code of one connector, or with --sheet an HTML page of A4"
        " labels (QR code, short URL and price) for every connector of the chargers named, or of"
        " every registered charger. A code opens BASE-URL/c/CHARGER/CONNECTOR, the driver's"
        " start page.",
    )
    qr.add_argument("charge_point_ids", nargs="*", metavar="CHARGER", help="charge point id")
    qr.add_argument(
        "--sheet", action="store_true", help="write the label sheet instead of one QR code"
    )
    qr.add_argument("--connector", type=int, metavar="N", help="connector number (default: 1)")
    qr.add_argument("--format", choices=("svg", "png"), help="image format (default: svg)")
    qr.add_argument(
        "--output",
        metavar="FILE",
        help="where to write (default: CHARGER-N.svg or .png, or labels.html with --sheet)",
    )
    qr.add_argument(
        "--base-url",
        metavar="URL",
        help="the server's public address, e.g. https://charge.example.com"
        " (default: payments.public_base_url)",
    )
    qr.set_defaults(run=_qr)

    transactions = commands.add_parser("transactions", help="export transactions")
    transaction_commands = transactions.add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    export = transaction_commands.add_parser(
        "export", help="write transactions as CSV, newest first (as /api/transactions.csv)"
    )
    export.add_argument("--charger", metavar="ID", help="only this charger's")
    export.add_argument("--connector", type=int, metavar="N", help="only this connector's")
    export.add_argument("--id-tag", metavar="TAG", help="only those started with this id tag")
    export.add_argument(
        "--from", dest="started_from", metavar="ISO", help="started at or after (default zone: UTC)"
    )
    export.add_argument("--to", dest="started_before", metavar="ISO", help="started before")
    state = export.add_mutually_exclusive_group()
    state.add_argument(
        "--open", dest="state", action="store_const", const="open", help="only those not stopped"
    )
    state.add_argument(
        "--closed", dest="state", action="store_const", const="closed", help="only stopped ones"
    )
    export.add_argument("--output", metavar="FILE", help="where to write (default: stdout)")
    export.set_defaults(run=_export_transactions)
    add_operator_commands(commands)
    add_reconcile_command(commands)
    add_security_command(commands)
    add_certs_commands(commands)
    add_sites_commands(commands)
    add_users_commands(commands)
    add_owners_commands(commands)
    return parser


async def _serve(config: Config, args: argparse.Namespace) -> int:
    await serve(config)
    return 0


async def _demo(config: Config, args: argparse.Namespace) -> int:
    try:
        summary = await run_demo(
            demo_config(config), energy_wh=int(args.energy_kwh * 1000), stay=args.stay
        )
    except DemoFailed as failure:
        print(f"csms demo: {failure}", file=sys.stderr)
        return 1
    print_summary(summary, args.json)
    return 0 if summary.state == "Completed" else 1


async def _add_charger(config: Config, args: argparse.Namespace) -> int:
    # The same rule the WebSocket endpoint applies, so a registered id can always connect.
    if charge_point_id_from_path(f"/x/{args.charge_point_id}", "/x") != args.charge_point_id:
        print(
            f"csms: invalid charge point id {args.charge_point_id!r}: {CHARGE_POINT_ID_RULE}",
            file=sys.stderr,
        )
        return 2
    certificate = args.security_profile == PROFILE_TLS_CERTIFICATE
    if args.security_profile is not None and args.password is None and not certificate:
        print("csms: --security-profile needs --password", file=sys.stderr)
        return 2
    if certificate and args.password is not None:
        print("csms: --password: profile 3 uses a client certificate instead", file=sys.stderr)
        return 2
    if args.password is not None and not valid_password(args.password):
        print(f"csms: --password: {PASSWORD_RULE}", file=sys.stderr)
        return 2
    profile = args.security_profile or PROFILE_BASIC  # used with a password only
    entered: dict[int, dict[str, object]] = {}
    for text in args.connectors:
        entry = _connector_entry(text, config.ocpp.max_connector_id)
        if entry is None:
            print(
                f"csms: --connector {text!r}: N:PLUG:KW, N from 1 to"
                f" {config.ocpp.max_connector_id}, PLUG one of {', '.join(PLUG_TYPES)},"
                " KW above 0 and at most 1000 (e.g. 1:Type2:22)",
                file=sys.stderr,
            )
            return 2
        entered[entry[0]] = entry[1]
    db = await open_database(config)
    try:
        if args.site is not None and await SiteStore(db).get(args.site) is None:
            print(f"csms: --site: no such site: {args.site} (csms sites add ...)", file=sys.stderr)
            return 2
        store = ChargerStore(db)
        # Ids are CiStrings: one that differs only in case names the charger registered.
        existing = await store.get_ignoring_case(args.charge_point_id)
        charger_id = existing["id"] if existing else args.charge_point_id
        if args.password is None:
            created = await store.register(
                charger_id,
                name=args.name,
                location=args.location,
                registration_status=args.status,
            )
        else:
            password_hash = hash_password(args.password)
            created = await store.register_with_password(
                charger_id,
                profile,
                password_hash,
                name=args.name,
                location=args.location,
                registration_status=args.status,
            )
            if not created:
                await store.set_security(charger_id, profile, password_hash)
        if args.security_profile is not None or args.password is not None:
            await CertificateStore(db).require(charger_id, certificate)
        if args.site is not None:
            await store.set_site(charger_id, args.site)
        if entered:
            row = await store.get(charger_id)
            if row is not None:
                await store.set_connector_details(charger_id, {**connector_details(row), **entered})
    finally:
        await db.close()
    outcome = "registered" if created else "already registered"
    if args.password is not None:
        outcome += f"; password set, security profile {profile}"
    elif certificate:
        outcome += "; security profile 3 (client certificate)"
    print(f"{charger_id}: {outcome}")
    return 0


def _connector_entry(text: str, max_connector_id: int) -> tuple[int, dict[str, object]] | None:
    """--connector N:PLUG:KW as (connector id, details), validated as the API does; None if bad."""
    parts = text.split(":")
    if len(parts) != 3 or not parts[0].isascii() or not parts[0].isdigit():
        return None
    number = int(parts[0])
    if not 1 <= number <= max_connector_id:
        return None
    try:
        details = ConnectorDetails.model_validate({"plugType": parts[1], "maxPowerKw": parts[2]})
    except ValueError:
        return None
    return number, details.model_dump(mode="json", by_alias=True)


async def _list_chargers(config: Config, args: argparse.Namespace) -> int:
    db = await open_database(config)
    try:
        rows = await ChargerStore(db).list()
    finally:
        await db.close()
    for row in rows:
        state = "online" if row["online"] else "offline"
        seen, site = row["last_seen_at"] or "-", row["site_id"] or "-"
        print(f"{row['id']}\t{row['registration_status']}\t{state}\t{seen}\t{site}")
    return 0


_WHOLE_NUMBER_FIELDS = (
    "time_fee_free_minutes",
    "time_fee_max_minutes",
    "idle_grace_minutes",
    "idle_fee_max_minutes",
    "max_energy_wh",
    "max_duration_minutes",
)


async def _set_tariff(config: Config, args: argparse.Namespace) -> int:
    settings = {
        name: getattr(args, name)
        for name in (*MONEY_FIELDS, *_WHOLE_NUMBER_FIELDS, "tax_rate_percent")
        if getattr(args, name) is not None
    }
    try:
        if args.bands is not None:
            settings["bands"] = bands_from_text(args.bands)
        if args.time_fee_excluded is not None:
            settings["time_fee_excluded"] = window_from_text(args.time_fee_excluded)
        tariff = tariff_from_major_units(args.currency, settings)
    except (TariffError, BandError) as error:
        print(f"csms: --{error.field.replace('_', '-')}: {error.message}", file=sys.stderr)
        return 2
    db = await open_database(config)
    try:
        await TariffStore(db).put(args.tariff_id, tariff, utc_now())
    finally:
        await db.close()
    hold = format_money(hold_amount(tariff), tariff.currency)
    print(f"{args.tariff_id}: saved; a session holds at most {hold}")
    return 0


async def _assign_tariff(config: Config, args: argparse.Namespace) -> int:
    db = await open_database(config)
    try:
        tariffs = TariffStore(db)
        if args.tariff_id not in await tariffs.all():
            print(f"csms: no tariff {args.tariff_id!r} (csms tariffs set ...)", file=sys.stderr)
            return 2
        place = TariffAssignment(charger_id=args.charge_point_id, connector_id=args.connector)
        try:  # the API's check: a known charger, a connector it has
            await check_assignment(ChargerStore(db), config.ocpp.max_connector_id, place)
        except ApiError as error:
            option = {"chargerId": "CHARGE_POINT_ID", "connectorId": "--connector"}
            print(f"csms: {option.get(error.field or '', '')}: {error.message}", file=sys.stderr)
            return 2
        await tariffs.assign(args.tariff_id, args.charge_point_id, args.connector)
    finally:
        await db.close()
    where = f"connector {args.connector}" if args.connector else "every connector"
    print(f"{args.tariff_id}: applies to {args.charge_point_id}, {where}")
    return 0


async def _list_tariffs(config: Config, args: argparse.Namespace) -> int:
    db = await open_database(config)
    try:
        tariffs = await TariffStore(db).all()
    finally:
        await db.close()
    for tariff_id, tariff in tariffs.items():
        settings = {k: v for k, v in tariff.to_dict().items() if v not in (None, 0, ())}
        print(f"{tariff_id}\thold {format_money(hold_amount(tariff), tariff.currency)}\t{settings}")
    return 0


async def _add_tag(config: Config, args: argparse.Namespace) -> int:
    if not 1 <= len(args.id_tag) <= 20:
        print("csms: an OCPP 1.6 id tag has 1 to 20 characters", file=sys.stderr)
        return 2
    try:
        expiry = normalise_ocpp_time(args.expiry) if args.expiry else None
    except ValueError:
        print(f"csms: --expiry: not an ISO 8601 date-time: {args.expiry!r}", file=sys.stderr)
        return 2
    db = await open_database(config)
    try:
        await IdTagStore(db).put(
            args.id_tag, parent_id_tag=args.parent, expiry_date=expiry, blocked=args.blocked
        )
    finally:
        await db.close()
    print(f"{args.id_tag}: saved")
    return 0


async def _list_tags(config: Config, args: argparse.Namespace) -> int:
    db = await open_database(config)
    try:
        tags = await IdTagStore(db).list()
    finally:
        await db.close()
    for tag in tags:
        print(
            f"{tag.id_tag}\t{'blocked' if tag.blocked else 'active'}"
            f"\t{tag.expiry_date or '-'}\t{tag.parent_id_tag or '-'}"
        )
    return 0


async def _qr(config: Config, args: argparse.Namespace) -> int:
    if args.sheet and (args.connector is not None or args.format is not None):
        print("csms: --connector and --format are for one QR code, not --sheet", file=sys.stderr)
        return 2
    if not args.sheet and len(args.charge_point_ids) != 1:
        print("csms: name one charger, or use --sheet for labels", file=sys.stderr)
        return 2
    connector = 1 if args.connector is None else args.connector
    if connector < 1:
        print("csms: --connector: connector numbers start at 1", file=sys.stderr)
        return 2
    base_url = args.base_url or config.payments.public_base_url
    if not base_url:
        print("csms: --base-url is needed (payments.public_base_url is empty)", file=sys.stderr)
        return 2
    try:
        base_url = check_base_url(base_url)
    except BaseUrlError as error:
        print(f"csms: --base-url: {error}", file=sys.stderr)
        return 2
    db = await open_database(config)
    try:
        if args.sheet:
            # No charger named: every registered charger.
            labels = await labels_from_database(
                db, base_url, default_tariff(config), args.charge_point_ids or None
            )
            if not labels:
                print("csms: no chargers registered (csms chargers add ...)", file=sys.stderr)
                return 2
            path = Path(args.output or "labels.html")
            content = label_sheet_html(labels).encode()
            summary = f"{len(labels)} label{'' if len(labels) == 1 else 's'}"
        else:
            charger_id = args.charge_point_ids[0]
            if await ChargerStore(db).get(charger_id) is None:
                raise UnknownChargerError(charger_id)
            image_format = args.format or "svg"
            path = Path(args.output or f"{charger_id}-{connector}.{image_format}")
            url = connector_url(base_url, charger_id, connector)
            content = qr_png(url) if image_format == "png" else qr_svg(url).encode()
            summary = url
    except UnknownChargerError as error:
        print(f"csms: {error} (csms chargers add ...)", file=sys.stderr)
        return 2
    finally:
        await db.close()
    try:
        path.write_bytes(content)
    except OSError as error:
        print(f"csms: cannot write {path}: {error.strerror}", file=sys.stderr)
        return 1
    print(f"{path}: {summary}")
    return 0


async def _export_transactions(config: Config, args: argparse.Namespace) -> int:
    times: dict[str, str | None] = {}
    for option, text in (("--from", args.started_from), ("--to", args.started_before)):
        try:
            times[option] = normalise_ocpp_time(text) if text else None
        except ValueError:
            print(f"csms: {option}: not an ISO 8601 date-time: {text!r}", file=sys.stderr)
            return 2
    where = TransactionFilter(
        charger_id=args.charger,
        connector_id=args.connector,
        id_tag=args.id_tag,
        started_from=times["--from"],
        started_before=times["--to"],
        open=None if args.state is None else args.state == "open",
    )
    db = await open_database(config)
    try:
        # Nothing else runs in this process, so a blocking file is fine here.
        with (
            Path(args.output).open("w", encoding="utf-8", newline="")  # noqa: ASYNC230
            if args.output
            else nullcontext(sys.stdout) as out
        ):
            # The API's own CSV, chunk by chunk: the export never holds every row.
            async for chunk in transactions_csv(TransactionStore(db), where):
                out.write(chunk)
    finally:
        await db.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
        default_tariff(config)  # the [tariff] section is checked with the rest of the file
    except ConfigError as error:
        print(f"csms: config error: {error}", file=sys.stderr)
        return 2
    configure_logging(config.log.format, config.log.level)
    try:
        return asyncio.run(args.run(config, args))
    except ConfigError as error:  # found at start-up: a certificate that does not load
        print(f"csms: config error: {error}", file=sys.stderr)
        return 2
    except StartupError as error:  # valid settings, but what one points at is unusable
        print(f"csms: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
