"""Operator users (migration 0011): added with a role and a password kept as an scrypt hash,
authenticated (unknown, disabled and wrong all None), given another role or password,
disabled with their API keys revoked; the same over the API (the admin's), with keys made
for a user (shown once) and revoked; and the admin the first start makes, shown once. On
SQLite and PostgreSQL alike (CSMS_TEST_BACKEND)."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest

from csms.app import CentralSystem
from csms.store.users import PASSWORD_RULE, LastAdmin, User, UserStore
from httpapi.principal import Principal
from storage.db import Conflict
from tests.conftest import API_KEY, MakeConfig

PASSWORD = "correct horse battery"


@pytest.fixture
async def csms(csms: CentralSystem) -> CentralSystem:
    """The system without the admin its first start made (tested in test_cli_users)."""
    await csms.db.execute("DELETE FROM users")
    return csms


async def test_add_then_authenticate(csms: CentralSystem) -> None:
    users: UserStore = csms.users
    added = await users.add("ada@example.com", "finance", PASSWORD)
    assert added.name == "ada@example.com" and added.role == "finance"
    assert added.disabled_at is None and added.created_at
    assert await users.get("ada@example.com") == added
    assert await users.authenticate("ada@example.com", PASSWORD) == added
    assert await users.authenticate("ada@example.com", PASSWORD + "x") is None
    assert await users.authenticate("nobody", PASSWORD) is None
    row = await csms.db.fetchone("SELECT password_hash FROM users WHERE name = 'ada@example.com'")
    assert row is not None and row["password_hash"].startswith("scrypt$")
    assert PASSWORD not in row["password_hash"]


async def test_names_are_unique(csms: CentralSystem) -> None:
    await csms.users.add("ops", "support", PASSWORD)
    with pytest.raises(Conflict):
        await csms.users.add("ops", "viewer", PASSWORD)
    assert [u.role for u in await csms.users.list()] == ["support"]


@pytest.mark.parametrize(
    ("name", "role", "password", "field"),
    [
        ("", "viewer", PASSWORD, "name"),
        ("a" * 65, "viewer", PASSWORD, "name"),
        ("with space", "viewer", PASSWORD, "name"),
        ("ops/1", "viewer", PASSWORD, "name"),
        ("ops", "root", PASSWORD, "role"),
        ("ops", "viewer", "short", "password"),
        ("ops", "viewer", "x" * 129, "password"),
        ("ops", "viewer", "twelve chars\n", "password"),
    ],
)
async def test_bad_input_is_refused_and_writes_nothing(
    csms: CentralSystem, name: str, role: str, password: str, field: str
) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        await csms.users.add(name, role, password)  # type: ignore[arg-type]
    assert await csms.users.list() == []
    assert not await csms.users.any()


async def test_password_rule_bounds(csms: CentralSystem) -> None:
    assert "12 to 128" in PASSWORD_RULE
    await csms.users.add("short", "viewer", "x" * 12)
    await csms.users.add("long", "viewer", "ü" * 128)
    assert await csms.users.authenticate("long", "ü" * 128) is not None


async def test_set_password_and_role(csms: CentralSystem) -> None:
    users = csms.users
    await users.add("ops", "viewer", PASSWORD)
    assert await users.set_password("ops", "another long password")
    assert await users.authenticate("ops", PASSWORD) is None
    assert await users.authenticate("ops", "another long password") is not None
    with pytest.raises(ValueError, match=r"^password:"):
        await users.set_password("ops", "short")
    assert await users.authenticate("ops", "another long password") is not None
    assert not await users.set_password("nobody", "another long password")

    assert await users.set_role("ops", "support")
    user = await users.get("ops")
    assert user is not None and user.role == "support"
    with pytest.raises(ValueError, match=r"^role:"):
        await users.set_role("ops", "owner")  # type: ignore[arg-type]
    assert not await users.set_role("nobody", "admin")


async def test_disable_refuses_sign_in_and_revokes_keys(csms: CentralSystem) -> None:
    users = csms.users
    await users.add("ops", "support", PASSWORD)
    await users.add("other", "support", PASSWORD)
    await csms.db.execute(
        "INSERT INTO api_keys (name, digest, created_at, user_name) VALUES"
        " ('ops-key', 'd1', 'now', 'ops'), ('other-key', 'd2', 'now', 'other')"
    )
    assert await users.disable("ops")
    user = await users.get("ops")
    assert isinstance(user, User) and user.disabled_at is not None
    assert await users.authenticate("ops", PASSWORD) is None
    rows = await csms.db.fetchall("SELECT name, revoked_at FROM api_keys ORDER BY name")
    revoked = {row["name"]: row["revoked_at"] is not None for row in rows}
    assert revoked == {"ops-key": True, "other-key": False}
    assert await users.disable("ops")  # again: nothing more to do
    assert not await users.disable("nobody")

    assert await users.enable("ops")
    assert await users.authenticate("ops", PASSWORD) is not None
    row = await csms.db.fetchone("SELECT revoked_at FROM api_keys WHERE name = 'ops-key'")
    assert row is not None and row["revoked_at"] is not None  # keys stay revoked


async def test_any_and_list(csms: CentralSystem) -> None:
    users = csms.users
    assert not await users.any()
    await users.add("zed", "viewer", PASSWORD)
    await users.add("amy", "admin", PASSWORD)
    await users.disable("zed")
    assert await users.any()
    assert [u.name for u in await users.list()] == ["amy", "zed"]


# -- over the API (admin's)


async def _call(
    system: CentralSystem, method: str, path: str, body: Any = None, key: str = API_KEY
) -> tuple[int, Any]:
    url = f"http://127.0.0.1:{system.http.port}{path}"
    async with (
        aiohttp.ClientSession(headers={"X-API-Key": key}) as http,
        http.request(method, url, json=body) as response,
    ):
        return response.status, await response.json() if response.status != 204 else None


async def test_users_over_the_api(csms: CentralSystem) -> None:
    status, ada = await _call(
        csms, "POST", "/api/users", {"name": "ada", "role": "finance", "password": PASSWORD}
    )
    assert status == 201, ada
    assert ada == {
        "name": "ada",
        "role": "finance",
        "createdAt": ada["createdAt"],
        "disabledAt": None,
    }
    assert "password" not in str(ada).lower()
    status, error = await _call(
        csms, "POST", "/api/users", {"name": "ada", "role": "viewer", "password": PASSWORD}
    )
    assert (status, error["error"]["field"]) == (409, "name")
    for body, field in (
        ({"name": "b b", "role": "viewer", "password": PASSWORD}, "name"),
        ({"name": "bob", "role": "root", "password": PASSWORD}, "role"),
        ({"name": "bob", "role": "viewer", "password": "short"}, "password"),
        ({"name": "bob", "role": "viewer", "password": "twelve chars\n"}, "password"),
    ):
        status, error = await _call(csms, "POST", "/api/users", body)
        assert (status, error["error"]["field"]) == (400, field), error
    status, listed = await _call(csms, "GET", "/api/users")
    assert [u["name"] for u in listed] == ["ada"]

    status, _ = await _call(
        csms, "POST", "/api/users/ada/password", {"password": "a new long password"}
    )
    assert status == 204
    assert await csms.users.authenticate("ada", "a new long password") is not None
    assert (await _call(csms, "POST", "/api/users/nobody/password", {"password": PASSWORD}))[
        0
    ] == 404

    status, changed = await _call(csms, "PATCH", "/api/users/ada", {"role": "support"})
    assert (status, changed["role"]) == (200, "support")
    assert (await _call(csms, "PATCH", "/api/users/nobody", {"role": "support"}))[0] == 404


async def test_keys_over_the_api(csms: CentralSystem) -> None:
    await csms.users.add("ada", "finance", PASSWORD)
    status, made = await _call(csms, "POST", "/api/users/ada/keys", {"name": "ada-laptop"})
    assert status == 201, made
    assert (made["name"], made["user"], made["role"]) == ("ada-laptop", "ada", "finance")
    key = made["key"]
    assert await csms.api_keys.verify(key) == Principal("key:ada-laptop", "finance")
    status, error = await _call(csms, "POST", "/api/users/ada/keys", {"name": "ada-laptop"})
    assert (status, error["error"]["field"]) == (409, "name")
    status, keys = await _call(csms, "GET", "/api/users/ada/keys")
    assert [(k["name"], k["user"], k["revokedAt"]) for k in keys] == [("ada-laptop", "ada", None)]
    assert key not in str(keys)
    # The key reads, and is refused what its role lacks (users are the admin's).
    assert (await _call(csms, "GET", "/api/chargers", key=key))[0] == 200
    status, error = await _call(csms, "GET", "/api/users", key=key)
    assert (status, error["error"]["message"]) == (403, "needs the role admin")

    assert (await _call(csms, "DELETE", "/api/keys/ada-laptop"))[0] == 204
    assert (await _call(csms, "GET", "/api/chargers", key=key))[0] == 401
    assert (await _call(csms, "DELETE", "/api/keys/ada-laptop"))[0] == 404
    assert (await _call(csms, "POST", "/api/users/nobody/keys", {"name": "k"}))[0] == 404


async def test_disabling_over_the_api_revokes_keys_and_keeps_an_admin(csms: CentralSystem) -> None:
    await csms.users.add("boss", "admin", PASSWORD)
    boss_key = await csms.api_keys.create("boss-key", "boss")
    for change in ({"role": "viewer"}, {"disabled": True}):
        status, error = await _call(csms, "PATCH", "/api/users/boss", change)
        assert (status, error["error"]["code"]) == (409, "last_admin")
    user = await csms.users.get("boss")
    assert user is not None and user.role == "admin" and not user.disabled

    await csms.users.add("deputy", "admin", PASSWORD)
    status, disabled = await _call(csms, "PATCH", "/api/users/boss", {"disabled": True})
    assert status == 200 and disabled["disabledAt"] is not None
    assert await csms.api_keys.verify(boss_key) is None
    assert (await _call(csms, "POST", "/api/users/boss/keys", {"name": "again"}))[0] == 409
    status, enabled = await _call(csms, "PATCH", "/api/users/boss", {"disabled": False})
    assert status == 200 and enabled["disabledAt"] is None
    assert await csms.api_keys.verify(boss_key) is None  # revoked for good


async def test_the_first_start_makes_the_admin_and_its_key_once(
    make_config: MakeConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(api={"keys": ""})
    async with CentralSystem(config) as system:
        shown = capsys.readouterr().err
        password = re.search(
            r"user admin \(role admin\) was created\. Its password is shown only now: (\S+)", shown
        )
        key = re.search(r"It is shown only now: (csms_\S+)", shown)
        assert password and key, shown
        admin = await system.users.authenticate("admin", password[1])
        assert admin is not None and admin.role == "admin"
        assert await system.api_keys.verify(key[1]) == Principal("key:first", "admin")
        assert [k.user for k in await system.api_keys.of_user("admin")] == ["admin"]
    async with CentralSystem(config) as system:
        assert "shown only now" not in capsys.readouterr().err
        assert [u.name for u in await system.users.list()] == ["admin"]


async def test_changes_over_the_api_are_audited_with_who_made_them(csms: CentralSystem) -> None:
    await csms.users.add("boss", "admin", PASSWORD)
    boss = await csms.api_keys.create("boss-key", "boss")
    body = {"name": "ada", "role": "viewer", "password": PASSWORD}
    assert (await _call(csms, "POST", "/api/users", body, key=boss))[0] == 201
    assert (await _call(csms, "PATCH", "/api/users/ada", {"role": "finance"}))[0] == 200
    new_password = {"password": "another long password"}
    assert (await _call(csms, "POST", "/api/users/ada/password", new_password))[0] == 204
    assert (await _call(csms, "POST", "/api/users/ada/keys", {"name": "ada-1"}))[0] == 201
    assert (await _call(csms, "DELETE", "/api/keys/ada-1", key=boss))[0] == 204
    assert (await _call(csms, "PATCH", "/api/users/ada", {"disabled": True}))[0] == 200
    assert (await _call(csms, "PATCH", "/api/users/ada", {"disabled": False}))[0] == 200
    # Refused or changing nothing: no line.
    assert (await _call(csms, "PATCH", "/api/users/boss", {"disabled": True}))[0] == 409
    assert (await _call(csms, "PATCH", "/api/users/ada", {"role": "finance"}))[0] == 200
    assert (await _call(csms, "DELETE", "/api/keys/ada-1"))[0] == 404

    lines = [(x["actor"], x["action"], x["detail"]) for x in await csms.audit.lines()]
    assert lines == [
        ("key:boss-key", "user added", "ada as viewer"),
        ("key:config", "user role changed", "ada: viewer to finance"),
        ("key:config", "user password set", "ada"),
        ("key:config", "api key created", "ada-1 for ada"),
        ("key:boss-key", "api key revoked", "ada-1"),
        ("key:config", "user disabled", "ada, its API keys revoked"),
        ("key:config", "user enabled", "ada"),
    ]
    assert PASSWORD not in str(lines) and "another long password" not in str(lines)


async def test_keeping_an_admin_concerns_admins_only(csms: CentralSystem) -> None:
    users = csms.users
    await users.add("ops", "support", PASSWORD)  # no admin at all
    assert await users.set_role("ops", "viewer", keep_an_admin=True)
    assert await users.disable("ops", keep_an_admin=True)
    await users.add("boss", "admin", PASSWORD)
    with pytest.raises(LastAdmin):
        await users.set_role("boss", "finance", keep_an_admin=True)
    with pytest.raises(LastAdmin):
        await users.disable("boss", keep_an_admin=True)
    boss = await users.get("boss")
    assert boss is not None and boss.role == "admin" and not boss.disabled
    assert await users.set_role("boss", "finance")  # without the option: as told
