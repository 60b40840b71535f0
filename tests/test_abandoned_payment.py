"""An abandoned payment does not block a connector for long, nor its own driver: over HTTP
against a running central system and the Stripe sandbox.

The driver who started a payment sees it again (Continue to payment, Cancel) on the start
and session pages, and pressing Pay again leads back to it; Cancel and Checkout's cancel
link free the connector at once; an unpaid reservation frees it after the short pending
window and closes its Checkout Session, and a payment made on it too late is released;
another driver's busy page says how long the unpaid hold can last and reloads itself; the
driver pages are never cached.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from csms.app import CentralSystem
from simulators.chargepoint import SimulatedCharger
from tests.conftest import MakeConfig
from tests.payflow import DECLINED, TARIFF, Driver, charger
from tests.waiting import eventually

PENDING_WINDOW = 300


class Clock:
    """The central system's clock, movable ahead of the real one."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def system(make_config: MakeConfig, clock: Clock) -> AsyncIterator[CentralSystem]:
    # No clock ticks of its own (an hour apart): the tests tick when they move the clock.
    config = make_config(
        tariff=TARIFF,
        payments={
            "minimum_energy_wh": 100,
            "tick_interval": 3600,
            "pending_window": PENDING_WINDOW,
        },
    )
    async with CentralSystem(config, clock=clock) as running:
        await running.chargers.register("CP-1", name="Harbour car park")
        yield running


@pytest.fixture
async def sim(system: CentralSystem) -> AsyncIterator[SimulatedCharger]:
    simulated = charger(system)
    await simulated.start()
    try:
        yield simulated
    finally:
        await simulated.stop()


@pytest.fixture
async def mine() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as phone:
        yield phone


@pytest.fixture
async def other() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as phone:
        yield phone


def _base(system: CentralSystem) -> str:
    return f"http://127.0.0.1:{system.http.port}"


async def _get(
    phone: aiohttp.ClientSession, url: str, status: int = 200
) -> tuple[str, aiohttp.ClientResponse]:
    async with phone.get(url) as page:
        html = await page.text()
        assert page.status == status, html
        return html, page


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def _href(html: str, element_id: str) -> str | None:
    """The link of a shown element (None: hidden or not there)."""
    match = re.search(rf'<a ([^>]*)id="{element_id}"([^>]*)>', html)
    if match is None or "hidden" in match.group(1) + match.group(2):
        return None
    href = re.search(r'href="([^"]*)"', match.group(1) + match.group(2))
    return href.group(1).replace("&amp;", "&") if href else None


async def _pay_pressed(system: CentralSystem, phone: aiohttp.ClientSession) -> str:
    """Scan connector 1 and press Pay: where the answer leads (its Location)."""
    start, _ = await _get(phone, f"{_base(system)}/c/CP-1/1")
    return await _press_pay(system, phone, _csrf(start))


async def _press_pay(system: CentralSystem, phone: aiohttp.ClientSession, csrf: str) -> str:
    async with phone.post(
        f"{_base(system)}/start",
        data={"cp": "CP-1", "conn": "1", "csrf": csrf},
        allow_redirects=False,
    ) as answer:
        assert answer.status == 303, await answer.text()
        return answer.headers["Location"]


def _token(phone: aiohttp.ClientSession) -> str:
    (cookie,) = [c for c in phone.cookie_jar if c.key == "csms_session"]
    return cookie.value


async def _reservation_id(system: CentralSystem, checkout: str) -> str:
    rows = await system.db.fetchall("SELECT id FROM reservations")
    for row in rows:
        r = await system.payment_service.get(row["id"])
        if r is not None and r.checkout_url == checkout:
            return r.id
    raise AssertionError(f"no reservation for {checkout}")


async def _session_status(system: CentralSystem, reservation_id: str) -> str:
    r = await system.payment_service.get(reservation_id)
    assert r is not None and r.checkout_session_id is not None and system.sandbox is not None
    return system.sandbox.get(r.checkout_session_id)["status"]


async def _expired_at_stripe(system: CentralSystem, reservation_id: str) -> None:
    async def expired() -> bool:
        return await _session_status(system, reservation_id) == "expired"

    await eventually(expired)


def _held(system: CentralSystem) -> int:
    assert system.sandbox is not None
    return sum(entry["amount_held"] for entry in system.sandbox.ledger().values())


async def _another_driver_pays(system: CentralSystem, other: aiohttp.ClientSession) -> None:
    """The next driver can pay at once, and the charge is theirs."""
    checkout = await _pay_pressed(system, other)
    assert checkout.startswith(system.sandbox.base_url)  # type: ignore[union-attr]
    paid = await Driver(system, other).pay(checkout)
    assert paid.url.path == f"/session/{_token(other)}"
    rid = await _reservation_id(system, checkout)
    await Driver(system, other).wait_for_state(rid, "AwaitingPlug")


