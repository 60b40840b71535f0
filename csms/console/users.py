"""The console's users page, `/console/users` (admin only): operator users, with a role and a
password, and their API keys.

- Add a user (name, role, password), change its role, set a new password, disable it (which
  revokes its keys) or enable it again. Users are never deleted: the audit names them.
- A user's keys carry the user's role. A new key is shown once, on the page that made it
  (only its digest is kept), and names are unique among the keys in use, as the audit names
  a key by its name ("key:NAME"). A key can be revoked.
The rules are the user store's (csms.store.users: names, roles, passwords; it says which
field is wrong) and the key store's (csms.store.api_keys). The page keeps an admin: the last
enabled admin cannot be disabled nor given another role, and nobody disables or demotes
themselves here (another admin, or `csms users` on the server, can).
"""

from __future__ import annotations

from aiohttp import web

from csms.console.admin_forms import Errors
from csms.console.framework import Console, ConsoleUser
from csms.roles import ROLES, is_role
from csms.store.api_keys import ApiKeys
from csms.store.users import NAME_RULE, PASSWORD_RULE, User, UserStore, valid_name
from storage.db import Conflict

PATH = "/console/users"


def refusal(error: ValueError) -> Errors:
    """The stores' "field: message" as form field -> message."""
    field, _, message = str(error).partition(": ")
    return {field: message} if message else {"form": str(error)}


class UserPages:
    def __init__(self, console: Console, users: UserStore, keys: ApiKeys) -> None:
        self._console = console
        self._users = users
        self._keys = keys

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
            await self._users.add(name, role, form.get("password", ""))  # type: ignore[arg-type]
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
        if role != "admin":
            kept = await self._keeps_an_admin(request, found, "give another role to")
            if kept is not None:
                return kept
        await self._users.set_role(found.name, role)  # type: ignore[arg-type]
        raise self._console.see_other(PATH, f"User {found.name} now has the role {role}")

    async def password(self, request: web.Request) -> web.Response:
        form = await self._console.form(request, "admin")
        found = await self._target(request)
        if isinstance(found, web.Response):
            return found
        try:
            await self._users.set_password(found.name, form.get("password", ""))
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
        kept = await self._keeps_an_admin(request, found, "disable")
        if kept is not None:
            return kept
        await self._users.disable(found.name)
        raise self._console.see_other(PATH, f"User {found.name} disabled, its API keys revoked")

    async def enable(self, request: web.Request) -> web.Response:
        await self._console.form(request, "admin")
        found = await self._target(request)
        if isinstance(found, web.Response):
            return found
        await self._users.enable(found.name)
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
            key = await self._keys.create(key_name, found.name, unique=True)
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
        await self._keys.revoke(key_name)
        raise self._console.see_other(PATH, f"Key {key_name} of {found.name} revoked")

    async def _target(self, request: web.Request) -> User | web.Response:
        user = await self._users.get(request.match_info["name"])
        return user if user is not None else self._console.problem(request, 404, "No such user.")

    async def _keeps_an_admin(
        self, request: web.Request, target: User, doing: str
    ) -> web.Response | None:
        """A refusal when the change would leave no enabled admin, or is the user's own."""
        me: ConsoleUser = self._console.user(request)
        if target.name == me.name:
            return self._console.problem(
                request, 409, f"You cannot {doing} yourself here: ask another admin."
            )
        if target.role != "admin" or target.disabled:
            return None
        admins = [u for u in await self._users.list() if u.role == "admin" and not u.disabled]
        if [u.name for u in admins] == [target.name]:
            return self._console.problem(
                request, 409, f"{target.name} is the last admin: make another admin first."
            )
        return None
