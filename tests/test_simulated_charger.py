"""The OCPP side with a simulated charger, as a charge point operator would try it."""

from __future__ import annotations

from csms.app import CentralSystem
from simulators.chargepoint import SimulatedCharger
from tests.conftest import ocpp_url
from tests.waiting import eventually


def _sim(system: CentralSystem, **options: object) -> SimulatedCharger:
    return SimulatedCharger(
        ocpp_url(system), "CP-1", connectors=2, meter_interval=0.1, speed=600, **options
    )


async def test_charger_appears_with_its_connectors(csms: CentralSystem) -> None:
    sim = _sim(csms)
    await sim.start()
    try:
        row = await csms.chargers.get("CP-1")
        assert row is not None and row["online"] == 1
        assert (row["vendor"], row["model"]) == ("Simulator", "SIM-22")

        async def statuses_stored() -> bool:
            return len(await csms.chargers.connectors("CP-1")) == 3

        await eventually(statuses_stored)
        assert [c.status for c in await csms.chargers.connectors("CP-1")] == ["Available"] * 3
    finally:
        await sim.stop()


async def test_local_transaction_with_meter_values_and_final_energy(csms: CentralSystem) -> None:
    await csms.id_tags.put("RFID-1")
    sim = _sim(csms, energy_unit="kWh")
    await sim.start()
    try:
        transaction_id = await sim.start_transaction(1, "RFID-1")

        async def metered() -> bool:
            return len(await csms.transactions.meter_values(transaction_id)) >= 8

        await eventually(metered)
        await sim.stop_transaction(1)
    finally:
        await sim.stop()
    row = await csms.transactions.get(transaction_id)
    assert row is not None
    assert row["id_tag"] == "RFID-1" and row["stop_reason"] == "Local"
    assert row["meter_stop_wh"] > row["meter_start_wh"]
    assert row["energy_wh"] == row["meter_stop_wh"]
    energy = [
        v for v in await csms.transactions.meter_values(transaction_id)
        if v["measurand"] == "Energy.Active.Import.Register"
    ]  # fmt: skip
    assert energy and all(v["unit"] == "kWh" for v in energy)
    assert energy[-1]["normalised"] == row["meter_stop_wh"]  # Transaction.End, in Wh
    assert {v["measurand"] for v in await csms.transactions.meter_values(transaction_id)} >= {
        "Power.Active.Import",
        "Current.Import",
        "SoC",
    }


async def test_offline_charger_replays_its_queue(csms: CentralSystem) -> None:
    await csms.id_tags.put("RFID-1")
    sim = _sim(csms)
    await sim.start()
    try:
        transaction_id = await sim.start_transaction(1, "RFID-1")
        await sim.go_offline()

        async def offline() -> bool:
            row = await csms.chargers.get("CP-1")
            return row is not None and row["online"] == 0

        await eventually(offline)
        await sim.send_meter_values(1)
        await sim.stop_transaction(1)
        assert (await csms.transactions.get(transaction_id))["stopped_at"] is None  # type: ignore[index]
        await sim.reconnect()

        async def stopped() -> bool:
            row = await csms.transactions.get(transaction_id)
            return row is not None and row["stopped_at"] is not None

        await eventually(stopped)
    finally:
        await sim.stop()
    row = await csms.transactions.get(transaction_id)
    assert row is not None and row["meter_stop_wh"] > row["meter_start_wh"]


async def test_restart_keeps_the_data(make_config) -> None:  # type: ignore[no-untyped-def]
    config = make_config()
    async with CentralSystem(config) as system:
        await system.id_tags.put("RFID-1")
        sim = _sim(system)
        await sim.start()
        transaction_id = await sim.start_transaction(1, "RFID-1")
        await sim.stop_transaction(1)
        await sim.stop()
    async with CentralSystem(config) as system:
        row = await system.transactions.get(transaction_id)
        assert row is not None and row["stopped_at"] is not None
        charger = await system.chargers.get("CP-1")
        assert charger is not None and charger["online"] == 0
        assert system.view.status("CP-1", 1) is not None
