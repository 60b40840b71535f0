"""Operator users and their API keys over the management API: the admin's.

A user has a role (`csms.roles`); its keys carry that role. A key is shown once, when it is
made (POST /api/users/{name}/keys), and only its digest is kept; key names are unique among
the keys in use, since the audit names a key by its name ("key:{name}"). Disabling a user
revokes its keys. Users are disabled, never deleted.

The API refuses to leave no admin: disabling the last enabled admin user, or giving it
another role, is 409 `last_admin` (checked in the unit of work that would change it; `csms
users role` on the server's machine puts an admin back if need be). Every change is a line
in the audit log, written with it, naming who made it (`actor_of`): "user added", "user
role changed", "user password set", "user disabled", "user enabled", "api key created",
"api key revoked"; the detail names the user or key, never a password or a key.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from csms.roles import Role
from csms.store.api_keys import ApiKeys, KeyInfo
from csms.store.users import (
    NAME_PATTERN,
    NAME_RULE,
    PASSWORD_RULE,
    LastAdmin,
    Note,
    User,
    UserStore,
)
from httpapi.errors import ApiError, not_found
from httpapi.middleware import actor_of
from httpapi.models import ApiModel
from httpapi.routing import Api
from payments.audit_log import AuditLog
from storage.clock import utc_now
from storage.db import Conflict, Connection

_NAME = Field(pattern=NAME_PATTERN, description=NAME_RULE)
_PASSWORD = Field(min_length=12, max_length=128, description=PASSWORD_RULE)


class UserOut(ApiModel):
    name: str
    role: Role
    created_at: str
    disabled_at: str | None

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls.model_validate(user, from_attributes=True)


class NewUser(ApiModel):
    name: str = _NAME
    role: Role
    password: str = _PASSWORD


class UserChange(ApiModel):
    role: Role | None = None
    disabled: bool | None = Field(default=None, description="true disables (and revokes its keys)")


class NewPassword(ApiModel):
    password: str = _PASSWORD


class KeyOut(ApiModel):
    name: str
    user: str | None
    created_at: str
    last_used_at: str | None
    revoked_at: str | None

    @classmethod
    def of(cls, key: KeyInfo) -> KeyOut:
        return cls.model_validate(key, from_attributes=True)


class NewKey(ApiModel):
    name: str = _NAME


class CreatedKey(ApiModel):
    name: str
    user: str
    role: Role
    key: str = Field(description="Shown only now: only its digest is kept")


def _refused(error: ValueError) -> ApiError:
    """The store's "field: what is wrong" as a 400 naming the field."""
    field, _, message = str(error).partition(": ")
    return ApiError(400, "invalid", message or field, field if message else None)


def _last_admin(name: str) -> ApiError:
    return ApiError(409, "last_admin", f"{name} is the last admin: make another admin first")


