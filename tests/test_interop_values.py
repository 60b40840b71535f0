"""No value a schema accepts makes a handler fail: what the database cannot keep is refused
with PropertyConstraintViolation and stored nowhere; connectors, timestamps, payloads and
charge point ids follow OCPP 1.6 as independent chargers send them."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import pytest

from csms.app import CentralSystem
from csms.ocpp16.auth import check_basic_auth, hash_password
from csms.ocpp16.frames import Call, CallResult, ErrorCode, FrameError, decode
from csms.ocpp16.values import PayloadRules
from tests.conftest import API_HEADERS, MakeConfig, ocpp_url
from tests.ocpp_client import RawCharger

BIG = 2**63
VIOLATION = "PropertyConstraintViolation"


def _start(**changes: Any) -> dict[str, Any]:
    return {
        "connectorId": 1,
        "idTag": "TAG-1",
        "meterStart": 1000,
        "timestamp": "2026-03-01T10:00:00Z",
        **changes,
    }


def _status(connector: int, at: str = "2026-03-01T10:00:00Z") -> dict[str, Any]:
    return {
        "connectorId": connector,
        "errorCode": "NoError",
        "status": "Available",
        "timestamp": at,
    }


def _meter(at: str, value: str = "1500", transaction_id: int | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "connectorId": 1,
        "meterValue": [{"timestamp": at, "sampledValue": [{"value": value}]}],
    }
    if transaction_id is not None:
        payload["transactionId"] = transaction_id
    return payload


async def _count(csms: CentralSystem, table: str) -> int:
    row = await csms.db.fetchone(f"SELECT COUNT(*) AS n FROM {table}")
    assert row is not None
    return int(row["n"])


async def _refused(charger: RawCharger, action: str, payload: dict[str, Any]) -> str:
    """The CALLERROR's description; fails unless it is PropertyConstraintViolation."""
    reply = await charger.call_raw(action, payload)
    assert reply[:1] == [4] and reply[2] == VIOLATION, reply
    return str(reply[3])


async def test_a_null_payload_is_the_empty_payload(
    csms: CentralSystem, charger: RawCharger
) -> None:
    await charger.send([2, "x", "Heartbeat", None])
    reply = await charger.receive()
    assert reply[:2] == [3, "x"] and "currentTime" in reply[2]


def test_null_decodes_as_the_empty_payload_and_nothing_else_does() -> None:
    assert decode('[2,"a","Heartbeat",null]') == Call("a", "Heartbeat", {})
    assert decode('[3,"a",null]') == CallResult("a", {})
    for raw in ('[2,"a","Heartbeat",[]]', '[2,"a","Heartbeat",0]', '[3,"a",false]'):
        with pytest.raises(FrameError):
            decode(raw)


@pytest.mark.parametrize("connector", [-1, BIG, 2**40, 101])
async def test_status_on_no_connector_is_refused_and_not_stored(
    csms: CentralSystem, charger: RawCharger, connector: int
) -> None:
    description = await _refused(charger, "StatusNotification", _status(connector))
    assert description.startswith("connectorId:")
    assert await _count(csms, "connectors") == 0
    assert await _count(csms, "status_history") == 0


async def test_connector_zero_is_the_charger_itself(
    csms: CentralSystem, charger: RawCharger
) -> None:
    await charger.call("StatusNotification", _status(0))
    assert [c.connector_id for c in await csms.chargers.connectors("CP-1")] == [0]


async def test_the_highest_connector_is_a_setting(make_config: MakeConfig) -> None:
    config = make_config(ocpp={"max_connector_id": 4})
    async with (
        CentralSystem(config) as system,
        RawCharger.connect(ocpp_url(system), "CP-1") as charger,
    ):
        await charger.call("StatusNotification", _status(4))
        await _refused(charger, "StatusNotification", _status(5))
        await _refused(charger, "StartTransaction", _start(connectorId=5))
        connectors = await system.chargers.connectors("CP-1")
    assert [c.connector_id for c in connectors] == [4]


