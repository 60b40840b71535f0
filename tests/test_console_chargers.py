"""The console's charger pages over HTTP: the list with its search and filters, registering
a charger, its settings, commands to a simulated charger with their typed results, a paid
session's hold shown as Reserved, and the roles."""

from __future__ import annotations

import asyncio
import html
import re

from csms.app import CentralSystem
from csms.ocpp16.auth import security_profile
from csms.store.sites import Site
from payments.pricing import Tariff
from simulators.chargepoint import SimulatedCharger
from storage.clock import utc_now
from tests.conftest import ocpp_url
from tests.console_fixtures import console_client
from tests.ocpp_client import RawCharger
from tests.payflow import Driver
from tests.waiting import eventually

PASSWORD = "a-charger-password-1234"


def listed(page: str) -> list[str]:
    """The chargers a list page shows, in order."""
    return re.findall(r'<tr data-charger="([^"]+)">', page)


async def two_more_chargers(system: CentralSystem) -> None:
    await system.chargers.register("CP-A", name="Alpha", location="Berlin, Hall 2")
    await system.chargers.register("CP-B", name="Beta", location="Paris")
    await system.sites.add(Site("S1", "Depot", "Europe/Berlin"))
    await system.chargers.set_site("CP-B", "S1")


async def test_the_list_shows_live_status_and_is_searched_and_filtered(
    system: CentralSystem, sim: SimulatedCharger
) -> None:
    await two_more_chargers(system)
    await sim.wait_for_status(1, "Available")
    await eventually(lambda: _reported(system, "CP-1", 2))
    async with console_client(system, "viewer") as client:
        page = await client.text("/console/chargers")
        assert listed(page) == ["CP-1", "CP-A", "CP-B"]
        assert 'href="/console/chargers/CP-A"' in page
        assert re.search(r'data-live="charger:CP-1:online" data-state="online">online<', page)
        assert re.search(r'data-live="charger:CP-A:online" data-state="offline">offline<', page)
        assert re.search(r'data-live="connector:CP-1:1" data-state="Available">Available<', page)
        assert "Register a charger" not in page  # a viewer reads only
        assert listed(await client.text("/console/chargers?q=berlin")) == ["CP-A"]
        assert listed(await client.text("/console/chargers?q=beta")) == ["CP-B"]
        assert listed(await client.text("/console/chargers?q=cp-b")) == ["CP-B"]
        assert listed(await client.text("/console/chargers?online=online")) == ["CP-1"]
        assert listed(await client.text("/console/chargers?online=offline")) == ["CP-A", "CP-B"]
        assert listed(await client.text("/console/chargers?status=Available")) == ["CP-1"]
        assert listed(await client.text("/console/chargers?status=Faulted")) == []
        assert listed(await client.text("/console/chargers?site=S1")) == ["CP-B"]
        assert listed(await client.text("/console/chargers?site=S1&online=online")) == []


async def _reported(system: CentralSystem, charger_id: str, connectors: int) -> bool:
    return len(await system.chargers.connectors(charger_id)) > connectors


async def test_support_registers_a_charger_with_password_profile_and_site(
    system: CentralSystem,
) -> None:
    await system.sites.add(Site("S1", "Depot", "Europe/Berlin"))
    async with console_client(system, "support") as client:
        page = await client.text("/console/chargers")
        assert "Register a charger" in page and 'for="charger-id"' in page
        form = {
            "id": "CP-NEW",
            "name": "Gate 1",
            "location": "North car park",
            "password": PASSWORD,
            "securityProfile": "2",
            "site": "S1",
        }
        response = await client.post("/console/chargers", form)
        assert response.status == 303, await response.text()
        assert response.headers["Location"] == "/console/chargers/CP-NEW"
        row = await system.chargers.get("CP-NEW")
        assert row is not None
        assert (row["name"], row["location"], row["site_id"]) == ("Gate 1", "North car park", "S1")
        assert security_profile(row) == 2 and row["password_hash"] not in (None, PASSWORD)
        page = await client.text("/console/chargers/CP-NEW")
        assert "Charger registered" in page or "CP-NEW registered" in page
        assert "<h1>Charger CP-NEW: Gate 1</h1>" in page

        again = await client.post("/console/chargers", {**form, "id": "cp-new"})
        assert again.status == 409
        assert 'id="error-id"' in await again.text()


async def test_a_refused_registration_names_the_field_and_registers_nothing(
    system: CentralSystem,
) -> None:
    async with console_client(system, "support") as client:
        cases = [
            ({"id": "CP/9"}, "id"),
            ({"id": ""}, "id"),
            ({"id": "CP-9", "password": "short"}, "password"),
            ({"id": "CP-9", "password": PASSWORD, "securityProfile": "0"}, "securityProfile"),
            ({"id": "CP-9", "securityProfile": "2"}, "password"),
            ({"id": "CP-9", "site": "nowhere"}, "site"),
            ({"id": "CP-9", "name": "n" * 201}, "name"),
        ]
        for form, field in cases:
            response = await client.post("/console/chargers", form)
            text = await response.text()
            assert response.status == 400, (form, text)
            assert f'id="error-{field}"' in text, (form, field)
            assert form["id"] != "CP-9" or 'value="CP-9"' in text
        assert [row["id"] for row in await system.chargers.list()] == []


