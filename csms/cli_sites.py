"""`csms sites`: register, list, show, change and remove sites, with the API's rules
(csms.api.sites). The split is given as the operator thinks of it: a commission in percent
and amounts in major units of the `[tariff]` currency (0.05 is 5 cents), stored as
payments.split.SplitRule in basis points and minor units."""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from csms.api.sites import NewSite, SiteChange, SiteSettings, site_from
from csms.config import Config
from csms.config_values import open_database
from csms.store.sites import Site, SiteStore
from httpapi.errors import ApiError
from payments.currency import exponent
from payments.owners import OwnerStore
from storage.db import Database

# API field -> the option that sets it.
_OPTIONS = {
    "id": "ID",
    "name": "--name",
    "timeZone": "--time-zone",
    "address": "--address",
    "ownerId": "--owner",
    "supportEmail": "--support-email",
    "supportPhone": "--support-phone",
    "supportUrl": "--support-url",
    "split.commission_basis_points": "--commission",
    "split.fixed_per_kwh": "--per-kwh",
    "split.operator_minimum": "--operator-minimum",
}
_SPLIT_OPTIONS = ("commission", "per_kwh", "operator_minimum")


class _Refused(Exception):
    """An option's value that cannot be used: what to print."""


def add_sites_commands(commands: Any) -> None:
    sites = commands.add_parser("sites", help="register and list sites (where chargers stand)")
    actions = sites.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="register a site")
    add.add_argument("site_id", metavar="ID", help="1 to 64 of A-Z a-z 0-9 . _ -")
    add.add_argument("--name", required=True)
    add.add_argument("--time-zone", required=True, help="IANA zone, e.g. Europe/Berlin")
    _settings_options(add)
    add.set_defaults(run=_add)
    change = actions.add_parser(
        "set", help="change a site (an option given as '' clears it, but --name and --time-zone)"
    )
    change.add_argument("site_id", metavar="ID")
    change.add_argument("--name")
    change.add_argument("--time-zone", help="IANA zone, e.g. Europe/Berlin")
    _settings_options(change)
    change.add_argument("--no-split", action="store_true", help="remove the split")
    change.set_defaults(run=_set)
    actions.add_parser("list", help="list sites").set_defaults(run=_list)
    show = actions.add_parser("show", help="one site and its chargers")
    show.add_argument("site_id", metavar="ID")
    show.set_defaults(run=_show)
    remove = actions.add_parser("remove", help="remove a site no charger belongs to")
    remove.add_argument("site_id", metavar="ID")
    remove.set_defaults(run=_remove)


def _settings_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address", action="append", metavar="LINE", help="an address line (repeatable)"
    )
    parser.add_argument("--owner", metavar="OWNER_ID", help="the owner of its chargers")
    parser.add_argument(
        "--commission", metavar="PERCENT", help="the operator's share of each session, e.g. 15"
    )
    parser.add_argument(
        "--per-kwh", metavar="AMOUNT", help="the operator's fixed amount per kWh, e.g. 0.05"
    )
    parser.add_argument(
        "--operator-minimum", metavar="AMOUNT", help="the least the operator keeps, e.g. 0.30"
    )
    parser.add_argument("--support-email", metavar="EMAIL")
    parser.add_argument("--support-phone", metavar="PHONE")
    parser.add_argument("--support-url", metavar="URL")


def _fields(config: Config, args: argparse.Namespace) -> dict[str, Any]:
    """The API's fields the options give ('' clears one)."""
    given = {
        "name": args.name,
        "time_zone": args.time_zone,
        "owner_id": args.owner,
        "support_email": args.support_email,
        "support_phone": args.support_phone,
        "support_url": args.support_url,
    }
    fields = {key: value or None for key, value in given.items() if value is not None}
    if args.address is not None:
        fields["address"] = [line for line in args.address if line.strip()]
    if any(getattr(args, name) is not None for name in _SPLIT_OPTIONS):
        fields["split"] = _split(config, args)
    if getattr(args, "no_split", False):
        fields["split"] = None
    return fields


def _split(config: Config, args: argparse.Namespace) -> dict[str, int]:
    """The split options given, as SplitRule's fields (those not given are left out)."""
    digits = exponent(config.tariff.currency)
    given = {
        "commission_basis_points": (args.commission, 2, "--commission"),
        "fixed_per_kwh": (args.per_kwh, digits, "--per-kwh"),
        "operator_minimum": (args.operator_minimum, digits, "--operator-minimum"),
    }
    return {name: _whole(*value) for name, value in given.items() if value[0] is not None}