@pytest.mark.parametrize(
    "changes",
    [
        {"connectorId": 0},  # the charger itself has no transactions
        {"connectorId": -3},
        {"connectorId": BIG},
        {"meterStart": BIG},
        {"meterStart": -BIG},
        {"reservationId": 2**40},
        {"idTag": "TAG\x00"},
        {"timestamp": "9999-12-31T23:00:00-05:00"},  # past year 9999 in UTC
        {"timestamp": "0001-01-01T01:00:00+05:00"},  # before year 1 in UTC
        {"timestamp": "0000-01-01T00:00:00Z"},
    ],
)
async def test_start_out_of_range_is_refused_and_not_stored(
    csms: CentralSystem, charger: RawCharger, changes: dict[str, Any]
) -> None:
    await csms.id_tags.put("TAG-1")
    description = await _refused(charger, "StartTransaction", _start(**changes))
    assert description.startswith(next(iter(changes)) + ":")
    assert await _count(csms, "transactions") == 0


async def test_a_leap_second_is_kept_in_order(csms: CentralSystem, charger: RawCharger) -> None:
    await csms.id_tags.put("TAG-1")
    started = await charger.call("StartTransaction", _start(timestamp="2026-12-31T23:59:60Z"))
    assert started["idTagInfo"]["status"] == "Accepted"
    row = await csms.transactions.get(started["transactionId"])
    assert row is not None and row["started_at"] == "2026-12-31T23:59:59.999Z"
    await charger.call("StatusNotification", _status(1, at="2026-12-31T23:59:60.5Z"))
    history = await csms.chargers.status_history("CP-1", 1)
    assert history[-1]["timestamp"] == "2026-12-31T23:59:59.999Z"


async def test_meter_values_beyond_range(csms: CentralSystem, charger: RawCharger) -> None:
    await csms.id_tags.put("TAG-1")
    started = await charger.call("StartTransaction", _start())
    transaction_id = started["transactionId"]
    # A reading no meter gives keeps its text, without a number.
    await charger.call("MeterValues", _meter("2026-03-01T10:01:00Z", "1e30", transaction_id))
    rows = await csms.transactions.meter_values(transaction_id)
    assert [(r["value"], r["normalised"]) for r in rows] == [("1e30", None)]
    # A transaction id that cannot be ours: the samples are kept, unlinked.
    await charger.call("MeterValues", _meter("2026-03-01T10:02:00Z", transaction_id=BIG))
    assert await _count(csms, "meter_values") == 2
    await _refused(charger, "MeterValues", _meter("0000-01-01T00:00:00Z"))
    assert await _count(csms, "meter_values") == 2


async def test_stop_beyond_range(csms: CentralSystem, charger: RawCharger) -> None:
    await csms.id_tags.put("TAG-1")
    started = await charger.call("StartTransaction", _start())
    stop = {"transactionId": started["transactionId"], "timestamp": "2026-03-01T11:00:00Z"}
    await _refused(charger, "StopTransaction", {**stop, "meterStop": BIG})
    # Not ours: answered, as every unknown transaction is, so that it is not sent forever.
    assert (
        await charger.call("StopTransaction", {**stop, "transactionId": BIG, "meterStop": 1}) == {}
    )
    await charger.call("StopTransaction", {**stop, "meterStop": 2000})
    row = await csms.transactions.get(started["transactionId"])
    assert row is not None and row["meter_stop_wh"] == 2000


async def test_a_timestamp_without_zone_is_utc_by_default(
    csms: CentralSystem, charger: RawCharger
) -> None:
    await csms.id_tags.put("TAG-1")
    started = await charger.call("StartTransaction", _start(timestamp="2026-11-30T10:00:00"))
    assert started["idTagInfo"]["status"] == "Accepted"
    row = await csms.transactions.get(started["transactionId"])
    assert row is not None and row["started_at"] == "2026-11-30T10:00:00.000Z"
    meter = _meter("2026-11-30T10:05:00.5", transaction_id=started["transactionId"])
    await charger.call("MeterValues", meter)
    rows = await csms.transactions.meter_values(started["transactionId"])
    assert rows[0]["timestamp"] == "2026-11-30T10:05:00.500Z"


