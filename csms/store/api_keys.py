"""API keys for the management API: random, shown once, kept only as digests.

Keys are 256-bit random strings, so a plain SHA-256 digest is as strong as a slow hash
here (there is no dictionary to try), and it lets a key be found by its digest.

A key belongs to an operator user (`users`, csms.store.users) and carries that user's role,
as it is when the key is used: changing the user's role changes what its keys may do, and a
disabled user's keys are refused (disabling also revokes them). A key without a user (made
before users existed, or by `csms apikeys create` without --user) and the keys of the
config's `api.keys` act as admin. `verify` names the key as the audit does: "key:{name}".
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from csms.roles import Role
from csms.store.users import Note
from httpapi.principal import Principal
from storage.clock import now_text
from storage.db import Conflict, Connection, Database

PREFIX = "csms_"
# The name of every key listed in the config's `api.keys` (they have no name of their own).
CONFIGURED = "config"
# The role of a key that belongs to no user.
UNOWNED_ROLE: Role = "admin"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class KeyInfo:
    """A stored key, without the key: what a listing shows."""

    name: str
    user: str | None
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


class ApiKeys:
    def __init__(self, db: Database, configured: Iterable[str] = ()) -> None:
        self._db = db
        self._configured = [digest(key) for key in configured if key]

    async def create(
        self, name: str, user: str | None = None, *, unique: bool = False, note: Note | None = None
    ) -> str:
        """A new key, for `user` (None: no user, admin); the caller shows it once.

        ValueError naming `user` when that user is unknown or disabled; with `unique`,
        Conflict when a key of that name is in use (not revoked). `note` is written in the
        same unit of work (the audit line)."""
        key = PREFIX + secrets.token_urlsafe(32)

        def insert(conn: Connection) -> None:
            _insert(conn, name, digest(key), user, now_text(), unique=unique)
            if note is not None:
                note(conn)

        await self._db.write(insert)
        return key

    async def any(self) -> bool:
        if self._configured:
            return True
        row = await self._db.fetchone("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1")
        return row is not None

    async def verify(self, key: str) -> Principal | None:
        """Who the key acts for ("key:{name}", `CONFIGURED` for a key from the config) and
        with which role, when it is valid; None for an unknown or revoked key, or one whose
        user is disabled."""
        candidate = digest(key)
        # Compare configured keys in constant time; stored ones are found by digest.
        if any(hmac.compare_digest(candidate, known) for known in self._configured):
            return Principal(f"key:{CONFIGURED}", UNOWNED_ROLE)
        row = await self._db.fetchone(
            "SELECT k.name, k.user_name, u.role, u.disabled_at FROM api_keys k"
            " LEFT JOIN users u ON u.name = k.user_name"
            " WHERE k.digest = ? AND k.revoked_at IS NULL",
            (candidate,),
        )
        if row is None:
            return None
        if row["user_name"] is None:
            return Principal(f"key:{row['name']}", UNOWNED_ROLE)
        if row["role"] is None or row["disabled_at"] is not None:
            return None
        return Principal(f"key:{row['name']}", row["role"])

    async def of_user(self, user: str) -> list[KeyInfo]:
        """The user's keys, revoked ones included, oldest first."""
        rows = await self._db.fetchall(
            "SELECT name, user_name, created_at, last_used_at, revoked_at FROM api_keys"
            " WHERE user_name = ? ORDER BY id",
            (user,),
        )
        return [KeyInfo(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def revoke(self, name: str, *, note: Note | None = None) -> int:
        """Revoke the keys named `name` still in use; how many (0: none such, and `note` is
        not written)."""

        def revoke(conn: Connection) -> int:
            revoked = conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                (now_text(), name),
            ).rowcount
            if revoked and note is not None:
                note(conn)
            return revoked

        return await self._db.write(revoke)


def _insert(
    conn: Connection, name: str, key_digest: str, user: str | None, now: str, *, unique: bool
) -> None:
    if user is not None:
        row = conn.execute("SELECT disabled_at FROM users WHERE name = ?", (user,)).fetchone()
        if row is None:
            raise ValueError(f"user: no user {user}")
        if row[0] is not None:
            raise ValueError(f"user: {user} is disabled")
    if unique:
        taken = conn.execute(
            "SELECT 1 FROM api_keys WHERE name = ? AND revoked_at IS NULL", (name,)
        ).fetchone()
        if taken is not None:
            raise Conflict(f"name: a key named {name} is in use")
    conn.execute(
        "INSERT INTO api_keys (name, digest, created_at, user_name) VALUES (?, ?, ?, ?)",
        (name, key_digest, now, user),
    )
