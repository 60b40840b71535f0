"""A way out of NeedsReview, through the API and the CLI: retry the capture, release the
hold, or resolve with a note; each action audited under the API key that took it, each
refused (changing nothing) where it does not apply. Real server, charger simulator,
Stripe sandbox and SDK over 127.0.0.1; the money is checked in the sandbox's ledger."""

from __future__ import annotations

import json
from typing import Any

import pytest

from csms.app import CentralSystem
from simulators.chargepoint import SimulatedCharger
from tests.conftest import API_HEADERS
from tests.payflow import Driver, run_cli
from tests.waiting import eventually


@pytest.fixture
async def desk(system: CentralSystem) -> str:
    return await system.api_keys.create("desk")


async def capture_refused(system: CentralSystem, driver: Driver, sim: SimulatedCharger) -> str:
    """A charge whose capture Stripe refuses: in review with the hold still on the card."""
    rid = await driver.start_charging(sim)
    r = await system.reservations.get(rid)
    assert r is not None and r.payment_intent_id and system.sandbox is not None
    system.sandbox.fail_next(
        1, 400, path=f"/v1/payment_intents/{r.payment_intent_id}/capture", method="POST"
    )
    await driver.post(f"/api/payments/{rid}/stop")
    view = await driver.wait_for_state(rid, "NeedsReview")
    assert view["hold"] == "Held"
    return rid


async def review(
    driver: Driver, rid: str, action: str, key: str, body: Any = None
) -> tuple[int, dict[str, Any]]:
    async with driver.http.post(
        f"{driver.base}/api/payments/{rid}/review/{action}",
        headers={"X-API-Key": key},
        **({} if body is None else {"json": body}),
    ) as response:
        return response.status, await response.json()


def ledger(system: CentralSystem, payment_intent_id: str) -> dict[str, Any]:
    assert system.sandbox is not None
    return system.sandbox.ledger()[payment_intent_id]


async def audit(system: CentralSystem, rid: str) -> list[dict[str, Any]]:
    return await system.audit.lines(rid)


async def test_retry_capture_takes_the_price_and_names_the_key(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger, desk: str
) -> None:
    rid = await capture_refused(system, driver, sim)
    r = await system.reservations.get(rid)
    assert r is not None and r.payment_intent_id and r.breakdown is not None
    price = min(r.breakdown.total, r.hold_amount)
    assert ledger(system, r.payment_intent_id)["amount_captured"] == 0

    # Listed among the reviews.
    async with driver.http.get(
        f"{driver.base}/api/payments", params={"state": "NeedsReview"}, headers=API_HEADERS
    ) as response:
        listed = await response.json()
    assert [item["reservationId"] for item in listed["items"]] == [rid]

    # Refused, changing nothing: more than the price; a resolve while the hold is live.
    status, refused = await review(driver, rid, "retry-capture", desk, {"amount": price + 1})
    assert status == 409 and refused["error"]["code"] == "review_refused"
    assert f"at most {price}" in refused["error"]["message"]
    status, refused = await review(driver, rid, "resolve", desk, {"note": "looked at it"})
    assert status == 409 and "hold is still on the card" in refused["error"]["message"]
    assert (await driver.status(rid))["state"] == "NeedsReview"

    status, view = await review(driver, rid, "retry-capture", desk)  # no body: the price
    assert status == 200, view
    if view["state"] != "Completed":
        view = await driver.wait_for_state(rid, "Completed")
    assert (view["hold"], view["capturedAmount"]) == ("Captured", price)
    assert ledger(system, r.payment_intent_id)["amount_captured"] == price

    lines = await audit(system, rid)
    retried = [line for line in lines if line["action"] == "capture retried"]
    assert [(line["actor"], line["amount"]) for line in retried] == [("key:desk", price)]
    assert [line["action"] for line in lines].count("captured") == 1

    # Out of review now: every action is refused, naming the state.
    status, refused = await review(driver, rid, "release", desk)
    assert status == 409 and "Completed" in refused["error"]["message"]


async def test_retry_capture_of_a_smaller_amount(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger, desk: str
) -> None:
    rid = await capture_refused(system, driver, sim)
    status, view = await review(driver, rid, "retry-capture", desk, {"amount": 60})
    assert status == 200, view
    view = await driver.wait_for_state(rid, "Completed")
    assert view["capturedAmount"] == 60
    r = await system.reservations.get(rid)
    assert r is not None and r.payment_intent_id
    assert ledger(system, r.payment_intent_id)["amount_captured"] == 60


