"""The charge point simulator against a minimal central system built on the ocpp library."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import pytest
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.http11 import Request, Response

from simulators.chargepoint import (
    AuthorizationRejected,
    Behaviour,
    Scenario,
    SimulatedCharger,
    SimulatorError,
    run_fleet,
)
from simulators.chargepoint.__main__ import parse_args
from simulators.chargepoint.connector import TAPER_FLOOR, charge, power_at
from simulators.chargepoint.fleet import fleet_ids
from simulators.chargepoint.outbox import Outbox


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class CentralSide(ChargePoint):
    """One charger's session on the test central system."""

    def __init__(self, charge_point_id: str, connection: ServerConnection, csms: FakeCsms) -> None:
        super().__init__(charge_point_id, connection, response_timeout=2)
        self.csms = csms

    @on(Action.boot_notification)
    def on_boot_notification(self, **payload: Any) -> call_result.BootNotification:
        self.csms.record(self.id, "BootNotification", payload)
        status = self.csms.boot_statuses.pop(0) if self.csms.boot_statuses else "Accepted"
        interval = self.csms.heartbeat_interval if status == "Accepted" else 1
        return call_result.BootNotification(current_time=_now(), interval=interval, status=status)

    @on(Action.heartbeat)
    def on_heartbeat(self, **payload: Any) -> call_result.Heartbeat:
        self.csms.record(self.id, "Heartbeat", payload)
        return call_result.Heartbeat(current_time=_now())

    @on(Action.status_notification)
    def on_status_notification(self, **payload: Any) -> call_result.StatusNotification:
        self.csms.record(self.id, "StatusNotification", payload)
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, id_tag: str, **payload: Any) -> call_result.Authorize:
        self.csms.record(self.id, "Authorize", {"id_tag": id_tag, **payload})
        return call_result.Authorize(
            id_tag_info={"status": self.csms.tag_status.get(id_tag, "Accepted")}
        )

    @on(Action.start_transaction)
    async def on_start_transaction(
        self, id_tag: str, **payload: Any
    ) -> call_result.StartTransaction:
        self.csms.record(self.id, "StartTransaction", {"id_tag": id_tag, **payload})
        await asyncio.sleep(self.csms.start_delay)
        self.csms.last_transaction_id += 1
        return call_result.StartTransaction(
            transaction_id=self.csms.last_transaction_id,
            id_tag_info={"status": self.csms.start_status.get(id_tag, "Accepted")},
        )

    @on(Action.meter_values)
    def on_meter_values(self, **payload: Any) -> call_result.MeterValues:
        self.csms.record(self.id, "MeterValues", payload)
        return call_result.MeterValues()

    @on(Action.stop_transaction)
    def on_stop_transaction(self, **payload: Any) -> call_result.StopTransaction:
        self.csms.record(self.id, "StopTransaction", payload)
        return call_result.StopTransaction(id_tag_info={"status": "Accepted"})

    @on(Action.diagnostics_status_notification)
    def on_diagnostics_status_notification(
        self, **payload: Any
    ) -> call_result.DiagnosticsStatusNotification:
        self.csms.record(self.id, "DiagnosticsStatusNotification", payload)
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    def on_firmware_status_notification(
        self, **payload: Any
    ) -> call_result.FirmwareStatusNotification:
        self.csms.record(self.id, "FirmwareStatusNotification", payload)
        return call_result.FirmwareStatusNotification()

    @on(Action.data_transfer)
    def on_data_transfer(self, **payload: Any) -> call_result.DataTransfer:
        self.csms.record(self.id, "DataTransfer", payload)
        return call_result.DataTransfer(status="Accepted")


class FakeCsms:
    """Records what chargers send (snake_case payloads) and lets tests call them."""

    def __init__(self) -> None:
        self.url = ""
        self.messages: list[tuple[str, str, dict[str, Any]]] = []
        self.sessions: dict[str, CentralSide] = {}
        self.requests: list[Request] = []
        self.boot_statuses: list[str] = []  # replies before the boot is Accepted
        self.heartbeat_interval = 300
        self.tag_status: dict[str, str] = {"BAD": "Invalid"}
        self.start_status: dict[str, str] = {"BLOCKED": "Blocked"}
        self.last_transaction_id = 100
        self.start_delay = 0.0
        self._changed = asyncio.Event()

    def record(self, charge_point_id: str, action: str, payload: dict[str, Any]) -> None:
        self.messages.append((charge_point_id, action, payload))
        self._changed.set()
        self._changed = asyncio.Event()

    def of(self, action: str, charge_point_id: str = "CP-1") -> list[dict[str, Any]]:
        return [p for cp, a, p in self.messages if a == action and cp == charge_point_id]

    def actions(self, charge_point_id: str = "CP-1") -> list[str]:
        return [a for cp, a, _ in self.messages if cp == charge_point_id]

    async def wait_until(self, predicate: Callable[[], bool], seconds: float = 5) -> None:
        async with asyncio.timeout(seconds):
            while not predicate():
                await self._changed.wait()

    async def wait_for(
        self, action: str, count: int = 1, charge_point_id: str = "CP-1", seconds: float = 5
    ) -> list[dict[str, Any]]:
        await self.wait_until(lambda: len(self.of(action, charge_point_id)) >= count, seconds)
        return self.of(action, charge_point_id)

    def statuses(self, connector_id: int, charge_point_id: str = "CP-1") -> list[str]:
        notifications = self.of("StatusNotification", charge_point_id)
        return [n["status"] for n in notifications if n["connector_id"] == connector_id]

    def session(self, charge_point_id: str = "CP-1") -> CentralSide:
        return self.sessions[charge_point_id]

    def check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if not request.path.startswith("/ocpp/"):
            return connection.respond(HTTPStatus.NOT_FOUND, "no such endpoint\n")
        self.requests.append(request)
        return None

    async def handle(self, connection: ServerConnection) -> None:
        charge_point_id = unquote(connection.request.path.rsplit("/", 1)[-1])
        session = CentralSide(charge_point_id, connection, self)
        self.sessions[charge_point_id] = session
        with contextlib.suppress(ConnectionClosed):
            await session.start()


