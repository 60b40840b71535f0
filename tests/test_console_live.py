"""The console's live values: a page is sent only the keys it follows, changes are found
once for every stream, and the overview's list of long-offline chargers stays short."""

from __future__ import annotations

from datetime import timedelta

import orjson

from csms.app import CentralSystem
from csms.console.facts import ConsoleFacts
from simulators.chargepoint import SimulatedCharger
from storage.clock import to_text, utc_now
from tests.console_fixtures import console_client
from tests.payflow import Driver, finished_session, refund_and_wait


async def test_a_page_is_sent_only_the_keys_it_follows(
    system: CentralSystem, sim: SimulatedCharger
) -> None:
    await sim.wait_for_status(1, "Available")
    async with console_client(system, "viewer") as client:
        response = await client.get("/console/events?watch=connector:CP-1:&watch=overview:online")
        first = orjson.loads((await response.content.readline())[6:])
        response.close()
        assert first["connector:CP-1:1"] == "Available" and first["overview:online"] == "1"
        assert all(k.startswith(("connector:CP-1:", "overview:online")) for k in first), first
        everything = await client.get("/console/events")
        every = orjson.loads((await everything.content.readline())[6:])
        everything.close()
        assert "charger:CP-1:online" in every and "overview:offline" in every


async def test_streams_get_the_changes_found_once(
    system: CentralSystem, sim: SimulatedCharger
) -> None:
    await sim.wait_for_status(1, "Available")
    facts = ConsoleFacts(
        system.db, system.view, system.payment_service.held_before_start, "UTC",
        timedelta(minutes=15), live_interval=0,
    )  # fmt: skip
    version, everything = await facts.changes_since(None)
    assert everything["connector:CP-1:1"] == "Available"
    version, nothing = await facts.changes_since(version)
    assert nothing == {}  # computed again, nothing changed
    await system.chargers.record_status(
        "CP-1", {"connectorId": 2, "status": "Unavailable", "errorCode": "NoError"}
    )
    later, changed = await facts.changes_since(version)
    assert changed == {
        "connector:CP-1:2": "Unavailable",
        "overview:connectors:Unavailable": "1",
        "overview:connectors:Available": "1",  # of 2
    }
    await system.chargers.record_status(
        "CP-1", {"connectorId": 2, "status": "Available", "errorCode": "NoError"}
    )
    _, back = await facts.changes_since(later)
    assert back["overview:connectors:Unavailable"] == "0"  # a count falling to 0 is sent
    _, behind = await facts.changes_since(later - 5)  # fell behind: everything again
    assert behind == await facts.live()


async def test_the_overview_counts_offline_chargers_past_twenty(system: CentralSystem) -> None:
    long_ago = to_text(utc_now() - timedelta(hours=3))
    for n in range(25):
        await system.chargers.register(f"OLD-{n:02}")
        await system.db.execute(
            "UPDATE chargers SET last_seen_at = ? WHERE id = ?", (long_ago, f"OLD-{n:02}")
        )
    async with console_client(system, "viewer") as client:
        page = await client.text("/console")
    assert page.count("offline since") == 20
    assert "5 more" in page and "/console/chargers?online=offline" in page


async def test_todays_revenue_is_captured_less_refunded(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger
) -> None:
    reservation_id, _ = await finished_session(driver, sim)
    captured = (await driver.status(reservation_id))["capturedAmount"]
    await refund_and_wait(driver, reservation_id, {"amount": 10, "reason": "goodwill"})
    async with console_client(system, "viewer") as client:
        page = await client.text("/console")
    revenue = f"{(captured - 10) / 100:.2f} EUR"
    assert f'<p id="revenue-today">{revenue}</p>' in page, page[page.find("revenue-today") :][:80]
