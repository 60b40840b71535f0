"""Meter values as independent charger implementations send them: decimals kept exactly,
the units OCPP 1.6 gives a sample that names none, and a MeterValues sent again (its reply
lost) stored and billed once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from csms.app import CentralSystem
from csms.ocpp16.metering import decimal_text, latest_reading, normalise, parse_meter_values
from tests.conftest import API_HEADERS, MakeConfig, ocpp_url
from tests.ocpp_client import RawCharger
from tests.payflow import Driver
from tests.test_energy import E2E_TARIFF, Wire, _finish, _paid_session, stamp

AT = "2026-01-01T10:01:00Z"


def _sampled(value: str, measurand: str | None = None, **fields: str) -> dict[str, str]:
    return {"value": value, **({"measurand": measurand} if measurand else {}), **fields}


def _meter_values(transaction_id: int | None, *meter_value: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = {"connectorId": 1, "meterValue": list(meter_value)}
    if transaction_id is not None:
        payload["transactionId"] = transaction_id
    return payload


def _at(timestamp: str, *sampled: dict[str, str]) -> dict[str, Any]:
    return {"timestamp": timestamp, "sampledValue": list(sampled)}


async def _start(csms: CentralSystem, charger: RawCharger, meter_start: int = 1000) -> int:
    await csms.id_tags.put("TAG-1")
    started = await charger.call(
        "StartTransaction",
        {"connectorId": 1, "idTag": "TAG-1", "meterStart": meter_start, "timestamp": AT},
    )
    return started["transactionId"]


async def _api_meter_values(csms: CentralSystem, transaction_id: int) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{csms.http.port}/api/transactions/{transaction_id}"
    async with aiohttp.ClientSession() as http, http.get(url, headers=API_HEADERS) as response:
        assert response.status == 200
        return (await response.json())["meterValues"]


# --- precision


def test_normalised_values_keep_every_decimal() -> None:
    samples = parse_meter_values(
        [
            _at(
                AT,
                _sampled("15.6", "Current.Import", unit="A", phase="L1"),
                _sampled("0.4", "Current.Import", unit="A", phase="L2"),
                _sampled("0.0015", unit="kWh"),
                _sampled("7.45", "Power.Active.Import", unit="kW"),
                _sampled("230.25", "Voltage"),
            )
        ]
    )
    assert [s.normalised for s in samples] == [
        Decimal("15.6"),
        Decimal("0.4"),
        Decimal("1.5"),
        Decimal("7450"),
        Decimal("230.25"),
    ]
    # Billing still reads whole Wh and W, rounded half to even as before.
    reading = latest_reading(samples)
    assert (reading.energy_wh, reading.power_w) == (2, 7450)


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        ("12.3456", "kWh", "12345.6"),
        ("2", "kWh", "2000"),
        ("1E+3", "Wh", "1000"),
        ("15.60", "A", "15.60"),  # the charger's own precision, trailing zero included
        ("12345678901.2345", "kvarh", "12345678901234.5"),
        ("-0.5", "kW", "-500"),
    ],
)
def test_decimal_text_is_exact(value: str, unit: str, text: str) -> None:
    exact = normalise(value, unit)
    assert exact is not None and decimal_text(exact) == text


@pytest.mark.parametrize(
    "value",
    ["1E-999999999", "0E-999999999", "1E+999999999", "NaN", "x", "12345678901234567890.1"],
)
def test_numbers_no_meter_reads_have_no_normalised_value(value: str) -> None:
    """Nothing to write out in a million digits: such text is kept, not normalised."""
    assert normalise(value, "Wh") is None


async def test_the_api_shows_meter_values_exactly(csms: CentralSystem, charger: RawCharger) -> None:
    tx = await _start(csms, charger)
    sent = _at(
        "2026-01-01T10:02:00Z",
        _sampled("15.6", "Current.Import", unit="A"),
        _sampled("0.4", "Current.Offered", unit="A"),
        _sampled("0.0015", "Energy.Active.Import.Interval", unit="kWh"),
        _sampled("1.0015", unit="kWh"),
    )
    await charger.call("MeterValues", _meter_values(tx, sent))
    shown = {v["measurand"]: v for v in await _api_meter_values(csms, tx)}
    assert shown["Current.Import"]["normalised"] == "15.6"
    assert shown["Current.Offered"]["normalised"] == "0.4"
    assert shown["Energy.Active.Import.Interval"]["normalised"] == "1.5"
    assert shown["Energy.Active.Import.Register"]["normalised"] == "1001.5"
    assert shown["Energy.Active.Import.Register"]["value"] == "1.0015"
    # The transaction's energy stays whole Wh: 1001.5 rounds half to even.
    row = await csms.transactions.get(tx)
    assert row is not None and row["energy_wh"] == 1002


# --- default units


@pytest.mark.parametrize(
    ("measurand", "unit"),
    [
        ("Energy.Active.Import.Register", "Wh"),
        ("Energy.Active.Export.Register", "Wh"),
        ("Energy.Active.Import.Interval", "Wh"),
        ("Energy.Reactive.Import.Register", "varh"),
        ("Energy.Reactive.Export.Interval", "varh"),
        ("Power.Active.Import", "W"),
        ("Power.Offered", "W"),
        ("Power.Reactive.Export", "var"),
        ("Current.Import", "A"),
        ("Current.Offered", "A"),
        ("Voltage", "V"),
        ("Frequency", "Hz"),
        ("Temperature", "Celsius"),
        ("SoC", "Percent"),
        ("Power.Factor", None),
        ("RPM", "RPM"),
    ],
)
def test_a_sample_without_unit_takes_its_measurands(measurand: str, unit: str | None) -> None:
    (sample,) = parse_meter_values([_at(AT, _sampled("49.95", measurand))])
    assert sample.unit == unit
    assert sample.normalised == Decimal("49.95")


def test_a_unit_the_charger_names_is_kept() -> None:
    (sample,) = parse_meter_values([_at(AT, _sampled("300", "Temperature", unit="K"))])
    assert (sample.unit, sample.normalised) == ("K", 300)


async def test_frequency_without_unit_is_stored_in_hertz_not_wh(
    csms: CentralSystem, charger: RawCharger
) -> None:
    tx = await _start(csms, charger)
    sent = _at(
        "2026-01-01T10:02:00Z", _sampled("50.02", "Frequency"), _sampled("0.98", "Power.Factor")
    )
    await charger.call("MeterValues", _meter_values(tx, sent))
    shown = {v["measurand"]: v for v in await _api_meter_values(csms, tx)}
    assert (shown["Frequency"]["unit"], shown["Frequency"]["normalised"]) == ("Hz", "50.02")
    assert (shown["Power.Factor"]["unit"], shown["Power.Factor"]["normalised"]) == (None, "0.98")
    # Neither is energy: the transaction's register is still meterStart.
    row = await csms.transactions.get(tx)
    assert row is not None and row["energy_wh"] == 1000


async def test_a_unit_outside_ocpp_16_is_refused_and_nothing_is_stored(
    csms: CentralSystem, charger: RawCharger
) -> None:
    tx = await _start(csms, charger)
    sent = _at(
        "2026-01-01T10:02:00Z",
        _sampled("1500"),
        _sampled("50", "Frequency", unit="Hz"),  # the spec's unit, but no UnitOfMeasure of 1.6
    )
    reply = await charger.call_raw("MeterValues", _meter_values(tx, sent))
    assert reply[0] == 4 and reply[2] == "PropertyConstraintViolation", reply
    assert await csms.transactions.meter_values(tx) == []
    row = await csms.transactions.get(tx)
    assert row is not None and row["energy_wh"] == 1000


# --- the same MeterValues twice


def _register_and_current(timestamp: str, wh: str, amps: str) -> dict[str, Any]:
    return _at(
        timestamp,
        _sampled(wh),
        _sampled(amps, "Current.Import", unit="A", phase="L1"),
        _sampled(amps, "Current.Import", unit="A", phase="L2"),
    )


async def test_a_meter_values_sent_again_is_stored_once(
    csms: CentralSystem, charger: RawCharger
) -> None:
    tx = await _start(csms, charger)
    first = _meter_values(tx, _register_and_current("2026-01-01T10:02:00Z", "1500.5", "15.6"))
    assert await charger.call("MeterValues", first) == {}
    assert await charger.call("MeterValues", first) == {}  # its reply was lost
    stored = await csms.transactions.meter_values(tx)
    assert len(stored) == 3
    # Sent again together with a newer MeterValue: only the new one is added.
    both = _meter_values(
        tx,
        _register_and_current("2026-01-01T10:02:00Z", "1500.5", "15.6"),
        _register_and_current("2026-01-01T10:03:00Z", "1600", "16"),
    )
    await charger.call("MeterValues", both)
    stored = await csms.transactions.meter_values(tx)
    assert [(v["timestamp"][11:16], v["phase"]) for v in stored] == [
        ("10:02", None),
        ("10:02", "L1"),
        ("10:02", "L2"),
        ("10:03", None),
        ("10:03", "L1"),
        ("10:03", "L2"),
    ]
    row = await csms.transactions.get(tx)
    assert row is not None and row["energy_wh"] == 1600


async def test_unlinked_samples_sent_again_are_stored_once(
    csms: CentralSystem, charger: RawCharger
) -> None:
    message = _meter_values(None, _at(AT, _sampled("1500"), _sampled("1500", location="Inlet")))
    for _ in range(3):
        await charger.call("MeterValues", message)
    rows = await csms.db.fetchall("SELECT location, value FROM meter_values ORDER BY id")
    assert [(r["location"], r["value"]) for r in rows] == [("Outlet", "1500"), ("Inlet", "1500")]


async def test_transaction_data_repeating_a_meter_value_is_stored_once(
    csms: CentralSystem, charger: RawCharger
) -> None:
    tx = await _start(csms, charger)
    sample = _at("2026-01-01T10:30:00Z", _sampled("3.2", unit="kWh"))
    await charger.call("MeterValues", _meter_values(tx, sample))
    end = _at("2026-01-01T11:00:00Z", _sampled("4", unit="kWh", context="Transaction.End"))
    stop = {
        "transactionId": tx,
        "meterStop": 4000,
        "timestamp": "2026-01-01T11:00:00Z",
        "transactionData": [sample, end],
    }
    await charger.call("StopTransaction", stop)
    stored = await csms.transactions.meter_values(tx)
    assert [(v["context"], v["value"]) for v in stored] == [
        ("Sample.Periodic", "3.2"),
        ("Transaction.End", "4"),
    ]


async def test_a_resent_meter_values_is_billed_once(make_config: MakeConfig) -> None:
    """A paid session whose charger sends one MeterValues twice: its energy counts once,
    and the driver pays for what the register gained, in whole Wh."""
    config = make_config(tariff=E2E_TARIFF, payments={"minimum_energy_wh": 100})
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    async with (
        CentralSystem(config) as system,
        aiohttp.ClientSession() as http,
        RawCharger.connect(ocpp_url(system), "CP-1") as raw,
    ):
        driver, wire = Driver(system, http), Wire(raw)
        rid, tx = await _paid_session(system, driver, wire, 10_000, t0)
        register = {"value": "11.2345", "unit": "kWh"}  # 11234.5 Wh: 1234 Wh billed
        await wire.meter(tx, t0 + timedelta(minutes=10), register)
        assert (await driver.status(rid))["energyWh"] == 1_234
        await wire.meter(tx, t0 + timedelta(minutes=10), register)  # its reply was lost
        assert (await driver.status(rid))["energyWh"] == 1_234
        stored = await system.transactions.meter_values(tx)
        assert [v["value"] for v in stored] == ["11.2345"]
        stop = {
            "transactionId": tx,
            "meterStop": 12_000,
            "timestamp": stamp(t0 + timedelta(minutes=20)),
        }
        done, ledger, _ = await _finish(system, driver, wire, rid, stop)
    assert done["energyWh"] == done["breakdown"]["energyWh"] == 2_000
    assert done["capturedAmount"] == ledger["amount_captured"] == 80 + 50
