"""API keys for the management API: random, shown once, kept only as digests.

Keys are 256-bit random strings, so a plain SHA-256 digest is as strong as a slow hash
here (there is no dictionary to try), and it lets a key be found by its digest.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

from storage.clock import now_text
from storage.db import Database

PREFIX = "csms_"
# The name of every key listed in the config's `api.keys` (they have no name of their own).
CONFIGURED = "config"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    def __init__(self, db: Database, configured: Iterable[str] = ()) -> None:
        self._db = db
        self._configured = [digest(key) for key in configured if key]

    async def create(self, name: str) -> str:
        """A new key; the caller shows it once."""
        key = PREFIX + secrets.token_urlsafe(32)
        await self._db.execute(
            "INSERT INTO api_keys (name, digest, created_at) VALUES (?, ?, ?)",
            (name, digest(key), now_text()),
        )
        return key

    async def any(self) -> bool:
        if self._configured:
            return True
        row = await self._db.fetchone("SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1")
        return row is not None

    async def verify(self, key: str) -> str | None:
        """The key's name when it is valid (`CONFIGURED` for a key from the config), else None."""
        candidate = digest(key)
        # Compare configured keys in constant time; stored ones are found by digest.
        if any(hmac.compare_digest(candidate, known) for known in self._configured):
            return CONFIGURED
        row = await self._db.fetchone(
            "SELECT name FROM api_keys WHERE digest = ? AND revoked_at IS NULL", (candidate,)
        )
        return row["name"] if row is not None else None
