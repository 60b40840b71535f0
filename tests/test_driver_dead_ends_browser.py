"""The driver's dead ends walked in headless Chromium as a driver walks them, by clicking, at
390 x 844 and 320 x 640: Back after a declined card or a payment, another driver waiting for
an unpaid hold, the failure pages, the charger offline mid-charge, the session page's
buttons. No page visited reaches past the screen's right edge. The 390 x 844 walks write
the README's screenshots (docs/screenshots/) when CSMS_README_SCREENSHOTS is set, and all
of them write to test-artifacts/screenshots/."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from selenium import webdriver

from csms.app import CentralSystem
from simulators.chargepoint import SimulatedCharger
from tests.browser import PHONE, SMALL_PHONE, Browser
from tests.conftest import MakeConfig
from tests.payflow import DECLINED, TARIFF, VISA, charger

CONTACT = "+49 30 1234 5678"
README_SCREENSHOTS = Path("docs/screenshots")
SIZES = pytest.mark.parametrize("size", [PHONE, SMALL_PHONE], ids=["390x844", "320x640"])

MakeSystem = Callable[..., AbstractAsyncContextManager[CentralSystem]]


@pytest.fixture
def make_system(make_config: MakeConfig) -> MakeSystem:
    @asynccontextmanager
    async def running(
        operator: dict[str, Any] | None = None, **payments: Any
    ) -> AsyncIterator[CentralSystem]:
        config = make_config(
            tariff=TARIFF,
            operator={"support_phone": CONTACT, **(operator or {})},
            payments={"minimum_energy_wh": 100, **payments},
        )
        async with CentralSystem(config) as system:
            await system.chargers.register("CP-1", name="Harbour car park")
            yield system

    return running


@pytest.fixture
async def system(make_system: MakeSystem) -> AsyncIterator[CentralSystem]:
    async with make_system() as running:
        yield running


@pytest.fixture
async def sim(system: CentralSystem) -> AsyncIterator[SimulatedCharger]:
    simulated = charger(system, speed=60, unplug_after_stop=0.1)
    await simulated.start()
    try:
        yield simulated
    finally:
        await simulated.stop()


@pytest.fixture
async def phone(chromium: webdriver.Chrome, size: tuple[int, int]) -> AsyncIterator[Browser]:
    chromium.delete_all_cookies()
    browser = Browser(chromium)
    await browser.emulate_phone(size=size)
    first = await browser.current_tab()
    try:
        yield browser
    finally:
        await browser.close_other_tabs(keep=first)
        await browser.emulate_phone(on=False)
        chromium.delete_all_cookies()


def _base(system: CentralSystem) -> str:
    return f"http://127.0.0.1:{system.http.port}"


async def _fits(phone: Browser, size: tuple[int, int]) -> None:
    """Nothing on the page reaches past the screen's right edge."""
    assert await phone.viewport_width() == size[0]
    assert await phone.overflowing() == [], await phone.url()
    assert await phone.page_width() <= size[0]


async def _shot(phone: Browser, size: tuple[int, int], name: str, readme: str = "") -> None:
    saved = await phone.screenshot(f"dead-end-{name}-{size[0]}")
    if readme and size == PHONE and os.environ.get("CSMS_README_SCREENSHOTS"):
        shutil.copyfile(saved, README_SCREENSHOTS / f"{readme}.png")


async def _scan_and_press_pay(phone: Browser, system: CentralSystem, size: tuple[int, int]) -> None:
    await phone.open(f"{_base(system)}/c/CP-1/1")
    await phone.until(lambda: phone.visible("pay"))
    await _fits(phone, size)
    await phone.click("pay")
    await phone.until(lambda: _url_has(phone, "/pay/cs_"))
    await _fits(phone, size)


async def _fill_card(phone: Browser, card: str) -> None:
    if not await phone.attribute("email", "value"):
        await phone.fill("email", "driver@example.com")
    await phone.fill("cardNumber", card)
    await phone.fill("cardExpiry", "12 / 34")
    await phone.fill("cardCvc", "123")
    await phone.fill("billingName", "Test Driver")
    await phone.click("submit")