async def test_own_unpaid_reservation_offers_continue_and_cancel_after_a_declined_card(
    system: CentralSystem,
    sim: SimulatedCharger,
    mine: aiohttp.ClientSession,
    other: aiohttp.ClientSession,
) -> None:
    base = _base(system)
    first, _ = await _get(mine, f"{base}/c/CP-1/1")
    checkout = await _press_pay(system, mine, _csrf(first))
    rid = await _reservation_id(system, checkout)
    await Driver(system, mine).pay(checkout, card=DECLINED)
    assert (await Driver(system, mine).status(rid))["state"] == "PendingPayment"

    # Back twice: the start page is the driver's own payment, not "another driver".
    start, _ = await _get(mine, f"{base}/c/CP-1/1")
    assert "another driver" not in start
    assert _href(start, "continue") == checkout
    assert 'id="cancel"' in start and "Continue to payment" in start
    # A Pay pressed on the page seen before leads to the same Checkout.
    assert await _press_pay(system, mine, _csrf(first)) == checkout
    assert len(await system.db.fetchall("SELECT id FROM reservations")) == 1

    session, _ = await _get(mine, f"{base}/session/{_token(mine)}")
    assert "Waiting for your payment" in session
    assert _href(session, "continue") == checkout
    form = re.search(r'<form [^>]*id="stop-form"[^>]*>', session)
    assert form and "hidden" not in form.group(0) and 'data-kind="cancel"' in session

    # Cancel on the start page: the connector is free for the next driver at once.
    async with mine.post(
        f"{base}/session/{_token(mine)}/stop", data={"csrf": _csrf(start)}, allow_redirects=False
    ) as cancelled:
        assert cancelled.status == 303
    assert (await Driver(system, mine).status(rid))["state"] == "Cancelled"
    await _another_driver_pays(system, other)
    await _expired_at_stripe(system, rid)


async def test_checkouts_cancel_link_frees_the_connector_at_once(
    system: CentralSystem,
    sim: SimulatedCharger,
    mine: aiohttp.ClientSession,
    other: aiohttp.ClientSession,
) -> None:
    checkout = await _pay_pressed(system, mine)
    rid = await _reservation_id(system, checkout)
    page, _ = await _get(mine, f"{_base(system)}/pay/{_token(mine)}/cancel")
    assert "Payment cancelled" in page
    assert (await Driver(system, mine).status(rid))["state"] == "Cancelled"
    await _another_driver_pays(system, other)
    await _expired_at_stripe(system, rid)
    # The first driver's start page is the plain one again: the other's charge is busy.
    start, _ = await _get(mine, f"{_base(system)}/c/CP-1/1", status=409)
    assert "Continue to payment" not in start


async def test_the_pending_window_frees_the_connector_and_closes_checkout(
    system: CentralSystem,
    clock: Clock,
    sim: SimulatedCharger,
    mine: aiohttp.ClientSession,
    other: aiohttp.ClientSession,
) -> None:
    checkout = await _pay_pressed(system, mine)
    rid = await _reservation_id(system, checkout)
    busy, page = await _get(other, f"{_base(system)}/c/CP-1/1", status=409)
    # How long at most, and a page that reloads itself into the start page.
    assert "free again in at most 5 min." in busy
    assert '<meta http-equiv="refresh" content="15; url=/c/CP-1/1">' in busy
    assert page.headers["Cache-Control"] == "no-store"
    german, _ = await _get(other, f"{_base(system)}/c/CP-1/1?lang=de", status=409)
    assert "in höchstens 5 Min. wieder frei" in german and "aktualisiert sich" in german
    unpaid, _ = await _get(mine, f"{_base(system)}/c/CP-1/1?lang=de")
    assert "Weiter zur Zahlung" in unpaid and "höchstens 5 Min. für Sie" in unpaid
    for phone, status in ((other, 409), (mine, 200)):  # back to English (a cookie keeps it)
        await _get(phone, f"{_base(system)}/c/CP-1/1?lang=en", status=status)

    clock.ahead = timedelta(seconds=PENDING_WINDOW - 60)
    busy, _ = await _get(other, f"{_base(system)}/c/CP-1/1", status=409)
    assert "free again in at most 1 min." in busy
    clock.ahead = timedelta(seconds=PENDING_WINDOW + 1)
    await system.coordinator.tick()
    assert (await Driver(system, mine).status(rid))["state"] == "Expired"
    await _expired_at_stripe(system, rid)
    free, _ = await _get(other, f"{_base(system)}/c/CP-1/1")
    assert 'id="pay"' in free and "refresh" not in free
    await _another_driver_pays(system, other)