MakeSim = Callable[..., SimulatedCharger]


@pytest.fixture
async def csms() -> AsyncIterator[FakeCsms]:
    system = FakeCsms()
    async with serve(
        system.handle,
        "127.0.0.1",
        0,
        subprotocols=["ocpp1.6"],
        process_request=system.check_request,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        system.url = f"ws://127.0.0.1:{port}/ocpp"
        yield system


@pytest.fixture
async def make_sim(csms: FakeCsms) -> AsyncIterator[MakeSim]:
    """Builds simulators for the fake CSMS (not started); stops them all afterwards."""
    sims: list[SimulatedCharger] = []

    def make(**options: Any) -> SimulatedCharger:
        options.setdefault("charge_point_id", "CP-1")
        options.setdefault("meter_interval", 60)
        sim = SimulatedCharger(url=options.pop("url", csms.url), **options)
        sims.append(sim)
        return sim

    yield make
    for sim in sims:
        await sim.stop()


@pytest.fixture
async def sim(make_sim: MakeSim) -> SimulatedCharger:
    """A booted two-connector charger; 11 kW at 3600x speed is about 3 Wh per wall millisecond."""
    charger = make_sim(connectors=2, speed=3600)
    await charger.start()
    return charger


def _sampled(meter_value: dict[str, Any], measurand: str) -> list[dict[str, Any]]:
    return [v for v in meter_value["sampled_value"] if v.get("measurand") == measurand]


def _register(meter_value: dict[str, Any]) -> float:
    (energy,) = _sampled(meter_value, "Energy.Active.Import.Register")
    return float(energy["value"])


# Boot and connection


async def test_boot_reports_every_connector_and_heartbeats(
    csms: FakeCsms, make_sim: MakeSim
) -> None:
    csms.heartbeat_interval = 1
    sim = make_sim(connectors=2, vendor="Acme", model="AC-22", serial="S-42", firmware="2.1")

    await sim.start()

    assert sim.booted and sim.connected
    assert csms.requests[0].headers["Sec-WebSocket-Protocol"] == "ocpp1.6"
    assert "Authorization" not in csms.requests[0].headers
    (boot,) = csms.of("BootNotification")
    assert boot["charge_point_vendor"] == "Acme" and boot["charge_point_model"] == "AC-22"
    assert boot["charge_point_serial_number"] == "S-42" and boot["firmware_version"] == "2.1"
    statuses = csms.of("StatusNotification")
    assert [(s["connector_id"], s["status"], s["error_code"]) for s in statuses] == [
        (0, "Available", "NoError"),
        (1, "Available", "NoError"),
        (2, "Available", "NoError"),
    ]
    assert [sim.connector(n).status for n in (0, 1, 2)] == ["Available"] * 3
    assert [action for action, _ in sim.sent] == ["BootNotification"] + ["StatusNotification"] * 3
    assert sim.sent[0].reply is not None and sim.sent[0].reply["status"] == "Accepted"
    # The interval from the boot reply drives the heartbeat.
    await csms.wait_for("Heartbeat", seconds=3)
    assert sim.config.text("HeartbeatInterval") == "1"


async def test_boot_retries_while_pending(csms: FakeCsms, make_sim: MakeSim) -> None:
    csms.boot_statuses = ["Pending"]  # with interval 1
    sim = make_sim()
    await sim.start()
    assert len(csms.of("BootNotification")) == 2
    assert sim.booted
    assert csms.actions()[:2] == ["BootNotification", "BootNotification"]


async def test_id_is_percent_encoded_and_password_sent(csms: FakeCsms, make_sim: MakeSim) -> None:
    sim = make_sim(charge_point_id="CP 7/b", password="s3cret")
    await sim.start()
    request = csms.requests[0]
    assert request.path == "/ocpp/CP%207%2Fb"
    expected = base64.b64encode(b"CP 7/b:s3cret").decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert "CP 7/b" in csms.sessions


async def test_start_raises_when_refused(csms: FakeCsms, make_sim: MakeSim) -> None:
    with pytest.raises(InvalidStatus) as rejected:
        await make_sim(url=csms.url.replace("/ocpp", "/nope")).start()
    assert rejected.value.response.status_code == 404

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(OSError):
        await make_sim(url=f"ws://127.0.0.1:{port}/ocpp").start()


async def test_timestamps_come_from_the_clock(csms: FakeCsms, make_sim: MakeSim) -> None:
    ahead = datetime.now(UTC) + timedelta(hours=3)
    sim = make_sim(clock=lambda: ahead)
    await sim.start()
    for status in csms.of("StatusNotification"):
        assert datetime.fromisoformat(status["timestamp"]) == ahead.replace(
            microsecond=ahead.microsecond // 1000 * 1000
        )


# Local transactions and metering


async def test_local_transaction_meters_energy(csms: FakeCsms, sim: SimulatedCharger) -> None:
    await sim.plug_in(1)
    assert sim.connector(1).status == "Preparing" and sim.connector(1).plugged

    transaction_id = await sim.start_transaction(1, "TAG-1")

    assert transaction_id == 101
    connector = sim.connector(1)
    assert (connector.status, connector.transaction_id, connector.id_tag) == (
        "Charging",
        101,
        "TAG-1",
    )
    assert connector.power_w == 11000
    assert [a for a, _ in sim.sent][-3:] == ["Authorize", "StartTransaction", "StatusNotification"]
    (start,) = csms.of("StartTransaction")
    assert (start["connector_id"], start["id_tag"], start["meter_start"]) == (1, "TAG-1", 0)

    registers = []
    for _ in range(2):
        await asyncio.sleep(0.05)
        await sim.send_meter_values(1)
        (meter_value,) = csms.of("MeterValues")[-1]["meter_value"]
        registers.append(_register(meter_value))
    assert 0 < registers[0] < registers[1]
    values = csms.of("MeterValues")[-1]
    assert values["transaction_id"] == 101 and values["connector_id"] == 1
    sample = values["meter_value"][0]
    assert {v["context"] for v in sample["sampled_value"]} == {"Sample.Periodic"}
    (energy,) = _sampled(sample, "Energy.Active.Import.Register")
    assert (energy["unit"], energy["location"]) == ("Wh", "Outlet")
    (power,) = _sampled(sample, "Power.Active.Import")
    assert (power["unit"], float(power["value"])) == ("W", 11000.0)
    currents = _sampled(sample, "Current.Import")
    assert [c["phase"] for c in currents] == ["L1", "L2", "L3"]
    assert all(c["unit"] == "A" and float(c["value"]) == pytest.approx(15.9) for c in currents)
    (soc,) = _sampled(sample, "SoC")
    assert (soc["unit"], soc["location"]) == ("Percent", "EV") and 20 <= float(soc["value"]) <= 100

    await sim.stop_transaction(1)

    (stop,) = csms.of("StopTransaction")
    assert (stop["transaction_id"], stop["reason"], stop["id_tag"]) == (101, "Local", "TAG-1")
    assert stop["meter_stop"] >= registers[1]
    begin, end = stop["transaction_data"]
    assert begin["sampled_value"][0]["context"] == "Transaction.Begin"
    assert end["sampled_value"][0]["context"] == "Transaction.End"
    assert float(end["sampled_value"][0]["value"]) == stop["meter_stop"]
    assert sim.connector(1).status == "Finishing" and sim.connector(1).transaction_id is None

    await sim.unplug(1)
    assert csms.of("StatusNotification")[-1]["status"] == "Available"
    # The register keeps counting across sessions.
    assert await sim.start_transaction(1, "TAG-2") == 102
    assert csms.of("StartTransaction")[-1]["meter_start"] == stop["meter_stop"]


async def test_energy_in_kwh(csms: FakeCsms, make_sim: MakeSim) -> None:
    sim = make_sim(energy_unit="kWh", speed=3600)
    await sim.start()
    await sim.start_transaction(1, "TAG-1")
    await asyncio.sleep(0.05)
    await sim.send_meter_values(1)
    (energy,) = _sampled(
        csms.of("MeterValues")[-1]["meter_value"][0], "Energy.Active.Import.Register"
    )
    assert energy["unit"] == "kWh"
    kwh = float(energy["value"])
    assert 0 < kwh < 5 and len(energy["value"].split(".")[1]) == 3
    await sim.stop_transaction(1)
    stop = csms.of("StopTransaction")[0]
    # meterStop stays an integer in Wh, whatever the register unit.
    assert isinstance(stop["meter_stop"], int) and stop["meter_stop"] >= kwh * 1000 - 1
    assert stop["transaction_data"][1]["sampled_value"][0]["unit"] == "kWh"


async def test_periodic_meter_values_follow_the_configured_interval(
    csms: FakeCsms, make_sim: MakeSim
) -> None:
    sim = make_sim(meter_interval=0.05, speed=60)
    await sim.start()
    await sim.start_transaction(1, "TAG-1")
    values = await csms.wait_for("MeterValues", count=3, seconds=2)
    registers = [_register(v["meter_value"][0]) for v in values]
    assert registers == sorted(registers) and registers[-1] > registers[0]

    # ChangeConfiguration takes effect: 0 switches periodic sampling off.
    reply = await csms.session().call(
        call.ChangeConfiguration(key="MeterValueSampleInterval", value="0")
    )
    assert reply.status == "Accepted"
    await asyncio.sleep(0.1)  # a sample already in flight may still land
    count = len(csms.of("MeterValues"))
    await asyncio.sleep(0.2)
    assert len(csms.of("MeterValues")) == count


async def test_full_battery_suspends_charging(csms: FakeCsms, make_sim: MakeSim) -> None:
    sim = make_sim(speed=36000, behaviour=Behaviour(max_energy_wh=2000))
    await sim.start()
    await sim.start_transaction(1, "TAG-1")
    await asyncio.sleep(0.3)  # 3000 s simulated: far beyond the taper
    await sim.send_meter_values(1)
    connector = sim.connector(1)
    assert (connector.status, connector.power_w, connector.energy_wh) == ("SuspendedEV", 0.0, 2000)
    assert csms.of("StatusNotification")[-1]["status"] == "SuspendedEV"
    sample = csms.of("MeterValues")[-1]["meter_value"][0]
    assert float(_sampled(sample, "SoC")[0]["value"]) == 100


def test_power_curve_tapers_and_reaches_full() -> None:
    assert power_at(0, 11000, None) == 11000
    assert power_at(7999, 11000, 10000) == 11000
    assert power_at(9000, 11000, 10000) == pytest.approx(5500)
    assert power_at(9999.9, 11000, 10000) == pytest.approx(11000 * TAPER_FLOOR)
    assert power_at(10000, 11000, 10000) == 0
    # Constant power: 11 kW for half an hour.
    assert charge(0, 0.5, 11000, None) == pytest.approx(5500)
    # The closed form matches a fine numerical integration of power_at().
    energy, step = 7000.0, 1 / 36000
    for _ in range(int(0.5 / step)):
        energy += power_at(energy, 11000, 10000) * step
    assert charge(7000, 0.5, 11000, 10000) == pytest.approx(energy, abs=1)
    assert charge(0, 10, 11000, 10000) == 10000


async def test_start_refused_by_csms(csms: FakeCsms, sim: SimulatedCharger) -> None:
    with pytest.raises(AuthorizationRejected) as rejected:
        await sim.start_transaction(1, "BAD")
    assert rejected.value.status == "Invalid"
    assert csms.of("StartTransaction") == []
    assert sim.connector(1).status == "Preparing"  # the cable is in

    # Authorized, but StartTransaction says Blocked: stop at once.
    transaction_id = await sim.start_transaction(2, "BLOCKED")
    (stop,) = csms.of("StopTransaction")
    assert (stop["transaction_id"], stop["reason"]) == (transaction_id, "DeAuthorized")
    assert sim.connector(2).status == "Finishing"
    with pytest.raises(SimulatorError):
        await sim.stop_transaction(2)


# Remote start and stop


async def test_remote_start_when_plugged(csms: FakeCsms, sim: SimulatedCharger) -> None:
    await sim.plug_in(2)
    reply = await csms.session().call(call.RemoteStartTransaction(id_tag="APP-1", connector_id=2))
    assert reply.status == "Accepted"
    (start,) = await csms.wait_for("StartTransaction")
    assert (start["connector_id"], start["id_tag"]) == (2, "APP-1")
    # AuthorizeRemoteTxRequests is false.
    assert csms.of("Authorize") == []
    await sim.wait_for_status(2, "Charging")
    assert sim.connector(2).transaction_id == 101
    assert await sim.wait_for_call("RemoteStartTransaction") == {"idTag": "APP-1", "connectorId": 2}


async def test_remote_start_waits_for_the_driver(csms: FakeCsms, sim: SimulatedCharger) -> None:
    sim.behaviour.plug_after = 0.2
    reply = await csms.session().call(call.RemoteStartTransaction(id_tag="APP-1"))
    assert reply.status == "Accepted"
    await sim.wait_for_status(1, "Preparing")
    assert csms.of("StartTransaction") == []
    await sim.wait_for_status(1, "Charging", timeout=2)
    assert sim.connector(1).plugged and sim.connector(1).id_tag == "APP-1"
    await csms.wait_until(lambda: csms.statuses(1) == ["Available", "Preparing", "Charging"])
    # Connector 1 is busy now, so a remote start without connector id picks connector 2.
    await sim.plug_in(2)
    await csms.session().call(call.RemoteStartTransaction(id_tag="APP-2"))
    await sim.wait_for_status(2, "Charging")


async def test_remote_start_gives_up_after_connection_timeout(
    csms: FakeCsms, sim: SimulatedCharger
) -> None:
    session = csms.session()
    assert (
        await session.call(call.ChangeConfiguration(key="ConnectionTimeOut", value="1"))
    ).status == "Accepted"
    assert (
        await session.call(call.RemoteStartTransaction(id_tag="APP-1", connector_id=1))
    ).status == "Accepted"
    await sim.wait_for_status(1, "Preparing")
    await sim.wait_for_status(1, "Available", timeout=3)
    assert csms.of("StartTransaction") == []
    # Too late: the request is gone, so plugging in only prepares.
    await sim.plug_in(1)
    assert sim.connector(1).status == "Preparing" and csms.of("StartTransaction") == []


async def test_remote_start_rejections(csms: FakeCsms, sim: SimulatedCharger) -> None:
    session = csms.session()
    sim.behaviour.reject_remote_start = True
    assert (
        await session.call(call.RemoteStartTransaction(id_tag="A", connector_id=1))
    ).status == "Rejected"

    sim.behaviour.reject_remote_start = False
    sim.behaviour.accept_remote_start_without_plug = False
    assert (
        await session.call(call.RemoteStartTransaction(id_tag="A", connector_id=1))
    ).status == "Rejected"
    assert (
        await session.call(call.RemoteStartTransaction(id_tag="A", connector_id=9))
    ).status == "Rejected"

    await sim.start_transaction(1, "TAG-1")
    assert (
        await session.call(call.RemoteStartTransaction(id_tag="A", connector_id=1))
    ).status == "Rejected"
    assert csms.of("StartTransaction")[-1]["id_tag"] == "TAG-1"


async def test_ignored_remote_start_is_never_answered(
    csms: FakeCsms, sim: SimulatedCharger
) -> None:
    sim.behaviour.ignore_remote_start = True
    csms.session()._response_timeout = 0.3
    with pytest.raises(asyncio.TimeoutError):
        await csms.session().call(call.RemoteStartTransaction(id_tag="A", connector_id=1))
    assert sim.received_calls == [("RemoteStartTransaction", {"idTag": "A", "connectorId": 1})]
    assert sim.connector(1).status == "Available"


async def test_remote_stop(csms: FakeCsms, sim: SimulatedCharger) -> None:
    sim.behaviour.unplug_after_stop = 0.1
    transaction_id = await sim.start_transaction(1, "TAG-1")
    session = csms.session()
    assert (await session.call(call.RemoteStopTransaction(transaction_id=999))).status == "Rejected"
    assert (
        await session.call(call.RemoteStopTransaction(transaction_id=transaction_id))
    ).status == "Accepted"
    (stop,) = await csms.wait_for("StopTransaction")
    assert (stop["transaction_id"], stop["reason"]) == (transaction_id, "Remote")
    assert "id_tag" not in stop
    await sim.wait_for_status(1, "Finishing")
    await sim.wait_for_status(1, "Available", timeout=2)
    assert not sim.connector(1).plugged


async def test_unplug_stops_the_transaction(csms: FakeCsms, sim: SimulatedCharger) -> None:
    await sim.start_transaction(1, "TAG-1")
    await sim.unplug(1)
    (stop,) = csms.of("StopTransaction")
    assert stop["reason"] == "EVDisconnected"
    assert sim.connector(1).status == "Available"


# Offline behaviour


async def test_offline_transaction_is_replayed_with_the_real_id(
    csms: FakeCsms, sim: SimulatedCharger
) -> None:
    before = len(csms.actions())
    await sim.go_offline()
    assert not sim.connected

    provisional = await sim.start_transaction(1, "TAG-1")
    assert provisional < 0 and sim.connector(1).status == "Charging"
    await asyncio.sleep(0.02)
    await sim.send_meter_values(1)
    await sim.stop_transaction(1)
    provisional_2 = await sim.start_transaction(2, "TAG-2")
    assert provisional_2 < 0 and provisional_2 != provisional
    # Nothing reached the CSMS, not even the Authorize (decided offline).
    assert csms.actions().count("StartTransaction") == 0 and csms.of("Authorize") == []

    await sim.reconnect()

    # Replayed in order, then the statuses that changed meanwhile.
    assert csms.actions()[before:] == [
        "StartTransaction",
        "MeterValues",
        "StopTransaction",
        "StartTransaction",
        "StatusNotification",
        "StatusNotification",
    ]
    first, second = csms.of("StartTransaction")
    assert (first["id_tag"], second["id_tag"]) == ("TAG-1", "TAG-2")
    assert csms.of("MeterValues")[0]["transaction_id"] == 101
    (stop,) = csms.of("StopTransaction")
    assert stop["transaction_id"] == 101 and stop["meter_stop"] > 0
    # The still-running session now carries the CSMS id, and statuses changed offline were resent.
    assert sim.connector(2).transaction_id == 102
    assert (csms.statuses(1)[-1], csms.statuses(2)[-1]) == ("Finishing", "Charging")
    assert csms.of("BootNotification").__len__() == 1
    assert [p["transactionId"] for a, p in sim.sent if a == "StopTransaction"] == [101]


async def test_go_offline_for_a_while(csms: FakeCsms, sim: SimulatedCharger) -> None:
    transaction_id = await sim.start_transaction(1, "TAG-1")
    await sim.go_offline(0.2)
    await sim.send_meter_values(1)
    assert csms.of("MeterValues") == []
    await sim.wait_online(timeout=3)
    (values,) = csms.of("MeterValues")
    assert values["transaction_id"] == transaction_id
    await sim.stop_transaction(1)
    assert csms.of("StopTransaction")[0]["transaction_id"] == transaction_id


async def test_call_cut_off_by_a_drop_is_queued(csms: FakeCsms, sim: SimulatedCharger) -> None:
    csms.start_delay = 0.5
    starting = asyncio.create_task(sim.start_transaction(1, "TAG-1"))
    await csms.wait_for("StartTransaction")
    await sim.go_offline(0.1)
    # The reply never came: the charger carries on with a provisional id.
    provisional = await starting
    assert provisional < 0 and sim.connector(1).status == "Charging"
    csms.start_delay = 0
    await sim.wait_online(timeout=3)
    # Delivered again after the reconnection (the CSMS must cope with the duplicate).
    assert len(csms.of("StartTransaction")) == 2
    assert sim.connector(1).transaction_id == csms.last_transaction_id


async def test_reconnects_after_the_csms_drops_it(csms: FakeCsms, sim: SimulatedCharger) -> None:
    old = csms.session()
    await old._connection.close()
    await asyncio.sleep(0.05)
    assert not sim.connected
    await sim.wait_online(timeout=4)
    assert csms.session() is not old
    assert len(csms.of("BootNotification")) == 1  # resumed, no new boot
    await sim.start_transaction(1, "TAG-1")
    assert len(csms.of("StartTransaction")) == 1


# Other CSMS-initiated operations


async def test_get_and_change_configuration(csms: FakeCsms, make_sim: MakeSim) -> None:
    sim = make_sim(connectors=2, password="hunter2")
    await sim.start()
    session = csms.session()

    reply = await session.call(call.GetConfiguration(key=["heartbeatinterval", "NoSuchKey"]))
    assert reply.configuration_key == [
        {"key": "HeartbeatInterval", "readonly": False, "value": "300"}
    ]
    assert reply.unknown_key == ["NoSuchKey"]

    everything = {
        k["key"]: k for k in (await session.call(call.GetConfiguration())).configuration_key
    }
    assert everything["NumberOfConnectors"] == {
        "key": "NumberOfConnectors",
        "readonly": True,
        "value": "2",
    }
    assert everything["MeterValueSampleInterval"]["value"] == "60"
    assert "value" not in everything["AuthorizationKey"]  # write-only

    async def change(key: str, value: str) -> str:
        return (await session.call(call.ChangeConfiguration(key=key, value=value))).status

    assert await change("NumberOfConnectors", "4") == "Rejected"
    assert await change("NoSuchKey", "1") == "NotSupported"
    assert await change("MeterValueSampleInterval", "soon") == "Rejected"
    assert (
        await change("MeterValuesSampledData", "Energy.Active.Import.Register,Voltage")
        == "Rejected"
    )
    assert await change("MeterValuesSampledData", "Energy.Active.Import.Register") == "Accepted"
    assert await change("HeartbeatInterval", "1") == "Accepted"
    await csms.wait_for("Heartbeat", seconds=3)

    await sim.start_transaction(1, "TAG-1")
    await sim.send_meter_values(1)
    sample = csms.of("MeterValues")[-1]["meter_value"][0]
    assert [v["measurand"] for v in sample["sampled_value"]] == ["Energy.Active.Import.Register"]
    assert [action for action, _ in sim.received_calls].count("ChangeConfiguration") == 6


async def test_new_authorization_key_is_used_and_never_logged(
    csms: FakeCsms, make_sim: MakeSim, caplog: pytest.LogCaptureFixture
) -> None:
    sim = make_sim(password="old-password")
    await sim.start()
    caplog.set_level("INFO")
    change = call.ChangeConfiguration(key="AuthorizationKey", value="new-secret-123")
    assert (await csms.session().call(change)).status == "Accepted"
    await sim.go_offline(0)
    await sim.wait_online(timeout=3)
    expected = base64.b64encode(b"CP-1:new-secret-123").decode()
    assert csms.requests[-1].headers["Authorization"] == f"Basic {expected}"
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("simulators")]
    assert any("AuthorizationKey" in message for message in ours)
    assert not any("new-secret-123" in message for message in ours)


