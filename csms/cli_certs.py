"""`csms certs`: the operator CA for chargers' client certificates (security profile 3)."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from csms.certs.authority import (
    Authority,
    CertificateError,
    cert_pem,
    check_charger_request,
    common_name,
    key_pem,
    parse_request,
    write_private,
)
from csms.certs.issuer import Issuer
from csms.config import Config
from csms.config_values import open_database
from csms.store.certificates import CertificateStore
from storage.clock import to_text, utc_now


def add_certs_commands(commands: Any) -> None:
    certs = commands.add_parser(
        "certs", help="the operator CA: server and chargers' certificates (security profile 3)"
    )
    actions = certs.add_subparsers(dest="action", required=True, metavar="ACTION")
    init = actions.add_parser("init", help="create the CA (key and certificate) in certs.folder")
    init.add_argument("--organisation", help="its O (default: certs.organisation)")
    init.add_argument("--days", type=int, default=3650, help="validity (default: 3650)")
    init.set_defaults(run=_init)

    server = actions.add_parser(
        "server", help="issue the chargers' endpoint certificate (server.tls_cert, tls_key)"
    )
    server.add_argument("names", nargs="+", metavar="NAME", help="host names and IP addresses")
    server.add_argument("--days", type=int, default=397, help="validity (default: 397)")
    server.add_argument("--cert", help="where to write it (default: certs.folder/server.pem)")
    server.add_argument("--key", help="where to write its key (default: certs.folder/server.key)")
    server.set_defaults(run=_server)

    sign = actions.add_parser(
        "sign", help="sign a charger's certificate signing request (PEM file), as SignCertificate"
    )
    sign.add_argument("csr", metavar="CSR_FILE")
    sign.add_argument("--charger", help="the charge point id (default: the request's CN)")
    sign.add_argument("--output", help="where to write the chain (default: stdout)")
    sign.set_defaults(run=_sign)

    listing = actions.add_parser("list", help="certificates issued to chargers, soonest end first")
    listing.add_argument("--charger", metavar="ID")
    listing.add_argument("--due", action="store_true", help="only chargers due for renewal")
    listing.set_defaults(run=_list)


def _fail(message: str) -> int:
    print(f"csms: {message}", file=sys.stderr)
    return 2


def _folder(config: Config) -> Path | None:
    return Path(config.certs.folder) if config.certs.folder else None


async def _init(config: Config, args: argparse.Namespace) -> int:
    folder = _folder(config)
    if folder is None:
        return _fail("certs.folder: not set; name the folder to keep the CA in")
    organisation = args.organisation or config.certs.organisation
    if not organisation:
        return _fail("--organisation: needed (or set certs.organisation)")
    if args.days < 1:
        return _fail("--days: at least 1")
    try:
        authority = Authority.create(folder, organisation, args.days, utc_now())
    except (CertificateError, OSError) as error:
        return _fail(f"certs.folder: {error}")
    ends = to_text(authority.certificate.not_valid_after_utc)
    print(f"{folder}/ca.pem: CA {authority.certificate.subject.rfc4514_string()} until {ends}")
    return 0


async def _server(config: Config, args: argparse.Namespace) -> int:
    folder = _folder(config)
    if folder is None:
        return _fail("certs.folder: not set (csms certs init)")
    try:
        authority = Authority.load(folder)
        key, certificate = authority.issue_server(args.names, args.days, utc_now())
    except CertificateError as error:
        return _fail(str(error))
    cert_path = Path(args.cert or folder / "server.pem")
    key_path = Path(args.key or folder / "server.key")
    try:
        write_private(key_path, key_pem(key))
    except OSError as error:
        exists = isinstance(error, FileExistsError)
        hint = " (remove it, or name others with --cert and --key)" if exists else ""
        return _fail(f"cannot write {key_path}: {error.strerror}{hint}")
    cert_path.write_text(cert_pem(certificate))  # noqa: ASYNC240 (nothing else runs here)
    print(f"{cert_path}: for {', '.join(args.names)}")
    print(f'[server]\ntls_cert = "{cert_path}"\ntls_key = "{key_path}"')
    return 0


async def _sign(config: Config, args: argparse.Namespace) -> int:
    try:
        text = Path(args.csr).read_text()  # noqa: ASYNC240 (nothing else runs here)
    except (OSError, UnicodeDecodeError) as error:
        return _fail(f"cannot read {args.csr}: {getattr(error, 'strerror', error)}")
    try:
        request = parse_request(text)
        charger_id = args.charger or _cn(request)
        check_charger_request(request, charger_id, config.certs.organisation)
    except CertificateError as error:
        return _fail(f"{args.csr}: {error}")
    db = await open_database(config)
    try:
        issuer = Issuer(config.certs, CertificateStore(db))
        problem = await issuer.unavailable()
        if problem is not None:
            return _fail(problem)
        chain = await issuer.issue(charger_id, request)
    except CertificateError as error:
        return _fail(str(error))
    finally:
        await db.close()
    if args.output:
        Path(args.output).write_text(chain)  # noqa: ASYNC240
        print(f"{args.output}: certificate for {charger_id}")
    else:
        sys.stdout.write(chain)
    return 0


def _cn(request: Any) -> str:
    found = common_name(request.subject)
    if not found:
        raise CertificateError("the request has no CN; name the charger with --charger")
    return found


async def _list(config: Config, args: argparse.Namespace) -> int:
    db = await open_database(config)
    try:
        store = CertificateStore(db)
        certificates = await store.list(args.charger)
        due = await store.due(utc_now() + timedelta(days=config.certs.renew_before_days))
    finally:
        await db.close()
    due_chargers = dict(due)
    for each in certificates:
        renew = due_chargers.get(each.charger_id) == each.not_after
        if args.due and not renew:
            continue
        mark = "\trenew" if renew else ""
        print(f"{each.charger_id}\t{each.serial}\t{each.not_before}\t{each.not_after}{mark}")
    return 0