class UserRoutes:
    def __init__(self, users: UserStore, keys: ApiKeys, audit: AuditLog) -> None:
        self._users = users
        self._keys = keys
        self._audit = audit

    def _note(self, request: web.Request, action: str, detail: str) -> Note:
        """The audit line of a change, naming who made it, to write with the change."""
        actor = actor_of(request)

        def write(conn: Connection) -> None:
            self._audit.write(conn, utc_now(), actor, action, None, detail=detail)

        return write

    def register(self, api: Api) -> None:
        tag, role = "users", "admin"
        api.add("GET", "/api/users", self.list_users, tag=tag, role=role,
                summary="Operator users, disabled ones included",
                response=list[UserOut])  # fmt: skip
        api.add("POST", "/api/users", self.create_user, tag=tag, role=role,
                summary="Add an operator user with a role and a password", body=NewUser,
                response=UserOut, status=201, errors=(409,))  # fmt: skip
        api.add("GET", "/api/users/{name}", self.get_user, tag=tag, role=role,
                summary="One operator user", response=UserOut, errors=(404,))  # fmt: skip
        api.add("PATCH", "/api/users/{name}", self.update_user, tag=tag, role=role,
                summary="Change a user's role, or disable it (its keys are revoked) or enable it",
                body=UserChange, response=UserOut, errors=(404, 409))  # fmt: skip
        api.add("POST", "/api/users/{name}/password", self.set_password, tag=tag, role=role,
                summary="Set a user's password", body=NewPassword, status=204,
                errors=(404,))  # fmt: skip
        api.add("GET", "/api/users/{name}/keys", self.list_keys, tag=tag, role=role,
                summary="A user's API keys (never the keys themselves)", response=list[KeyOut],
                errors=(404,))  # fmt: skip
        api.add("POST", "/api/users/{name}/keys", self.create_key, tag=tag, role=role,
                summary="A new API key for the user, with its role: shown only in this answer",
                body=NewKey, response=CreatedKey, status=201, errors=(404, 409))  # fmt: skip
        api.add("DELETE", "/api/keys/{name}", self.revoke_key, tag=tag, role=role,
                summary="Revoke the API key of that name", status=204, errors=(404,))  # fmt: skip

    async def list_users(self, request: web.Request) -> list[UserOut]:
        return [UserOut.of(user) for user in await self._users.list()]

    async def create_user(self, request: web.Request, body: NewUser) -> UserOut:
        note = self._note(request, "user added", f"{body.name} as {body.role}")
        try:
            return UserOut.of(await self._users.add(body.name, body.role, body.password, note=note))
        except ValueError as error:
            raise _refused(error) from None
        except Conflict:
            raise ApiError(409, "exists", f"user {body.name} exists", "name") from None

    async def get_user(self, request: web.Request) -> UserOut:
        return UserOut.of(await self._found(request.match_info["name"]))

    async def update_user(self, request: web.Request, body: UserChange) -> UserOut:
        user = await self._found(request.match_info["name"])
        name = user.name
        try:
            if body.role is not None and body.role != user.role:
                note = self._note(
                    request, "user role changed", f"{name}: {user.role} to {body.role}"
                )
                await self._users.set_role(name, body.role, note=note, keep_an_admin=True)
            if body.disabled is True and not user.disabled:
                note = self._note(request, "user disabled", f"{name}, its API keys revoked")
                await self._users.disable(name, note=note, keep_an_admin=True)
            elif body.disabled is False and user.disabled:
                await self._users.enable(name, note=self._note(request, "user enabled", name))
        except LastAdmin:
            raise _last_admin(name) from None
        return UserOut.of(await self._found(name))

    async def set_password(self, request: web.Request, body: NewPassword) -> web.Response:
        try:
            name = request.match_info["name"]
            note = self._note(request, "user password set", name)
            changed = await self._users.set_password(name, body.password, note=note)
        except ValueError as error:
            raise _refused(error) from None
        if not changed:
            raise not_found("user")
        return web.Response(status=204)

    async def list_keys(self, request: web.Request) -> list[KeyOut]:
        user = await self._found(request.match_info["name"])
        return [KeyOut.of(key) for key in await self._keys.of_user(user.name)]

    async def create_key(self, request: web.Request, body: NewKey) -> CreatedKey:
        user = await self._found(request.match_info["name"])
        if user.disabled:
            raise ApiError(409, "disabled", f"user {user.name} is disabled")
        try:
            note = self._note(request, "api key created", f"{body.name} for {user.name}")
            key = await self._keys.create(body.name, user.name, unique=True, note=note)
        except Conflict:
            raise ApiError(409, "exists", f"a key named {body.name} is in use", "name") from None
        except ValueError as error:  # disabled meanwhile
            raise ApiError(409, "disabled", str(error).partition(": ")[2]) from None
        return CreatedKey(name=body.name, user=user.name, role=user.role, key=key)

    async def revoke_key(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if not await self._keys.revoke(name, note=self._note(request, "api key revoked", name)):
            raise not_found("API key in use")
        return web.Response(status=204)

    async def _found(self, name: str) -> User:
        user = await self._users.get(name)
        if user is None:
            raise not_found("user")
        return user