async def test_trigger_message(csms: FakeCsms, sim: SimulatedCharger) -> None:
    session = csms.session()
    before = len(csms.of("StatusNotification"))
    reply = await session.call(
        call.TriggerMessage(requested_message="StatusNotification", connector_id=2)
    )
    assert reply.status == "Accepted"
    statuses = await csms.wait_for("StatusNotification", count=before + 1)
    assert (statuses[-1]["connector_id"], statuses[-1]["status"]) == (2, "Available")

    await sim.start_transaction(1, "TAG-1")
    assert (
        await session.call(call.TriggerMessage(requested_message="MeterValues", connector_id=1))
    ).status == "Accepted"
    (values,) = await csms.wait_for("MeterValues")
    assert values["transaction_id"] == 101
    assert {v["context"] for v in values["meter_value"][0]["sampled_value"]} == {"Trigger"}

    for message, action in [
        ("Heartbeat", "Heartbeat"),
        ("BootNotification", "BootNotification"),
        ("DiagnosticsStatusNotification", "DiagnosticsStatusNotification"),
        ("FirmwareStatusNotification", "FirmwareStatusNotification"),
    ]:
        before = len(csms.of(action))
        assert (
            await session.call(call.TriggerMessage(requested_message=message))
        ).status == "Accepted"
        await csms.wait_for(action, count=before + 1)
    assert csms.of("DiagnosticsStatusNotification")[-1]["status"] == "Idle"
    assert (
        await session.call(call.TriggerMessage(requested_message="Heartbeat", connector_id=7))
    ).status == "Rejected"


