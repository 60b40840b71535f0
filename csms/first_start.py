"""The first start of an installation: nobody could log in or call the API, so the first
admin user and the first API key are made, and each is shown this once on standard error,
never logged nor kept in clear (the user's password as an scrypt hash, the key as a
digest). Several nodes starting at once make the user once: the node whose insert loses
shows nothing."""

from __future__ import annotations

import sys
from secrets import token_urlsafe

from csms.store.api_keys import ApiKeys
from csms.store.users import UserStore
from storage.db import Conflict

FIRST_ADMIN = "admin"


async def make_first_admin_and_key(users: UserStore, api_keys: ApiKeys) -> None:
    """With no user, make the admin; with no key at all, make one, the admin's."""
    shown: list[str] = []
    if not await users.any():
        password = token_urlsafe(12)
        try:
            await users.add(FIRST_ADMIN, "admin", password)
        except Conflict:  # another node made it meanwhile, and shows it
            pass
        else:
            shown.append(
                f"No user existed, so the user {FIRST_ADMIN} (role admin) was created."
                f" Its password is shown only now: {password}\n"
                f"Change it with `csms users passwd {FIRST_ADMIN}`."
            )
    if not await api_keys.any():
        admin = await users.get(FIRST_ADMIN)
        owner = FIRST_ADMIN if admin and admin.role == "admin" and not admin.disabled else None
        key = await api_keys.create("first", owner)
        shown.append(
            f"No API key existed, so one was created. It is shown only now: {key}\n"
            "Send it as the X-API-Key header; make more with"
            " `csms apikeys create NAME --user USER`."
        )
    if shown:
        print("\n".join(shown), file=sys.stderr, flush=True)
