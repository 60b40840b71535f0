"""The owners store on both backends: an owner, its account, Stripe's flags, readiness set
once, and payouts whose final status a late event never undoes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from csms.config_values import open_database
from payments.owners import AccountFlags, Owner, OwnerStore, Payout
from storage.db import Conflict, Database
from tests.conftest import MakeConfig

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
READY = AccountFlags(True, True, True, True, ())


@pytest.fixture
async def db(make_config: MakeConfig) -> AsyncIterator[Database]:
    database = await open_database(make_config())
    try:
        yield database
    finally:
        await database.close()


async def test_owner_added_then_its_account_and_flags(db: Database) -> None:
    store = OwnerStore(db)
    await db.write(lambda conn: store.add(conn, "hotel", "Hotel Adler", "a@b.de", "DE", NOW))
    owner = await store.get("hotel")
    assert owner is not None
    assert (owner.name, owner.email, owner.country, owner.stripe_account_id) == (
        "Hotel Adler", "a@b.de", "DE", None)  # fmt: skip
    assert not owner.ready and owner.ready_at is None
    # Flags before the account exists make nobody ready.
    assert not await db.write(lambda conn: store.set_flags(conn, "hotel", READY, NOW))
    await db.write(lambda conn: store.set_account(conn, "hotel", "acct_1", NOW))
    # Another account id for the same owner is refused (the first one stays).
    await db.write(lambda conn: store.set_account(conn, "hotel", "acct_2", NOW))
    assert (await store.by_account("acct_1")) is not None
    assert (await store.by_account("acct_2")) is None
    due = AccountFlags(False, False, True, False, ("external_account",))
    assert not await db.write(lambda conn: store.set_flags(conn, "hotel", due, NOW, as_of=10))
    owner = await store.get("hotel")
    assert owner is not None and not owner.ready
    assert owner.requirements_due == ("external_account",) and owner.flags_as_of == 10
    later = NOW + timedelta(minutes=5)
    assert await db.write(lambda conn: store.set_flags(conn, "hotel", READY, later, as_of=20))
    # Ready already: a second time is not a first time, and ready_at stays.
    assert not await db.write(
        lambda conn: store.set_flags(conn, "hotel", READY, later + timedelta(hours=1), as_of=30)
    )
    owner = await db.read(lambda conn: store.find(conn, "hotel"))
    assert isinstance(owner, Owner) and owner.ready and owner.ready_at == later
    assert owner.flags_as_of == 30
    # Stripe disables payouts, then enables them again: ready again (ready_at kept).
    disabled = AccountFlags(True, False, True, True, ("external_account",))
    assert not await db.write(lambda conn: store.set_flags(conn, "hotel", disabled, later))
    assert not (await store.get("hotel")).ready  # type: ignore[union-attr]
    assert await db.write(lambda conn: store.set_flags(conn, "hotel", READY, NOW))
    owner = await store.get("hotel")
    assert owner is not None and owner.ready and owner.ready_at == later
    # An older as_of never moves flags_as_of back.
    await db.write(lambda conn: store.set_flags(conn, "hotel", READY, later, as_of=5))
    assert (await store.get("hotel")).flags_as_of == 30  # type: ignore[union-attr]
    with pytest.raises(Conflict):
        await db.write(lambda conn: store.add(conn, "hotel", "Again", "c@d.de", "DE", NOW))
    assert [o.id for o in await store.all()] == ["hotel"]


async def test_payouts_keep_their_final_status(db: Database) -> None:
    store = OwnerStore(db)
    await db.write(lambda conn: store.add(conn, "hotel", "Hotel", "a@b.de", "DE", NOW))
    pending = Payout("po_1", "hotel", "acct_1", 1250, "eur", "pending", None, None)
    paid = Payout("po_1", "hotel", "acct_1", 1250, "eur", "paid", "2026-03-03T00:00:00.000Z", None)
    for payout in (pending, paid, pending):  # the late "pending" changes nothing
        await db.write(lambda conn, p=payout: store.upsert_payout(conn, p, NOW))
    failed = Payout("po_2", "hotel", "acct_1", 900, "eur", "failed", None, "account closed")
    await db.write(lambda conn: store.upsert_payout(conn, failed, NOW + timedelta(days=1)))
    payouts = await store.payouts("hotel")
    assert [(p.id, p.status, p.amount) for p in payouts] == [
        ("po_2", "failed", 900), ("po_1", "paid", 1250)]  # fmt: skip
    assert payouts[1].arrival_date == "2026-03-03T00:00:00.000Z"
    assert payouts[0].failure_message == "account closed"


def test_ready_needs_all_three_stripe_flags() -> None:
    account = {
        "charges_enabled": False,
        "payouts_enabled": True,
        "details_submitted": True,
        "capabilities": {"transfers": "active"},
        "requirements": {"currently_due": []},
    }
    assert AccountFlags.of_account(account).ready
    for name, value in (
        ("payouts_enabled", False),
        ("details_submitted", False),
        ("capabilities", {"transfers": "pending"}),
    ):
        assert not AccountFlags.of_account({**account, name: value}).ready