async def test_reset_reboots_and_boots_again(csms: FakeCsms, sim: SimulatedCharger) -> None:
    transaction_id = await sim.start_transaction(1, "TAG-1")
    assert (await csms.session().call(call.Reset(type="Soft"))).status == "Accepted"
    (stop,) = await csms.wait_for("StopTransaction")
    assert (stop["transaction_id"], stop["reason"]) == (transaction_id, "SoftReset")
    await csms.wait_for("BootNotification", count=2, seconds=4)
    await sim.wait_online(timeout=4)
    assert sim.booted and sim.connected
    after_boot = csms.actions()[csms.actions().index("BootNotification", 1) :]
    assert after_boot[:4] == ["BootNotification"] + ["StatusNotification"] * 3
    # The cable is still in after the reset.
    assert sim.connector(1).status == "Finishing"


async def test_reservation(csms: FakeCsms, sim: SimulatedCharger) -> None:
    session = csms.session()
    expiry = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    reserve = call.ReserveNow(connector_id=1, expiry_date=expiry, id_tag="VIP", reservation_id=7)
    assert (await session.call(reserve)).status == "Accepted"
    await sim.wait_for_status(1, "Reserved")
    other = call.ReserveNow(connector_id=1, expiry_date=expiry, id_tag="X", reservation_id=8)
    assert (await session.call(other)).status == "Occupied"
    assert (await session.call(call.CancelReservation(reservation_id=99))).status == "Rejected"

    with pytest.raises(SimulatorError):
        await sim.start_transaction(1, "SOMEONE-ELSE")
    await sim.start_transaction(1, "VIP")
    assert csms.of("StartTransaction")[0]["reservation_id"] == 7

    reserve_2 = call.ReserveNow(connector_id=2, expiry_date=expiry, id_tag="VIP", reservation_id=9)
    assert (await session.call(reserve_2)).status == "Accepted"
    assert (await session.call(call.CancelReservation(reservation_id=9))).status == "Accepted"
    await sim.wait_for_status(2, "Available")


