"""Roles on the management API: each route names the role it needs, a key carries its user's
role, and a key without that role gets 403 naming it, with nothing changed. Reads are every
role's; commands are support's, refunds finance's, tariffs admin's. Keys without a user
(and the config's) act as admin; a disabled user's keys are refused. The role of every
write route of the built API is held to the table below, so that a new route is a
decision, not an accident. On SQLite and PostgreSQL alike (CSMS_TEST_BACKEND)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from csms.api.management import build_api
from csms.app import CentralSystem
from csms.roles import Role, allows
from simulators.chargepoint import SimulatedCharger
from tests.conftest import API_KEY
from tests.payflow import Driver, refund_and_wait

PASSWORD = "a long enough password"
TARIFF = {"currency": "EUR", "pricePerKwh": 40, "sessionFee": 0, "maxEnergyWh": 5000}


async def _key_of(system: CentralSystem, role: Role) -> str:
    await system.users.add(f"{role}-user", role, PASSWORD)
    return await system.api_keys.create(f"{role}-key", f"{role}-user")


async def _call(
    system: CentralSystem, key: str, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    url = f"http://127.0.0.1:{system.http.port}{path}"
    async with (
        aiohttp.ClientSession(headers={"X-API-Key": key}) as http,
        http.request(method, url, json=body) as response,
    ):
        return response.status, await response.json() if response.status != 204 else None


def _forbidden(answer: tuple[int, Any], role: Role) -> bool:
    status, body = answer
    return status == 403 and body["error"] == {
        "code": "forbidden",
        "message": f"needs the role {role}",
    }


async def test_a_viewer_reads_but_writes_nothing(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger
) -> None:
    viewer = await _key_of(system, "viewer")
    rid = await driver.start_charging(sim)
    await driver.post(f"/api/payments/{rid}/stop")
    await driver.wait_for_state(rid, "Completed")

    refund = {"amount": 10, "reason": "goodwill"}
    assert _forbidden(
        await _call(system, viewer, "POST", f"/api/payments/{rid}/refunds", refund), "finance"
    )
    command = "/api/chargers/CP-1/commands/GetConfiguration"
    assert _forbidden(await _call(system, viewer, "POST", command, {}), "support")
    tariff = "/api/tariffs/night"
    assert _forbidden(await _call(system, viewer, "PUT", tariff, TARIFF), "admin")
    assert _forbidden(await _call(system, viewer, "POST", "/api/users", {}), "admin")

    for path in ("/api/chargers", "/api/payments", f"/api/payments/{rid}/details", "/api/audit"):
        status, _ = await _call(system, viewer, "GET", path)
        assert status == 200, path
    # Nothing happened: no refund, no tariff, no command sent.
    assert (await _call(system, API_KEY, "GET", f"/api/payments/{rid}/refunds"))[1] == []
    assert (await _call(system, API_KEY, "GET", tariff))[0] == 404
    assert "GetConfiguration" not in [action for action, _ in sim.received_calls]


async def test_support_commands_but_does_not_refund(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger
) -> None:
    support = await _key_of(system, "support")
    status, answer = await _call(
        system, support, "POST", "/api/chargers/CP-1/commands/GetConfiguration",
        {"key": ["HeartbeatInterval"]},
    )  # fmt: skip
    assert status == 200, answer
    assert answer["configurationKey"][0]["key"] == "HeartbeatInterval"
    refund = {"amount": 10, "reason": "goodwill"}
    assert _forbidden(
        await _call(system, support, "POST", "/api/payments/res_x/refunds", refund), "finance"
    )
    status, _ = await _call(system, support, "POST", "/api/id-tags", {"idTag": "CARD-1"})
    assert status == 201


async def test_finance_refunds_but_does_not_change_tariffs(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger
) -> None:
    finance = await _key_of(system, "finance")
    rid = await driver.start_charging(sim)
    await driver.post(f"/api/payments/{rid}/stop")
    await driver.wait_for_state(rid, "Completed")
    status, refund = await _call(
        system, finance, "POST", f"/api/payments/{rid}/refunds", {"amount": 10, "reason": "x"}
    )
    assert status == 201, refund
    assert refund["requestedBy"] == "key:finance-key"
    actors = {line["action"]: line["actor"] for line in await system.audit.lines(rid)}
    assert actors["refund requested"] == "key:finance-key"
    assert _forbidden(await _call(system, finance, "PUT", "/api/tariffs/night", TARIFF), "admin")
    assert _forbidden(
        await _call(system, finance, "POST", "/api/chargers/CP-1/commands/ClearCache", {}),
        "support",
    )
    assert await refund_and_wait(driver, rid, {"amount": 5, "reason": "y"})  # admin still can


async def test_the_key_follows_its_users_role_and_dies_with_it(system: CentralSystem) -> None:
    key = await _key_of(system, "viewer")
    path = "/api/id-tags"
    assert _forbidden(await _call(system, key, "POST", path, {"idTag": "A"}), "support")
    await system.users.set_role("viewer-user", "support")
    assert (await _call(system, key, "POST", path, {"idTag": "A"}))[0] == 201
    await system.users.disable("viewer-user")
    status, body = await _call(system, key, "GET", "/api/chargers")
    assert status == 401 and body["error"]["code"] == "unauthorised"


async def test_keys_without_a_user_act_as_admin(system: CentralSystem) -> None:
    unowned = await system.api_keys.create("legacy")
    for number, key in enumerate((unowned, API_KEY)):
        tariff = {"id": f"t-{number}", **TARIFF}
        status, answer = await _call(system, key, "POST", "/api/tariffs", tariff)
        assert status == 201, answer


# The role of every write route. GETs are the viewer's (but the users'); a new write is the
# admin's by default.
SUPPORT = {
    ("POST", "/api/id-tags"), ("PATCH", "/api/id-tags/{idTag}"),
    ("DELETE", "/api/id-tags/{idTag}"), ("POST", "/api/chargers"),
    ("PATCH", "/api/chargers/{chargerId}"), ("DELETE", "/api/chargers/{chargerId}"),
    ("POST", "/api/payments"), ("POST", "/api/payments/{id}/confirm"),
    ("POST", "/api/payments/{id}/cancel"), ("POST", "/api/payments/{id}/stop"),
}  # fmt: skip
FINANCE = {
    ("POST", "/api/payments/{id}/refunds"),
    ("POST", "/api/payments/{id}/review/retry-capture"),
    ("POST", "/api/payments/{id}/review/release"),
    ("POST", "/api/payments/{id}/review/resolve"),
    ("POST", "/api/payments/{id}/owner-transfer"),
    ("POST", "/api/reconcile"),
}
COMMANDS = "/api/chargers/{chargerId}/commands/"
# Reads that are not everyone's: who the operators are and their keys; the money reports.
ADMIN_READS = {"/api/users", "/api/users/{name}", "/api/users/{name}/keys"}
FINANCE_READS = ("/api/owners/{id}/statements/", "/api/reports/")


def expected_role(method: str, path: str) -> Role:
    if method == "GET":
        if path.startswith(FINANCE_READS):
            return "finance"
        return "admin" if path in ADMIN_READS else "viewer"
    if (method, path) in SUPPORT or path.startswith(COMMANDS):
        return "support"
    if (method, path) in FINANCE:
        return "finance"
    return "admin"  # tariffs, sites, owners, users, keys, and anything new


async def test_every_route_has_the_role_of_the_table(system: CentralSystem) -> None:
    api = build_api(system)
    seen = {(op.method, op.path): op.role for op in api.operations if op.auth}
    assert {key for key in seen if key[1].startswith(COMMANDS)}, "the commands are there"
    assert set(seen) >= SUPPORT | FINANCE, (SUPPORT | FINANCE) - set(seen)
    wrong = {
        key: (role, expected_role(*key))
        for key, role in seen.items()
        if role != expected_role(*key)
    }
    assert wrong == {}
    assert {("POST", "/api/users"), ("DELETE", "/api/keys/{name}")} <= set(seen)
    assert seen[("PUT", "/api/tariffs/{tariffId}")] == "admin"


async def test_the_document_names_the_role_and_the_403(system: CentralSystem) -> None:
    status, document = await _call(system, API_KEY, "GET", "/api/openapi.json")
    assert status == 200
    refund = document["paths"]["/api/payments/{id}/refunds"]
    assert refund["post"]["x-role"] == "finance"
    assert "403" in refund["post"]["responses"]
    assert refund["get"]["x-role"] == "viewer" and "403" not in refund["get"]["responses"]
    assert "x-role" not in document["paths"]["/api/stripe/webhook"]["post"]


@pytest.mark.parametrize("role", ["viewer", "support", "finance", "admin"])
def test_allows(role: Role) -> None:
    assert allows(role, "viewer")
    assert allows(role, role)
    assert allows(role, "admin") == (role == "admin")
    others = {"support", "finance"} - {role}
    assert all(allows(role, other) == (role == "admin") for other in others)  # type: ignore[arg-type]
