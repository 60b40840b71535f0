"""The console's users page, `/console/users` (admin only): operator users, with a role and a
password, and their API keys.

- Add a user (name, role, password), change its role, set a new password, disable it (which
  revokes its keys) or enable it again. Users are never deleted: the audit names them.
- A user's keys carry the user's role. A new key is shown once, on the page that made it
  (only its digest is kept), and names are unique among the keys in use, as the audit names
  a key by its name ("key:NAME"). A key can be revoked.
The rules are the user store's (csms.store.users: names, roles, passwords; it says which
field is wrong) and the key store's (csms.store.api_keys), as for the API (csms/api/users.py).
Each change is a line of the audit log written with it, under the API's action names, naming
the console user who made it ("user:NAME"; never a password or a key). The last enabled admin
is kept (the store checks it in the change's unit of work), and nobody disables or demotes
themselves here (another admin, or `csms users` on the server, can).
"""

from __future__ import annotations

from typing import cast

from aiohttp import web

from csms.console.admin_forms import Errors
from csms.console.framework import Console
from csms.roles import ROLES, Role, is_role
from csms.store.api_keys import ApiKeys
from csms.store.users import (
    NAME_RULE,
    PASSWORD_RULE,
    LastAdmin,
    Note,
    User,
    UserStore,
    valid_name,
)
from payments.audit_log import AuditLog
from storage.clock import utc_now
from storage.db import Conflict, Connection

PATH = "/console/users"


def refusal(error: ValueError) -> Errors:
    """The stores' "field: message" as form field -> message."""
    field, _, message = str(error).partition(": ")
    return {field: message} if message else {"form": str(error)}