async def test_settings_are_changed_and_the_tariff_is_admin_only(
    system: CentralSystem,
) -> None:
    await system.chargers.register("CP-A", name="Alpha")
    await system.sites.add(Site("S1", "Depot", "Europe/Berlin"))
    await system.tariffs.put("night", Tariff(currency="eur", price_per_kwh=20), utc_now())
    async with console_client(system, "support") as client:
        page = await client.text("/console/chargers/CP-A")
        assert 'id="settings"' in page and 'name="tariff"' not in page
        changed = {
            "name": "Alpha 2",
            "location": "Yard",
            "site": "S1",
            "password": PASSWORD,
            "securityProfile": "1",
        }
        response = await client.post("/console/chargers/CP-A/settings", changed)
        assert response.status == 303, await response.text()
        row = await system.chargers.get("CP-A")
        assert row is not None
        assert (row["name"], row["location"], row["site_id"]) == ("Alpha 2", "Yard", "S1")
        assert security_profile(row) == 1 and row["password_hash"] is not None
        refused = await client.post(
            "/console/chargers/CP-A/settings", {**changed, "tariff": "night"}
        )
        assert refused.status == 403
        assert await system.tariffs.of_charger("CP-A") == {}
        bad = await client.post("/console/chargers/CP-A/settings", {**changed, "password": "short"})
        assert bad.status == 400 and 'id="error-password"' in await bad.text()
    async with console_client(system, "admin") as admin:
        page = await admin.text("/console/chargers/CP-A")
        assert 'name="tariff"' in page and '<option value="night"' in page
        form = {"name": "Alpha 2", "site": "S1", "securityProfile": "1", "tariff": "night"}
        response = await admin.post("/console/chargers/CP-A/settings", form)
        assert response.status == 303
        assert await system.tariffs.of_charger("CP-A") == {0: "night"}
        unknown = await admin.post("/console/chargers/CP-A/settings", {**form, "tariff": "nope"})
        assert unknown.status == 400 and 'id="error-tariff"' in await unknown.text()
        cleared = await admin.post("/console/chargers/CP-A/settings", {**form, "tariff": ""})
        assert cleared.status == 303
        assert await system.tariffs.of_charger("CP-A") == {}


async def test_the_charger_page_shows_boot_history_and_links_every_operation(
    system: CentralSystem, sim: SimulatedCharger
) -> None:
    await sim.wait_for_status(1, "Available")
    await sim.fault(2)
    await eventually(lambda: _status_is(system, "CP-1", 2, "Faulted"))
    async with console_client(system, "support") as client:
        page = await client.text("/console/chargers/CP-1")
        boot = page[page.index('id="boot"') :]
        row = await system.chargers.get("CP-1")
        assert row is not None and row["vendor"] and row["model"]
        assert row["vendor"] in boot and row["model"] in boot
        assert str(system.node.id) in boot  # the node its connection is on
        history = page[page.index('id="history"') :]
        assert "Faulted" in history and "Available" in history
        assert re.search(r'data-live="connector:CP-1:2" data-state="Faulted">Faulted<', page)
        operations = re.findall(r'href="/console/chargers/CP-1/commands/(\w+)"', page)
        assert len(operations) == 19 and "SetChargingProfile" in operations
        unlock = "/console/chargers/CP-1/commands/UnlockConnector?connectorId=2"
        assert f'href="{unlock}"' in page  # a connector's commands, its id filled in
        assert 'id="field-connectorId" name="connectorId" value="2"' in await client.text(unlock)
        missing = await client.get("/console/chargers/NOPE")
        assert missing.status == 404


async def _status_is(system: CentralSystem, charger_id: str, connector: int, status: str) -> bool:
    found = {c.connector_id: c.status for c in await system.chargers.connectors(charger_id)}
    return found.get(connector) == status


async def test_commands_to_the_simulated_charger_show_typed_results(
    system: CentralSystem, sim: SimulatedCharger
) -> None:
    await sim.wait_for_status(1, "Available")
    async with console_client(system, "support") as client:
        form = await client.text("/console/chargers/CP-1/commands/ChangeAvailability")
        assert 'for="field-connectorId"' in form and '<option value="Inoperative"' in form
        sent = await client.post(
            "/console/chargers/CP-1/commands/ChangeAvailability",
            {"connectorId": "2", "type": "Inoperative"},
        )
        text = await sent.text()
        assert sent.status == 200, text
        assert re.search(r'id="result-status" data-state="Accepted">Accepted<', text)
        assert '"status": "Accepted"' in html.unescape(text)
        await sim.wait_for_status(2, "Unavailable")

        config = await client.post(
            "/console/chargers/CP-1/commands/GetConfiguration",
            {"key": '["HeartbeatInterval", "NoSuchKey"]'},
        )
        text = await config.text()
        assert config.status == 200
        assert re.search(r"<td>HeartbeatInterval</td><td>\d+</td>", text)
        assert "NoSuchKey" in text  # among the unknown keys of the answer

        bad = await client.post(
            "/console/chargers/CP-1/commands/ChangeAvailability",
            {"connectorId": "two", "type": "Inoperative"},
        )
        text = await bad.text()
        assert bad.status == 400 and 'id="error-connectorId"' in text and "whole number" in text
        assert 'value="two"' in text  # the operator's input is kept
        schema = await client.post(
            "/console/chargers/CP-1/commands/SetChargingProfile",
            {"connectorId": "1", "csChargingProfiles": '{"chargingProfileId": 1}'},
        )
        text = await schema.text()
        assert schema.status == 400 and 'id="error-csChargingProfiles"' in text
        unknown = await client.get("/console/chargers/CP-1/commands/BootNotification")
        assert unknown.status == 404
        unknown = await client.post("/console/chargers/CP-1/commands/Nope", {})
        assert unknown.status == 404