async def test_a_payment_after_the_pending_window_is_released(
    system: CentralSystem, clock: Clock, sim: SimulatedCharger, mine: aiohttp.ClientSession
) -> None:
    checkout = await _pay_pressed(system, mine)
    rid = await _reservation_id(system, checkout)
    # The window has passed, but nothing has closed the Checkout page yet: the driver pays.
    clock.ahead = timedelta(seconds=PENDING_WINDOW + 1)
    await Driver(system, mine).pay(checkout)
    driver = Driver(system, mine)

    async def released() -> bool:
        return (await driver.status(rid))["hold"] == "Released"

    await eventually(released)
    assert (await driver.status(rid))["state"] == "Expired"
    assert system.sandbox is not None
    (entry,) = system.sandbox.ledger().values()
    assert entry["amount_held"] == 0 and entry["amount_captured"] == 0
    assert _held(system) == 0


async def test_pay_again_after_paying_leads_to_the_session(
    system: CentralSystem, sim: SimulatedCharger, mine: aiohttp.ClientSession
) -> None:
    first, _ = await _get(mine, f"{_base(system)}/c/CP-1/1")
    checkout = await _press_pay(system, mine, _csrf(first))
    rid = await _reservation_id(system, checkout)
    await Driver(system, mine).pay(checkout)
    await Driver(system, mine).wait_for_state(rid, "AwaitingPlug")
    # Back twice to the page that said Available, then Pay: the driver's own session.
    assert await _press_pay(system, mine, _csrf(first)) == f"/session/{_token(mine)}"
    assert len(await system.db.fetchall("SELECT id FROM reservations")) == 1


async def test_driver_pages_with_live_state_are_not_cached(
    system: CentralSystem, sim: SimulatedCharger, mine: aiohttp.ClientSession
) -> None:
    base = _base(system)
    _, start = await _get(mine, f"{base}/c/CP-1/1")
    await _pay_pressed(system, mine)
    _, unpaid = await _get(mine, f"{base}/c/CP-1/1")
    _, session = await _get(mine, f"{base}/session/{_token(mine)}")
    _, cancelled = await _get(mine, f"{base}/pay/{_token(mine)}/cancel")
    for page in (start, unpaid, session, cancelled):
        assert page.headers["Cache-Control"] == "no-store", page.url


async def test_a_pending_window_shorter_than_the_hand_over_window_bounds_both(
    make_config: MakeConfig,
) -> None:
    """The hand-over window never outlasts the pending window; the hand-over gives the whole
    pending window, not Checkout's 30 minutes."""
    config = make_config(
        tariff=TARIFF,
        payments={"pending_window": 30, "handover_window": 120, "tick_interval": 3600},
    )
    async with CentralSystem(config) as system:
        tariff = await system.payment_service.tariff_for("CP-1", 1)
        made, _ = await system.coordinator.create("CP-1", 1, tariff, None)
        assert made.payment_deadline == made.created_at + timedelta(seconds=30)
        handed = await system.coordinator.hand_over(made.id, made.created_at)
        assert handed is not None and handed.payment_deadline == made.payment_deadline


async def test_the_hand_over_gives_the_pending_window(
    system: CentralSystem, sim: SimulatedCharger, mine: aiohttp.ClientSession
) -> None:
    checkout = await _pay_pressed(system, mine)
    r = await system.payment_service.get(await _reservation_id(system, checkout))
    assert r is not None
    assert r.payment_deadline == r.created_at + timedelta(seconds=PENDING_WINDOW)
    assert _checkout_expires_at(system, r.checkout_session_id) >= r.created_at + timedelta(
        minutes=30
    )


def _checkout_expires_at(system: CentralSystem, session_id: str | None) -> datetime:
    """Checkout's own expiry, as Stripe has it: never shorter than Stripe's 30 minutes."""
    assert system.sandbox is not None and session_id is not None
    return datetime.fromtimestamp(system.sandbox.get(session_id)["expires_at"], UTC)


async def test_a_refused_pay_names_the_charger(
    system: CentralSystem,
    sim: SimulatedCharger,
    mine: aiohttp.ClientSession,
    other: aiohttp.ClientSession,
) -> None:
    """Pay pressed on a start page opened while the connector was free: the busy answer names
    the charger as the start page does, never by its id alone."""
    start, _ = await _get(other, f"{_base(system)}/c/CP-1/1")
    await _pay_pressed(system, mine)
    async with other.post(
        f"{_base(system)}/start",
        data={"cp": "CP-1", "conn": "1", "csrf": _csrf(start)},
        allow_redirects=False,
    ) as answer:
        page = await answer.text()
        assert answer.status == 409, page
    assert "Harbour car park" in page


async def test_checkouts_line_item_names_the_charger(
    system: CentralSystem, sim: SimulatedCharger, mine: aiohttp.ClientSession
) -> None:
    """What the driver pays for on Stripe's page is the charger by its name, not its id."""
    checkout = await _pay_pressed(system, mine)
    page, _ = await _get(mine, checkout)
    assert "Charging at Harbour car park, connector 1" in page
