"""Handshake, connection policy and OCPP-J error handling, over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from csms.app import CentralSystem
from tests.conftest import MakeConfig, ocpp_url
from tests.ocpp_client import RawCharger
from tests.waiting import eventually


async def test_subprotocol_is_negotiated(csms: CentralSystem) -> None:
    async with RawCharger.connect(ocpp_url(csms), "CP-1", ["ocpp2.0.1", "ocpp1.6"]) as charger:
        assert charger.connection.subprotocol == "ocpp1.6"


@pytest.mark.parametrize("offered", [[], ["ocpp2.0.1"]])
async def test_without_ocpp16_the_handshake_completes_then_closes(
    csms: CentralSystem, offered: list[str]
) -> None:
    async with RawCharger.connect(ocpp_url(csms), "CP-1", offered) as charger:
        assert charger.connection.subprotocol is None
        with pytest.raises(ConnectionClosed) as closed:
            await charger.connection.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1002


async def test_unknown_charger_is_refused_before_the_upgrade(make_config: MakeConfig) -> None:
    async with CentralSystem(make_config(ocpp={"unknown_chargers": "reject"})) as system:
        with pytest.raises(InvalidStatus) as refused:
            async with RawCharger.connect(ocpp_url(system), "CP-NEW"):
                pass
        assert refused.value.response.status_code == 404
        assert await system.chargers.get("CP-NEW") is None
        await system.chargers.register("CP-NEW")
        async with RawCharger.connect(ocpp_url(system), "CP-NEW") as charger:
            assert (await charger.call("Heartbeat", {}))["currentTime"]


async def test_accept_policy_registers_unknown_chargers(csms: CentralSystem) -> None:
    async with RawCharger.connect(ocpp_url(csms), "CP%2D77"):
        row = await csms.chargers.get("CP-77")
        assert row is not None and row["online"] == 1 and row["registration_status"] == "Accepted"


@pytest.mark.parametrize("path", ["/ocpp/", "/ocpp/bad%20%20id", "/elsewhere/CP-1", "/ocpp/a/b"])
async def test_bad_paths_get_404(csms: CentralSystem, path: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"ws://127.0.0.1:{csms.ocpp.port}{path}", subprotocols=["ocpp1.6"]):  # type: ignore[list-item]
            pass
    assert refused.value.response.status_code == 404


async def test_online_state_follows_the_connection(csms: CentralSystem) -> None:
    async with RawCharger.connect(ocpp_url(csms), "CP-1"):
        assert csms.commands.is_online("CP-1")
        row = await csms.chargers.get("CP-1")
        assert row is not None and row["online"] == 1

    async def offline() -> bool:
        row = await csms.chargers.get("CP-1")
        return row is not None and row["online"] == 0 and not csms.commands.is_online("CP-1")

    await eventually(offline)


async def test_second_connection_replaces_the_first(csms: CentralSystem) -> None:
    async with (
        RawCharger.connect(ocpp_url(csms), "CP-1") as first,
        RawCharger.connect(ocpp_url(csms), "CP-1") as second,
    ):
        with pytest.raises(ConnectionClosed):
            await first.connection.recv()
        # The old connection's end must not mark the charger offline.
        await asyncio.sleep(0.05)
        row = await csms.chargers.get("CP-1")
        assert row is not None and row["online"] == 1
        session = csms.sessions.get("CP-1")
        assert session is not None
        assert session.connection.remote_address == second.connection.local_address
        assert (await second.call("Heartbeat", {}))["currentTime"]


async def test_silent_charger_is_marked_offline_by_pings(make_config: MakeConfig) -> None:
    config = make_config(ocpp={"ping_interval": 0.2, "ping_timeout": 1.0})
    async with (
        CentralSystem(config) as system,
        RawCharger.connect(ocpp_url(system), "CP-1") as charger,
    ):
        # The charger vanishes without closing: it stops reading, so it answers no ping.
        charger.connection.transport.pause_reading()

        async def offline() -> bool:
            row = await system.chargers.get("CP-1")
            return row is not None and row["online"] == 0

        await eventually(offline, timeout=10)
        assert not system.commands.is_online("CP-1")
        charger.connection.transport.abort()


@pytest.mark.parametrize(
    ("action", "payload", "code"),
    [
        ("FlyToTheMoon", {}, "NotImplemented"),
        ("GetLog", {"logType": "SecurityLog", "requestId": 1}, "NotSupported"),
        ("Reset", {"type": "Hard"}, "NotSupported"),  # a central-system-to-charger action
        ("BootNotification", {"chargePointVendor": "V"}, "ProtocolError"),
        (
            "BootNotification",
            {"chargePointVendor": 5, "chargePointModel": "M"},
            "TypeConstraintViolation",
        ),
        (
            "BootNotification",
            {"chargePointVendor": "V" * 21, "chargePointModel": "M"},
            "PropertyConstraintViolation",
        ),
        (
            "BootNotification",
            {"chargePointVendor": "V", "chargePointModel": "M", "x": 1},
            "FormationViolation",
        ),
        (
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": "Dancing"},
            "PropertyConstraintViolation",
        ),
        (
            "StartTransaction",
            {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "yesterday"},
            "PropertyConstraintViolation",
        ),
        ("MeterValues", {"connectorId": 1, "meterValue": []}, "OccurenceConstraintViolation"),
    ],
)
async def test_call_errors(
    csms: CentralSystem, charger: RawCharger, action: str, payload: dict, code: str
) -> None:
    reply = await charger.call_raw(action, payload)
    assert reply[0] == 4
    assert reply[2] == code
    assert isinstance(reply[3], str) and reply[3]
    # The session goes on.
    assert (await charger.call("Heartbeat", {}))["currentTime"]


async def test_bad_unique_ids_are_rejected(csms: CentralSystem, charger: RawCharger) -> None:
    await charger.send([2, 12345, "Heartbeat", {}])
    assert await charger.receive() == [
        4,
        12345,
        "FormationViolation",
        "UniqueId must be a string of 1 to 36 characters",
        {},
    ]
    long_id = "x" * 37
    await charger.send([2, long_id, "Heartbeat", {}])
    reply = await charger.receive()
    assert reply[:3] == [4, long_id, "FormationViolation"]


async def test_garbage_is_logged_and_the_session_survives(
    csms: CentralSystem, charger: RawCharger
) -> None:
    for garbage in ("{not json", "[]", '"text"', "[2]", '[3, "no-such-call", {}]'):
        await charger.connection.send(garbage)
    await charger.connection.send(b"\x00\x01binary")
    await charger.send([2, "ok", "Heartbeat", {}])
    # Nothing answers the garbage: the first reply is the heartbeat's.
    reply = await charger.receive()
    assert reply[:2] == [3, "ok"]


async def test_frame_over_the_limit_closes_with_1009(make_config: MakeConfig) -> None:
    async with CentralSystem(make_config(ocpp={"max_frame_bytes": 2048})) as system:
        async with RawCharger.connect(ocpp_url(system), "CP-1") as charger:
            await charger.send([2, "1", "DataTransfer", {"vendorId": "v", "data": "x" * 4096}])
            with pytest.raises(ConnectionClosed) as closed:
                await charger.receive()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        # The server carries on for everyone else.
        async with RawCharger.connect(ocpp_url(system), "CP-2") as other:
            assert (await other.call("Heartbeat", {}))["currentTime"]


async def test_internal_error_reveals_nothing(csms: CentralSystem, charger: RawCharger) -> None:
    await csms.db.execute("DROP TABLE data_transfers")
    reply = await charger.call_raw("DataTransfer", {"vendorId": "v"})
    assert reply[2:] == ["InternalError", "internal error", {}]
    assert orjson.dumps(reply).find(b"data_transfers") == -1
