"""The Stripe webhook endpoint: signatures (rotation, age, forgery) and exactly-once effects."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import orjson
import pytest

from csms.app import SANDBOX_WEBHOOK_SECRET, CentralSystem
from payments.pricing import Tariff
from payments.reservation import Reservation
from storage.db import Conflict
from tests.conftest import MakeConfig

ROTATED = "whsec_the_new_one"


@pytest.fixture
async def system(make_config: MakeConfig) -> AsyncIterator[CentralSystem]:
    async with CentralSystem(make_config(stripe={"webhook_secrets": ROTATED})) as running:
        yield running


def _signed(body: bytes, secret: str, at: int | None = None) -> str:
    timestamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


async def _deliver(system: CentralSystem, event: dict, signature: str) -> tuple[int, dict]:
    body = orjson.dumps(event)
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"http://127.0.0.1:{system.http.port}/api/stripe/webhook",
            data=body,
            headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
        ) as response,
    ):
        return response.status, await response.json()


async def _reservation(system: CentralSystem) -> Reservation:
    """A reservation with its Checkout Session created at the sandbox."""
    r, _ = await system.coordinator.create("CP-1", 1, Tariff("eur", session_fee=100), None)
    await system.runner.run_now(r.id)
    created = await system.reservations.get(r.id)
    assert created is not None and created.checkout_session_id is not None
    return created


def _expired(r: Reservation | None, event_id: str = "evt_1", session_id: str = "") -> dict:
    session = session_id or (r.checkout_session_id if r else "cs_x")
    return {
        "id": event_id,
        "object": "event",
        "type": "checkout.session.expired",
        "data": {"object": {"id": session, "metadata": {"reservation_id": r.id if r else "x"}}},
    }


async def test_each_configured_secret_is_accepted(system: CentralSystem) -> None:
    r = await _reservation(system)
    for event_id, secret in (("evt_a", ROTATED), ("evt_b", SANDBOX_WEBHOOK_SECRET)):
        event = _expired(r, event_id)
        status, answer = await _deliver(system, event, _signed(orjson.dumps(event), secret))
        assert status == 200, answer
    # The same news under two event ids: the second changes nothing.
    reservation = await system.reservations.get(r.id)
    assert reservation is not None and reservation.state.value == "Expired"
    assert [h["to_state"] for h in await system.reservations.history(r.id)] == ["Expired"]


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "t=1,v1=00",
        _signed(b"{}", ROTATED),  # signed, but for another body
        _signed(orjson.dumps(_expired(None)), "whsec_someone_else"),
    ],
)
async def test_unsigned_forged_or_mismatched_events_are_rejected(
    system: CentralSystem, signature: str
) -> None:
    r = await _reservation(system)
    status, _ = await _deliver(system, _expired(r), signature)
    assert status == 400
    reservation = await system.reservations.get(r.id)
    assert reservation is not None and reservation.state.value == "PendingPayment"


async def test_old_events_are_rejected(system: CentralSystem) -> None:
    r = await _reservation(system)
    event = _expired(r)
    old = int(time.time()) - 3600
    status, _ = await _deliver(system, event, _signed(orjson.dumps(event), ROTATED, at=old))
    assert status == 400


async def test_a_redelivered_event_is_applied_once(system: CentralSystem) -> None:
    r = await _reservation(system)
    event = _expired(r)
    for _ in range(3):
        status, answer = await _deliver(system, event, _signed(orjson.dumps(event), ROTATED))
        assert status == 200
    assert answer["applied"] == "CheckoutExpired"
    seen = await system.db.fetchall("SELECT id FROM webhook_events")
    assert [row["id"] for row in seen] == ["evt_1"]


async def test_unknown_events_are_acknowledged_and_ignored(system: CentralSystem) -> None:
    event = {"id": "evt_x", "type": "customer.created", "data": {"object": {"id": "cus_1"}}}
    status, answer = await _deliver(system, event, _signed(orjson.dumps(event), ROTATED))
    assert (status, answer["applied"]) == (200, "ignored")


async def test_an_event_is_matched_by_the_stored_ids_never_by_metadata(
    system: CentralSystem,
) -> None:
    r = await _reservation(system)
    # Signed, but about another Checkout Session that copies our reservation id.
    other = _expired(r, "evt_other", session_id="cs_test_someone_elses")
    status, answer = await _deliver(system, other, _signed(orjson.dumps(other), ROTATED))
    assert (status, answer["applied"]) == (200, "ignored")
    canceled = {
        "id": "evt_pi",
        "type": "payment_intent.canceled",
        "data": {"object": {"id": "pi_other", "metadata": {"reservation_id": r.id}}},
    }
    status, answer = await _deliver(system, canceled, _signed(orjson.dumps(canceled), ROTATED))
    assert (status, answer["applied"]) == (200, "ignored")
    reservation = await system.reservations.get(r.id)
    assert reservation is not None and reservation.state.value == "PendingPayment"


async def test_dispute_is_recorded_in_the_audit_log(system: CentralSystem) -> None:
    r = await _reservation(system)
    await system.db.execute(
        "UPDATE reservations SET payment_intent_id = 'pi_1' WHERE id = ?", (r.id,)
    )
    event = {
        "id": "evt_d",
        "type": "charge.dispute.created",
        "data": {"object": {"id": "dp_1", "amount": 100, "payment_intent": "pi_1"}},
    }
    status, answer = await _deliver(system, event, _signed(orjson.dumps(event), ROTATED))
    assert (status, answer["applied"]) == (200, "DisputeOpened")
    audit = await system.audit.lines(r.id)
    assert ("dispute opened", 100, "dp_1") in [
        (a["action"], a["amount"], a["stripe_id"]) for a in audit
    ]


async def test_one_active_reservation_per_connector_is_a_database_rule(
    system: CentralSystem,
) -> None:
    first = await _reservation(system)
    second = Reservation(
        id="res_other",
        charger_id="CP-1",
        connector_id=1,
        id_tag="PAYOTHER",
        tariff=first.tariff,
        hold_amount=100,
        created_at=datetime.now(UTC),
        payment_deadline=datetime.now(UTC) + timedelta(minutes=30),
    )
    with pytest.raises(Conflict):
        await system.db.write(
            lambda conn: system.reservations.insert(conn, second, "token-2", None)
        )


async def test_the_audit_log_is_append_only(system: CentralSystem) -> None:
    await _reservation(system)
    with pytest.raises(Conflict, match="append-only"):
        await system.db.execute("UPDATE money_audit SET amount = 0")
    with pytest.raises(Conflict, match="append-only"):
        await system.db.execute("DELETE FROM money_audit")