async def _paid(phone: Browser, system: CentralSystem, size: tuple[int, int]) -> str:
    """Scan, pay with a good card, land on the session page: its URL."""
    await _scan_and_press_pay(phone, system, size)
    await _fill_card(phone, VISA)
    await phone.until(lambda: _stage_is(phone, "waiting_for_plug"))
    await _fits(phone, size)
    return await phone.url()


async def _left_open_tab(phone: Browser, system: CentralSystem, size: tuple[int, int]) -> str:
    """The start page in a second tab, left open (never reloaded) while the driver goes on in
    the first one, which is current again: the second tab's handle."""
    first = await phone.current_tab()
    tab = await phone.new_tab(f"{_base(system)}/c/CP-1/1")
    await phone.emulate_phone(size=size)
    await phone.until(lambda: phone.visible("pay"))
    await _fits(phone, size)
    await phone.switch_to(first)
    return tab


async def _reservations(system: CentralSystem) -> list[dict]:
    return await system.db.fetchall("SELECT id, state FROM reservations")


@SIZES
async def test_back_after_a_declined_card_leads_to_ones_own_payment(
    system: CentralSystem, sim: SimulatedCharger, phone: Browser, size: tuple[int, int]
) -> None:
    left_open = await _left_open_tab(phone, system, size)
    await _scan_and_press_pay(phone, system, size)
    checkout = await phone.url()
    await _fill_card(phone, DECLINED)
    await phone.until(lambda: _text_has(phone, "declined"))
    await _fits(phone, size)
    await _shot(phone, size, "declined", readme="7-declined")

    await phone.back()
    await phone.back()
    # The start page again, reloaded (never cached): the driver's own payment.
    await phone.until(lambda: phone.visible("continue"))
    assert (await phone.url()).endswith("/c/CP-1/1")
    text = await phone.page_text()
    assert "Your payment is not finished" in text and "another driver" not in text
    assert await phone.text("continue") == "Continue to payment"
    assert await phone.text("cancel") == "Cancel"
    await _fits(phone, size)
    await _shot(phone, size, "unpaid", readme="9-unpaid")
    # Continue leads to the same Checkout, no second reservation.
    await phone.click("continue")
    await phone.until(lambda: _url_has(phone, "/pay/cs_"))
    assert await phone.url() == checkout
    assert len(await _reservations(system)) == 1
    await phone.back()
    await phone.until(lambda: phone.visible("cancel"))

    # "Pay and charge" on a start page left open from before: the same payment again.
    await phone.switch_to(left_open)
    assert await phone.text("pay") == "Pay and charge"
    await phone.click("pay")
    await phone.until(lambda: _url_has(phone, "/pay/cs_"))
    assert await phone.url() == checkout
    assert "another driver" not in await phone.page_text()
    assert len(await _reservations(system)) == 1
    await phone.back()
    await phone.until(lambda: phone.visible("cancel"))
    assert "another driver" not in await phone.page_text()
    await _fits(phone, size)

    # Cancel: the connector is free, the start page offers Pay again.
    await phone.click("cancel")
    await phone.until(lambda: _text_has(phone, "cancelled"))
    assert "/session/" in await phone.url()
    await _fits(phone, size)
    ((row),) = await _reservations(system)
    assert row["state"] == "Cancelled"
    assert not await phone.visible("stop-form") and not await phone.visible("continue")
    assert await phone.text("retry") == "Start again"
    await phone.click("retry")
    await phone.until(lambda: phone.visible("pay"))
    assert (await phone.url()).endswith("/c/CP-1/1")
    assert not await phone.visible("continue")
    await phone.click("pay")
    await phone.until(lambda: _url_has(phone, "/pay/cs_"))
    assert await phone.url() != checkout


