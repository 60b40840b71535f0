"""Console logins: who a session cookie belongs to, its form token, and when it ends.

The cookie carries a 256-bit random token; the table keeps only its SHA-256 digest (as API
keys are kept), so a copy of the database logs nobody in. Each login has its own CSRF token,
sent back in every form: a page of another site cannot post a console form, not knowing it
(and the cookie is SameSite=Strict besides). A login ends at `expires_at` (a fixed lifetime,
not extended by use: a stolen cookie is worth at most that long), at logout, and when the
user is disabled or its password changed (`end_for`).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.clock import to_text, utc_now
from storage.db import Database


@dataclass(frozen=True)
class Login:
    user_name: str
    csrf: str
    expires_at: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Logins:
    def __init__(
        self, db: Database, lifetime: timedelta, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._db = db
        self._lifetime = lifetime
        self._clock = clock

    async def begin(self, user_name: str) -> tuple[str, Login]:
        """A new login for `user_name`: the cookie's token (shown only now) and the login."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        login = Login(user_name, secrets.token_urlsafe(24), to_text(now + self._lifetime))
        await self._db.execute(
            "INSERT INTO console_sessions (digest, user_name, csrf, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (_digest(token), user_name, login.csrf, to_text(now), login.expires_at),
        )
        return token, login

    async def find(self, token: str) -> Login | None:
        """The login of a cookie's token; None when unknown or ended."""
        row = await self._db.fetchone(
            "SELECT user_name, csrf, expires_at FROM console_sessions"
            " WHERE digest = ? AND expires_at > ?",
            (_digest(token), to_text(self._clock())),
        )
        return None if row is None else Login(row["user_name"], row["csrf"], row["expires_at"])

    async def end(self, token: str) -> None:
        await self._db.execute("DELETE FROM console_sessions WHERE digest = ?", (_digest(token),))

    async def end_for(self, user_name: str) -> None:
        """Every login of `user_name` (disabled, or its password changed)."""
        await self._db.execute("DELETE FROM console_sessions WHERE user_name = ?", (user_name,))

    async def sweep(self) -> None:
        """Forget logins that have ended."""
        await self._db.execute(
            "DELETE FROM console_sessions WHERE expires_at <= ?", (to_text(self._clock()),)
        )
