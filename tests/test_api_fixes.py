"""API answers that say what is so: a connector held by a pending payment is Reserved, a
command to an unregistered charger is "unknown charger", a tariff goes only to a connector
the charger has, and every /api/payments error carries the {error: {...}} object too."""

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


@pytest.fixture
async def priced(make_config: MakeConfig) -> AsyncIterator[CentralSystem]:
    async with CentralSystem(make_config(tariff=TARIFF, ocpp={"max_connector_id": 4})) as system:
        yield system


def _url(system: CentralSystem, path: str) -> str:
    return f"http://127.0.0.1:{system.http.port}{path}"


async def _json(http: aiohttp.ClientSession, method: str, url: str, **kw: object) -> tuple:
    async with http.request(method, url, **kw) as response:  # type: ignore[arg-type]
        return response.status, None if response.status == 204 else await response.json()


async def _connectors(system: CentralSystem, http: aiohttp.ClientSession) -> tuple[dict, dict]:
    """Connector 1 of CP-1 as the list and as the charger's own page report it."""
    _, listed = await _json(http, "GET", _url(system, "/api/chargers"))
    _, detail = await _json(http, "GET", _url(system, "/api/chargers/CP-1"))
    (in_list,) = [c for c in listed["items"][0]["connectors"] if c["connectorId"] == 1]
    (in_detail,) = [c for c in detail["connectors"] if c["connectorId"] == 1]
    return in_list, in_detail


async def test_a_connector_held_by_a_pending_payment_is_reserved(
    priced: CentralSystem, http: aiohttp.ClientSession
) -> None:
    sim = charger(priced)
    await sim.start()
    try:
        await eventually(lambda: _reported(priced, http, "Available"))
        before = await _connectors(priced, http)
        assert [c["status"] for c in before] == ["Available", "Available"]
        assert [c["reservationId"] for c in before] == [None, None]
        status, created = await Driver(priced, http).create("CP-1", 1)
        assert status == 200, created
        held = await _connectors(priced, http)
        for connector in held:
            assert connector["status"] == "Reserved", connector
            assert connector["reportedStatus"] == "Available"
            assert connector["reservationId"] == created["reservationId"]
        _, detail = await _json(http, "GET", _url(priced, "/api/chargers/CP-1"))
        other = [c for c in detail["connectors"] if c["connectorId"] == 2]
        assert [c["status"] for c in other] == ["Available"]
        status, _ = await _json(
            http, "POST", _url(priced, f"/api/payments/{created['reservationId']}/cancel")
        )
        assert status == 200
        after = await _connectors(priced, http)
        assert [(c["status"], c["reservationId"]) for c in after] == [("Available", None)] * 2
    finally:
        await sim.stop()


async def _reported(system: CentralSystem, http: aiohttp.ClientSession, status: str) -> bool:
    _, detail = await _json(http, "GET", _url(system, "/api/chargers/CP-1"))
    return any(c["connectorId"] == 1 and c["status"] == status for c in detail["connectors"])


async def test_a_command_to_an_unknown_charger_says_so(
    csms: CentralSystem, http: aiohttp.ClientSession
) -> None:
    status, body = await _json(
        http, "POST", _url(csms, "/api/chargers/CP-NOBODY/commands/ClearCache"), json={}
    )
    assert status == 404, body
    assert body["error"]["code"] == "unknown_charger"
    assert "unknown charger" in body["error"]["message"]
    # A registered charger that is not connected is still "offline".
    status, _ = await _json(http, "POST", _url(csms, "/api/chargers"), json={"id": "CP-2"})
    assert status == 201
    status, body = await _json(
        http, "POST", _url(csms, "/api/chargers/CP-2/commands/ClearCache"), json={}
    )
    assert (status, body["error"]["code"]) == (404, "offline")
    assert "not connected" in body["error"]["message"]


async def _assign(system: CentralSystem, http: aiohttp.ClientSession, connector: int) -> tuple:
    return await _json(
        http,
        "PUT",
        _url(system, "/api/tariffs/standard/assignments"),
        json={"chargerId": "CP-1", "connectorId": connector},
    )


async def _with_tariff(system: CentralSystem, http: aiohttp.ClientSession) -> None:
    tariff = {"id": "standard", "currency": "eur", "pricePerKwh": 40, "maxEnergyWh": 5000}
    status, body = await _json(http, "POST", _url(system, "/api/tariffs"), json=tariff)
    assert status == 201, body
    status, body = await _json(http, "POST", _url(system, "/api/chargers"), json={"id": "CP-1"})
    assert status == 201, body


async def test_a_tariff_goes_only_to_a_connector_the_charger_may_have(
    priced: CentralSystem, http: aiohttp.ClientSession
) -> None:
    """Nothing known of its connectors: up to ocpp.max_connector_id (4 here)."""
    await _with_tariff(priced, http)
    status, body = await _assign(priced, http, 5)
    assert status == 400, body
    assert body["error"]["field"] == "connectorId"
    assert "no connector 5" in body["error"]["message"]
    assert (await _assign(priced, http, 4))[0] == 204