@SIZES
async def test_back_after_paying_leads_to_the_session(
    system: CentralSystem, sim: SimulatedCharger, phone: Browser, size: tuple[int, int]
) -> None:
    left_open = await _left_open_tab(phone, system, size)
    session = await _paid(phone, system, size)
    await phone.back()
    await phone.back()
    await phone.until(lambda: _url_has(phone, "/c/CP-1/1"))
    text = await phone.page_text()
    assert "in progress" in text and "busy" not in text and "another driver" not in text
    assert not await phone.visible("pay")  # no second payment
    await _fits(phone, size)
    await phone.click("back")
    await phone.until(lambda: _stage_is(phone, "waiting_for_plug"))
    assert await phone.url() == session
    # "Pay and charge" on a start page left open from before: the session, not busy.
    await phone.switch_to(left_open)
    assert await phone.text("pay") == "Pay and charge"
    await phone.click("pay")
    await phone.until(lambda: _url_has(phone, "/session/"))
    assert await phone.url() == session
    assert "busy" not in (await phone.page_text()).lower()
    await phone.until(lambda: _stage_is(phone, "waiting_for_plug"))
    await _fits(phone, size)
    assert len(await _reservations(system)) == 1


@SIZES
async def test_another_driver_waits_on_the_busy_page_until_it_is_free(
    system: CentralSystem, sim: SimulatedCharger, phone: Browser, size: tuple[int, int]
) -> None:
    base = _base(system)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as first:
        # The first driver presses Pay on their own phone and leaves Checkout unpaid.
        async with first.get(f"{base}/c/CP-1/1") as page:
            start = await page.text()
        csrf = re.search(r'name="csrf" value="([^"]+)"', start)
        assert csrf
        async with first.post(
            f"{base}/start",
            data={"cp": "CP-1", "conn": "1", "csrf": csrf.group(1)},
            allow_redirects=False,
        ) as pressed:
            assert pressed.status == 303
        (token,) = [c.value for c in first.cookie_jar if c.key == "csms_session"]

        # This phone (no cookie of theirs) finds the connector busy, and for how long.
        await phone.open(f"{base}/c/CP-1/1")
        text = await phone.page_text()
        assert "Connector busy" in text and "reserved by another driver" in text
        assert "free again in at most 5 min." in await phone.text("until")
        assert await phone.visible("refreshing")
        assert not await phone.visible("pay")
        await _fits(phone, size)
        await _shot(phone, size, "busy", readme="8-busy")

        async with first.post(
            f"{base}/session/{token}/stop", data={"csrf": csrf.group(1)}, allow_redirects=False
        ) as cancelled:
            assert cancelled.status == 303
    # The busy page turns into the start page by itself.
    await phone.until(lambda: phone.visible("pay"), timeout=40)
    assert (await phone.url()).endswith("/c/CP-1/1")
    assert not await phone.visible("refreshing")
    await _fits(phone, size)


def _no_internal_text(text: str) -> None:
    for internal in ("pi_", "res_", "cs_", "No such", "payment_intent", "Stripe", "error"):
        assert internal not in text, internal


@SIZES
async def test_start_timeout_page_in_plain_words_and_start_again(
    make_system: MakeSystem, phone: Browser, size: tuple[int, int]
) -> None:
    async with make_system(start_window=2, tick_interval=0.05) as system:
        sim = charger(system)
        await sim.start()
        try:
            await _paid(phone, system, size)
            # Never plugged in: the page says so, live.
            await phone.until(lambda: phone.visible("retry"), timeout=30)
            await phone.until(lambda: _text_has(phone, "has been released"))
            assert await phone.text("reason-text") == (
                "The charge did not start in time: was the car plugged in?"
            )
            assert await phone.text("money") == (
                "Nothing was charged: the reservation on your card has been released."
            )
            assert await phone.text("contact") == f"Questions? Contact {CONTACT}"
            assert not await phone.visible("stop-form") and not await phone.visible("hold")
            _no_internal_text(await phone.page_text())
            await _fits(phone, size)
            await _shot(phone, size, "timeout", readme="11-timeout")
            await phone.click("retry")
            await phone.until(lambda: phone.visible("pay"))
            assert (await phone.url()).endswith("/c/CP-1/1")
            await _fits(phone, size)
        finally:
            await sim.stop()


