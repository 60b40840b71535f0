"""Operator users: who may use the management API and the console, and with which role.

A user has a name (1 to 64 of `A-Z a-z 0-9 . _ @ -`), a role (`csms.roles`), a password
kept only as an scrypt hash (the format and code of charger passwords,
`csms.ocpp16.auth`), and is disabled rather than deleted, so that the audit lines naming
it ("user:NAME", "key:NAME") keep naming someone. Disabling a user revokes its API keys in
the same unit of work: no key outlives the user it acts for.

Operator passwords have their own rule (`PASSWORD_RULE`): 12 to 128 characters, no control
characters. `authenticate` always runs scrypt, against a dummy hash when the name is
unknown, so that its time does not tell which names exist. scrypt takes some 50 ms of CPU:
it runs in a thread, off the event loop.

A bad name, role or password is a ValueError naming what is wrong, before anything is
written; adding a name that exists is `storage.db.Conflict`. A change may carry a `note`,
written in the same unit of work when the change is made (the API's audit line), and may
be told to keep an admin: then a change that would leave no enabled admin user raises
LastAdmin and changes nothing.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

from csms.ocpp16.auth import scrypt_hash, verify_password
from csms.roles import Role, is_role
from storage.clock import now_text
from storage.db import Connection, Database, Row

NAME_PATTERN = r"^[A-Za-z0-9._@-]{1,64}$"
NAME_RULE = "1 to 64 of the characters A-Z a-z 0-9 . _ @ -"
PASSWORD_RULE = "12 to 128 characters, no control characters"
_NAME = re.compile(NAME_PATTERN)
_PASSWORD = re.compile(r"[^\x00-\x1f\x7f]{12,128}")


@functools.cache
def _dummy_hash() -> str:
    """What an unknown name's password is checked against: the same work as a real check.
    Made once, when first needed (not on import: every CLI command imports this)."""
    return scrypt_hash("not a password of anyone")


def _matches(password: str, stored: str | None) -> bool:
    return verify_password(password, _dummy_hash() if stored is None else stored)


# Something to write in the same unit of work as a change: its line in the audit log.
Note = Callable[[Connection], object]


class LastAdmin(Exception):
    """The change would leave no enabled admin user."""


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    created_at: str
    disabled_at: str | None

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None


def user_of(row: Row) -> User:
    return User(row["name"], row["role"], row["created_at"], row["disabled_at"])


def valid_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


def valid_password(password: str) -> bool:
    return _PASSWORD.fullmatch(password) is not None


def check_name(name: str) -> None:
    if not valid_name(name):
        raise ValueError(f"name: a user name is {NAME_RULE}")


def check_role(role: str) -> None:
    if not is_role(role):
        raise ValueError(f"role: one of viewer, support, finance, admin, not {role!r}")


def check_password(password: str) -> None:
    if not valid_password(password):
        raise ValueError(f"password: an operator password is {PASSWORD_RULE}")


async def hash_operator_password(password: str) -> str:
    """The scrypt hash of an operator password (off the loop); ValueError if it breaks the rule."""
    check_password(password)
    return await asyncio.to_thread(scrypt_hash, password)


class UserStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, name: str, role: Role, password: str, *, note: Note | None = None) -> User:
        """A new user; Conflict when the name exists, ValueError for a bad name, role or
        password (nothing written)."""
        check_name(name)
        check_role(role)
        password_hash = await hash_operator_password(password)
        user = User(name, role, now_text(), None)

        def insert(conn: Connection) -> None:
            conn.execute(
                "INSERT INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
                (user.name, user.role, password_hash, user.created_at),
            )
            if note is not None:
                note(conn)

        await self._db.write(insert)
        return user

    async def authenticate(self, name: str, password: str) -> User | None:
        """The user, when `password` is theirs and they are not disabled; else None.

        Always runs scrypt: an unknown name costs what a wrong password does."""
        row = await self._db.fetchone("SELECT * FROM users WHERE name = ?", (name,))
        stored = row["password_hash"] if row is not None else None
        matches = await asyncio.to_thread(_matches, password, stored)
        if row is None or not matches or row["disabled_at"] is not None:
            return None
        return user_of(row)

    async def get(self, name: str) -> User | None:
        row = await self._db.fetchone("SELECT * FROM users WHERE name = ?", (name,))
        return user_of(row) if row is not None else None

    async def list(self) -> list[User]:
        """Every user, disabled ones included, in name order."""
        rows = await self._db.fetchall("SELECT * FROM users ORDER BY name")
        return [user_of(row) for row in rows]

    async def set_password(self, name: str, password: str, *, note: Note | None = None) -> bool:
        """False for an unknown user; ValueError for a password that breaks the rule. The
        user's console logins end with the old password (one may have been stolen)."""
        password_hash = await hash_operator_password(password)
        sql = "UPDATE users SET password_hash = ? WHERE name = ?"

        def change(conn: Connection) -> bool:
            changed = _update(conn, sql, (password_hash, name), note)
            conn.execute("DELETE FROM console_sessions WHERE user_name = ?", (name,))
            return changed

        return await self._db.write(change)

    async def set_role(
        self, name: str, role: Role, *, note: Note | None = None, keep_an_admin: bool = False
    ) -> bool:
        """False for an unknown user; ValueError for a role that is none of `ROLES`. With
        `keep_an_admin`, LastAdmin (nothing changed) when it would leave no enabled admin."""
        check_role(role)

        def change(conn: Connection) -> bool:
            if keep_an_admin and role != "admin":
                _keep_an_admin(conn, name)
            return _update(conn, "UPDATE users SET role = ? WHERE name = ?", (role, name), note)

        return await self._db.write(change)

    async def disable(
        self, name: str, *, note: Note | None = None, keep_an_admin: bool = False
    ) -> bool:
        """Disable the user, revoke its API keys and end its console logins, at once; False
        for an unknown user.
        Disabling a disabled user changes nothing more and is True. With `keep_an_admin`,
        LastAdmin (nothing changed) when it would leave no enabled admin."""
        return await self._db.write(
            lambda conn: _disable(conn, name, now_text(), note, keep_an_admin)
        )

    async def enable(self, name: str, *, note: Note | None = None) -> bool:
        """Let a disabled user sign in again (its revoked keys stay revoked); False: unknown."""
        sql = "UPDATE users SET disabled_at = NULL WHERE name = ?"
        return await self._db.write(lambda conn: _update(conn, sql, (name,), note))

    async def any(self) -> bool:
        """Whether any user exists, disabled or not."""
        return await self._db.fetchone("SELECT 1 FROM users LIMIT 1") is not None


