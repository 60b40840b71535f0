"""Every audit line names who acted: the driver, the system, Stripe, or the API key's name."""

from __future__ import annotations

from csms.app import CentralSystem
from csms.store.api_keys import CONFIGURED
from httpapi.principal import Principal
from simulators.chargepoint import SimulatedCharger
from tests.conftest import API_KEY
from tests.payflow import Driver


async def _post(driver: Driver, path: str, key: str, body: dict | None = None) -> tuple[int, dict]:
    async with driver.http.post(
        f"{driver.base}{path}", json=body or {}, headers={"X-API-Key": key}
    ) as response:
        return response.status, await response.json()


async def _actors(system: CentralSystem, reservation_id: str) -> dict[str, str]:
    return {line["action"]: line["actor"] for line in await system.audit.lines(reservation_id)}


async def test_verify_names_the_key(system: CentralSystem) -> None:
    key = await system.api_keys.create("desk")
    # A key without a user, and the config's keys, act as admin.
    assert await system.api_keys.verify(key) == Principal("key:desk", "admin")
    assert await system.api_keys.verify(API_KEY) == Principal(f"key:{CONFIGURED}", "admin")
    assert await system.api_keys.verify(key + "x") is None
    assert await system.api_keys.verify("") is None


async def test_a_cancel_through_the_api_names_the_key(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger
) -> None:
    desk = await system.api_keys.create("desk")
    status, created = await driver.create()
    assert status == 200, created
    rid = created["reservationId"]
    status, view = await _post(driver, f"/api/payments/{rid}/cancel", desk)
    assert (status, view["state"]) == (200, "Cancelled")
    actors = await _actors(system, rid)
    assert actors["reservation created"] == "driver"
    assert actors["cancelled by operator"] == "key:desk"


async def test_the_driver_pages_keep_the_driver(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger
) -> None:
    _, created = await driver.create()
    async with driver.http.get(f"{driver.base}/pay/{created['token']}/cancel") as page:
        assert page.status == 200
    assert (await _actors(system, created["reservationId"]))["cancelled by driver"] == "driver"


async def test_a_stop_and_a_refund_through_the_api_name_the_key(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger
) -> None:
    desk = await system.api_keys.create("desk")
    finance = await system.api_keys.create("finance")
    rid = await driver.start_charging(sim)
    status, stopped = await _post(driver, f"/api/payments/{rid}/stop", desk)
    assert (status, stopped["state"]) == (200, "Stopping")
    done = await driver.wait_for_state(rid, "Completed")
    assert done["capturedAmount"] > 0

    status, refund = await _post(
        driver, f"/api/payments/{rid}/refunds", finance, {"amount": 10, "reason": "goodwill"}
    )
    assert status == 201, refund
    assert refund["requestedBy"] == "key:finance"
    actors = await _actors(system, rid)
    assert actors["refund requested"] == "key:finance"
    history = await system.reservations.history(rid)
    assert any(row["event"] == "StopRequested" for row in history)
