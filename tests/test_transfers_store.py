"""The owner's share in storage, on both backends: the reservation's new fields through the
codec (old rows still decode), movements recorded once with their audit lines in the
transition's commit, one alert per refused movement, transfer.* webhooks checked against the
rows, and the reconciliation rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from csms.config_values import open_database
from payments.alerts import AlertJob, AlertSettings
from payments.audit_log import AuditLog
from payments.codec import decode_reservation, encode_reservation
from payments.pricing import Tariff
from payments.reconcile import Kind
from payments.reconcile_transfers import compare, findings_source
from payments.reservation import Hold, Reservation, ReviewNeeded, State
from payments.split import SplitRule
from payments.transfer_gateway import StripeTransfer
from payments.transfer_messages import (
    ACCRUED,
    TRANSFERRED,
    TRANSFERRING,
    OwnerNotReady,
    ReversalRefused,
    Transferred,
    TransferRefused,
    TransferReversed,
)
from payments.transfer_records import record
from payments.transfers import TransferAlerts, TransferService, TransferStore
from storage.db import Database
from tests.conftest import MakeConfig

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TARIFF = Tariff("eur", price_per_kwh=40)
RULE = SplitRule(commission_basis_points=2000)


@pytest.fixture
async def db(make_config: MakeConfig) -> AsyncIterator[Database]:
    database = await open_database(make_config())
    try:
        yield database
    finally:
        await database.close()


def _captured(**changes: object) -> Reservation:
    r = Reservation(
        id="res_1",
        charger_id="CP-1",
        connector_id=1,
        id_tag="PAYX",
        tariff=TARIFF,
        hold_amount=1000,
        created_at=NOW,
        payment_deadline=NOW + timedelta(minutes=5),
        state=State.COMPLETED,
        hold=Hold.CAPTURED,
        payment_intent_id="pi_1",
        captured_amount=500,
        energy_wh=10_000,
        owner_id="owner-1",
        split=RULE,
        owner_share=400,
        operator_share=100,
        transfer_status=TRANSFERRING,
        transfer_attempts=1,
    )
    return replace(r, **changes)  # type: ignore[arg-type]


async def _insert(db: Database, r: Reservation) -> None:
    def insert(conn):  # type: ignore[no-untyped-def]
        from payments.reservations_store import ReservationStore

        ReservationStore(db).insert(conn, r, "token-" + r.id, None)

    await db.write(insert)


def test_the_new_fields_survive_the_codec_and_old_rows_still_decode() -> None:
    r = _captured(transfer_id="tr_1", transferred_amount=400, reversed_amount=80)
    assert decode_reservation(encode_reservation(r)) == r
    old = orjson.loads(encode_reservation(r))
    for name in ("owner_id", "split", "owner_share", "operator_share", "transfer_status",
                 "transfer_attempts", "transfer_id", "transferred_amount", "reversed_amount",
                 "reversing_amount", "transfer_failure"):  # fmt: skip
        del old[name]
    before = decode_reservation(orjson.dumps(old).decode())
    assert before.owner_id is None and before.split is None and before.transfer_status is None
    assert before.owner_share == before.transferred_amount == 0


async def test_movements_are_recorded_once_with_their_audit_lines(db: Database) -> None:
    r = _captured()
    await _insert(db, r)
    audit, store = AuditLog(db), TransferStore(db)
    done = _captured(transfer_status=TRANSFERRED, transfer_id="tr_1", transferred_amount=400)
    event = Transferred("tr_1", 400)
    for _ in range(2):  # the same report twice: one row
        await db.write(lambda conn: record(audit, conn, r, done, event, "system", NOW))
    reversal = TransferReversed("rf_1", "trr_1", 80)
    after = replace(done, reversed_amount=80, owner_share=320, operator_share=80)
    await db.write(lambda conn: record(audit, conn, done, after, reversal, "system", NOW))
    rows = await store.of_reservation(r.id)
    assert [(x["id"], x["kind"], x["amount"], x["stripe_id"], x["status"]) for x in rows] == [
        ("transfer:res_1", "transfer", 400, "tr_1", "succeeded"),
        ("reversal:rf_1", "reversal", 80, "trr_1", "succeeded"),
    ]
    assert (await store.by_stripe_id("trr_1") or {})["owner_id"] == "owner-1"
    actions = [(x["action"], x["amount"], x["stripe_id"]) for x in await audit.lines(r.id)]
    assert actions.count(("transferred to owner", 400, "tr_1")) == 2  # one per report given
    assert ("transfer reversed", 80, "trr_1") in actions


async def test_a_refused_movement_raises_one_alert(db: Database) -> None:
    r = _captured()
    await _insert(db, r)
    audit = AuditLog(db)
    refused = _captured(transfer_status="refused", transfer_failure="account closed")
    await db.write(
        lambda conn: record(audit, conn, r, refused, TransferRefused("account closed"), "x", NOW)
    )
    reversing = _captured(transfer_status=TRANSFERRED, reversing_amount=50)
    back = replace(reversing, reversing_amount=0)
    await db.write(
        lambda conn: record(
            audit, conn, reversing, back, ReversalRefused("rf_9", 50, "no funds"), "x", NOW
        )
    )
    job = AlertJob(db, AlertSettings(), None, sources=[TransferAlerts()], clock=lambda: NOW)
    raised = await job.check()
    kinds = sorted((a.kind, a.subject) for a in raised)
    assert kinds == [
        ("transfer_failed", "transfer_failed:reversal:rf_9"),
        ("transfer_failed", "transfer_failed:transfer:res_1"),
    ]
    assert "4.00 EUR" in next(a for a in raised if "transfer:res" in a.subject).body["message"]
    assert [a for a in await job.check() if a.kind == "transfer_failed"] == []


async def test_owner_not_ready_writes_no_row_but_an_audit_line(db: Database) -> None:
    r = _captured()
    await _insert(db, r)
    audit = AuditLog(db)
    accrued = _captured(transfer_status=ACCRUED)
    await db.write(lambda conn: record(audit, conn, r, accrued, OwnerNotReady(), "system", NOW))
    assert await TransferStore(db).of_reservation(r.id) == []
    assert [x["action"] for x in await audit.lines(r.id)] == ["owner share accrued"]


async def test_owed_shares_and_the_owner_ready_hook(db: Database) -> None:
    owed = _captured(id="res_2", id_tag="PAY2", transfer_status=ACCRUED)
    await _insert(db, owed)
    await _insert(db, _captured(id="res_3", id_tag="PAY3", transfer_status=TRANSFERRED))
    other = _captured(id="res_4", id_tag="PAY4", owner_id="other", transfer_status=ACCRUED)
    await _insert(db, other)
    handled: list[tuple[str, object]] = []

    class Coordinator:
        async def handle(self, reservation_id: str, event: object, *, actor: str = "") -> None:
            handled.append((reservation_id, event))

    class Owners:
        async def get(self, owner_id: str) -> object:
            return type("O", (), {"ready": owner_id == "owner-1"})()

    await _insert(db, _captured(id="res_5", id_tag="PAY5", transfer_status="refused"))
    service = TransferService(TransferStore(db), Coordinator(), Owners())
    assert await service.on_ready("owner-1") == 2
    assert sorted(rid for rid, _ in handled) == ["res_2", "res_5"]
    handled.clear()
    # "other" is not ready; a refused share waits for a person: only res_2 again.
    assert await service.sweep() == 1
    assert [rid for rid, _ in handled] == ["res_2"]


async def test_a_transfer_webhook_is_recorded_and_checked_against_the_row(db: Database) -> None:
    r = _captured()
    await _insert(db, r)
    audit = AuditLog(db)
    done = _captured(transfer_status=TRANSFERRED, transfer_id="tr_1", transferred_amount=400)
    await db.write(lambda conn: record(audit, conn, r, done, Transferred("tr_1", 400), "s", NOW))
    service = TransferService(TransferStore(db), None, None, clock=lambda: NOW)  # type: ignore[arg-type]

    def event(event_id: str, amount: int) -> dict[str, object]:
        obj = {"id": "tr_1", "object": "transfer", "amount": amount, "currency": "eur"}
        return {"id": event_id, "type": "transfer.created", "data": {"object": obj}}

    assert (await service.webhook(event("evt_1", 400))).applied == "recorded"
    assert (await service.webhook(event("evt_1", 400))).applied == "ignored"
    assert (await service.webhook(event("evt_2", 399))).reservation_id == "res_1"
    differs = [x for x in await audit.lines(r.id) if x["action"] == "transfer differs"]
    assert [(x["amount"], x["detail"]) for x in differs] == [(399, "stripe says 399, ours 400")]


def _stripe(tid: str, amount: int, reversed_: int = 0) -> StripeTransfer:
    return StripeTransfer(tid, amount, reversed_, "acct_1", "eur", "transfer:res_1", "res_1", ())


def test_reconciliation_rules() -> None:
    done = _captured(transfer_status=TRANSFERRED, transfer_id="tr_1", transferred_amount=400)
    assert compare(done, [_stripe("tr_1", 400)]) is None
    refunded = replace(done, reversed_amount=80, owner_share=320, operator_share=80)
    assert compare(refunded, [_stripe("tr_1", 400, 80)]) is None
    # A capture made elsewhere for more than ours raised the share after the transfer.
    short = compare(replace(done, owner_share=480), [_stripe("tr_1", 400)])
    assert short is not None and short.kind is Kind.REVIEW
    assert short.detail == "400 at the owner's, its share is 480: never transferred"
    twice = compare(done, [_stripe("tr_1", 400), _stripe("tr_2", 400)])
    assert twice is not None and twice.kind is Kind.REVIEW and "2 transfers" in twice.detail
    assert isinstance(twice.event, ReviewNeeded) and twice.key
    assert "none at Stripe" in (compare(done, []) or _none()).detail
    assert "of 390" in (compare(done, [_stripe("tr_1", 390)]) or _none()).detail
    assert "reversed at Stripe" in (compare(done, [_stripe("tr_1", 400, 5)]) or _none()).detail
    accrued = _captured(transfer_status=ACCRUED)
    assert compare(accrued, []) is None
    assert "accrued" in (compare(accrued, [_stripe("tr_9", 400)]) or _none()).detail
    # A movement under way, or a live payment: its own answer decides first.
    assert compare(_captured(), [_stripe("tr_1", 400)]) is None
    assert compare(replace(done, reversing_amount=10), []) is None
    assert compare(replace(done, state=State.CHARGING), []) is None


def _none():  # type: ignore[no-untyped-def]
    raise AssertionError("a finding was expected")


async def test_reconciliation_lists_the_window_once_and_older_groups_on_their_own(
    db: Database,
) -> None:
    done = {"transfer_status": TRANSFERRED, "transfer_id": "tr_1", "transferred_amount": 400}
    recent = _captured(id="res_new", id_tag="PAYN", created_at=NOW, **done)
    old = _captured(id="res_old", id_tag="PAYO", created_at=NOW - timedelta(days=30), **done)
    await _insert(db, recent)
    await _insert(db, old)
    asked: list[str] = []

    class Gateway:
        async def transfers_since(self, since: int) -> list[StripeTransfer]:
            asked.append(f"since {since}")
            twice = replace(_stripe("tr_2", 400), group="res_new")
            return [replace(_stripe("tr_1", 400), group="res_new"), twice,
                    replace(_stripe("tr_9", 5), group="res_old"),
                    replace(_stripe("tr_x", 5), group="someone_else")]  # fmt: skip

        async def transfers_of(self, group: str) -> list[StripeTransfer]:
            asked.append(group)
            return [_stripe("tr_1", 400), _stripe("tr_9", 5)]

    find = findings_source(Gateway(), TransferStore(db))  # type: ignore[arg-type]
    findings = await find(NOW - timedelta(hours=1))
    assert sorted((f.reservation_id, "2 transfers" in f.detail) for f in findings) == [
        ("res_new", True),
        ("res_old", True),
    ]
    assert asked[1:] == ["res_old"]  # one listing, and the older payment's group alone