async def test_release_gives_the_hold_back_and_resolves(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger, desk: str
) -> None:
    rid = await capture_refused(system, driver, sim)
    status, view = await review(driver, rid, "release", desk)
    assert status == 200, view
    assert view["state"] == "Resolved"
    r = await system.reservations.get(rid)
    assert r is not None and r.payment_intent_id

    async def released() -> bool:
        return (await driver.status(rid))["hold"] == "Released"

    await eventually(released)
    book = ledger(system, r.payment_intent_id)
    assert (book["amount_captured"], book["status"]) == (0, "canceled")
    actors = {line["action"]: line["actor"] for line in await audit(system, rid)}
    assert actors["release requested in review"] == "key:desk"
    status, refused = await review(driver, rid, "retry-capture", desk)
    assert status == 409 and "Resolved" in refused["error"]["message"]


async def test_resolve_a_lost_hold_with_a_note(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger, desk: str
) -> None:
    rid = await driver.start_charging(sim)
    r = await system.reservations.get(rid)
    assert r is not None and r.payment_intent_id and system.sandbox is not None
    system.sandbox.cancel_payment_intent_elsewhere(r.payment_intent_id)
    view = await driver.wait_for_state(rid, "NeedsReview")
    assert view["hold"] == "Lost"

    status, refused = await review(driver, rid, "release", desk)
    assert status == 409 and "no hold to release" in refused["error"]["message"]
    status, refused = await review(driver, rid, "retry-capture", desk)
    assert status == 409 and "no hold to capture" in refused["error"]["message"]
    status, invalid = await review(driver, rid, "resolve", desk, {"note": ""})
    assert status == 400 and invalid["error"]["field"] == "note"

    status, view = await review(driver, rid, "resolve", desk, {"note": "card issuer cancelled"})
    assert status == 200, view
    assert view["state"] == "Resolved"
    resolved = [line for line in await audit(system, rid) if line["action"] == "review resolved"]
    assert [(line["actor"], line["detail"]) for line in resolved] == [
        ("key:desk", "card issuer cancelled")
    ]


async def test_unknown_payment_and_bad_bodies(driver: Driver, desk: str) -> None:
    for action in ("retry-capture", "release", "resolve"):
        status, body = await review(driver, "res_nope", action, desk, {"note": "x"})
        assert status in (400, 404), body
    status, body = await review(driver, "res_nope", "release", desk)
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = await review(driver, "res_nope", "retry-capture", desk, {"amount": 0})
    assert status == 400 and body["error"]["field"] == "amount"
    status, body = await review(driver, "res_nope", "resolve", desk, {})
    assert status == 400 and body["error"]["field"] == "note"
    status, body = await review(driver, "res_nope", "release", "wrong-key")
    assert status == 401


async def test_the_review_routes_are_documented(driver: Driver) -> None:
    async with driver.http.get(f"{driver.base}/api/openapi.json") as response:
        document = await response.json()
    paths = document["paths"]
    for action, body in (
        ("retry-capture", "RetryCaptureRequest"),
        ("release", None),
        ("resolve", "ResolveRequest"),
    ):
        operation = paths[f"/api/payments/{{id}}/review/{action}"]["post"]
        assert set(operation["responses"]) >= {"200", "400", "401", "404", "409"}
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": "#/components/schemas/PaymentView"}
        if body is not None:
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            assert schema == {"$ref": f"#/components/schemas/{body}"}
    schemas = document["components"]["schemas"]
    assert schemas["ResolveRequest"]["required"] == ["note"]
    assert "amount" in schemas["RetryCaptureRequest"]["properties"]


async def test_the_cli_acts_on_reviews(
    system: CentralSystem, driver: Driver, sim: SimulatedCharger
) -> None:
    night = await system.api_keys.create("night-shift")
    rid = await capture_refused(system, driver, sim)
    code, out = await run_cli(system, "payments", "review", rid, "--resolve", "later", key=night)
    assert code == 1 and json.loads(out)["error"]["code"] == "review_refused"
    code, out = await run_cli(
        system, "payments", "review", rid, "--retry-capture", "--amount", "55", key=night
    )
    assert code == 0, out
    assert json.loads(out)["reservationId"] == rid
    view = await driver.wait_for_state(rid, "Completed")
    assert view["capturedAmount"] == 55
    retried = [line for line in await audit(system, rid) if line["action"] == "capture retried"]
    assert [line["actor"] for line in retried] == ["key:night-shift"]

    code, out = await run_cli(system, "payments", "review", "res_nope", "--release", key=night)
    assert code == 1 and json.loads(out)["error"]["code"] == "not_found"
    code, out = await run_cli(system, "payments", "review", rid, key=night)  # no action
    assert code == 2
