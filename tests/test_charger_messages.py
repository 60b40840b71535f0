"""Every charger -> central system message of OCPP 1.6 against the real server over 127.0.0.1."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from csms.app import CentralSystem
from tests.conftest import MakeConfig, ocpp_url
from tests.ocpp_client import RawCharger

BOOT = {
    "chargePointVendor": "Acme",
    "chargePointModel": "Volt-22",
    "chargePointSerialNumber": "SN-1",
    "chargeBoxSerialNumber": "BOX-1",
    "firmwareVersion": "4.2.0",
    "iccid": "8944500000000000000",
    "imsi": "234150000000000",
    "meterType": "DZG",
    "meterSerialNumber": "M-77",
}


def _start(
    id_tag: str = "TAG-1", connector: int = 1, meter: int = 1000, at: str = "2026-01-01T10:00:00Z"
) -> dict:
    return {"connectorId": connector, "idTag": id_tag, "meterStart": meter, "timestamp": at}


async def test_boot_notification_is_stored_and_accepted(csms: CentralSystem) -> None:
    async with RawCharger.connect(ocpp_url(csms), "CP-1") as charger:
        reply = await charger.call("BootNotification", BOOT)
    assert reply["status"] == "Accepted"
    assert reply["interval"] == csms.config.ocpp.heartbeat_interval
    datetime.fromisoformat(reply["currentTime"])
    row = await csms.chargers.get("CP-1")
    assert row is not None
    assert (row["vendor"], row["model"], row["serial_number"]) == ("Acme", "Volt-22", "SN-1")
    assert (row["charge_box_serial_number"], row["firmware_version"]) == ("BOX-1", "4.2.0")
    assert (row["iccid"], row["imsi"]) == ("8944500000000000000", "234150000000000")
    assert (row["meter_type"], row["meter_serial_number"]) == ("DZG", "M-77")
    assert row["last_boot_at"] is not None


@pytest.mark.parametrize("registration", ["Pending", "Rejected"])
async def test_boot_reply_follows_registration_status(
    csms: CentralSystem, registration: str
) -> None:
    await csms.chargers.register("CP-9", registration_status=registration)
    async with RawCharger.connect(ocpp_url(csms), "CP-9") as charger:
        reply = await charger.call("BootNotification", BOOT)
    assert reply["status"] == registration
    assert reply["interval"] == csms.config.ocpp.boot_retry_interval


async def test_heartbeat_updates_last_seen(csms: CentralSystem, charger: RawCharger) -> None:
    await csms.db.execute("UPDATE chargers SET last_seen_at = '2000-01-01T00:00:00.000Z'")
    reply = await charger.call("Heartbeat", {})
    assert datetime.fromisoformat(reply["currentTime"]) > datetime.now(UTC) - timedelta(minutes=1)
    row = await csms.chargers.get("CP-1")
    assert row is not None and row["last_seen_at"] > "2026"


async def test_status_notification_for_every_connector_with_history(
    csms: CentralSystem, charger: RawCharger
) -> None:
    for connector in (0, 1, 2):
        await charger.call(
            "StatusNotification",
            {
                "connectorId": connector,
                "errorCode": "NoError",
                "status": "Available",
                "timestamp": "2026-01-01T10:00:00Z",
            },
        )
    await charger.call(
        "StatusNotification",
        {
            "connectorId": 2,
            "errorCode": "GroundFailure",
            "status": "Faulted",
            "info": "RCD tripped",
            "vendorId": "Acme",
            "vendorErrorCode": "E42",
            "timestamp": "2026-01-01T10:05:00Z",
        },
    )
    # A status queued while offline arrives late: the history keeps it, the current one stays.
    await charger.call(
        "StatusNotification",
        {
            "connectorId": 2,
            "errorCode": "NoError",
            "status": "Preparing",
            "timestamp": "2026-01-01T10:01:00Z",
        },
    )
    connectors = await csms.chargers.connectors("CP-1")
    assert [(c.connector_id, c.status) for c in connectors] == [
        (0, "Available"),
        (1, "Available"),
        (2, "Faulted"),
    ]
    faulted = connectors[2]
    assert (faulted.error_code, faulted.info, faulted.vendor_id, faulted.vendor_error_code) == (
        "GroundFailure",
        "RCD tripped",
        "Acme",
        "E42",
    )
    history = await csms.chargers.status_history("CP-1", 2)
    assert [h["status"] for h in history] == ["Available", "Faulted", "Preparing"]


async def test_authorize(csms: CentralSystem, charger: RawCharger) -> None:
    await csms.id_tags.put("GOOD", parent_id_tag="FLEET", expiry_date="2099-01-01T00:00:00.000Z")
    await csms.id_tags.put("LOST", blocked=True)
    await csms.id_tags.put("OLD", expiry_date="2020-01-01T00:00:00.000Z")
    answers = {
        tag: (await charger.call("Authorize", {"idTag": tag}))["idTagInfo"]
        for tag in ("GOOD", "LOST", "OLD", "NOBODY")
    }
    assert answers["GOOD"] == {
        "status": "Accepted",
        "parentIdTag": "FLEET",
        "expiryDate": "2099-01-01T00:00:00.000Z",
    }
    assert answers["LOST"]["status"] == "Blocked"
    assert answers["OLD"]["status"] == "Expired"
    assert answers["NOBODY"] == {"status": "Invalid"}


async def test_start_transaction_assigns_ids_and_deduplicates(
    csms: CentralSystem, charger: RawCharger
) -> None:
    await csms.id_tags.put("TAG-1")
    first = await charger.call("StartTransaction", _start())
    again = await charger.call("StartTransaction", _start())
    other = await charger.call("StartTransaction", _start("NOBODY", connector=2))
    assert isinstance(first["transactionId"], int)
    assert first == again
    assert first["idTagInfo"]["status"] == "Accepted"
    assert other["transactionId"] != first["transactionId"]
    assert other["idTagInfo"]["status"] == "Invalid"
    row = await csms.transactions.get(first["transactionId"])
    assert row is not None
    assert (row["charger_id"], row["connector_id"], row["meter_start_wh"]) == ("CP-1", 1, 1000)
    assert row["started_at"] == "2026-01-01T10:00:00.000Z"


async def test_concurrent_transaction_for_one_tag(csms: CentralSystem, charger: RawCharger) -> None:
    await csms.id_tags.put("TAG-1")
    await charger.call("StartTransaction", _start())
    second = await charger.call("StartTransaction", _start(connector=2, at="2026-01-01T10:01:00Z"))
    assert second["idTagInfo"]["status"] == "ConcurrentTx"


async def test_concurrent_transactions_allowed_when_configured(make_config: MakeConfig) -> None:
    async with CentralSystem(make_config(ocpp={"reject_concurrent_tx": False})) as system:
        await system.id_tags.put("TAG-1")
        async with RawCharger.connect(ocpp_url(system), "CP-1") as charger:
            await charger.call("StartTransaction", _start())
            second = await charger.call(
                "StartTransaction", _start(connector=2, at="2026-01-01T10:01:00Z")
            )
    assert second["idTagInfo"]["status"] == "Accepted"


def _meter(
    transaction_id: int | None, at: str, energy: str, unit: str = "Wh", power: str = "7000"
) -> dict:
    payload: dict = {
        "connectorId": 1,
        "meterValue": [
            {
                "timestamp": at,
                "sampledValue": [
                    {
                        "value": energy,
                        "unit": unit,
                        "measurand": "Energy.Active.Import.Register",
                        "context": "Sample.Periodic",
                        "location": "Outlet",
                    },
                    {"value": power, "unit": "W", "measurand": "Power.Active.Import"},
                    {"value": "10.1", "unit": "A", "measurand": "Current.Import", "phase": "L1"},
                    {"value": "55", "unit": "Percent", "measurand": "SoC", "location": "EV"},
                ],
            }
        ],
    }
    if transaction_id is not None:
        payload["transactionId"] = transaction_id
    return payload


async def test_meter_values_are_stored_and_normalised(
    csms: CentralSystem, charger: RawCharger
) -> None:
    await csms.id_tags.put("TAG-1")
    tx = (await charger.call("StartTransaction", _start(meter=1000)))["transactionId"]
    await charger.call("MeterValues", _meter(tx, "2026-01-01T10:01:00Z", "1500"))
    await charger.call(
        "MeterValues", _meter(tx, "2026-01-01T10:02:00Z", "2.25", unit="kWh", power="7200")
    )
    # Older sample, delivered late: stored, but the transaction's current energy stays.
    await charger.call("MeterValues", _meter(tx, "2026-01-01T10:00:30Z", "1200"))
    row = await csms.transactions.get(tx)
    assert row is not None
    assert (row["energy_wh"], row["power_w"], row["metered_at"]) == (
        2250,
        7200,
        "2026-01-01T10:02:00.000Z",
    )
    values = await csms.transactions.meter_values(tx)
    assert len(values) == 12
    energy = [
        (v["value"], v["unit"], v["normalised"])
        for v in values
        if v["measurand"].startswith("Energy")
    ]
    assert energy == [("1200", "Wh", 1200), ("1500", "Wh", 1500), ("2.25", "kWh", 2250)]
    soc = next(v for v in values if v["measurand"] == "SoC")
    assert (soc["location"], soc["unit"], soc["value"]) == ("EV", "Percent", "55")
    current = next(v for v in values if v["measurand"] == "Current.Import")
    assert (current["phase"], current["context"]) == ("L1", "Sample.Periodic")


async def test_meter_values_outside_a_transaction_or_for_a_foreign_one(
    csms: CentralSystem, charger: RawCharger
) -> None:
    await charger.call("MeterValues", _meter(None, "2026-01-01T10:01:00Z", "1500"))
    await charger.call("MeterValues", _meter(99999, "2026-01-01T10:01:00Z", "1600"))
    rows = await csms.db.fetchall(
        "SELECT transaction_id, value FROM meter_values WHERE measurand LIKE 'Energy%'"
    )
    assert [(r["transaction_id"], r["value"]) for r in rows] == [(None, "1500"), (None, "1600")]


async def test_stop_transaction_duplicate_and_late(
    csms: CentralSystem, charger: RawCharger
) -> None:
    await csms.id_tags.put("TAG-1")
    tx = (await charger.call("StartTransaction", _start(meter=1000)))["transactionId"]
    stop = {
        "transactionId": tx,
        "meterStop": 8500,
        "timestamp": "2026-01-01T11:00:00Z",
        "reason": "EVDisconnected",
        "idTag": "TAG-1",
        "transactionData": [
            {
                "timestamp": "2026-01-01T10:00:00Z",
                "sampledValue": [{"value": "1000", "context": "Transaction.Begin"}],
            },
            {
                "timestamp": "2026-01-01T11:00:00Z",
                "sampledValue": [{"value": "8.5", "unit": "kWh", "context": "Transaction.End"}],
            },
        ],
    }
    first = await charger.call("StopTransaction", stop)
    again = await charger.call("StopTransaction", {**stop, "meterStop": 9999})
    assert first == again == {"idTagInfo": {"status": "Accepted"}}
    row = await csms.transactions.get(tx)
    assert row is not None
    assert (row["meter_stop_wh"], row["energy_wh"], row["stop_reason"], row["stop_id_tag"]) == (
        8500,
        8500,
        "EVDisconnected",
        "TAG-1",
    )
    assert row["stopped_at"] == "2026-01-01T11:00:00.000Z"
    contexts = [(v["context"], v["normalised"]) for v in await csms.transactions.meter_values(tx)]
    assert contexts == [("Transaction.Begin", 1000), ("Transaction.End", 8500)]


async def test_stop_transaction_hours_late_after_reconnection(csms: CentralSystem) -> None:
    await csms.id_tags.put("TAG-1")
    async with RawCharger.connect(ocpp_url(csms), "CP-1") as charger:
        tx = (await charger.call("StartTransaction", _start(at="2026-01-01T10:00:00Z")))[
            "transactionId"
        ]
    # Offline for hours; on reconnection the queued messages arrive in order.
    async with RawCharger.connect(ocpp_url(csms), "CP-1") as charger:
        await charger.call("MeterValues", _meter(tx, "2026-01-01T12:00:00Z", "30000"))
        reply = await charger.call(
            "StopTransaction",
            {
                "transactionId": tx,
                "meterStop": 41000,
                "timestamp": "2026-01-01T14:00:00Z",
                "reason": "PowerLoss",
            },
        )
    assert reply == {}
    row = await csms.transactions.get(tx)
    assert row is not None
    assert (row["meter_stop_wh"], row["stopped_at"], row["stop_reason"]) == (
        41000,
        "2026-01-01T14:00:00.000Z",
        "PowerLoss",
    )


async def test_stop_for_unknown_transaction_is_answered(
    csms: CentralSystem, charger: RawCharger
) -> None:
    reply = await charger.call(
        "StopTransaction",
        {"transactionId": 4242, "meterStop": 1, "timestamp": "2026-01-01T10:00:00Z", "idTag": "X"},
    )
    assert reply == {"idTagInfo": {"status": "Invalid"}}
    assert await csms.transactions.get(4242) is None


async def test_another_chargers_transaction_cannot_be_stopped(csms: CentralSystem) -> None:
    await csms.id_tags.put("TAG-1")
    async with RawCharger.connect(ocpp_url(csms), "CP-1") as owner:
        tx = (await owner.call("StartTransaction", _start()))["transactionId"]
    async with RawCharger.connect(ocpp_url(csms), "CP-2") as intruder:
        await intruder.call(
            "StopTransaction",
            {"transactionId": tx, "meterStop": 5, "timestamp": "2026-01-01T10:00:00Z"},
        )
    row = await csms.transactions.get(tx)
    assert row is not None and row["stopped_at"] is None


async def test_data_transfer_unknown_vendor(csms: CentralSystem, charger: RawCharger) -> None:
    reply = await charger.call(
        "DataTransfer", {"vendorId": "com.acme", "messageId": "Hello", "data": "x"}
    )
    assert reply == {"status": "UnknownVendorId"}
    row = await csms.db.fetchone("SELECT * FROM data_transfers")
    assert row is not None
    assert (row["charger_id"], row["vendor_id"], row["message_id"], row["data"], row["status"]) == (
        "CP-1",
        "com.acme",
        "Hello",
        "x",
        "UnknownVendorId",
    )


async def test_data_transfer_to_a_registered_vendor_handler(make_config: MakeConfig) -> None:
    seen = []

    async def acme(charger_id: str, request: dict) -> dict:
        seen.append((charger_id, request["data"]))
        return {"status": "Accepted", "data": "pong"}

    system = CentralSystem(make_config(), vendor_handlers={"com.acme": acme})
    async with system, RawCharger.connect(ocpp_url(system), "CP-1") as charger:
        reply = await charger.call("DataTransfer", {"vendorId": "com.acme", "data": "ping"})
        other = await charger.call("DataTransfer", {"vendorId": "org.other"})
    assert reply == {"status": "Accepted", "data": "pong"}
    assert other == {"status": "UnknownVendorId"}
    assert seen == [("CP-1", "ping")]


async def test_diagnostics_and_firmware_status(csms: CentralSystem, charger: RawCharger) -> None:
    assert await charger.call("DiagnosticsStatusNotification", {"status": "Uploaded"}) == {}
    assert await charger.call("FirmwareStatusNotification", {"status": "Installed"}) == {}
    row = await csms.chargers.get("CP-1")
    assert row is not None
    assert (row["diagnostics_status"], row["firmware_status"]) == ("Uploaded", "Installed")
