"""`csms users`: operator users and their roles, on the database (as `csms apikeys` is).

A password is never an argument (it would stay in the shell's history and be visible in
the process list): it is asked twice on a terminal, read from standard input otherwise
(its first line), read from `--password-file` (its first line), or made up with
`--generate` and printed once. It follows the operator rule (csms.store.users: 12 to 128
characters). A refusal is one line naming the argument or option, and changes nothing.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from secrets import token_urlsafe
from typing import Any

from csms.config import Config
from csms.config_values import open_database
from csms.roles import ROLES
from csms.store.users import NAME_RULE, PASSWORD_RULE, UserStore, check_name, check_password
from storage.db import Conflict


class _Refused(Exception):
    """An argument or option that cannot be used: what to print."""


def add_users_commands(commands: Any) -> None:
    users = commands.add_parser("users", help="operator users and their roles")
    actions = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add", help="add a user; the password is asked, read from stdin or a file, or generated"
    )
    add.add_argument("name", metavar="NAME", help=NAME_RULE)
    add.add_argument("--role", required=True, choices=ROLES, help="what the user may do")
    _password_options(add)
    add.set_defaults(run=_add)
    passwd = actions.add_parser("passwd", help="set a user's password")
    passwd.add_argument("name", metavar="NAME")
    _password_options(passwd)
    passwd.set_defaults(run=_passwd)
    actions.add_parser("list", help="name, role, created, disabled").set_defaults(run=_list)
    role = actions.add_parser("role", help="give a user another role")
    role.add_argument("name", metavar="NAME")
    role.add_argument("role", metavar="ROLE", choices=ROLES, help=", ".join(ROLES))
    role.set_defaults(run=_role)
    disable = actions.add_parser("disable", help="disable a user and revoke its API keys")
    disable.add_argument("name", metavar="NAME")
    disable.set_defaults(run=_disable)
    enable = actions.add_parser("enable", help="let a disabled user sign in again")
    enable.add_argument("name", metavar="NAME")
    enable.set_defaults(run=_enable)


def _password_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--password-file", metavar="PATH", help="read the password from the file's first line"
    )
    source.add_argument(
        "--generate", action="store_true", help="make up a password and print it once"
    )


def _password(args: argparse.Namespace) -> str:
    """The new password from where the options say; _Refused naming the source."""
    if args.generate:
        return token_urlsafe(12)
    if args.password_file:
        try:
            text = Path(args.password_file).read_text()
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or "not UTF-8 text"
            raise _Refused(f"--password-file: cannot read {args.password_file}: {reason}") from None
        return _checked(_first_line(text), "--password-file")
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        _checked(password, "password")
        if getpass.getpass("Again: ") != password:
            raise _Refused("password: the two differ")
        return password
    return _checked(_first_line(sys.stdin.read()), "stdin")


def _first_line(text: str) -> str:
    return text.split("\n", 1)[0].removesuffix("\r")


def _checked(password: str, source: str) -> str:
    try:
        check_password(password)
    except ValueError:
        raise _Refused(f"{source}: an operator password is {PASSWORD_RULE}") from None
    return password


def _shown(args: argparse.Namespace, password: str) -> None:
    if args.generate:
        print(password)
        print("Keep it now: only its hash is stored.", file=sys.stderr)


async def _add(config: Config, args: argparse.Namespace) -> int:
    try:
        check_name(args.name)
    except ValueError:
        return _refusal(f"NAME: a user name is {NAME_RULE}")
    try:
        password = _password(args)
    except _Refused as refused:
        return _refusal(str(refused))
    async with _users(config) as users:
        try:
            await users.add(args.name, args.role, password)
        except Conflict:
            return _refusal(f"NAME: user {args.name} exists", 1)
    _shown(args, password)
    print(f"added {args.name} ({args.role})", file=sys.stderr)
    return 0


async def _passwd(config: Config, args: argparse.Namespace) -> int:
    async with _users(config) as users:
        if await users.get(args.name) is None:
            return _refusal(f"NAME: no user {args.name}", 1)
        try:
            password = _password(args)
        except _Refused as refused:
            return _refusal(str(refused))
        if not await users.set_password(args.name, password):
            return _refusal(f"NAME: no user {args.name}", 1)
    _shown(args, password)
    print(f"password of {args.name} set", file=sys.stderr)
    return 0


async def _list(config: Config, args: argparse.Namespace) -> int:
    async with _users(config) as users:
        found = await users.list()
    for user in found:
        print(f"{user.name}\t{user.role}\t{user.created_at}\t{user.disabled_at or ''}")
    return 0


async def _role(config: Config, args: argparse.Namespace) -> int:
    async with _users(config) as users:
        if not await users.set_role(args.name, args.role):
            return _refusal(f"NAME: no user {args.name}", 1)
    print(f"{args.name} is now {args.role}", file=sys.stderr)
    return 0


async def _disable(config: Config, args: argparse.Namespace) -> int:
    async with _users(config) as users:
        if not await users.disable(args.name):
            return _refusal(f"NAME: no user {args.name}", 1)
    print(f"{args.name} disabled; its API keys are revoked", file=sys.stderr)
    return 0


async def _enable(config: Config, args: argparse.Namespace) -> int:
    async with _users(config) as users:
        if not await users.enable(args.name):
            return _refusal(f"NAME: no user {args.name}", 1)
    print(f"{args.name} enabled (its revoked keys stay revoked)", file=sys.stderr)
    return 0


def _refusal(message: str, code: int = 2) -> int:
    print(f"csms: {message}", file=sys.stderr)
    return code


@asynccontextmanager
async def _users(config: Config) -> AsyncIterator[UserStore]:
    """The users of the database, opened for one command and closed after it."""
    db = await open_database(config)
    try:
        yield UserStore(db)
    finally:
        await db.close()