def _whole(text: str, digits: int, option: str) -> int:
    """`text` times 10**digits as a whole number."""
    try:
        value = Decimal(text).scaleb(digits)
    except InvalidOperation:
        raise _Refused(f"{option}: not a number: {text!r}") from None
    if not value.is_finite() or value != value.to_integral_value() or value < 0:
        raise _Refused(f"{option}: a number >= 0 with at most {digits} decimals: {text!r}")
    return int(value)


def _checked(body: type[SiteSettings], fields: dict[str, Any], current: Site) -> Site:
    try:
        return site_from(body.model_validate(fields), current)
    except ValidationError as error:
        problem = error.errors()[0]
        field = ".".join(str(part) for part in problem["loc"])
        raise _Refused(f"{_option(field)}: {problem['msg']}") from None
    except ApiError as error:
        raise _Refused(f"{_option(error.field or '')}: {error.message}") from None


def _option(field: str) -> str:
    if field.split(".")[0] == "address":
        return "--address"
    return _OPTIONS.get(field, field)


async def _owner_known(db: Database, site: Site) -> bool:
    """Whether the site's owner is registered (none is fine); says so when it is not."""
    if site.owner_id is None or await OwnerStore(db).exists(site.owner_id):
        return True
    print(f"csms: --owner: no such owner: {site.owner_id} (csms owners add)", file=sys.stderr)
    return False


async def _add(config: Config, args: argparse.Namespace) -> int:
    try:
        fields = {"id": args.site_id, **_fields(config, args)}
        site = _checked(NewSite, fields, Site(id=args.site_id, name=args.name, time_zone=""))
    except _Refused as refused:
        print(f"csms: {refused}", file=sys.stderr)
        return 2
    db = await open_database(config)
    try:
        if not await _owner_known(db, site):
            return 2
        added = await SiteStore(db).add(site)
    finally:
        await db.close()
    print(f"{site.id}: {'registered' if added else 'already registered (csms sites set)'}")
    return 0 if added else 1


async def _set(config: Config, args: argparse.Namespace) -> int:
    db = await open_database(config)
    try:
        store = SiteStore(db)
        current = await store.get(args.site_id)
        if current is None:
            print(f"csms: no such site: {args.site_id}", file=sys.stderr)
            return 1
        try:
            fields = _fields(config, args)
            if fields.get("split") is not None:  # the options given change the split's rest
                fields["split"] = {**(current.split or {}), **fields["split"]}
            for required, option in (("name", "--name"), ("time_zone", "--time-zone")):
                if required in fields and fields[required] is None:
                    raise _Refused(f"{option}: cannot be empty")
            site = _checked(SiteChange, fields, current)
        except _Refused as refused:
            print(f"csms: {refused}", file=sys.stderr)
            return 2
        if not await _owner_known(db, site):
            return 2
        await store.update(site)
    finally:
        await db.close()
    print(f"{site.id}: changed")
    return 0


async def _list(config: Config, args: argparse.Namespace) -> int:
    db = await open_database(config)
    try:
        sites = await SiteStore(db).find()
    finally:
        await db.close()
    for site in sites:
        print(f"{site.id}\t{site.name}\t{site.time_zone}\t{site.owner_id or '-'}")
    return 0


async def _show(config: Config, args: argparse.Namespace) -> int:
    db = await open_database(config)
    try:
        store = SiteStore(db)
        site = await store.get(args.site_id)
        chargers = await store.chargers(args.site_id) if site else []
    finally:
        await db.close()
    if site is None:
        print(f"csms: no such site: {args.site_id}", file=sys.stderr)
        return 1
    split = site.split or {}
    shown = {
        "id": site.id,
        "name": site.name,
        "address": " / ".join(site.address_lines) or "-",
        "time zone": site.time_zone,
        "owner": site.owner_id or "-",
        "split": ", ".join(f"{k} {v}" for k, v in split.items()) or "-",
        "support e-mail": site.support_email or "-",
        "support phone": site.support_phone or "-",
        "support url": site.support_url or "-",
        "chargers": ", ".join(chargers) or "-",
    }
    for label, value in shown.items():
        print(f"{label}:\t{value}")
    return 0


async def _remove(config: Config, args: argparse.Namespace) -> int:
    db = await open_database(config)
    try:
        removal = await SiteStore(db).delete(args.site_id)
    finally:
        await db.close()
    if not removal.found:
        print(f"csms: no such site: {args.site_id}", file=sys.stderr)
        return 1
    if not removal.removed:
        print(
            f"csms: chargers belong to site {args.site_id}: {', '.join(removal.chargers)}",
            file=sys.stderr,
        )
        return 1
    print(f"{args.site_id}: removed")
    return 0