async def test_a_timestamp_without_zone_is_refused_when_strict(make_config: MakeConfig) -> None:
    config = make_config(ocpp={"timestamps_without_zone": "strict"})
    async with CentralSystem(config) as system:
        await system.id_tags.put("TAG-1")
        async with RawCharger.connect(ocpp_url(system), "CP-1") as charger:
            description = await _refused(
                charger, "StartTransaction", _start(timestamp="2026-11-30T10:00:00")
            )
            assert description.startswith("timestamp:") and "time zone" in description
            assert await _count(system, "transactions") == 0
            accepted = await charger.call("StartTransaction", _start())
    assert accepted["idTagInfo"]["status"] == "Accepted"


async def test_the_specs_example_id_connects(csms: CentralSystem) -> None:
    async with RawCharger.connect(ocpp_url(csms), "RDAM%20123") as charger:
        boot = await charger.call(
            "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}
        )
        assert boot["status"] == "Accepted"
        row = await csms.chargers.get("RDAM 123")
        assert row is not None and row["vendor"] == "V"
        async with aiohttp.ClientSession(headers=API_HEADERS) as http:
            url = f"http://127.0.0.1:{csms.http.port}/api/chargers/RDAM%20123"
            async with http.get(url) as response:
                assert response.status == 200
                shown = await response.json()
    assert shown["id"] == "RDAM 123" and shown["online"] is True


async def test_ids_are_compared_without_case(csms: CentralSystem) -> None:
    await csms.chargers.register("CP-Case")
    async with RawCharger.connect(ocpp_url(csms), "cp-CASE") as charger:
        boot = {"chargePointVendor": "V", "chargePointModel": "M"}
        assert (await charger.call("BootNotification", boot))["status"] == "Accepted"
        assert csms.sessions.ids() == ["CP-Case"]
    row = await csms.chargers.get("CP-Case")
    assert row is not None and row["vendor"] == "V"
    # Neither the accept policy nor a registration makes a second charger of it.
    assert [r["id"] for r in await csms.chargers.list()] == ["CP-Case"]
    assert not await csms.chargers.register("cp-case")


def test_the_basic_auth_username_is_compared_without_case() -> None:
    password = "a-long-random-key-0042"
    token = base64.b64encode(f"cp-pw:{password}".encode()).decode()
    assert check_basic_auth([f"Basic {token}"], "CP-Pw", hash_password(password)) is None
    assert check_basic_auth([f"Basic {token}"], "CP-Other", hash_password(password)) == (
        "wrong_username"
    )


def test_rules_name_the_field_in_lists() -> None:
    rules = PayloadRules()
    payload = {
        "transactionId": 1,
        "meterStop": 5,
        "timestamp": "2026-03-01T11:00:00Z",
        "transactionData": [
            {"timestamp": "2026-03-01T10:00:00Z", "sampledValue": [{"value": "1"}]},
            {"timestamp": "9999-12-31T23:00:00-05:00", "sampledValue": [{"value": "2\x00"}]},
        ],
    }
    refusal = rules.check("StopTransaction", payload)
    assert refusal is not None and refusal.code is ErrorCode.PROPERTY_CONSTRAINT_VIOLATION
    assert refusal.description.startswith("transactionData[1].sampledValue[0].value:")
    payload["transactionData"][1]["sampledValue"][0]["value"] = "2"
    refusal = rules.check("StopTransaction", payload)
    assert refusal is not None and refusal.description.startswith("transactionData[1].timestamp:")


def test_lenient_rules_mend_every_timestamp_in_place() -> None:
    payload = {
        "connectorId": 1,
        "meterValue": [
            {"timestamp": "2026-11-30T10:00:00", "sampledValue": [{"value": "1"}]},
            {"timestamp": "2026-11-30T10:01:00+01:00", "sampledValue": [{"value": "2"}]},
        ],
    }
    assert PayloadRules().prepare("MeterValues", payload) is None
    stamps = [each["timestamp"] for each in payload["meterValue"]]
    assert stamps == ["2026-11-30T10:00:00Z", "2026-11-30T10:01:00+01:00"]
    strict = PayloadRules(timestamps_without_zone="strict")
    payload["meterValue"][1]["timestamp"] = "2026-11-30T10:01:00"
    refusal = strict.prepare("MeterValues", payload)
    assert refusal is not None and refusal.description.startswith("meterValue[1].timestamp:")
