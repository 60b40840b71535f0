"""An id tag is never locked out by transactions that can no longer be running, and a
refused start that the charger keeps running is stopped remotely."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from csms.app import CentralSystem
from csms.ocpp16.commands import Answered, CommandResult, Offline
from csms.ocpp16.metering import Reading
from csms.ocpp16.refused import RefusedTransactions
from tests.conftest import MakeConfig, ocpp_url
from tests.ocpp_client import RawCharger

BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}
TAG = "TAG-T"


def _start(at: str, connector: int = 1, tag: str = TAG) -> dict[str, Any]:
    return {"connectorId": connector, "idTag": tag, "meterStart": 100, "timestamp": at}


def _stop(transaction_id: int, at: str) -> dict[str, Any]:
    return {"transactionId": transaction_id, "meterStop": 900, "timestamp": at}


def _status(connector: int, status: str, at: str) -> dict[str, Any]:
    return {"connectorId": connector, "errorCode": "NoError", "status": status, "timestamp": at}


def _meter(transaction_id: int, at: str) -> dict[str, Any]:
    return {
        "connectorId": 1,
        "transactionId": transaction_id,
        "meterValue": [{"timestamp": at, "sampledValue": [{"value": "150"}]}],
    }


@pytest.fixture
async def pair(csms: CentralSystem) -> AsyncIterator[tuple[RawCharger, RawCharger]]:
    """Chargers CP-A and CP-B, booted, and the tag TAG-T known."""
    await csms.id_tags.put(TAG)
    async with (
        RawCharger.connect(ocpp_url(csms), "CP-A") as a,
        RawCharger.connect(ocpp_url(csms), "CP-B") as b,
    ):
        await a.call("BootNotification", BOOT)
        await b.call("BootNotification", BOOT)
        yield a, b


async def _status_of(charger: RawCharger, payload: dict[str, Any]) -> str:
    return (await charger.call("StartTransaction", payload))["idTagInfo"]["status"]


async def test_a_running_transaction_still_locks_its_tag(
    pair: tuple[RawCharger, RawCharger],
) -> None:
    a, b = pair
    assert await _status_of(a, _start("2026-03-01T10:00:00Z")) == "Accepted"
    assert await _status_of(b, _start("2026-03-01T10:01:00Z")) == "ConcurrentTx"


async def test_a_refused_start_never_locks_the_tag(
    csms: CentralSystem, pair: tuple[RawCharger, RawCharger]
) -> None:
    a, b = pair
    first = await a.call("StartTransaction", _start("2026-03-01T10:00:00Z"))
    assert await _status_of(b, _start("2026-03-01T10:01:00Z")) == "ConcurrentTx"
    await a.call("StopTransaction", _stop(first["transactionId"], "2026-03-01T10:30:00Z"))
    # B's refused start is still without a StopTransaction: it must not count.
    assert await _status_of(a, _start("2026-03-01T10:31:00Z")) == "Accepted"
    assert (await a.call("Authorize", {"idTag": TAG}))["idTagInfo"]["status"] == "Accepted"
    assert len(await csms.transactions.open_on("CP-B", 1)) == 1  # stored all the same


async def test_a_boot_ends_what_the_charger_was_running(
    csms: CentralSystem, pair: tuple[RawCharger, RawCharger]
) -> None:
    a, b = pair
    first = await a.call("StartTransaction", _start("2026-03-01T10:00:00Z"))
    await a.call("BootNotification", BOOT)
    assert await _status_of(b, _start("2026-03-01T10:05:00Z")) == "Accepted"
    # The lapsed transaction is still A's open record, and its StopTransaction still counts.
    row = await csms.transactions.get(first["transactionId"])
    assert row is not None and row["stopped_at"] is None and row["lapsed_at"] is not None
    await a.call("StopTransaction", _stop(first["transactionId"], "2026-03-01T10:02:00Z"))
    row = await csms.transactions.get(first["transactionId"])
    assert row is not None and row["meter_stop_wh"] == 900


async def test_another_chargers_boot_ends_nothing(pair: tuple[RawCharger, RawCharger]) -> None:
    a, b = pair
    await a.call("StartTransaction", _start("2026-03-01T10:00:00Z"))
    await b.call("BootNotification", BOOT)
    assert await _status_of(b, _start("2026-03-01T10:05:00Z")) == "ConcurrentTx"


async def test_an_available_connector_ends_what_ran_on_it(
    pair: tuple[RawCharger, RawCharger],
) -> None:
    a, b = pair
    await a.call("StartTransaction", _start("2026-03-01T10:00:00Z"))
    await a.call("StatusNotification", _status(1, "Available", "2026-03-01T10:20:00Z"))
    assert await _status_of(b, _start("2026-03-01T10:21:00Z")) == "Accepted"


@pytest.mark.parametrize(
    ("connector", "status", "at"),
    [
        (0, "Available", "2026-03-01T10:20:00Z"),  # the charger itself, not the connector
        (2, "Available", "2026-03-01T10:20:00Z"),  # another connector
        (1, "Charging", "2026-03-01T10:20:00Z"),
        (1, "Available", "2026-03-01T09:59:00Z"),  # a status from before the start, sent late
    ],
)
async def test_other_statuses_end_nothing(
    pair: tuple[RawCharger, RawCharger], connector: int, status: str, at: str
) -> None:
    a, b = pair
    await a.call("StartTransaction", _start("2026-03-01T10:00:00Z"))
    await a.call("StatusNotification", _status(connector, status, at))
    assert await _status_of(b, _start("2026-03-01T10:21:00Z")) == "ConcurrentTx"


async def test_meter_values_are_linked_with_whether_their_start_was_refused(
    csms: CentralSystem, pair: tuple[RawCharger, RawCharger]
) -> None:
    a, b = pair
    accepted = (await a.call("StartTransaction", _start("2026-03-01T10:00:00Z")))["transactionId"]
    refused = (await b.call("StartTransaction", _start("2026-03-01T10:01:00Z")))["transactionId"]
    reading = Reading(None, None, None)
    linked = await csms.transactions.record_meter_values("CP-A", 1, accepted, [], reading)
    assert linked is not None and not linked.refused
    linked = await csms.transactions.record_meter_values("CP-B", 1, refused, [], reading)
    assert linked is not None and linked.refused
    await b.call("StopTransaction", _stop(refused, "2026-03-01T10:02:00Z"))
    linked = await csms.transactions.record_meter_values("CP-B", 1, refused, [], reading)
    assert linked is not None and not linked.refused  # stopped: nothing left to stop


async def test_a_refused_transaction_kept_running_is_stopped_remotely(
    make_config: MakeConfig,
) -> None:
    # A handler that waited for the charger's answer would answer the MeterValues only
    # after this timeout, well beyond the bound on reading the two frames below.
    async with (
        CentralSystem(make_config(ocpp={"call_timeout": 60.0})) as system,
        RawCharger.connect(ocpp_url(system), "CP-A") as a,
        RawCharger.connect(ocpp_url(system), "CP-B") as b,
    ):
        await system.id_tags.put(TAG)
        await a.call("StartTransaction", _start("2026-03-01T10:00:00Z"))
        started = await b.call("StartTransaction", _start("2026-03-01T10:01:00Z"))
        refused = started["transactionId"]
        await b.send([2, "mv", "MeterValues", _meter(refused, "2026-03-01T10:02:00Z")])
        # The answer and the central system's CALL, in whichever order they come, before
        # the charger answers the CALL (bounded, so that a CALL that never comes, or an
        # answer that waits for the charger, fails the test instead of hanging it).
        async with asyncio.timeout(10):
            frames = [await b.receive(), await b.receive()]
        answer = next(f for f in frames if f[0] == 3)
        call = next(f for f in frames if f[0] == 2)
        assert answer == [3, "mv", {}]
        assert call[2:] == ["RemoteStopTransaction", {"transactionId": refused}]
        await b.send([3, call[1], {"status": "Accepted"}])
        await system.refused.drain()
        await b.call("StopTransaction", _stop(refused, "2026-03-01T10:03:00Z"))


async def test_a_refused_transaction_that_ran_is_logged_when_it_stops(
    csms: CentralSystem, pair: tuple[RawCharger, RawCharger], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    a, b = pair
    first = (await a.call("StartTransaction", _start("2026-03-01T10:00:00Z")))["transactionId"]
    refused = (await b.call("StartTransaction", _start("2026-03-01T10:01:00Z")))["transactionId"]
    await a.call("StopTransaction", _stop(first, "2026-03-01T10:30:00Z"))  # accepted: no warning
    await b.call("StopTransaction", _stop(refused, "2026-03-01T10:31:00Z"))  # 100 -> 900 Wh
    events = [r.msg for r in caplog.records if isinstance(r.msg, dict)]
    ran = [e for e in events if e.get("event") == "ocpp.refused_transaction_ran"]
    assert [(e["charge_point_id"], e["transaction_id"]) for e in ran] == [("CP-B", refused)]
    row = await csms.transactions.get(refused)
    assert row is not None and row["meter_stop_wh"] == 900  # stored as any other


class _Commands:
    def __init__(self, result: CommandResult) -> None:
        self.result = result
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    async def send(
        self, charge_point_id: str, action: str, payload: dict[str, Any]
    ) -> CommandResult:
        self.sent.append((charge_point_id, action, payload))
        return self.result


async def test_each_refused_transaction_is_asked_to_stop_once() -> None:
    commands = _Commands(Answered({"status": "Accepted"}))
    refused = RefusedTransactions(commands, enabled=True)
    refused.running("CP-B", 7)
    refused.running("CP-B", 7)
    await refused.drain()
    refused.running("CP-B", 7)
    refused.running("CP-C", 7)
    await refused.drain()
    assert commands.sent == [
        ("CP-B", "RemoteStopTransaction", {"transactionId": 7}),
        ("CP-C", "RemoteStopTransaction", {"transactionId": 7}),
    ]


async def test_a_charger_that_was_offline_is_asked_again() -> None:
    commands = _Commands(Offline())
    refused = RefusedTransactions(commands, enabled=True)
    refused.running("CP-B", 7)
    await refused.drain()
    refused.running("CP-B", 7)
    await refused.drain()
    assert len(commands.sent) == 2


async def test_stopping_refused_transactions_can_be_turned_off(make_config: MakeConfig) -> None:
    commands = _Commands(Answered({"status": "Accepted"}))
    refused = RefusedTransactions(commands, enabled=False)
    refused.running("CP-B", 7)
    await refused.drain()
    assert commands.sent == []
    async with CentralSystem(make_config(ocpp={"stop_refused_transactions": False})) as system:
        await system.id_tags.put(TAG)
        async with RawCharger.connect(ocpp_url(system), "CP-A") as a:
            await a.call("StartTransaction", _start("2026-03-01T10:00:00Z"))
            second = await a.call("StartTransaction", _start("2026-03-01T10:01:00Z", 2))
            assert second["idTagInfo"]["status"] == "ConcurrentTx"
            await a.call("MeterValues", _meter(second["transactionId"], "2026-03-01T10:02:00Z"))
            # A command under way would have been sent before drain returns, and so come
            # before the heartbeat's answer.
            await system.refused.drain()
            assert (await a.call_raw("Heartbeat", {}))[0] == 3
