"""The driver's pages in German over HTTP, against a running central system: the browser's
Accept-Language, the `?lang=` switch remembered in a cookie, and Checkout in the same language."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import orjson
import pytest

from csms.app import SANDBOX_API_KEY, CentralSystem
from payments.stripe_gateway import CheckoutRequest, StripeGateway, StripeRejected
from simulators.chargepoint import SimulatedCharger
from tests.payflow import Driver
from tests.waiting import eventually

GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}
DATE = re.compile(r"\d\d\.\d\d\.\d{4}, \d\d:\d\d UTC")


@pytest.fixture
async def german() -> AsyncIterator[aiohttp.ClientSession]:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(headers=GERMAN, cookie_jar=jar) as session:
        yield session


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


def _base(system: CentralSystem) -> str:
    return f"http://127.0.0.1:{system.http.port}"


def _euros(minor: int) -> str:
    """German euros, written out by hand for amounts under 1,000 EUR."""
    return f"{minor // 100},{minor % 100:02d}\xa0€"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def _start_form(start_page: str) -> dict[str, str]:
    return {"cp": "CP-1", "conn": "1", "csrf": _csrf(start_page)}


async def _get(http: aiohttp.ClientSession, url: str, status: int = 200) -> str:
    async with http.get(url) as page:
        html = await page.text()
        assert page.status == status, html
        return html


async def test_start_session_and_receipt_in_german(
    system: CentralSystem, sim: SimulatedCharger, german: aiohttp.ClientSession
) -> None:
    base = _base(system)
    start = await _get(german, f"{base}/c/CP-1/1")
    assert '<html lang="de">' in start
    assert "Hier laden" in start and "Anschluss 1" in start
    assert "0,40\xa0€ pro kWh" in start and "0,50\xa0€ pro Ladevorgang" in start
    assert f"reservieren wir {_euros(250)} auf Ihrer Karte" in start
    assert "höchstens 5 kWh" in start and "Bezahlen und laden" in start
    assert "Pay and charge" not in start and "per kWh" not in start

    async with german.post(
        f"{base}/start", data=_start_form(start), allow_redirects=False
    ) as started:
        assert started.status == 303
        checkout_url = started.headers["Location"]
    (row,) = await system.db.fetchall("SELECT id, data FROM reservations")
    session_id = orjson.loads(row["data"])["checkout_session_id"]
    assert system.sandbox is not None
    assert system.sandbox.get(session_id)["locale"] == "de"  # Checkout in German too
    checkout = await _get(german, checkout_url)
    assert '<html lang="de">' in checkout

    driver = Driver(system, german)
    paid = await driver.pay(checkout_url)
    token = paid.url.path.removeprefix("/session/")
    assert paid.status == 200 and paid.url.path == f"/session/{token}"
    await driver.wait_for_state(row["id"], "AwaitingPlug")
    waiting = await _get(german, f"{base}/session/{token}")
    assert "Ihr Ladevorgang" in waiting
    assert "Zahlung erhalten. Stecken Sie Ihr Auto an, um zu starten" in waiting
    assert f'id="hold">{_euros(250)}<' in waiting and 'id="energy">0,00 kWh<' in waiting

    await sim.plug_in(1)
    await driver.wait_for_state(row["id"], "Charging")
    await eventually(lambda: driver.has_energy(row["id"]))
    charging = await _get(german, f"{base}/session/{token}")
    assert ">Lädt<" in charging and "Laden beenden" in charging
    assert re.search(r'id="energy">\d+,\d\d kWh<', charging), charging
    async with german.get(f"{base}/session/{token}/events?lang=de") as events:
        line = await events.content.readline()
    view = orjson.loads(line.removeprefix(b"data: "))
    assert view["stageText"] == "Lädt" and view["power"].endswith(" kW") and "," in view["power"]

    async with german.post(
        f"{base}/session/{token}/stop", data={"csrf": _csrf(charging)}, allow_redirects=False
    ) as stopped:
        assert stopped.status == 303
    done = await driver.wait_for_state(row["id"], "Completed")
    await eventually(lambda: _receipt_ready(german, f"{base}/receipt/{token}"), timeout=10)

    receipt = await _get(german, f"{base}/receipt/{token}")
    assert "Quittung" in receipt and "Von Ihrer Karte abgebucht" in receipt
    assert "Grundgebühr" in receipt and "Summe" in receipt and "Drucken" in receipt
    assert f'id="captured">{_euros(done["capturedAmount"])}<' in receipt
    assert f'id="released">{_euros(done["releasedAmount"])}<' in receipt
    started_at = re.search(r'id="started">([^<]+)<', receipt)
    stopped_at = re.search(r'id="stopped">([^<]+)<', receipt)
    assert started_at and DATE.fullmatch(started_at.group(1)), receipt
    assert stopped_at and DATE.fullmatch(stopped_at.group(1)), receipt
    assert re.search(r'id="energy">\d+,\d{3} kWh<', receipt), receipt
    assert "Charged to your card" not in receipt


async def _receipt_ready(http: aiohttp.ClientSession, receipt: str) -> bool:
    """The receipt is there once the payment is settled (before, it leads to the session)."""
    async with http.get(receipt, allow_redirects=False) as page:
        return page.status == 200


async def test_the_switch_is_remembered(system: CentralSystem, http: aiohttp.ClientSession) -> None:
    base = _base(system)
    english = await _get(http, f"{base}/c/NOPE/1", status=404)
    assert '<html lang="en">' in english and "Charger not found" in english
    assert '<a id="lang-de" href="/c/NOPE/1?lang=de"' in english
    assert '<span id="lang-en"' in english and 'aria-current="page"' in english

    async with http.get(f"{base}/c/NOPE/1?lang=de") as answer:
        assert answer.headers["Content-Language"] == "de"
        assert "Accept-Language" in answer.headers["Vary"]
        assert answer.cookies["csms_lang"].value == "de"
    switched = await _get(http, f"{base}/c/NOPE/1?lang=de", status=404)
    assert "Ladestation nicht gefunden" in switched
    assert '<a id="lang-en" href="/c/NOPE/1?lang=en"' in switched
    # Remembered: the next page is German without asking, whatever the browser prefers.
    async with http.get(f"{base}/session/not-a-token", headers={"Accept-Language": "en"}) as later:
        assert later.status == 404
        assert "Ladevorgang nicht gefunden" in await later.text()
    back = await _get(http, f"{base}/start?cp=NOPE&lang=en", status=404)
    assert "Charger not found" in back
    assert '<a id="lang-de" href="/start?cp=NOPE&amp;lang=de"' in back
    assert "Charger not found" in await _get(http, f"{base}/start?cp=NOPE", status=404)


async def test_english_checkout_and_unknown_languages(
    system: CentralSystem, sim: SimulatedCharger, http: aiohttp.ClientSession
) -> None:
    base = _base(system)
    async with http.get(f"{base}/c/CP-1/1", headers={"Accept-Language": "fr-FR,fr;q=0.9"}) as page:
        start = await page.text()
    assert '<html lang="en">' in start and "€0.40 per kWh" in start and "€2.50" in start
    async with http.post(
        f"{base}/start", data=_start_form(start), allow_redirects=False
    ) as started:
        assert started.status == 303
    (row,) = await system.db.fetchall("SELECT data FROM reservations")
    assert system.sandbox is not None
    session = system.sandbox.get(orjson.loads(row["data"])["checkout_session_id"])
    assert session["locale"] == "en"


@pytest.mark.parametrize(("locale", "recorded"), [("de", "de"), ("en", "en"), (None, None)])
async def test_the_gateway_sends_checkouts_locale(
    system: CentralSystem, locale: str | None, recorded: str | None
) -> None:
    assert system.sandbox is not None
    gateway = StripeGateway(SANDBOX_API_KEY, api_base=system.sandbox.base_url)
    try:
        session = await gateway.create_checkout(_request(system, locale), f"checkout:{locale}")
    finally:
        await gateway.close()
    assert system.sandbox.get(session.id)["locale"] == recorded


async def test_the_sandbox_refuses_a_locale_stripe_does_not_offer(system: CentralSystem) -> None:
    assert system.sandbox is not None
    gateway = StripeGateway(SANDBOX_API_KEY, api_base=system.sandbox.base_url)
    try:
        with pytest.raises(StripeRejected) as refused:
            await gateway.create_checkout(_request(system, "de-DE"), "checkout:de-DE")
    finally:
        await gateway.close()
    assert "locale" in refused.value.message


def _request(system: CentralSystem, locale: str | None) -> CheckoutRequest:
    assert system.sandbox is not None
    return CheckoutRequest(
        reservation_id="res_1",
        charger_id="CP-1",
        connector_id=1,
        id_tag="TAG-1",
        amount=250,
        currency="eur",
        description="Charging",
        email=None,
        success_url="http://127.0.0.1:9/done",
        cancel_url="http://127.0.0.1:9/cancelled",
        expires_at=datetime.fromtimestamp(system.sandbox.now() + 3600, UTC),
        locale=locale,
    )


async def test_a_refused_form_answers_in_german_and_switches_to_the_page_before(
    system: CentralSystem, german: aiohttp.ClientSession
) -> None:
    base = _base(system)
    await _get(german, f"{base}/c/CP-9/2", status=404)  # unknown, but it sets the CSRF cookie
    csrf = next(c.value for c in german.cookie_jar if c.key == "csms_csrf")
    form = {"cp": "CP-9", "conn": "2", "csrf": csrf, "email": "no address"}
    async with german.post(f"{base}/start", data=form) as refused:
        assert refused.status == 400
        html = await refused.text()
    assert "Etwas stimmt nicht" in html and "„no address“ ist keine E-Mail-Adresse." in html
    assert '<a id="lang-en" href="/c/CP-9/2?lang=en"' in html
    async with german.post(f"{base}/start", data={**form, "csrf": "forged"}) as expired:
        assert expired.status == 403
        assert "Diese Seite ist abgelaufen" in await expired.text()