@SIZES
async def test_review_page_in_plain_words_with_the_contact(
    system: CentralSystem, sim: SimulatedCharger, phone: Browser, size: tuple[int, int]
) -> None:
    await _paid(phone, system, size)
    await sim.plug_in(1)
    await phone.until(lambda: _stage_is(phone, "charging"))
    (row,) = await _reservations(system)
    r = await system.reservations.get(row["id"])
    assert r is not None and r.payment_intent_id and system.sandbox is not None
    system.sandbox.fail_next(
        1, 400, path=f"/v1/payment_intents/{r.payment_intent_id}/capture", method="POST"
    )
    await phone.click("stop")
    await phone.until(lambda: phone.visible("reason"), timeout=30)
    assert await phone.text("reason-text") == (
        "Settling the payment did not go through. We are checking it."
    )
    await phone.until(lambda: _text_has(phone, "is being checked"))
    assert await phone.text("contact") == f"Questions? Contact {CONTACT}"
    assert not await phone.visible("retry")  # the money is still open: no retry
    assert not await phone.visible("stop-form") and not await phone.visible("power")
    _no_internal_text(await phone.page_text())
    await _fits(phone, size)
    await _shot(phone, size, "review")


@SIZES
async def test_offline_mid_charge_is_shown_and_rescanning_leads_back(
    system: CentralSystem, sim: SimulatedCharger, phone: Browser, size: tuple[int, int]
) -> None:
    session = await _paid(phone, system, size)
    await sim.plug_in(1)
    await phone.until(lambda: _stage_is(phone, "charging"))
    assert not await phone.visible("offline")

    await sim.go_offline()
    await phone.until(lambda: _text_is(phone, "stage", "The charger has lost its connection"))
    assert await phone.visible("offline")
    assert "you pay only for the energy it reports" in await phone.text("offline")
    assert not await phone.visible("power")
    await _fits(phone, size)
    await _shot(phone, size, "offline", readme="10-offline")

    # Scanning the QR code again: the way back to the session, not a dead end.
    await phone.open(f"{_base(system)}/c/CP-1/1")
    assert "Nothing was charged" not in await phone.page_text()
    assert await phone.text("back") == "See your session"
    await _fits(phone, size)
    await phone.click("back")
    await phone.until(lambda: _url_has(phone, "/session/"))
    assert await phone.url() == session
    assert await phone.visible("offline")
    await _fits(phone, size)

    await sim.reconnect()
    await phone.until(lambda: _hidden(phone, "offline"))
    await phone.until(lambda: _stage_is(phone, "charging"))


@SIZES
async def test_session_buttons_cancel_then_stop_then_final_figures(
    system: CentralSystem, sim: SimulatedCharger, phone: Browser, size: tuple[int, int]
) -> None:
    await phone.open(f"{_base(system)}/c/CP-1/1")
    await phone.until(lambda: phone.visible("pay"))
    await _fits(phone, size)
    await _shot(phone, size, "start", readme="1-start")
    await phone.fill("email", "driver@example.com")
    await phone.click("pay")
    await phone.until(lambda: _url_has(phone, "/pay/cs_"))
    await _fits(phone, size)
    await _shot(phone, size, "checkout", readme="2-checkout")
    await _fill_card(phone, VISA)
    await phone.until(lambda: _stage_is(phone, "waiting_for_plug"))

    # Before plug-in: Cancel, and nothing is charged.
    assert await phone.text("stop") == "Cancel"
    assert await phone.attribute("stop", "data-kind") == "cancel"
    assert not await phone.visible("power")
    await _fits(phone, size)
    await _shot(phone, size, "plug-in")
    await phone.click("stop")
    await phone.until(lambda: phone.visible("retry"))
    assert "cancelled" in await phone.text("reason-text")
    assert not await phone.visible("stop-form")
    await _fits(phone, size)

    # Start again, pay, plug in: Stop charging while charging.
    await phone.click("retry")
    await phone.until(lambda: phone.visible("pay"))
    await phone.click("pay")
    await phone.until(lambda: _url_has(phone, "/pay/cs_"))
    await _fill_card(phone, VISA)
    await phone.until(lambda: _stage_is(phone, "waiting_for_plug"))
    await sim.plug_in(1)
    await phone.until(lambda: _text_is(phone, "stop", "Stop charging"))
    assert await phone.attribute("stop", "data-kind") == "stop"
    await phone.until(lambda: phone.visible("power"))
    await phone.until(lambda: _energy_over(phone, 0.3))
    assert await phone.text("cost-label") == "Cost so far"
    await _fits(phone, size)
    await _shot(phone, size, "charging", readme="4-charging")

    # After the stop: final figures, no power, no button, the receipt.
    await phone.click("stop")
    await phone.until(lambda: phone.visible("receipt"), timeout=30)
    assert not await phone.visible("power") and not await phone.visible("power-label")
    assert not await phone.visible("hold") and not await phone.visible("stop-form")
    assert await phone.text("cost-label") == "Cost"
    assert "was charged to your card" in await phone.text("money")
    await _fits(phone, size)
    await _shot(phone, size, "final")
    await phone.click("receipt")
    await phone.until(lambda: _text_has(phone, "Charged to your card"))
    await _fits(phone, size)
    await _shot(phone, size, "receipt", readme="6-receipt")


