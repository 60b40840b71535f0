"""What an operator trips over on the console, over HTTP: each test is a defect found by
using the console from outside, kept so that it stays mended."""

from __future__ import annotations

import re
from pathlib import Path

from csms.app import CentralSystem
from simulators.chargepoint import SimulatedCharger
from tests.console_fixtures import console_client
from tests.payflow import Driver, finished_session

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


def words(page: str) -> str:
    """The text a person reads: no tags, no attributes, no scripts."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"<[^>]+>", " ", page)


async def test_a_chargers_page_shows_times_as_words_not_iso_strings(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger
) -> None:
    await finished_session(driver, sim)
    async with console_client(system, "viewer") as viewer:
        page = words(await viewer.text(f"/console/chargers/{sim.charge_point_id}"))
    assert ISO.findall(page) == []  # last boot, last seen, since, started, stopped, received
    assert re.search(r"Last seen\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", page)


async def test_a_form_sent_after_logging_out_gets_a_page_that_leads_back_to_the_login(
    system: CentralSystem,
) -> None:
    """A form left open in a tab whose login has ended (logged out in another tab, or
    expired): the operator gets a page saying so and a link to log in again, not the bare
    text "log in again"; nothing is changed. Logging out again just shows the login page."""
    async with console_client(system, "support") as support:
        await support.text("/console/id-tags")
        out = await support.post("/console/logout")
        assert out.status == 303
        stale = await support.http.post(
            support.base + "/console/id-tags",
            data={"csrf": support.csrf, "id_tag": "STALE-1"},
            headers={"Referer": support.base + "/console/id-tags?q=ST"},
            allow_redirects=False,
        )
        assert stale.status == 401
        assert stale.content_type == "text/html"
        page = await stale.text()
        assert "login has ended" in words(page) and "nothing was changed" in words(page)
        assert 'href="/console/login?next=/console/id-tags%3Fq%3DST"' in page
        again = await support.post("/console/logout")
        assert again.status == 303 and again.headers["Location"] == "/console/login"
    assert await system.id_tags.get("STALE-1") is None


async def test_a_number_too_large_for_ocpp_in_a_command_form_is_refused_naming_the_field(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger
) -> None:
    """OCPP 1.6 integers are 32-bit: 99999999999999999999 as a connector id crashed the page
    (500, and over the API too) when the charger was online; now the field is named."""
    huge = "99999999999999999999"
    async with console_client(system, "support") as support:
        answer = await support.post(
            f"/console/chargers/{sim.charge_point_id}/commands/UnlockConnector",
            {"connectorId": huge},
        )
        assert answer.status == 400
        assert "connectorId" in words(await answer.text())
        stop = await support.post(
            f"/console/chargers/{sim.charge_point_id}/commands/RemoteStartTransaction",
            {"idTag": "T1", "chargingProfile": '{"chargingProfileId": ' + huge + "}"},
        )
        assert stop.status == 400
        assert "chargingProfile" in words(await stop.text())
    status, body = await driver.post(
        f"/api/chargers/{sim.charge_point_id}/commands/UnlockConnector", {"connectorId": int(huge)}
    )
    assert status == 400, body


async def test_the_last_day_of_the_calendar_as_the_sessions_until_date_is_no_crash(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger
) -> None:
    """ "Began on or before 9999-12-31" (a way to say "no end"): the list crashed with a 500
    as it looked for the day after; it now lists every session begun by then."""
    rid, _ = await finished_session(driver, sim)
    async with console_client(system, "viewer") as viewer:
        page = await viewer.text("/console/sessions?from=2000-01-01&to=9999-12-31")
    assert rid in page


async def test_a_refused_id_or_phone_is_explained_in_words_not_as_a_regular_expression(
    system: CentralSystem,
) -> None:
    """An admin adding a site or a tariff with a bad id, or a phone number with letters,
    read "String should match pattern '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'" and "Field
    required": pydantic's words for a programmer. They now read what is allowed."""
    site = {"id": "depot 1", "name": "", "time_zone": "UTC", "support_phone": "call us"}
    tariff = {"id": "peak rate", "currency": "EUR", "pricePerKwh": "0.40", "maxEnergyWh": "1000"}
    async with console_client(system, "admin") as admin:
        pages = [await (await admin.post("/console/sites", site)).text()]
        pages.append(await (await admin.post("/console/tariffs/new", tariff)).text())
    for page in map(words, pages):
        assert "should match pattern" not in page and "Field required" not in page
        assert "letters, digits" in page
    assert "digits, spaces and + ( ) . / -" in words(pages[0])
    assert "required" in words(pages[0])  # the name
    assert await system.sites.get("depot 1") is None


async def test_the_users_page_says_the_roles_are_not_a_ladder(system: CentralSystem) -> None:
    """It said "viewer reads everything; support also ...; finance also refunds": an admin
    read finance as support and more, and gave it to someone who must stop sessions. Finance
    has none of support's rights (csms/roles.py), and a viewer does not read the reports."""
    async with console_client(system, "admin") as admin:
        page = " ".join(words(await admin.text("/console/users")).split())
    assert "viewer reads everything but the money reports" in page
    assert "finance does not have support's rights" in page


async def test_an_unknown_console_address_gets_a_console_page_with_a_way_back(
    system: CentralSystem,
) -> None:
    """A mistyped address, or a form's address opened again (the address bar shows it after
    a refused form), answered aiohttp's bare "404: Not Found" or "405: Method Not Allowed",
    with no menu and no link. They are now console pages that lead back."""
    async with console_client(system, "support") as support:
        missing = await support.get("/console/chargerz")
        assert missing.status == 404
        page = await missing.text()
        assert 'id="back"' in page and 'id="logout"' in page
        form_address = await support.get("/console/id-tags/block")
        assert form_address.status == 405
        page = await form_address.text()
        assert 'href="/console/id-tags" id="back"' in page and 'id="logout"' in page


async def test_a_nul_character_in_any_field_is_refused_not_a_crash(system: CentralSystem) -> None:
    """A NUL character (pasted, or sent by a script) in a form or a filter: PostgreSQL
    refuses it in text, so the page crashed with a 500 there; SQLite stored an id tag that
    shows as an empty row. It is now refused, naming the field, and nothing changes."""
    async with console_client(system, "admin") as admin:
        tag = await admin.post("/console/id-tags", {"id_tag": "A\x00B"})
        assert tag.status == 400 and "id_tag" in words(await tag.text())
        site = await admin.post(
            "/console/sites", {"id": "S1", "name": "a\x00b", "time_zone": "UTC"}
        )
        assert site.status == 400
        audit = await admin.get("/console/audit?actor=%00")
        assert audit.status == 400 and "actor" in words(await audit.text())
        sessions = await admin.get("/console/sessions?charger=CP%00")
        assert sessions.status == 400
    assert [t.id_tag for t in await system.id_tags.list()] == []
    assert await system.sites.get("S1") is None


def test_the_quick_start_says_where_the_console_is_and_how_to_log_in() -> None:
    """A new operator following the README's quick start was never told that the console
    is at /console, nor that the first start prints the admin's password (once)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "http://127.0.0.1:8080/console" in quick_start
    assert "password" in quick_start and "users add --role" in quick_start
