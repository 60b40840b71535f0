"""Restarting the central system in its default setup (the bundled Stripe sandbox, no
key) in the middle of a paid charge: the sandbox keeps its account in a file beside the
database, so the PaymentIntent is still there and the charge ends captured, once."""

from __future__ import annotations

import socket
from pathlib import Path

import aiohttp

from csms.app import CentralSystem
from tests.conftest import MakeConfig
from tests.payflow import TARIFF, Driver, charger

# 0.40/kWh and 0.50 per session, at most 5 kWh: a hold of 2.50 EUR.


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_a_restart_during_a_paid_charge_loses_no_payment(make_config: MakeConfig) -> None:
    # Fixed ports: the charger reconnects to the same address, as to a restarted server.
    config = make_config(
        tariff=TARIFF,
        payments={"minimum_energy_wh": 100},
        server={"ocpp_port": _free_port(), "http_port": _free_port()},
        stripe={"sandbox_port": _free_port()},
    )
    state = Path(f"{config.database.path}.stripe-sandbox.db")
    async with aiohttp.ClientSession() as http:
        first = CentralSystem(config)
        await first.start()
        sim = charger(first, unplug_after_stop=0.1)
        await sim.start()
        try:
            rid = await Driver(first, http).start_charging(sim)
            reservation = await first.reservations.get(rid)
            assert reservation is not None and reservation.payment_intent_id
            intent_id = reservation.payment_intent_id
            await first.stop()

            async with CentralSystem(config) as second:
                assert second.sandbox is not None and second.sandbox.state_file is not None
                assert second.sandbox.state_file.path == state
                assert second.sandbox.ledger()[intent_id]["status"] == "requires_capture"
                driver = Driver(second, http)
                await sim.wait_online(30)
                status, _ = await driver.post(f"/api/payments/{rid}/stop")
                assert status == 200
                done = await driver.wait_for_state(rid, "Completed", timeout=30)
                ledger = second.sandbox.ledger()[intent_id]
        finally:
            await sim.stop()

    assert done["capturedAmount"] > 0
    assert ledger["amount_captured"] == done["capturedAmount"]
    assert (ledger["capture_requests"], ledger["captures"], ledger["status"]) == (
        1,
        1,
        "succeeded",
    )
    assert ledger["amount_held"] == 0


async def test_an_in_memory_database_keeps_no_sandbox_file(make_config: MakeConfig) -> None:
    async with CentralSystem(make_config(database={"path": ":memory:"})) as system:
        assert system.sandbox is not None and system.sandbox.state_file is None