@SIZES
async def test_the_smaller_dead_ends_on_a_phone(
    make_system: MakeSystem, phone: Browser, size: tuple[int, int]
) -> None:
    """A connector's status in the driver's words (never OCPP's), Checkout naming the charger
    (never its id), one short status line for screen readers (not the whole live card), and
    the receipt's times in the charger's zone, named."""
    async with make_system(operator={"time_zone": "Europe/Berlin"}) as system:
        sim = charger(system, speed=60, unplug_after_stop=0.1)
        await sim.start()
        try:
            await sim.fault(2)
            await sim.wait_for_status(2, "Faulted")
            await phone.open(f"{_base(system)}/c/CP-1/2")
            await phone.until(lambda: _text_has(phone, "out of order"))
            text = await phone.page_text()
            for raw in ("Faulted", "Unavailable", "SuspendedEV", "Preparing"):
                assert raw not in text, raw
            await _fits(phone, size)

            await phone.open(f"{_base(system)}/c/CP-1/1")
            await phone.until(lambda: phone.visible("pay"))
            await phone.click("pay")
            await phone.until(lambda: _url_has(phone, "/pay/cs_"))
            assert "Charging at Harbour car park, connector 1" in await phone.page_text()
            await _fill_card(phone, VISA)
            await phone.until(lambda: _stage_is(phone, "waiting_for_plug"))
            await sim.plug_in(1)
            await phone.until(lambda: _text_is(phone, "stop", "Stop charging"))
            await phone.until(lambda: _energy_over(phone, 0.3))
            live = await phone.evaluate(
                "return Array.from(document.querySelectorAll('[aria-live]')).map(e => e.id)"
            )
            assert live == ["stage"]
            await _fits(phone, size)

            await phone.click("stop")
            await phone.until(lambda: phone.visible("receipt"), timeout=30)
            await phone.click("receipt")
            await phone.until(lambda: _text_has(phone, "Charged to your card"))
            text = await phone.page_text()
            assert re.search(r"\b(CET|CEST)\b", text) and "UTC" not in text, text
            await _fits(phone, size)
        finally:
            await sim.stop()


async def _url_has(phone: Browser, part: str) -> bool:
    return part in await phone.url()


async def _stage_is(phone: Browser, stage: str) -> bool:
    return await phone.attribute("stage", "data-stage") == stage


async def _text_has(phone: Browser, words: str) -> bool:
    return words.lower() in (await phone.page_text()).lower()


async def _text_is(phone: Browser, element_id: str, text: str) -> bool:
    return await phone.text(element_id) == text


async def _hidden(phone: Browser, element_id: str) -> bool:
    return not await phone.visible(element_id)


async def _energy_over(phone: Browser, kwh: float) -> bool:
    return float((await phone.text("energy")).split()[0]) > kwh
