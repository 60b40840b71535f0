"""The management API: auth, documents, id tags, commands and refunds, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from csms.app import CentralSystem
from tests.conftest import API_HEADERS, MakeConfig
from tests.payflow import TARIFF, Driver, charger
from tests.waiting import eventually


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=API_HEADERS) as session:
        yield session


def _url(system: CentralSystem, path: str) -> str:
    return f"http://127.0.0.1:{system.http.port}{path}"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/id-tags"), ("POST", "/api/payments"), ("GET", "/api/payments")],
)
@pytest.mark.parametrize("key", [None, "wrong", ""])
async def test_the_api_needs_a_key(
    csms: CentralSystem, method: str, path: str, key: str | None
) -> None:
    headers = {} if key is None else {"X-API-Key": key}
    async with (
        aiohttp.ClientSession() as bare,
        bare.request(method, _url(csms, path), headers=headers, json={}) as response,
    ):
        assert response.status == 401
        body = await response.json()
    assert body["error"]["code"] == "unauthorised"


async def test_documents_are_open_and_describe_every_route(csms: CentralSystem) -> None:
    async with aiohttp.ClientSession() as bare:
        async with bare.get(_url(csms, "/api/openapi.json")) as response:
            document = await response.json()
        async with bare.get(_url(csms, "/api/docs")) as response:
            page = await response.text()
    assert document["openapi"] == "3.1.0"
    served = {
        (resource.method, resource.get_info().get("formatter") or resource.get_info().get("path"))
        for resource in csms.http._runner.app.router.routes()  # type: ignore[union-attr]
        if resource.get_info()
        .get("formatter", resource.get_info().get("path", ""))
        .startswith("/api/")
    }
    documented = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    undocumented = {route for route in served if route[0] != "HEAD"} - documented
    assert undocumented <= {("GET", "/api/openapi.json"), ("GET", "/api/docs")}
    assert "src=" not in page and "<link" not in page  # no external assets
    assert "RemoteStartTransaction" in page and "X-API-Key" in page


async def test_id_tags(csms: CentralSystem, http: aiohttp.ClientSession) -> None:
    for n in range(5):
        async with http.post(_url(csms, "/api/id-tags"), json={"idTag": f"T-{n}"}) as created:
            assert created.status == 201
    async with http.post(_url(csms, "/api/id-tags"), json={"idTag": "T-1"}) as again:
        assert again.status == 409
    async with http.post(
        _url(csms, "/api/id-tags"), json={"idTag": "T-9", "colour": "red"}
    ) as unknown_field:
        assert unknown_field.status == 400
        assert (await unknown_field.json())["error"]["field"] == "colour"
    seen, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        async with http.get(_url(csms, "/api/id-tags"), params=params) as page:
            body = await page.json()
        seen += [tag["idTag"] for tag in body["items"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert seen == [f"T-{n}" for n in range(5)]
    async with http.patch(
        _url(csms, "/api/id-tags/T-2"), json={"blocked": True, "expiryDate": "2030-01-01T00:00:00Z"}
    ) as changed:
        assert (await changed.json())["blocked"] is True
    async with http.delete(_url(csms, "/api/id-tags/T-2")) as deleted:
        assert deleted.status == 204
    async with http.get(_url(csms, "/api/id-tags/T-2")) as gone:
        assert gone.status == 404
    async with http.get(_url(csms, "/api/id-tags"), params={"cursor": "garbage!"}) as bad:
        assert bad.status == 400 and (await bad.json())["error"]["field"] == "cursor"


async def test_commands_through_the_api(csms: CentralSystem, http: aiohttp.ClientSession) -> None:
    sim = charger(csms)
    await sim.start()
    try:
        async with http.post(
            _url(csms, "/api/chargers/CP-1/commands/GetConfiguration"),
            json={"key": ["HeartbeatInterval"]},
        ) as answered:
            assert answered.status == 200
            assert (await answered.json())["configurationKey"][0]["key"] == "HeartbeatInterval"
        async with http.post(
            _url(csms, "/api/chargers/CP-1/commands/Reset"), json={"type": "Gentle"}
        ) as invalid:
            assert invalid.status == 400 and (await invalid.json())["error"]["field"] == "type"
    finally:
        await sim.stop()
    async with http.post(_url(csms, "/api/chargers/CP-1/commands/ClearCache"), json={}) as offline:
        assert offline.status == 404 and (await offline.json())["error"]["code"] == "offline"
    async with http.post(_url(csms, "/api/chargers/CP-1/commands/FlyAway"), json={}) as unknown:
        assert unknown.status == 404


@pytest.fixture
async def paid(make_config: MakeConfig) -> AsyncIterator[tuple[CentralSystem, str]]:
    """A completed paid session, captured."""
    config = make_config(tariff=TARIFF, payments={"minimum_energy_wh": 100})
    async with CentralSystem(config) as system, aiohttp.ClientSession() as session:
        driver = Driver(system, session)
        sim = charger(system, unplug_after_stop=0.1)
        await sim.start()
        try:
            rid = await driver.start_charging(sim)
            await driver.post(f"/api/payments/{rid}/stop")
            await driver.wait_for_state(rid, "Completed")
        finally:
            await sim.stop()
        yield system, rid


async def test_refunds(paid: tuple[CentralSystem, str], http: aiohttp.ClientSession) -> None:
    system, rid = paid
    async with http.get(_url(system, f"/api/payments/{rid}")) as response:
        captured = (await response.json())["capturedAmount"]
    assert captured > 30
    refunds = _url(system, f"/api/payments/{rid}/refunds")
    once = {"Idempotency-Key": "ticket-42"}
    async with http.post(refunds, json={"amount": 20, "reason": "slow charger"}, headers=once) as r:
        assert r.status == 201, await r.text()
        first = await r.json()
    async with http.post(refunds, json={"amount": 20, "reason": "slow charger"}, headers=once) as r:
        assert (await r.json())["refundId"] == first["refundId"]  # the retried request: once
    async with http.post(refunds, json={"amount": captured, "reason": "too much"}) as r:
        assert r.status == 409 and (await r.json())["error"]["code"] == "not_refundable"
    async with http.post(refunds, json={"reason": "the rest"}) as r:
        assert r.status == 201 and (await r.json())["amount"] == captured - 20
    async with http.post(refunds, json={"amount": 1, "reason": "nothing left"}) as r:
        assert r.status == 409

    async def settled() -> bool:
        async with http.get(refunds) as response:
            return all(x["status"] == "succeeded" for x in await response.json())

    await eventually(settled)
    assert system.sandbox is not None
    (ledger,) = system.sandbox.ledger().values()
    assert ledger["amount_refunded"] == captured
    async with http.get(_url(system, f"/api/payments/{rid}/details")) as response:
        details = await response.json()
    assert details["refundedAmount"] == captured
    actions = [line["action"] for line in details["audit"]]
    assert actions.count("refund requested") == 2 and actions.count("refunded") == 2
    assert details["paymentIntentId"] and details["history"][-1]["to_state"] == "Completed"


async def test_payments_list(paid: tuple[CentralSystem, str], http: aiohttp.ClientSession) -> None:
    system, rid = paid
    async with http.get(_url(system, "/api/payments"), params={"state": "Completed"}) as r:
        assert [p["reservationId"] for p in (await r.json())["items"]] == [rid]
    async with http.get(_url(system, "/api/payments"), params={"state": "Charging"}) as r:
        assert (await r.json())["items"] == []
    async with http.get(_url(system, "/api/payments"), params={"state": "Sleeping"}) as r:
        assert r.status == 400 and (await r.json())["error"]["field"] == "state"


async def test_every_operation_through_the_api(
    csms: CentralSystem, http: aiohttp.ClientSession
) -> None:
    from tests.test_commands import OPERATIONS

    sim = charger(csms)
    await sim.start()
    try:
        # Those that change the charger's state go last, so the others meet it as it was.
        disruptive = ("ChangeAvailability", "UnlockConnector", "Reset")
        ordered = sorted(
            OPERATIONS, key=lambda op: disruptive.index(op[0]) if op[0] in disruptive else -1
        )
        for action, payload, statuses in ordered:
            async with http.post(
                _url(csms, f"/api/chargers/CP-1/commands/{action}"), json=payload
            ) as response:
                assert response.status == 200, (action, await response.text())
                answer = await response.json()
            if statuses is not None:
                assert answer["status"] in statuses, (action, answer)
            if action == "Reset":
                await sim.wait_online(10)  # the simulator reboots after a reset
    finally:
        await sim.stop()