class UserPages:
    def __init__(self, console: Console, users: UserStore, keys: ApiKeys, audit: AuditLog) -> None:
        self._console = console
        self._users = users
        self._keys = keys
        self._audit = audit

    def _note(self, request: web.Request, action: str, detail: str) -> Note:
        """The audit line of a change, naming the console user, to write with the change."""
        actor = self._console.user(request).actor

        def note(conn: Connection) -> None:
            self._audit.write(conn, utc_now(), actor, action, None, detail=detail)

        return note

    def routes(self) -> list[web.RouteDef]:
        one = PATH + "/{name}"
        return [
            web.get(PATH, self.list),
            web.post(PATH, self.add),
            web.post(one + "/role", self.role),
            web.post(one + "/password", self.password),
            web.post(one + "/disable", self.disable),
            web.post(one + "/enable", self.enable),
            web.post(one + "/keys", self.create_key),
            web.post(one + "/keys/revoke", self.revoke_key),
        ]

    async def list(self, request: web.Request) -> web.Response:
        self._console.require(request, "admin")
        return await self._page(request, {}, {})

    async def _page(
        self, request: web.Request, entered: dict[str, str], errors: Errors, status: int = 200
    ) -> web.Response:
        users = await self._users.list()
        return self._console.render(
            request, "users.html", title="Users", status=status,
            users=[{"user": u, "keys": await self._keys.of_user(u.name)} for u in users],
            entered=entered, errors=errors,
            name_rule=NAME_RULE, password_rule=PASSWORD_RULE,
        )  # fmt: skip

    async def add(self, request: web.Request) -> web.Response:
        form = await self._console.form(request, "admin")
        name, role = form.get("name", "").strip(), form.get("role", "")
        entered = {"name": name, "role": role}
        try:
            note = self._note(request, "user added", f"{name} as {role}")
            password = form.get("password", "")
            # A role that is none of ROLES is the store's ValueError naming "role".
            await self._users.add(name, cast(Role, role), password, note=note)
        except ValueError as error:
            return await self._page(request, entered, refusal(error), status=400)
        except Conflict:
            errors = {"name": f"a user named {name} exists"}
            return await self._page(request, entered, errors, status=409)
        raise self._console.see_other(PATH, f"User {name} added with the role {role}")

    async def role(self, request: web.Request) -> web.Response:
        form = await self._console.form(request, "admin")
        found = await self._target(request)
        if isinstance(found, web.Response):
            return found
        role = form.get("role", "")
        if not is_role(role):
            return self._console.problem(request, 400, f"Role: one of {', '.join(ROLES)}.")
        if role == found.role:
            raise self._console.see_other(PATH, f"User {found.name} has the role {role} already")
        if role != "admin" and found.name == self._console.user(request).name:
            return self._yourself(request, "give yourself another role")
        note = self._note(request, "user role changed", f"{found.name}: {found.role} to {role}")
        try:
            await self._users.set_role(found.name, cast(Role, role), note=note, keep_an_admin=True)
        except LastAdmin:
            return self._last_admin(request, found)
        raise self._console.see_other(PATH, f"User {found.name} now has the role {role}")

    async def password(self, request: web.Request) -> web.Response:
        form = await self._console.form(request, "admin")
        found = await self._target(request)
        if isinstance(found, web.Response):
            return found
        try:
            note = self._note(request, "user password set", found.name)
            await self._users.set_password(found.name, form.get("password", ""), note=note)
        except ValueError as error:
            message = next(iter(refusal(error).values()))
            return self._console.problem(
                request, 400, f"Password: {message}. The password of {found.name} is unchanged."
            )
        raise self._console.see_other(PATH, f"New password set for {found.name}")

    async def disable(self, request: web.Request) -> web.Response:
        await self._console.form(request, "admin")
        found = await self._target(request)
        if isinstance(found, web.Response):
            return found
        if found.name == self._console.user(request).name:
            return self._yourself(request, "disable yourself")
        if not found.disabled:
            note = self._note(request, "user disabled", f"{found.name}, its API keys revoked")
            try:
                await self._users.disable(found.name, note=note, keep_an_admin=True)
            except LastAdmin:
                return self._last_admin(request, found)
        raise self._console.see_other(PATH, f"User {found.name} disabled, its API keys revoked")

    async def enable(self, request: web.Request) -> web.Response:
        await self._console.form(request, "admin")
        found = await self._target(request)
        if isinstance(found, web.Response):
            return found
        if found.disabled:
            note = self._note(request, "user enabled", found.name)
            await self._users.enable(found.name, note=note)
        raise self._console.see_other(PATH, f"User {found.name} enabled (revoked keys stay so)")

    async def create_key(self, request: web.Request) -> web.Response:
        """A new key for the user, shown on this page only: it is not kept."""
        form = await self._console.form(request, "admin")
        found = await self._target(request)
        if isinstance(found, web.Response):
            return found
        key_name = form.get("key_name", "").strip()
        if not valid_name(key_name):
            return self._console.problem(request, 400, f"Key name: {NAME_RULE}.")
        try:
            note = self._note(request, "api key created", f"{key_name} for {found.name}")
            key = await self._keys.create(key_name, found.name, unique=True, note=note)
        except ValueError as error:  # the user was disabled meanwhile
            return self._console.problem(request, 409, str(error))
        except Conflict:
            return self._console.problem(
                request, 409, f"Key name: a key named {key_name} is in use; choose another."
            )
        response = self._console.render(
            request, "user_key.html", title=f"New API key for {found.name}",
            user_shown=found, key_name=key_name, key=key,
        )  # fmt: skip
        response.headers["Cache-Control"] = "no-store"
        return response

    async def revoke_key(self, request: web.Request) -> web.Response:
        form = await self._console.form(request, "admin")
        found = await self._target(request)
        if isinstance(found, web.Response):
            return found
        key_name = form.get("key_name", "")
        keys = await self._keys.of_user(found.name)
        if not any(k.name == key_name and k.revoked_at is None for k in keys):
            return self._console.problem(
                request, 404, f"{found.name} has no key {key_name} in use."
            )
        # Keys are revoked by name: never when another user has a key in use of that name.
        for other in await self._users.list():
            theirs = await self._keys.of_user(other.name) if other.name != found.name else []
            if any(k.name == key_name and k.revoked_at is None for k in theirs):
                message = f"{other.name} has a key named {key_name} too: revoke it with the CLI."
                return self._console.problem(request, 409, message)
        await self._keys.revoke(key_name, note=self._note(request, "api key revoked", key_name))
        raise self._console.see_other(PATH, f"Key {key_name} of {found.name} revoked")

    async def _target(self, request: web.Request) -> User | web.Response:
        user = await self._users.get(request.match_info["name"])
        return user if user is not None else self._console.problem(request, 404, "No such user.")

    def _yourself(self, request: web.Request, doing: str) -> web.Response:
        return self._console.problem(request, 409, f"You cannot {doing} here: ask another admin.")

    def _last_admin(self, request: web.Request, target: User) -> web.Response:
        return self._console.problem(
            request, 409, f"{target.name} is the last admin: make another admin first."
        )