async def test_a_tariff_goes_only_to_a_connector_the_charger_has(
    priced: CentralSystem, http: aiohttp.ClientSession
) -> None:
    """Its connectors known (connector details, then its StatusNotifications): up to the
    highest of them."""
    await _with_tariff(priced, http)
    details = {"connectors": {"1": {"plugType": "Type2", "maxPowerKw": 22}}}
    status, body = await _json(http, "PATCH", _url(priced, "/api/chargers/CP-1"), json=details)
    assert status == 200, body
    status, body = await _assign(priced, http, 2)
    assert (status, body["error"]["field"]) == (400, "connectorId")
    assert (await _assign(priced, http, 1))[0] == 204
    assert (await _assign(priced, http, 0))[0] == 204
    sim = charger(priced)  # reports connectors 1 and 2
    await sim.start()
    try:
        await eventually(lambda: _reported_connector(priced, http, 2))
    finally:
        await sim.stop()
    assert (await _assign(priced, http, 2))[0] == 204
    status, body = await _assign(priced, http, 3)
    assert (status, body["error"]["field"]) == (400, "connectorId")
    _, assigned = await _json(http, "GET", _url(priced, "/api/tariffs/standard/assignments"))
    assert sorted(a["connectorId"] for a in assigned["items"]) == [0, 1, 2]


async def _reported_connector(system: CentralSystem, http: aiohttp.ClientSession, n: int) -> bool:
    _, detail = await _json(http, "GET", _url(system, "/api/chargers/CP-1"))
    return any(c["connectorId"] == n for c in detail["connectors"])


def _one_shape(status: int, body: dict, expected: str, field: str | None = None) -> None:
    """A /api/payments refusal: its {status, ...} keys and the common error object."""
    assert body["status"] == expected, (status, body)
    error = body["error"]
    assert set(error) <= {"code", "message", "field"}
    assert isinstance(error["code"], str) and isinstance(error["message"], str), error
    assert error["message"] == (body.get("message") or body.get("reason") or error["code"])
    assert error.get("field") == field == body.get("field")


async def test_every_payment_error_carries_the_common_error_object(
    priced: CentralSystem, http: aiohttp.ClientSession
) -> None:
    payments = _url(priced, "/api/payments")
    status, body = await _json(http, "POST", payments, json={"chargePointId": ""})
    assert status == 400
    _one_shape(status, body, "Invalid", "chargePointId")
    assert body["error"]["code"] == "invalid"
    status, body = await _json(http, "POST", payments, data=b"[1]")
    _one_shape(status, body, "Invalid", "body")
    status, body = await _json(http, "POST", payments, json={"chargePointId": "CP-1"})
    assert status == 404
    _one_shape(status, body, "ChargerOffline")
    assert body["error"]["code"] == "charger_offline"
    status, body = await _json(http, "GET", f"{payments}/no-such-payment")
    assert status == 404
    _one_shape(status, body, "NotFound")
    assert body["error"] == {"code": "not_found", "message": "no such payment"}
    sim = charger(priced)
    await sim.start()
    try:
        await eventually(lambda: _reported(priced, http, "Available"))
        status, created = await Driver(priced, http).create("CP-1", 1)
        assert status == 200 and "error" not in created, created
        status, body = await Driver(priced, http).create("CP-1", 1)
        assert status == 409
        _one_shape(status, body, "ConnectorBusy")
        assert body["error"]["code"] == "connector_busy" and body["reason"]
        rid = created["reservationId"]
        status, body = await _json(
            http, "POST", f"{payments}/{rid}/confirm", json={"checkoutSessionId": "cs_other"}
        )
        assert status == 400
        _one_shape(status, body, "Invalid", "checkoutSessionId")
    finally:
        await sim.stop()
    async with http.get(_url(priced, "/api/openapi.json")) as response:
        document = await response.json()
    refusal = document["components"]["schemas"]["PaymentRefusal"]
    assert "error" in refusal["required"]
    assert "{error: {code, message, field?}} everywhere" in document["info"]["description"]


async def test_a_tariff_replaced_with_an_unknown_currency_is_refused(
    csms: CentralSystem, http: aiohttp.ClientSession
) -> None:
    """Creating one is tested in test_currency; replacing one goes through the same check."""
    tariff = {"id": "standard", "currency": "eur", "pricePerKwh": 40, "maxEnergyWh": 5000}
    status, body = await _json(http, "POST", _url(csms, "/api/tariffs"), json=tariff)
    assert status == 201, body
    for currency in ("xyz", "XYZ"):
        settings = {"currency": currency, "pricePerKwh": 40, "maxEnergyWh": 5000}
        status, body = await _json(http, "PUT", _url(csms, "/api/tariffs/standard"), json=settings)
        assert (status, body["error"]["field"]) == (400, "currency"), body
        assert "Stripe does not charge in XYZ" in body["error"]["message"]
    _, kept = await _json(http, "GET", _url(csms, "/api/tariffs/standard"))
    assert kept["currency"] == "eur"


async def test_a_nul_character_is_refused_naming_the_field(system: CentralSystem) -> None:
    async with aiohttp.ClientSession(headers=API_HEADERS) as http:
        base = f"http://127.0.0.1:{system.http.port}"
        async with http.post(f"{base}/api/id-tags", json={"idTag": "A\u0000B"}) as response:
            assert response.status == 400
            assert (await response.json())["error"]["field"] == "idTag"
        async with http.get(f"{base}/api/chargers/CP%001") as response:
            assert response.status == 400
            assert (await response.json())["error"]["field"] == "chargerId"
        async with http.get(f"{base}/api/audit?action=a%00b") as response:
            assert response.status == 400
            assert (await response.json())["error"]["field"] == "action"
    assert await system.id_tags.list() == []