async def test_reservation_expires(csms: FakeCsms, sim: SimulatedCharger) -> None:
    expiry = (datetime.now(UTC) + timedelta(seconds=0.2)).isoformat()
    reserve = call.ReserveNow(connector_id=2, expiry_date=expiry, id_tag="VIP", reservation_id=1)
    assert (await csms.session().call(reserve)).status == "Accepted"
    await sim.wait_for_status(2, "Reserved")
    await sim.wait_for_status(2, "Available", timeout=2)


async def test_change_availability(csms: FakeCsms, sim: SimulatedCharger) -> None:
    session = csms.session()
    assert (
        await session.call(call.ChangeAvailability(connector_id=2, type="Inoperative"))
    ).status == "Accepted"
    await sim.wait_for_status(2, "Unavailable")
    assert (
        await session.call(call.RemoteStartTransaction(id_tag="A", connector_id=2))
    ).status == "Rejected"
    with pytest.raises(SimulatorError):
        await sim.start_transaction(2, "TAG-1")

    await sim.start_transaction(1, "TAG-1")
    assert (
        await session.call(call.ChangeAvailability(connector_id=1, type="Inoperative"))
    ).status == "Scheduled"
    assert sim.connector(1).status == "Charging"
    await sim.stop_transaction(1)
    assert sim.connector(1).status == "Unavailable"

    assert (
        await session.call(call.ChangeAvailability(connector_id=0, type="Operative"))
    ).status == "Accepted"
    await sim.wait_for_status(2, "Available")
    await sim.wait_for_status(1, "Finishing")


