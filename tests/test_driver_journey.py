"""The driver's journey without dead ends, over HTTP against a running central system: the
session page's button and figures from plug-in to the end, the charger offline mid-charge,
rescanning the QR code during one's own session, and failure pages in plain words (no
internal errors or ids), with what happened to the money, the support contact and a retry."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest

from csms.app import CentralSystem
from simulators.chargepoint import SimulatedCharger
from tests.conftest import MakeConfig
from tests.payflow import TARIFF, Driver, charger
from tests.waiting import eventually

CONTACT = "+49 30 1234 5678"
RAW_STATUSES = ("Unavailable", "SuspendedEV", "SuspendedEVSE", "Preparing", "Faulted")


@pytest.fixture
async def system(make_config: MakeConfig) -> AsyncIterator[CentralSystem]:
    config = make_config(
        tariff=TARIFF,
        operator={"support_phone": CONTACT},
        payments={
            "minimum_energy_wh": 100,
            "start_window": 2,
            "tick_interval": 0.05,
        },
    )
    async with CentralSystem(config) as running:
        await running.chargers.register("CP-1", name="Harbour car park")
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


@pytest.fixture
async def sim(system: CentralSystem) -> AsyncIterator[SimulatedCharger]:
    simulated = charger(system, speed=60, unplug_after_stop=0.1)
    await simulated.start()
    try:
        yield simulated
    finally:
        await simulated.stop()


def _base(system: CentralSystem) -> str:
    return f"http://127.0.0.1:{system.http.port}"


async def _get(http: aiohttp.ClientSession, url: str, status: int = 200) -> str:
    async with http.get(url) as page:
        html = await page.text()
        assert page.status == status, html
        return html


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def _shown(html: str, element_id: str) -> str | None:
    """The text of an element of the page, None when it is hidden or not there at all."""
    match = re.search(rf'<(\w+) ([^>]*)id="{element_id}"([^>]*)>(.*?)</\1>', html, re.S)
    if match is None or "hidden" in match.group(2) + match.group(3):
        return None
    return re.sub(r"<[^>]+>", "", match.group(4)).strip()


async def _paid(system: CentralSystem, http: aiohttp.ClientSession) -> tuple[str, str]:
    """Scan connector 1, pay with the sandbox's card form: the session's page and its id."""
    base = _base(system)
    start = await _get(http, f"{base}/c/CP-1/1")
    async with http.post(
        f"{base}/start",
        data={"cp": "CP-1", "conn": "1", "csrf": _csrf(start)},
        allow_redirects=False,
    ) as started:
        assert started.status == 303
        checkout = started.headers["Location"]
    paid = await Driver(system, http).pay(checkout)
    assert paid.url.path.startswith("/session/")
    (row,) = await system.db.fetchall("SELECT id FROM reservations")
    return f"{base}{paid.url.path}", row["id"]


async def _first_event(http: aiohttp.ClientSession, page: str) -> dict:
    async with http.get(f"{page}/events") as events:
        line = await events.content.readline()
    return orjson.loads(line.removeprefix(b"data: "))


def _no_internal_text(html: str, page: str) -> None:
    """No ids, Stripe's words or raw OCPP statuses (the page's own token aside)."""
    html = html.replace(page.rsplit("/", 1)[1], "")
    for internal in ("pi_", "res_", "cs_", "No such", "payment_intent", *RAW_STATUSES):
        assert internal not in html, internal


async def test_cancel_before_plug_in_stop_while_charging_final_figures_after(
    system: CentralSystem, sim: SimulatedCharger, http: aiohttp.ClientSession
) -> None:
    page, rid = await _paid(system, http)
    driver = Driver(system, http)
    await driver.wait_for_state(rid, "AwaitingPlug")
    waiting = await _get(http, page)
    assert _shown(waiting, "stop") == "Cancel" and 'data-kind="cancel"' in waiting
    assert 'class="secondary"' not in waiting  # not the red button
    assert _shown(waiting, "hold") == "€2.50" and _shown(waiting, "retry") is None

    await sim.plug_in(1)
    await driver.wait_for_state(rid, "Charging")
    await eventually(lambda: driver.has_energy(rid))
    charging = await _get(http, page)
    assert _shown(charging, "stop") == "Stop charging" and 'data-kind="stop"' in charging
    assert _shown(charging, "cost-label") == "Cost so far"
    assert (_shown(charging, "power") or "").endswith("kW")
    # Only the one short status line is announced to screen readers.
    assert charging.count("aria-live") == 1
    assert re.search(r'<p [^>]*id="stage"[^>]*aria-live="polite"', charging)

    async with http.post(
        f"{page}/stop", data={"csrf": _csrf(charging)}, allow_redirects=False
    ) as stopped:
        assert stopped.status == 303
    done = await driver.wait_for_state(rid, "Completed")
    await eventually(lambda: _settled(driver, rid), timeout=10)
    final = await _get(http, page)
    assert _shown(final, "power") is None and _shown(final, "power-label") is None
    assert _shown(final, "cost-label") == "Cost" and "Cost so far" not in final
    assert _shown(final, "hold") is None and "Reserved on your card" not in final
    assert _shown(final, "stop-form") is None
    captured = f"€{done['capturedAmount'] // 100}.{done['capturedAmount'] % 100:02d}"
    assert captured in (_shown(final, "money") or "")
    view = await _first_event(http, page)
    assert view["power"] is None and view["costLabel"] == "Cost" and view["hold"] is None
    assert view["button"] is None and view["final"] is True
    _no_internal_text(final, page)


async def _settled(driver: Driver, rid: str) -> bool:
    return (await driver.status(rid))["hold"] == "Captured"


async def test_offline_mid_charge_is_shown_and_rescanning_leads_back(
    system: CentralSystem, sim: SimulatedCharger, http: aiohttp.ClientSession
) -> None:
    page, rid = await _paid(system, http)
    driver = Driver(system, http)
    await driver.wait_for_state(rid, "AwaitingPlug")
    await sim.plug_in(1)
    await driver.wait_for_state(rid, "Charging")
    online = await _get(http, page)
    assert _shown(online, "offline") is None and _shown(online, "stage") == "Charging"

    await sim.go_offline()
    await eventually(lambda: _offline(system))
    offline = await _get(http, page)
    assert _shown(offline, "stage") == "The charger has lost its connection"
    assert "you pay only for the energy it reports" in (_shown(offline, "offline") or "")
    assert _shown(offline, "hold") == "€2.50"  # still held: nothing settled meanwhile
    assert _shown(offline, "power") is None  # no stale power figure
    view = await _first_event(http, page)
    assert view["stageText"] == "The charger has lost its connection" and view["offline"]

    # Scanning the QR code again: the way back to the session, not "nothing was charged".
    rescan = await _get(http, f"{_base(system)}/c/CP-1/1", status=503)
    assert "Nothing was charged" not in rescan
    back = re.search(r'<a href="([^"]+)" id="back">([^<]+)</a>', rescan)
    assert back and page.endswith(back.group(1)) and back.group(2) == "See your session"

    await sim.reconnect()
    await eventually(lambda: _online(system))
    again = await _get(http, page)
    assert _shown(again, "offline") is None


async def _offline(system: CentralSystem) -> bool:
    return not system.payment_service.is_online("CP-1")


async def _online(system: CentralSystem) -> bool:
    return system.payment_service.is_online("CP-1")


async def test_rescanning_during_ones_session_leads_back(
    system: CentralSystem, sim: SimulatedCharger, http: aiohttp.ClientSession
) -> None:
    page, rid = await _paid(system, http)
    await Driver(system, http).wait_for_state(rid, "AwaitingPlug")
    rescan = await _get(http, f"{_base(system)}/c/CP-1/1")
    assert "Your charging session at this connector is in progress." in rescan
    assert 'name="csrf"' not in rescan.split("</nav>")[1]  # no second payment form
    back = re.search(r'<a href="([^"]+)" id="back">', rescan)
    assert back and page.endswith(back.group(1))
    # Another driver (no cookie) finds the connector busy, in plain words.
    async with aiohttp.ClientSession() as other:
        busy = await _get(other, f"{_base(system)}/c/CP-1/1", status=409)
    assert "Connector busy" in busy and "See your session" not in busy


async def test_start_timeout_says_released_and_offers_a_retry(
    system: CentralSystem, sim: SimulatedCharger, http: aiohttp.ClientSession
) -> None:
    page, rid = await _paid(system, http)
    driver = Driver(system, http)
    await driver.wait_for_state(rid, "StartTimeout")
    await eventually(lambda: _hold_is(driver, rid, "Released"))
    html = await _get(http, page)
    assert _shown(html, "reason-text") == (
        "The charge did not start in time: was the car plugged in?"
    )
    assert _shown(html, "money") == (
        "Nothing was charged: the reservation on your card has been released."
    )
    assert _shown(html, "hold") is None and "Reserved on your card" not in html
    assert _shown(html, "retry") == "Start again"
    assert re.search(r'<a class="button" id="retry" href="/c/CP-1/1"', html)
    assert _shown(html, "contact") == f"Questions? Contact {CONTACT}"
    assert _shown(html, "stop-form") is None
    _no_internal_text(html, page)
    german = await _get(http, f"{page}?lang=de")
    assert _shown(german, "retry") == "Neu starten"
    assert _shown(german, "contact") == f"Fragen? Kontakt: {CONTACT}"
    assert "War das Auto eingesteckt?" in (_shown(german, "reason-text") or "")
    assert "freigegeben" in (_shown(german, "money") or "")


async def _hold_is(driver: Driver, rid: str, hold: str) -> bool:
    return (await driver.status(rid))["hold"] == hold


async def test_review_page_has_no_internal_text_and_gives_the_contact(
    system: CentralSystem, sim: SimulatedCharger, http: aiohttp.ClientSession
) -> None:
    page, rid = await _paid(system, http)
    driver = Driver(system, http)
    await driver.wait_for_state(rid, "AwaitingPlug")
    await sim.plug_in(1)
    await driver.wait_for_state(rid, "Charging")
    await eventually(lambda: driver.has_energy(rid))
    r = await system.reservations.get(rid)
    assert r is not None and r.payment_intent_id and system.sandbox is not None
    system.sandbox.fail_next(
        1, 400, path=f"/v1/payment_intents/{r.payment_intent_id}/capture", method="POST"
    )
    await driver.post(f"/api/payments/{rid}/stop")
    await driver.wait_for_state(rid, "NeedsReview")
    reviewed = await system.reservations.get(rid)
    assert reviewed is not None and reviewed.failure_reason  # the internal reason exists
    html = await _get(http, page)
    assert reviewed.failure_reason not in html
    assert _shown(html, "reason-text") == (
        "Settling the payment did not go through. We are checking it."
    )
    money = _shown(html, "money") or ""
    assert "is being checked" in money and "€2.50" in money
    assert _shown(html, "hold") is None
    assert _shown(html, "contact") == f"Questions? Contact {CONTACT}"
    assert _shown(html, "retry") is None  # the money is still open: no retry offered
    _no_internal_text(html, page)
    view = await _first_event(http, page)
    assert view["reason"] == "Settling the payment did not go through. We are checking it."
    assert view["contact"] == CONTACT


async def test_connector_statuses_are_in_driver_words(
    system: CentralSystem, sim: SimulatedCharger, http: aiohttp.ClientSession
) -> None:
    await sim.fault(2)
    await sim.wait_for_status(2, "Faulted")
    await eventually(lambda: _status_is(system, 2, "Faulted"))
    busy = await _get(http, f"{_base(system)}/c/CP-1/2", status=409)
    assert "the connector is Out of order" in busy
    for raw in RAW_STATUSES:
        assert raw not in busy, raw


async def _status_is(system: CentralSystem, connector: int, status: str) -> bool:
    return system.payment_service.connector_status("CP-1", connector) == status
