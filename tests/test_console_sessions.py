"""The console's session pages over HTTP, with real paid sessions (charger simulator, Stripe
sandbox and SDK over 127.0.0.1): the list and its filters, a session's page with its
history, meter chart, effects, Stripe ids and audit, and the actions each role may take:
a partial refund that reaches Stripe under the operator's name, stop by support, a review
resolved by finance, and refusals that change nothing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from csms.app import CentralSystem
from csms.console import sessions
from simulators.chargepoint import SimulatedCharger
from tests.console_fixtures import console_client
from tests.payflow import Driver, finished_session
from tests.test_reviews import capture_refused
from tests.waiting import eventually


def rows_of(page: str) -> list[str]:
    """The session ids the list shows, in order."""
    return re.findall(r'<tr id="row-([^"]+)"', page)


def ledger(system: CentralSystem, rid_pi: str) -> dict[str, Any]:
    assert system.sandbox is not None
    return system.sandbox.ledger()[rid_pi]


async def refunds_done(system: CentralSystem, rid: str) -> None:
    async def done() -> bool:
        found = await system.payment_service.refunds_of(rid)
        return bool(found) and all(x.status == "succeeded" for x in found)

    await eventually(done, timeout=10)


async def test_the_list_and_its_filters(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger
) -> None:
    rid, _ = await finished_session(driver, sim)
    today = datetime.now(UTC).date()
    async with console_client(system, "viewer") as viewer:
        page = await viewer.text("/console/sessions")
        assert rows_of(page) == [rid]
        row = page[page.index(f'id="row-{rid}"') :]
        row = row[: row.index("</tr>")]
        assert f'data-live="session:{rid}:state">Completed<' in row
        assert re.search(rf'data-live="session:{rid}:energy">\d+\.\d{{3}} kWh<', row)
        assert "CP-1 / 1" in row
        assert "€2.50" in row  # the hold, in major units
        r = await system.payment_service.get(rid)
        assert r is not None and r.captured_amount > 0
        captured = f"€{r.captured_amount / 100:.2f}"
        assert captured in row and "€0.00" in row  # captured, nothing refunded

        day = today.isoformat()
        for query, shown in (
            ("state=Completed", [rid]),
            ("state=Charging", []),
            ("charger=CP-1", [rid]),
            ("charger=CP-9", []),
            ("review=1", []),
            (f"from={day}&to={day}", [rid]),
            (f"from={(today + timedelta(days=1)).isoformat()}", []),
            (f"to={(today - timedelta(days=1)).isoformat()}", []),
        ):
            page = await viewer.text(f"/console/sessions?{query}")
            assert rows_of(page) == shown, query
            if not shown:
                assert "No sessions match." in page
        # The form keeps what was chosen.
        page = await viewer.text("/console/sessions?state=Completed&charger=CP-1")
        assert '<option value="Completed" selected>' in page
        assert 'name="charger" value="CP-1"' in page

        for query, field in (
            ("state=Charged", "state"),
            ("from=2026-13-01", "from"),
            ("from=2026-12-02&to=2026-12-01", "to"),
            ("review=1&state=Completed", "state"),
            ("cursor=nonsense", "cursor"),
            (f"charger={'x' * 49}", "charger"),
        ):
            response = await viewer.get(f"/console/sessions?{query}")
            assert response.status == 400, query
            assert f'id="filter-error">{field}: ' in await response.text(), query


async def test_the_page_of_a_session(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger
) -> None:
    rid, _ = await finished_session(driver, sim)
    r = await system.payment_service.get(rid)
    assert r is not None and r.payment_intent_id and r.checkout_session_id
    async with console_client(system, "viewer") as viewer:
        page = await viewer.text(f"/console/sessions/{rid}")
        live = f'data-live="session:{rid}:state">Completed'
        assert f'id="state" data-state="Completed" {live}' in page
        # Summary: tariff snapshot, amounts, Stripe's ids.
        assert "€0.40 per kWh" in page and "€0.50 per session" in page
        assert re.search(r'id="held">€2\.50<', page)
        assert f'id="captured">€{r.captured_amount / 100:.2f}<' in page
        assert r.payment_intent_id in page and r.checkout_session_id in page
        # History, chart, effects and audit.
        history = page[page.index('id="history"') : page.index('id="h-refunds"')]
        record = await system.payment_service.record(rid)
        assert record is not None and len(record.history) >= 4
        for line in record.history:
            assert f"<td>{line['event']}</td>" in history, line
        for state in ("AwaitingPlug", "Charging", "Completed"):
            assert f"<td>{state}</td>" in history, state
        assert "<svg" in page and f'id="chart-title">Meter of session {rid}</title>' in page
        assert 'class="energy"' in page and "Energy rose from" in page
        effects = page[page.index('id="effects"') : page.index('id="h-audit"')]
        assert "Capture" in effects and "done" in effects
        audit = page[page.index('id="audit"') :]
        assert "captured" in audit
        # A viewer is shown no action.
        assert 'id="refund-form"' not in page and 'id="stop"' not in page
        assert (await viewer.get("/console/sessions/res_nope")).status == 404


async def test_a_partial_refund_by_finance(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger
) -> None:
    rid, _ = await finished_session(driver, sim)
    r = await system.payment_service.get(rid)
    assert r is not None and r.payment_intent_id
    async with console_client(system, "viewer") as viewer:
        refused = await viewer.post(f"/console/sessions/{rid}/refund", {"amount": "0.10"})
        assert refused.status == 403 and "finance" in await refused.text()
    async with console_client(system, "support") as support:
        refused = await support.post(f"/console/sessions/{rid}/refund", {"amount": "0.10"})
        assert refused.status == 403
    assert await system.payment_service.refunds_of(rid) == []

    async with console_client(system, "finance") as finance:
        page = await finance.text(f"/console/sessions/{rid}")
        assert 'id="refund-form"' in page and 'id="stop"' not in page
        key = re.search(r'name="key" value="([0-9a-f]+)"', page)
        assert key is not None
        # Wrong amounts change nothing, each with the field named.
        for amount, reason, status, said in (
            ("abc", "x", 400, "amount: not a number"),
            ("0.001", "x", 400, "more decimals"),
            ("0", "x", 400, "amount: must be more than 0"),
            ("99.00", "x", 409, "still refundable"),
            ("0.20", "", 400, "reason: "),
        ):
            response = await finance.post(
                f"/console/sessions/{rid}/refund", {"amount": amount, "reason": reason}
            )
            assert response.status == status, amount
            text = await response.text()
            assert said in text and f'href="/console/sessions/{rid}" id="back"' in text, amount
        assert await system.payment_service.refunds_of(rid) == []

        form = {"amount": "0.20", "reason": "slow charger", "key": key[1]}
        done = await finance.post(f"/console/sessions/{rid}/refund", form)
        assert done.status == 303 and done.headers["Location"] == f"/console/sessions/{rid}"
        again = await finance.post(f"/console/sessions/{rid}/refund", form)  # sent twice
        assert again.status == 303
        await refunds_done(system, rid)
        page = await finance.text(f"/console/sessions/{rid}")
        assert "Refund of €0.20 asked of Stripe." in page  # the flash
        refunds = page[page.index('id="refunds"') : page.index('id="h-effects"')]
        assert "€0.20" in refunds and "succeeded" in refunds and "user:finance" in refunds
        assert re.search(r'id="refunded">€0\.20', page)

    assert [x.amount for x in await system.payment_service.refunds_of(rid)] == [20]
    assert ledger(system, r.payment_intent_id)["amount_refunded"] == 20
    lines = await system.audit.lines(rid)
    asked = [line for line in lines if line["action"] == "refund requested"]
    assert [(line["actor"], line["amount"], line["detail"]) for line in asked] == [
        ("user:finance", 20, "slow charger")
    ]


async def test_support_stops_a_session_but_may_not_refund(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger
) -> None:
    rid = await driver.start_charging(sim)
    async with console_client(system, "support") as support:
        page = await support.text(f"/console/sessions/{rid}")
        assert 'id="stop"' in page and 'id="refund-form"' not in page
        forged = await support.post(f"/console/sessions/{rid}/stop", {"csrf": "forged"})
        assert forged.status == 403
        assert (await driver.status(rid))["state"] == "Charging"
        stopped = await support.post(f"/console/sessions/{rid}/stop")
        assert stopped.status == 303
        await driver.wait_for_state(rid, "Completed")
        refused = await support.post(f"/console/sessions/{rid}/refund", {"reason": "x"})
        assert refused.status == 403 and "finance" in await refused.text()
        page = await support.text(f"/console/sessions/{rid}")
        assert "Stop requested: the session is" in page
        assert 'id="stop"' not in page  # over: nothing to stop
    record = await system.payment_service.record(rid)
    assert record is not None
    assert "StopRequested" in [line["event"] for line in record.history], record.history
    assert await system.payment_service.refunds_of(rid) == []


async def test_a_review_resolved_by_finance(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger
) -> None:
    rid = await capture_refused(system, driver, sim)
    r = await system.payment_service.get(rid)
    assert r is not None and r.payment_intent_id
    async with console_client(system, "support") as support:
        assert 'id="review-form"' not in await support.text(f"/console/sessions/{rid}")
        refused = await support.post(f"/console/sessions/{rid}/review", {"action": "release"})
        assert refused.status == 403
    async with console_client(system, "finance") as finance:
        assert rows_of(await finance.text("/console/sessions?review=1")) == [rid]
        page = await finance.text(f"/console/sessions/{rid}")
        assert 'id="review-form"' in page
        for form, status, said in (
            ({"action": "retry-capture", "amount": "9.99"}, 409, "at most"),
            ({"action": "resolve", "note": "looked"}, 409, "hold is still on the card"),
            ({"action": "resolve", "note": ""}, 400, "note: "),
            ({"action": "shrug"}, 400, "action: "),
        ):
            response = await finance.post(f"/console/sessions/{rid}/review", form)
            assert response.status == status, form
            assert said in await response.text(), form
        assert (await driver.status(rid))["state"] == "NeedsReview"

        done = await finance.post(f"/console/sessions/{rid}/review", {"action": "release"})
        assert done.status == 303
        page = await finance.text(f"/console/sessions/{rid}")
        assert "Review: hold released; the session is Resolved." in page
        assert 'data-state="Resolved"' in page and 'id="review-form"' not in page
        assert rows_of(await finance.text("/console/sessions?review=1")) == []

    async def released() -> bool:
        return ledger(system, r.payment_intent_id)["status"] == "canceled"

    await eventually(released)
    actors = {line["action"]: line["actor"] for line in await system.audit.lines(rid)}
    assert actors["release requested in review"] == "user:finance"


async def test_support_cancels_before_the_charge_and_a_viewer_may_not(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger
) -> None:
    status, created = await driver.create(sim.charge_point_id, 1)
    assert status == 200, created
    rid = created["reservationId"]
    await driver.pay(created["checkoutUrl"])
    await driver.wait_for_state(rid, "AwaitingPlug")
    async with console_client(system, "viewer") as viewer:
        for action in ("stop", "cancel"):
            assert (await viewer.post(f"/console/sessions/{rid}/{action}")).status == 403
    assert (await driver.status(rid))["state"] == "AwaitingPlug"
    async with console_client(system, "support") as support:
        page = await support.text(f"/console/sessions/{rid}")
        assert 'id="cancel"' in page and 'id="stop"' in page
        cancelled = await support.post(f"/console/sessions/{rid}/cancel")
        assert cancelled.status == 303
        view = await driver.wait_for_state(rid, "Cancelled")
        assert view["hold"] in ("Releasing", "Released")
        page = await support.text(f"/console/sessions/{rid}")
        assert "Cancelled: the session is Cancelled." in page
        assert 'id="cancel"' not in page
        again = await support.post(f"/console/sessions/{rid}/cancel")
        assert again.status == 303
        assert "Nothing to cancel: the session is Cancelled." in await support.text(
            f"/console/sessions/{rid}"
        )
        assert (await support.post("/console/sessions/res_nope/cancel")).status == 404


async def test_older_sessions_a_page_at_a_time(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger, monkeypatch: Any
) -> None:
    monkeypatch.setattr(sessions, "PAGE_SIZE", 1)
    first, _ = await finished_session(driver, sim)

    async def free() -> bool:
        return system.payment_service.connector_status("CP-1", 1) == "Available"

    await eventually(free)
    second, _ = await finished_session(driver, sim)
    async with console_client(system, "viewer") as viewer:
        page = await viewer.text("/console/sessions?charger=CP-1")
        assert rows_of(page) == [second]
        link = re.search(r'id="next-page" href="([^"]+)"', page)
        assert link is not None
        path = link[1].replace("&amp;", "&")
        assert "charger=CP-1" in path  # the filters go along
        page = await viewer.text(path)
        assert rows_of(page) == [first]
        assert 'id="next-page"' not in page