async def test_diagnostics_and_firmware_update(csms: FakeCsms, sim: SimulatedCharger) -> None:
    session = csms.session()
    reply = await session.call(call.GetDiagnostics(location="ftp://127.0.0.1/diag"))
    assert reply.file_name.startswith("CP-1-") and reply.file_name.endswith(".log")
    uploads = await csms.wait_for("DiagnosticsStatusNotification", count=2)
    assert [u["status"] for u in uploads] == ["Uploading", "Uploaded"]

    await session.call(
        call.UpdateFirmware(location="https://127.0.0.1/fw.bin", retrieve_date=_now())
    )
    steps = await csms.wait_for("FirmwareStatusNotification", count=4, seconds=3)
    assert [s["status"] for s in steps] == ["Downloading", "Downloaded", "Installing", "Installed"]


async def test_remaining_operations(csms: FakeCsms, sim: SimulatedCharger) -> None:
    session = csms.session()
    assert (await session.call(call.ClearCache())).status == "Accepted"
    assert (await session.call(call.DataTransfer(vendor_id="acme"))).status == "UnknownVendorId"

    assert (await session.call(call.GetLocalListVersion())).list_version == 0
    full = call.SendLocalList(
        list_version=3,
        update_type="Full",
        local_authorization_list=[{"idTag": "LOCAL", "idTagInfo": {"status": "Blocked"}}],
    )
    assert (await session.call(full)).status == "Accepted"
    assert (await session.call(call.GetLocalListVersion())).list_version == 3
    stale = call.SendLocalList(list_version=2, update_type="Differential")
    assert (await session.call(stale)).status == "VersionMismatch"
    # Offline, the local list decides.
    await sim.go_offline()
    with pytest.raises(AuthorizationRejected):
        await sim.start_transaction(1, "LOCAL")
    await sim.reconnect()
    session = csms.session()

    profile = {
        "chargingProfileId": 5,
        "stackLevel": 1,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
        },
    }
    assert (
        await session.call(call.SetChargingProfile(connector_id=1, cs_charging_profiles=profile))
    ).status == "Accepted"
    tx_profile = {**profile, "chargingProfileId": 6, "chargingProfilePurpose": "TxProfile"}
    assert (
        await session.call(call.SetChargingProfile(connector_id=2, cs_charging_profiles=tx_profile))
    ).status == "Rejected"
    schedule = await session.call(
        call.GetCompositeSchedule(connector_id=1, duration=600, charging_rate_unit="W")
    )
    assert schedule.status == "Accepted"
    assert schedule.charging_schedule["charging_schedule_period"] == [
        {"start_period": 0, "limit": 11040.0}
    ]
    assert (await session.call(call.ClearChargingProfile(id=5))).status == "Accepted"
    assert (await session.call(call.ClearChargingProfile(id=5))).status == "Unknown"

    await sim.start_transaction(2, "TAG-1")
    assert (await session.call(call.UnlockConnector(connector_id=2))).status == "Unlocked"
    (stop,) = await csms.wait_for("StopTransaction")
    assert stop["reason"] == "UnlockCommand"
    assert (await session.call(call.UnlockConnector(connector_id=5))).status == "NotSupported"


