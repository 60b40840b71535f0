"""Operator users (migration 0011): added with a role and a password kept as an scrypt hash,
authenticated (unknown, disabled and wrong all None), renamed in role, given a new
password, disabled with their API keys revoked. On SQLite and PostgreSQL alike
(CSMS_TEST_BACKEND)."""

from __future__ import annotations

import pytest

from csms.app import CentralSystem
from csms.store.users import PASSWORD_RULE, User, UserStore
from storage.db import Conflict

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