def _update(conn: Connection, sql: str, params: tuple[object, ...], note: Note | None) -> bool:
    """One user's row changed (and the note written with it); False: no such user."""
    if conn.execute(sql, params).rowcount == 0:
        return False
    if note is not None:
        note(conn)
    return True


def _keep_an_admin(conn: Connection, leaving: str) -> None:
    """LastAdmin when `leaving` is an enabled admin and no other enabled admin remains."""
    row = conn.execute("SELECT role, disabled_at FROM users WHERE name = ?", (leaving,)).fetchone()
    if row is None or row[0] != "admin" or row[1] is not None:
        return
    other = conn.execute(
        "SELECT 1 FROM users WHERE role = 'admin' AND disabled_at IS NULL AND name <> ? LIMIT 1",
        (leaving,),
    ).fetchone()
    if other is None:
        raise LastAdmin(leaving)


def _disable(conn: Connection, name: str, now: str, note: Note | None, keep_an_admin: bool) -> bool:
    found = conn.execute("SELECT disabled_at FROM users WHERE name = ?", (name,)).fetchone()
    if found is None:
        return False
    if found[0] is not None:
        return True  # disabled already: its keys were revoked then
    if keep_an_admin:
        _keep_an_admin(conn, name)
    conn.execute("UPDATE users SET disabled_at = ? WHERE name = ?", (now, name))
    conn.execute(
        "UPDATE api_keys SET revoked_at = ? WHERE user_name = ? AND revoked_at IS NULL",
        (now, name),
    )
    conn.execute("DELETE FROM console_sessions WHERE user_name = ?", (name,))
    if note is not None:
        note(conn)
    return True