async def test_wait_for_call_consumes_in_order(csms: FakeCsms, sim: SimulatedCharger) -> None:
    for vendor in ("a", "b"):
        await csms.session().call(call.DataTransfer(vendor_id=vendor))
    assert (await sim.wait_for_call("DataTransfer"))["vendorId"] == "a"
    assert (await sim.wait_for_call("DataTransfer"))["vendorId"] == "b"
    with pytest.raises(TimeoutError):
        await sim.wait_for_call("DataTransfer", timeout=0.05)


# Fleet and command line


async def test_fleet_plays_the_scenario(csms: FakeCsms) -> None:
    chargers = [
        SimulatedCharger(url=csms.url, charge_point_id=cp, speed=3600, meter_interval=60)
        for cp in fleet_ids("FLEET", 2)
    ]
    stop = asyncio.Event()
    scenario = Scenario(start_after=0, id_tag="TAG-F", stop_after=0.05)
    fleet = asyncio.create_task(run_fleet(chargers, scenario, stop))
    for cp in ("FLEET-1", "FLEET-2"):
        (stopped,) = await csms.wait_for("StopTransaction", charge_point_id=cp)
        assert stopped["meter_stop"] > 0
        await csms.wait_for("StatusNotification", count=6, charge_point_id=cp)
    stop.set()
    assert await fleet == 0
    assert [c.connected for c in chargers] == [False, False]
    assert csms.statuses(1, "FLEET-1") == [
        "Available",
        "Preparing",
        "Charging",
        "Finishing",
        "Available",
    ]


def test_command_line() -> None:
    args = parse_args(
        ["--url", "ws://127.0.0.1:9/ocpp", "--id", "CP", "--count", "3", "--energy-unit", "kWh"]
    )
    assert (args.count, args.connectors, args.energy_unit, args.power_kw) == (3, 1, "kWh", 11.0)
    assert fleet_ids("CP", 3) == ["CP-1", "CP-2", "CP-3"] and fleet_ids("CP", 1) == ["CP"]
    with pytest.raises(SystemExit):
        parse_args(["--url", "ws://x", "--id", "CP", "--count", "0"])


def test_outbox_maps_provisional_ids() -> None:
    outbox = Outbox()
    provisional = outbox.provisional_id()
    stop = call.StopTransaction(meter_stop=5, timestamp=_now(), transaction_id=provisional)
    assert outbox.resolve(stop) is None  # its start never reached the CSMS
    outbox.assign(provisional, 42)
    assert outbox.resolve(stop) == call.StopTransaction(
        meter_stop=5, timestamp=stop.timestamp, transaction_id=42
    )
    assert outbox.provisional_id() != provisional
