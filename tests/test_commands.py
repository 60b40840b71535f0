"""Every central system -> charger operation of OCPP 1.6, sent to the simulated charger."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from csms.app import CentralSystem
from csms.ocpp16.commands import Answered, Failed, InvalidCommand, Offline, TimedOut
from simulators.chargepoint import Behaviour, SimulatedCharger
from tests.conftest import ocpp_url
from tests.ocpp_client import RawCharger

SCHEDULE = {
    "chargingProfileId": 7,
    "stackLevel": 0,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": {
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
    },
}

# Each operation with a valid request and the statuses a charger may plausibly answer.
OPERATIONS = [
    ("CancelReservation", {"reservationId": 1}, {"Accepted", "Rejected"}),
    ("ChangeAvailability", {"connectorId": 2, "type": "Inoperative"}, {"Accepted", "Scheduled"}),
    ("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "120"}, {"Accepted"}),
    ("ClearCache", {}, {"Accepted"}),
    ("ClearChargingProfile", {"id": 7}, {"Accepted", "Unknown"}),
    ("DataTransfer", {"vendorId": "com.example"}, {"UnknownVendorId"}),
    ("GetCompositeSchedule", {"connectorId": 1, "duration": 3600}, {"Accepted", "Rejected"}),
    ("GetConfiguration", {"key": ["HeartbeatInterval"]}, None),
    ("GetDiagnostics", {"location": "ftp://diag.example/upload"}, None),
    ("GetLocalListVersion", {}, None),
    ("RemoteStartTransaction", {"connectorId": 1, "idTag": "TAG-1"}, {"Accepted"}),
    ("RemoteStopTransaction", {"transactionId": 424242}, {"Rejected"}),
    (
        "ReserveNow",
        {
            "connectorId": 2,
            "expiryDate": "2099-01-01T00:00:00Z",
            "idTag": "TAG-9",
            "reservationId": 3,
        },
        {"Accepted"},
    ),
    ("Reset", {"type": "Soft"}, {"Accepted"}),
    (
        "SendLocalList",
        {"listVersion": 2, "updateType": "Full", "localAuthorizationList": []},
        {"Accepted"},
    ),
    ("SetChargingProfile", {"connectorId": 1, "csChargingProfiles": SCHEDULE}, {"Accepted"}),
    ("TriggerMessage", {"requestedMessage": "Heartbeat"}, {"Accepted"}),
    ("UnlockConnector", {"connectorId": 1}, {"Unlocked"}),
    (
        "UpdateFirmware",
        {"location": "https://fw.example/1.1.bin", "retrieveDate": "2026-01-01T00:00:00Z"},
        None,
    ),
]


@pytest.fixture
async def simulator(csms: CentralSystem) -> AsyncIterator[SimulatedCharger]:
    sim = SimulatedCharger(ocpp_url(csms), "CP-1", connectors=2, meter_interval=60)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


def test_all_nineteen_operations_are_covered() -> None:
    from csms.ocpp16.schemas import CSMS_ACTIONS

    # The security extension's CertificateSigned and ExtendedTriggerMessage:
    # tests/test_certificates.py.
    certificates = {"CertificateSigned", "ExtendedTriggerMessage"}
    assert {name for name, _, _ in OPERATIONS} == CSMS_ACTIONS - certificates
    assert len(CSMS_ACTIONS) == 21


@pytest.mark.parametrize(
    ("action", "payload", "statuses"), OPERATIONS, ids=[o[0] for o in OPERATIONS]
)
async def test_operation_reaches_the_charger_and_its_answer_comes_back(
    csms: CentralSystem,
    simulator: SimulatedCharger,
    action: str,
    payload: dict,
    statuses: set | None,
) -> None:
    result = await csms.commands.send("CP-1", action, payload)
    assert isinstance(result, Answered), result
    if statuses is not None:
        assert result.payload["status"] in statuses
    assert await simulator.wait_for_call(action) == payload


async def test_answers_carry_the_charger_data(
    csms: CentralSystem, simulator: SimulatedCharger
) -> None:
    config = await csms.commands.send(
        "CP-1", "GetConfiguration", {"key": ["HeartbeatInterval", "Nope"]}
    )
    assert isinstance(config, Answered)
    assert [k["key"] for k in config.payload["configurationKey"]] == ["HeartbeatInterval"]
    assert config.payload["unknownKey"] == ["Nope"]
    version = await csms.commands.send("CP-1", "GetLocalListVersion", {})
    assert isinstance(version, Answered) and isinstance(version.payload["listVersion"], int)


async def test_offline_charger(csms: CentralSystem) -> None:
    assert await csms.commands.send("CP-404", "Reset", {"type": "Hard"}) == Offline()


async def test_invalid_requests_are_refused_before_sending(csms: CentralSystem) -> None:
    with pytest.raises(InvalidCommand) as refused:
        await csms.commands.send("CP-1", "Reset", {"type": "Gentle"})
    assert refused.value.field == "type"
    with pytest.raises(InvalidCommand):
        await csms.commands.send("CP-1", "BootNotification", {})


async def test_unanswered_command_times_out(csms: CentralSystem) -> None:
    sim = SimulatedCharger(
        ocpp_url(csms), "CP-1", connectors=1, behaviour=Behaviour(ignore_remote_start=True)
    )
    await sim.start()
    try:
        result = await csms.commands.send("CP-1", "RemoteStartTransaction", {"idTag": "T"})
        assert result == TimedOut()
        # The next command is not stuck behind the lost one.
        assert isinstance(await csms.commands.send("CP-1", "ClearCache", {}), Answered)
    finally:
        await sim.stop()


async def test_call_error_from_the_charger(csms: CentralSystem) -> None:
    async with RawCharger.connect(ocpp_url(csms), "CP-1") as raw:
        sending = asyncio.create_task(csms.commands.send("CP-1", "ClearCache", {}))
        call = await raw.receive()
        assert call[0] == 2 and call[2] == "ClearCache"
        await raw.send([4, call[1], "NotSupported", "no cache here", {"why": "none"}])
        assert await sending == Failed("NotSupported", "no cache here", {"why": "none"})


async def test_reply_breaking_the_schema(csms: CentralSystem) -> None:
    async with RawCharger.connect(ocpp_url(csms), "CP-1") as raw:
        sending = asyncio.create_task(csms.commands.send("CP-1", "ClearCache", {}))
        call = await raw.receive()
        await raw.send([3, call[1], {"status": "Maybe"}])
        result = await sending
        assert isinstance(result, Failed) and result.code == "PropertyConstraintViolation"


async def test_one_call_in_flight_per_charger(csms: CentralSystem) -> None:
    async with RawCharger.connect(ocpp_url(csms), "CP-1") as raw:
        first = asyncio.create_task(csms.commands.send("CP-1", "ClearCache", {}))
        second = asyncio.create_task(csms.commands.send("CP-1", "GetLocalListVersion", {}))
        call = await raw.receive()
        # The second CALL is not sent before the first is answered.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await raw.receive()
        await raw.send([3, call[1], {"status": "Accepted"}])
        next_call = await raw.receive()
        assert next_call[2] == "GetLocalListVersion"
        await raw.send([3, next_call[1], {"listVersion": 1}])
        assert await first == Answered({"status": "Accepted"})
        assert await second == Answered({"listVersion": 1})