async def test_the_configuration_is_read_on_demand_and_offline_is_said_plainly(
    system: CentralSystem, sim: SimulatedCharger
) -> None:
    await sim.wait_for_status(1, "Available")
    await system.chargers.register("CP-OFF")
    async with console_client(system, "support") as client:
        response = await client.post("/console/chargers/CP-1/configuration", {})
        text = await response.text()
        assert response.status == 200
        table = text[text.index('id="configuration"') :]
        assert re.search(r"<td>HeartbeatInterval</td><td>\d+</td><td>no</td>", table)
        offline = await client.post("/console/chargers/CP-OFF/configuration", {})
        text = await offline.text()
        assert 'id="configuration-error"' in text and "CP-OFF is offline" in text
        command = await client.post("/console/chargers/CP-OFF/commands/Reset", {"type": "Soft"})
        text = await command.text()
        assert 'data-kind="Offline"' in text and "nothing was sent" in text


async def test_a_viewer_reads_but_may_not_post(
    system: CentralSystem, sim: SimulatedCharger
) -> None:
    await system.chargers.register("CP-A")
    async with console_client(system, "viewer") as client:
        page = await client.text("/console/chargers/CP-A")
        assert 'id="settings"' not in page and "Read the configuration" not in page
        form = await client.text("/console/chargers/CP-1/commands/Reset")
        assert "needs the support role" in form
        for path, data in [
            ("/console/chargers", {"id": "CP-V"}),
            ("/console/chargers/CP-A/settings", {"name": "x"}),
            ("/console/chargers/CP-1/configuration", {}),
            ("/console/chargers/CP-1/commands/Reset", {"type": "Hard"}),
        ]:
            response = await client.post(path, data)
            assert response.status == 403, path
            assert "support" in await response.text()
        assert await system.chargers.get("CP-V") is None
        row = await system.chargers.get("CP-A")
        assert row is not None and row["name"] is None


async def test_a_paid_session_before_charging_holds_its_connector_as_reserved(
    system: CentralSystem, sim: SimulatedCharger, driver: Driver
) -> None:
    await sim.wait_for_status(1, "Available")
    status, created = await driver.create("CP-1", 1)
    assert status == 200, created
    reservation_id = created["reservationId"]
    await driver.pay(created["checkoutUrl"])
    await driver.wait_for_state(reservation_id, "AwaitingPlug")
    async with console_client(system, "viewer") as client:
        page = await client.text("/console/chargers/CP-1")
        assert re.search(r'data-live="connector:CP-1:1" data-state="Reserved">Reserved<', page)
        assert f'href="/console/sessions/{reservation_id}"' in page
        assert listed(await client.text("/console/chargers?status=Reserved")) == ["CP-1"]
    await sim.plug_in(1)
    await driver.wait_for_state(reservation_id, "Charging")
    async with console_client(system, "viewer") as client:
        page = await client.text("/console/chargers/CP-1")
        transactions = page[page.index('id="transactions"') :]
        assert f'href="/console/sessions/{reservation_id}"' in transactions
        assert reservation_id in await client.text(f"/console/sessions/{reservation_id}")


async def test_a_callerror_and_no_answer_are_shown_as_such(system: CentralSystem) -> None:
    async with (
        RawCharger.connect(ocpp_url(system), "CP-RAW") as raw,
        console_client(system, "support") as client,
    ):
        path = "/console/chargers/CP-RAW/commands/ClearCache"
        sending = asyncio.create_task(client.post(path, {}))
        call = await raw.receive()
        assert call[0] == 2 and call[2] == "ClearCache"
        await raw.send([4, call[1], "NotSupported", "no cache here", {"why": "none"}])
        text = html.unescape(await (await sending).text())
        assert 'data-kind="CALLERROR"' in text
        assert re.search(r'id="result-status" data-state="NotSupported">NotSupported<', text)
        assert "CP-RAW refused the call: NotSupported: no cache here" in text
        assert '"why": "none"' in text

        sending = asyncio.create_task(client.post(path, {}))
        assert (await raw.receive())[2] == "ClearCache"  # and never answered
        text = await (await sending).text()
        assert 'data-kind="Timeout"' in text and "did not answer in time" in text
