"""The SQLite state file written incrementally: after any sequence of operations, what a
SIGKILL would leave on disk restores the live account field by field; a request writes
what it changed, however large the account; a JSON state file of earlier versions is
imported; no webhook goes out for a change that is not on disk."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import sqlite3
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import closing, suppress
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import stripe

from simulators.stripe_sandbox import StripeSandbox, codec
from simulators.stripe_sandbox.errors import StripeError
from simulators.stripe_sandbox.persistence import StateFile
from simulators.stripe_sandbox.records import Records
from tests import test_stripe_sandbox as base
from tests.test_stripe_sandbox import (
    AUTH,
    CARD_3DS,
    CARD_DECLINED,
    CARD_OK,
    DAY,
    SECRET,
    WebhookReceiver,
    create_session,
    make_client,
    pay,
    raw,
    session_params,
)
from tests.test_stripe_sandbox_state import _picture, running
from tests.waiting import eventually

receiver, browser = base.receiver, base.browser
DOWN = "http://127.0.0.1:9/nowhere"


def _ids(sandbox: StripeSandbox, kind: str, *statuses: str) -> list[str]:
    # Reads by iterating, so the test itself marks nothing as changed.
    return [
        obj["id"]
        for obj in sandbox.account.objects.values()
        if obj["object"] == kind and (not statuses or obj["status"] in statuses)
    ]


class RandomOperations:
    """Every kind of change the sandbox makes, in a random order, refusals included.

    `done` counts the operations that ran (Stripe refuses some: refusals change ledgers
    and saved responses too)."""

    def __init__(
        self,
        sandbox: StripeSandbox,
        client: stripe.StripeClient,
        browser: aiohttp.ClientSession,
        rng: random.Random,
        receiver: WebhookReceiver | None = None,
    ) -> None:
        self.sandbox, self.client, self.browser, self.rng = sandbox, client, browser, rng
        self.receiver = receiver
        self.keys: list[tuple[str, dict[str, Any]]] = []
        self.done: Counter[str] = Counter()
        self.operations: list[Callable[[], Awaitable[bool]]] = [
            *[self.create, self.pay] * 3,
            *[self.capture, self.refund] * 2,
            self.authenticate,
            self.expire,
            self.cancel,
            self.update_refund,
            self.dashboard,
            self.advance_clock,
            self.read,
            self.enabled_events,
        ]
        if receiver is not None:
            self.operations.append(self.webhooks)

    def target(self, kind: str, *likely: str) -> str | None:
        """Mostly an object in one of the `likely` statuses, sometimes any."""
        ids = _ids(self.sandbox, kind, *likely) if self.rng.random() < 0.8 else []
        ids = ids or _ids(self.sandbox, kind)
        return self.rng.choice(ids) if ids else None

    async def step(self) -> None:
        operation = self.rng.choice(self.operations)
        with suppress(stripe.StripeError, StripeError):
            if await operation():
                self.done[operation.__name__] += 1

    async def create(self) -> bool:
        if self.keys and self.rng.random() < 0.2:  # a retry: replayed
            key, params = self.rng.choice(self.keys)
        else:
            params = session_params(metadata={"n": str(self.rng.randrange(1000))})
            if self.rng.random() < 0.3:
                params["payment_intent_data"]["capture_method"] = "automatic"
            key = f"create:{self.rng.randrange(10**9)}"
            self.keys.append((key, params))
        await self.client.v1.checkout.sessions.create_async(
            params=params, options={"idempotency_key": key}
        )
        return True

    async def pay(self) -> bool:
        session_id = self.target("checkout.session", "open")
        if session_id is None:
            return False
        card = self.rng.choice([CARD_OK, CARD_OK, CARD_DECLINED, CARD_3DS])
        await pay(self.browser, f"{self.sandbox.base_url}/pay/{session_id}", card)
        return True

    async def authenticate(self) -> bool:
        waiting = set(_ids(self.sandbox, "payment_intent", "requires_action"))
        sessions = [
            session_id
            for session_id in _ids(self.sandbox, "checkout.session")
            if self.sandbox.get(session_id)["payment_intent"] in waiting
        ]
        if not sessions:
            return False
        action = self.rng.choice(["complete", "fail"])
        url = f"{self.sandbox.base_url}/pay/{self.rng.choice(sessions)}/authenticate"
        async with self.browser.post(url, data={"action": action}, allow_redirects=False):
            return True

    async def expire(self) -> bool:
        session_id = self.target("checkout.session", "open")
        if session_id is None:
            return False
        await self.client.v1.checkout.sessions.expire_async(session_id)
        return True

    async def capture(self) -> bool:
        intent_id = self.target("payment_intent", "requires_capture")
        if intent_id is None:
            return False
        params = self.rng.choice([{}, {}, {"amount_to_capture": 1500}, {"amount_to_capture": 9}])
        await self.client.v1.payment_intents.capture_async(
            intent_id, params=params, options={"idempotency_key": f"cap:{intent_id}:{params}"}
        )
        return True

    async def cancel(self) -> bool:
        intent_id = self.target("payment_intent", "requires_capture")
        if intent_id is None:
            return False
        await self.client.v1.payment_intents.cancel_async(intent_id)
        return True

    async def refund(self) -> bool:
        intent_id = self.target("payment_intent", "succeeded")
        if intent_id is None:
            return False
        params: dict[str, Any] = {"payment_intent": intent_id, "metadata": {"r": "1"}}
        if self.rng.random() < 0.6:
            params["amount"] = self.rng.choice([100, 300])
        await self.client.v1.refunds.create_async(params=params)
        return True

    async def update_refund(self) -> bool:
        refund_id = self.target("refund")
        if refund_id is None:
            return False
        metadata = {"note": str(self.rng.randrange(100))}
        await self.client.v1.refunds.update_async(refund_id, params={"metadata": metadata})
        return True

    async def dashboard(self) -> bool:
        intent_id = self.target("payment_intent", "requires_capture", "succeeded")
        if intent_id is None:
            return False
        action = self.rng.choice(
            [
                lambda: self.sandbox.capture_payment_intent(intent_id, 1000),
                lambda: self.sandbox.refund_payment_intent(intent_id, 200),
                lambda: self.sandbox.cancel_payment_intent_elsewhere(intent_id),
                lambda: self.sandbox.create_dispute(intent_id),
            ]
        )
        action()
        return True

    async def advance_clock(self) -> bool:
        self.sandbox.advance_clock(self.rng.choice([60, 600, 3600, 3600, 3600, DAY + 60, 7 * DAY]))
        return True

    async def read(self) -> bool:
        # Lookups without changes: nothing new to write.
        await self.client.v1.checkout.sessions.list_async(params={"limit": 3})
        intent_id = self.target("payment_intent")
        if intent_id is not None:
            await self.client.v1.payment_intents.retrieve_async(
                intent_id, params={"expand": ["latest_charge"]}
            )
        return True

    async def enabled_events(self) -> bool:
        self.sandbox.enabled_events = self.rng.choice(
            [["*"], ["charge.refunded", "checkout.session.completed"]]
        )
        return True

    async def webhooks(self) -> bool:
        assert self.receiver is not None
        choice = self.rng.randrange(3)
        if choice == 0:
            self.sandbox.pause_webhooks()
        elif choice == 1:
            self.sandbox.resume_webhooks()
        else:
            self.receiver.failures += 2
        return True


def _crash_image(state: Path, directory: Path) -> Path:
    """The files a SIGKILL would leave now: the database and its write-ahead log."""
    directory.mkdir()
    for name in (state.name, f"{state.name}-wal"):
        if (state.parent / name).exists():
            shutil.copyfile(state.parent / name, directory / name)
    return directory / state.name


def _assert_same(live: dict[str, Any], restored: dict[str, Any]) -> None:
    assert restored.keys() == live.keys()
    for part in live:
        if part == "objects":
            assert restored[part].keys() == live[part].keys()
            for object_id, obj in live[part].items():
                assert restored[part][object_id] == obj, object_id
        assert restored[part] == live[part], part


async def _assert_restorable(sandbox: StripeSandbox, state: Path, image: Path) -> None:
    live = _picture(sandbox)
    restarted = StripeSandbox(state_path=_crash_image(state, image))
    await restarted.start()
    try:
        _assert_same(live, _picture(restarted))
    finally:
        await restarted.stop()


@pytest.mark.parametrize("seed", [2, 4])
async def test_what_is_on_disk_restores_the_account_after_random_operations(
    tmp_path: Path, browser: aiohttp.ClientSession, seed: int
) -> None:
    """Every change is written by the request that made it: the crash image is taken
    right after the answers, with no commit of the test's own. Webhooks wait, so every
    event stays undelivered."""
    state = tmp_path / "stripe.db"
    async with running(state) as (sandbox, client):
        sandbox.webhook_url = DOWN
        operations = RandomOperations(sandbox, client, browser, random.Random(seed))
        for n in range(100):
            await operations.step()
            if n % 10 == 9:
                await _assert_restorable(sandbox, state, tmp_path / f"image-{n}")
        kinds = {obj["object"] for obj in sandbox.account.objects.values()}
        assert {"refund", "dispute", "payment_method"} <= kinds
        assert {"pay", "capture", "cancel", "expire", "update_refund"} <= set(operations.done)
        assert sandbox.webhooks.undelivered


async def test_what_is_on_disk_restores_the_deliveries_too(
    tmp_path: Path, browser: aiohttp.ClientSession, receiver: WebhookReceiver
) -> None:
    """Deliveries settle outside requests (written by the next commit): the test commits
    before each crash image."""
    state = tmp_path / "stripe.db"
    async with running(state, receiver, webhook_max_attempts=3) as (sandbox, client):
        operations = RandomOperations(sandbox, client, browser, random.Random(3), receiver)
        for n in range(60):
            await operations.step()
            if n % 10 == 9:
                await asyncio.sleep(0.1)
                sandbox.commit()
                await _assert_restorable(sandbox, state, tmp_path / f"image-{n}")
        assert receiver.received


async def test_a_request_writes_what_it_changed_however_large_the_account(
    tmp_path: Path, browser: aiohttp.ClientSession
) -> None:
    state = tmp_path / "stripe.db"
    async with running(state) as (sandbox, client):
        assert sandbox.state_file is not None
        written: list[list[int]] = []
        for _ in range(25):
            rows = []
            before = sandbox.state_file.rows_written
            session = await create_session(client)
            rows.append(sandbox.state_file.rows_written - before)
            before = sandbox.state_file.rows_written
            await pay(browser, session.url)
            rows.append(sandbox.state_file.rows_written - before)
            session = await client.v1.checkout.sessions.retrieve_async(session.id)
            before = sandbox.state_file.rows_written
            await client.v1.payment_intents.capture_async(session.payment_intent)
            rows.append(sandbox.state_file.rows_written - before)
            written.append(rows)
    # Session, checkout, saved response; intent, payment method, charge, book, session and
    # four events; intent, charge, its balance transaction, book, two events, saved
    # response. The 1st as the 25th.
    assert written == [[3, 9, 7]] * 25


async def test_a_change_not_on_disk_is_neither_replayed_nor_sent_as_webhook(
    tmp_path: Path,
    browser: aiohttp.ClientSession,
    receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = tmp_path / "stripe.db"
    async with running(state, receiver, sweep_interval=0.05) as (sandbox, client):
        session = await create_session(client)
        broken = sandbox.state_file
        assert broken is not None

        def disk_full(*args: Any) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(broken, "_transaction", disk_full)
        expire = f"{sandbox.base_url}/v1/checkout/sessions/{session.id}/expire"
        headers = AUTH | {"Idempotency-Key": "expire:1"}
        for _ in range(2):  # the retry is not told of the change either
            status, body, _ = await raw(browser, "POST", expire, headers=headers)
            assert (status, body["error"]["type"]) == (500, "api_error")
        await asyncio.sleep(0.3)  # the sweeper tries again, and fails again
        assert receiver.received == []

        monkeypatch.undo()

        async def delivered() -> bool:
            return receiver.ids() == [sandbox.events()[0]["id"]]

        await eventually(delivered)
        status, body, response_headers = await raw(browser, "POST", expire, headers=headers)
        assert (status, body["status"], response_headers["Idempotent-Replayed"]) == (
            200,
            "expired",
            "true",
        )
        await _assert_restorable(sandbox, state, tmp_path / "image")


# -- the JSON state file of earlier versions ----------------------------------------------------


def _legacy_state(sandbox: StripeSandbox) -> dict[str, Any]:
    """The account as earlier versions wrote it (format 1)."""
    account, frozen_kinds = sandbox.account, ("event", "payment_method")
    return {
        "format": 1,
        "clock_offset": sandbox.clock.offset,
        "enabled_events": sandbox.enabled_events,
        "undelivered": list(sandbox.webhooks.undelivered),
        "pending_webhooks": [e["id"] for e in account.events if e["pending_webhooks"]],
        "books": {i: codec.book_json(book) for i, book in account.books.items()},
        "events": [e["id"] for e in account.events],
        "objects": {i: o for i, o in account.objects.items() if o["object"] not in frozen_kinds},
        "frozen": {i: o for i, o in account.objects.items() if o["object"] in frozen_kinds},
        "checkouts": {i: codec.checkout_json(c) for i, c in account.checkouts.items()},
        "idempotency": [
            {"scope": scope, "key": key, **codec.saved_json(saved)}
            for scope, key, saved in sandbox.idempotency.completed()
        ],
    }


async def _legacy_account(browser: aiohttp.ClientSession) -> tuple[dict[str, Any], dict[str, Any]]:
    """(legacy state, picture) of an account built by random operations."""
    sandbox = StripeSandbox(webhook_url=DOWN, webhook_secret=SECRET, webhook_retry_initial=60)
    await sandbox.start()
    client, http = make_client(sandbox, retries=0)
    try:
        operations = RandomOperations(sandbox, client, browser, random.Random(4))
        for _ in range(50):
            await operations.step()
        return json.loads(json.dumps(_legacy_state(sandbox))), _picture(sandbox)
    finally:
        await http.close_async()
        await sandbox.stop()


def _is_sqlite(path: Path) -> bool:
    return path.read_bytes().startswith(b"SQLite format 3\x00")


async def test_a_json_state_file_is_imported_in_place(
    tmp_path: Path, browser: aiohttp.ClientSession
) -> None:
    legacy, picture = await _legacy_account(browser)
    state = tmp_path / "stripe.json"
    state.write_text(json.dumps(legacy))
    async with running(state) as (sandbox, _):
        _assert_same(picture, _picture(sandbox))
    assert _is_sqlite(state)
    async with running(state) as (sandbox, _):
        _assert_same(picture, _picture(sandbox))


async def test_a_json_state_file_beside_the_database_is_imported_once(
    tmp_path: Path, browser: aiohttp.ClientSession
) -> None:
    legacy, picture = await _legacy_account(browser)
    (tmp_path / "stripe.json").write_text(json.dumps(legacy))
    state = tmp_path / "stripe.db"
    async with running(state) as (sandbox, _):
        _assert_same(picture, _picture(sandbox))
    assert _is_sqlite(state)
    assert not (tmp_path / "stripe.json").exists()
    assert json.loads((tmp_path / "stripe.json.imported").read_text()) == legacy
    async with running(state) as (sandbox, _):
        _assert_same(picture, _picture(sandbox))


async def test_a_file_that_is_no_state_file_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "stripe.db"
    state.write_bytes(b"not a database, not JSON" * 100)
    with pytest.raises(RuntimeError, match="not a Stripe sandbox state file"):
        await StripeSandbox(state_path=state).start()
    with closing(sqlite3.connect(tmp_path / "other.db")) as db:
        db.execute("CREATE TABLE t (x)")
        db.execute("PRAGMA user_version = 7")
    with pytest.raises(RuntimeError, match="unknown state format 7"):
        await StripeSandbox(state_path=tmp_path / "other.db").start()
    # Refused without taking the lock for good.
    StateFile(state).acquire()


# -- Records --------------------------------------------------------------------------------------


def test_records_note_what_is_stored_or_looked_up_by_id_in_order() -> None:
    records: Records[dict[str, int]] = Records()
    records.load([("a", {"n": 1}), ("b", {"n": 2}), ("c", {"n": 3})])
    assert records.touched == {}
    assert [r["n"] for r in records.values()] == [1, 2, 3]
    assert records.peek("a") == {"n": 1} and "a" in records
    assert records.get("zzz") is None and records.touched == {}
    records["d"] = {"n": 4}
    records["b"]["n"] = 20
    records.get("a")
    records.touch("c")
    records.touch("zzz")
    assert list(records.touched) == ["d", "b", "a", "c"]
    with pytest.raises(TypeError):
        del records["a"]
    with pytest.raises(TypeError):
        records.pop("a")
