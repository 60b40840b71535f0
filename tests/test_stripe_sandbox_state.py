"""The state file: a sandbox restarted on the same file, even after SIGKILL, still has
every object, event, saved idempotent response and undelivered webhook."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import stripe

from simulators.stripe_sandbox import StripeSandbox
from tests import test_stripe_sandbox as base
from tests.test_stripe_sandbox import (
    CARD_3DS,
    REPO,
    SECRET,
    WebhookReceiver,
    authorised_session,
    create_session,
    make_client,
    pay,
    raw,
    session_params,
)
from tests.waiting import eventually

# The fixtures of the sandbox's main tests.
receiver, browser = base.receiver, base.browser


@asynccontextmanager
async def running(
    state: Path, receiver: WebhookReceiver | None = None, **options: Any
) -> AsyncIterator[tuple[StripeSandbox, stripe.StripeClient]]:
    """A sandbox on `state` and an SDK client for it, stopped on the way out."""
    sandbox = StripeSandbox(
        webhook_url=receiver.url if receiver else None,
        webhook_secret=SECRET,
        webhook_retry_initial=0.05,
        webhook_retry_max=0.2,
        state_path=state,
        **options,
    )
    await sandbox.start()
    client, http = make_client(sandbox)
    try:
        yield sandbox, client
    finally:
        await http.close_async()
        await sandbox.stop()


async def test_a_payment_intent_survives_a_restart_and_can_be_captured(
    tmp_path: Path, browser: aiohttp.ClientSession
) -> None:
    state = tmp_path / "stripe.db"
    async with running(state) as (_, client):
        session, intent = await authorised_session(client, browser)
        events_before = [e.id for e in (await client.v1.events.list_async()).data]

    async with running(state) as (sandbox, client):
        again = await client.v1.payment_intents.retrieve_async(intent.id)
        assert again.to_dict() == intent.to_dict()
        expanded = await client.v1.checkout.sessions.retrieve_async(
            session.id, params={"expand": ["line_items", "payment_intent.latest_charge"]}
        )
        assert expanded.line_items.data[0].amount_total == 2000
        assert expanded.payment_intent.latest_charge.id == intent.latest_charge

        captured = await client.v1.payment_intents.capture_async(
            intent.id, params={"amount_to_capture": 1500}
        )

        assert (captured.status, captured.amount_received) == ("succeeded", 1500)
        events = [e.id for e in (await client.v1.events.list_async(params={"limit": 100})).data]
        assert events[-len(events_before) :] == events_before
        ledger = sandbox.ledger()[intent.id]
        assert (ledger["amount_authorized"], ledger["amount_captured"]) == (2000, 1500)
        assert (ledger["capture_requests"], ledger["captures"]) == (1, 1)
        assert ledger["metadata"] == {"reservation": "r-1"}

    # The capture itself was kept too.
    async with running(state) as (sandbox, client):
        assert (await client.v1.payment_intents.retrieve_async(intent.id)).status == "succeeded"
        assert sandbox.ledger()[intent.id]["amount_released"] == 500


async def test_a_retry_after_a_restart_gets_the_saved_response(tmp_path: Path) -> None:
    state = tmp_path / "stripe.db"
    async with running(state) as (_, client):
        first = await client.v1.checkout.sessions.create_async(
            params=session_params(), options={"idempotency_key": "create:r-1"}
        )

    async with running(state) as (sandbox, client):
        again = await client.v1.checkout.sessions.create_async(
            params=session_params(), options={"idempotency_key": "create:r-1"}
        )
        assert again.id == first.id
        assert again.last_response.headers["Idempotent-Replayed"] == "true"
        assert again.last_response.headers["Original-Request"] == first.last_response.request_id
        sessions = await client.v1.checkout.sessions.list_async()
        assert [s.id for s in sessions.data] == [first.id]
        with pytest.raises(stripe.IdempotencyError):
            await client.v1.checkout.sessions.create_async(
                params=session_params(client_reference_id="other"),
                options={"idempotency_key": "create:r-1"},
            )
        # The clock offset is kept: 24 hours later the saved response has expired.
        sandbox.advance_clock(24 * 3600)

    async with running(state) as (sandbox, client):
        assert sandbox.clock.offset == 24 * 3600
        fresh = await client.v1.checkout.sessions.create_async(
            params=session_params(), options={"idempotency_key": "create:r-1"}
        )
        assert fresh.id != first.id
        assert (await client.v1.checkout.sessions.retrieve_async(first.id)).status == "expired"


async def test_undelivered_webhooks_are_sent_after_a_restart(
    tmp_path: Path, browser: aiohttp.ClientSession, receiver: WebhookReceiver
) -> None:
    state = tmp_path / "stripe.db"
    async with running(state, receiver) as (sandbox, client):
        sandbox.pause_webhooks()
        _, intent = await authorised_session(client, browser)
        created = [e["id"] for e in sandbox.events()]
        assert receiver.received == []

    async with running(state, receiver) as (sandbox, client):

        async def delivered() -> bool:
            return sorted(receiver.ids()) == sorted(created)

        await eventually(delivered)
        assert receiver.ids() == created  # in their order
        for body, signature in receiver.received:
            client.construct_event(body, signature, SECRET)

        async def settled() -> bool:
            listed = await client.v1.events.list_async()
            return all(e.pending_webhooks == 0 for e in listed.data)

        await eventually(settled)

    # Delivered before the stop: not sent a third time.
    async with running(state, receiver):
        await asyncio.sleep(0.3)
        assert len(receiver.received) == len(created)
    assert intent.status == "requires_capture"


async def test_enabled_events_are_kept_unless_given(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    state = tmp_path / "stripe.db"
    async with running(state, enabled_events=["checkout.session.expired"]) as (sandbox, _):
        assert sandbox.enabled_events == ["checkout.session.expired"]
    async with running(state) as (sandbox, _):
        assert sandbox.enabled_events == ["checkout.session.expired"]
        sandbox.enabled_events = ["payment_intent.canceled"]
    async with running(state) as (sandbox, _):
        assert sandbox.enabled_events == ["payment_intent.canceled"]
    async with running(state, enabled_events=["*"]) as (sandbox, _):
        assert sandbox.enabled_events == ["*"]


async def test_a_card_waiting_for_3d_secure_survives_and_its_number_never_reaches_disk(
    tmp_path: Path, browser: aiohttp.ClientSession
) -> None:
    state = tmp_path / "stripe.db"
    async with running(state) as (_, client):
        session = await create_session(client)
        status, _, location = await pay(browser, session.url, CARD_3DS)
        assert (status, location) == (303, f"/pay/{session.id}/authenticate")
        live = _bytes_on_disk(tmp_path)  # the database and its write-ahead log

    for on_disk in (live, _bytes_on_disk(tmp_path)):
        assert b"4000002500003155" not in on_disk and CARD_3DS.encode() not in on_disk
    with closing(sqlite3.connect(state)) as db:
        (book,) = db.execute("SELECT body FROM books").fetchone()
    assert '"last4":"3155"' in book

    async with running(state) as (sandbox, client):
        page = f"{sandbox.base_url}/pay/{session.id}"
        async with browser.post(
            f"{page}/authenticate", data={"action": "complete"}, allow_redirects=False
        ) as response:
            assert response.status == 303
        session = await client.v1.checkout.sessions.retrieve_async(session.id)
        intent = await client.v1.payment_intents.retrieve_async(session.payment_intent)
        assert (session.status, intent.status) == ("complete", "requires_capture")
        charge = await client.v1.charges.retrieve_async(intent.latest_charge)
        assert charge.payment_method_details.card.last4 == "3155"
        assert charge.payment_method_details.card.three_d_secure.result == "authenticated"


def _bytes_on_disk(directory: Path) -> bytes:
    return b"".join(path.read_bytes() for path in directory.iterdir() if path.is_file())


async def test_an_open_session_is_paid_at_its_new_address_after_a_restart(
    tmp_path: Path, browser: aiohttp.ClientSession
) -> None:
    state = tmp_path / "stripe.db"
    async with running(state) as (_, client):
        session = await create_session(client)
    async with running(state) as (sandbox, client):
        moved = await client.v1.checkout.sessions.retrieve_async(session.id)
        assert moved.url == f"{sandbox.base_url}/pay/{session.id}"
        status, _, _ = await pay(browser, moved.url)
        assert status == 303


async def test_a_second_sandbox_on_the_same_state_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "stripe.db"
    async with running(state):
        with pytest.raises(RuntimeError, match="in use"):
            await StripeSandbox(state_path=state).start()
    async with running(state):
        pass


# -- SIGKILL ------------------------------------------------------------------------------------


async def _start_cli(state: Path, *extra: str) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulators.stripe_sandbox",
        "--port",
        "0",
        "--log-level",
        "warning",
        "--state",
        str(state),
        *extra,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    base_url = (await asyncio.wait_for(process.stdout.readline(), 20)).decode().strip()
    return process, base_url


async def _kill(process: asyncio.subprocess.Process) -> None:
    process.send_signal(signal.SIGKILL)
    assert await asyncio.wait_for(process.wait(), 20) == -signal.SIGKILL


def _client(base_url: str) -> tuple[stripe.StripeClient, stripe.AIOHTTPClient]:
    http = stripe.AIOHTTPClient(timeout=10)
    sdk = stripe.StripeClient(
        base.API_KEY, base_addresses={"api": base_url}, http_client=http, max_network_retries=0
    )
    return sdk, http


async def test_every_answered_request_survives_a_sigkill(
    tmp_path: Path, browser: aiohttp.ClientSession
) -> None:
    state = tmp_path / "stripe.db"
    process, base_url = await _start_cli(state, "--enabled-events", "charge.captured")
    sdk, http = _client(base_url)
    answered: list[str] = []

    async def create_forever(worker: int) -> None:
        for n in range(10_000):
            session = await sdk.v1.checkout.sessions.create_async(
                params=session_params(client_reference_id=f"w{worker}-{n}")
            )
            answered.append(session.id)

    try:
        session = await create_session(sdk)
        await pay(browser, session.url)
        session = await sdk.v1.checkout.sessions.retrieve_async(session.id)
        captured = await sdk.v1.payment_intents.capture_async(session.payment_intent)
        await _kill(process)  # right after the answer

        process, base_url = await _start_cli(state)
        sdk, http2 = _client(base_url)
        await http.close_async()
        http = http2
        again = await sdk.v1.payment_intents.retrieve_async(captured.id)
        assert again.to_dict() == captured.to_dict()
        _, body, _ = await raw(browser, "GET", f"{base_url}/_sandbox/ledger")
        assert body["payment_intents"][captured.id]["capture_requests"] == 1
        _, body, _ = await raw(browser, "GET", f"{base_url}/_sandbox/webhooks")
        assert body["enabled_events"] == ["charge.captured"]

        # Killed in the middle of a stream of writes, at no chosen moment.
        workers = [asyncio.create_task(create_forever(w)) for w in range(4)]
        await eventually(lambda: _at_least(answered, 20))
        await _kill(process)
        for worker in workers:
            with pytest.raises((stripe.APIConnectionError, stripe.APIError)):
                await worker

        process, base_url = await _start_cli(state)
        sdk, http2 = _client(base_url)
        await http.close_async()
        http = http2
        listed = {
            s.id async for s in (await sdk.v1.checkout.sessions.list_async()).auto_paging_iter()
        }
        assert set(answered) <= listed
        assert len(listed) <= len(answered) + 4 + 1  # at most one unanswered per worker
    finally:
        await http.close_async()
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 20)


async def _at_least(items: list[str], count: int) -> bool:
    return len(items) >= count


async def test_the_state_file_is_written_before_the_answer(tmp_path: Path) -> None:
    state = tmp_path / "stripe.db"
    async with running(state) as (_, client):
        session = await create_session(client)
        # Already committed when the answer arrives: another connection reads it.
        with closing(sqlite3.connect(state)) as db:
            assert db.execute("PRAGMA user_version").fetchone() == (2,)
            assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            rows = db.execute("SELECT id, body FROM objects ORDER BY seq").fetchall()
    assert [(row[0], json.loads(row[1])["object"]) for row in rows] == [
        (session.id, "checkout.session")
    ]


def _picture(sandbox: StripeSandbox) -> dict[str, Any]:
    """Everything the state file must keep, comparable across processes."""
    account = sandbox.account
    objects = json.loads(json.dumps(account.objects))
    for obj in objects.values():
        if obj["object"] == "checkout.session" and obj["status"] == "open":
            obj["url"] = "(this run's address)"
    return {
        "objects": objects,
        "order": {
            kind: [o["id"] for o in account.objects.values() if o["object"] == kind]
            for kind in ("checkout.session", "payment_intent", "charge", "refund", "dispute")
        },
        "events": [e["id"] for e in account.events],
        "checkouts": account.checkouts,
        "books": account.books,
        "ledger": sandbox.ledger(),
        "idempotency": sandbox.idempotency.completed(),
        "clock": sandbox.clock.offset,
        "undelivered": list(sandbox.webhooks.undelivered),
        "enabled_events": sandbox.enabled_events,
    }


async def test_a_restart_restores_exactly_what_was_there(
    tmp_path: Path, browser: aiohttp.ClientSession
) -> None:
    """Every kind of object and bookkeeping, in every state the sandbox has."""
    state = tmp_path / "stripe.db"
    async with running(state, enabled_events=["charge.refunded", "charge.captured"]) as (
        sandbox,
        client,
    ):
        sandbox.webhook_url = "http://127.0.0.1:9/nowhere"  # down: deliveries wait
        await create_session(client)  # stays open
        expired = await create_session(client, metadata={"k": "v"})
        await client.v1.checkout.sessions.expire_async(expired.id)
        declined = await create_session(client)
        await pay(browser, declined.url, base.CARD_DECLINED)
        waiting = await create_session(client)
        await pay(browser, waiting.url, CARD_3DS)
        _, held = await authorised_session(client, browser)
        _, partial = await authorised_session(client, browser)
        await client.v1.payment_intents.capture_async(
            partial.id, params={"amount_to_capture": 1200}, options={"idempotency_key": "cap:1"}
        )
        with pytest.raises(stripe.InvalidRequestError):
            await client.v1.payment_intents.capture_async(partial.id)
        refund = await client.v1.refunds.create_async(
            params={"payment_intent": partial.id, "amount": 200, "metadata": {"r": "1"}}
        )
        await client.v1.refunds.update_async(refund.id, params={"metadata": {"n": "2"}})
        _, canceled = await authorised_session(client, browser)
        await client.v1.payment_intents.cancel_async(canceled.id)
        _, disputed = await authorised_session(client, browser, line_items=_kwd_items())
        sandbox.capture_payment_intent(disputed.id)
        sandbox.create_dispute(disputed.id)
        sandbox.advance_clock(600)
        before = _picture(sandbox)
        assert before["undelivered"] and before["books"][held.id].authorized_at

    async with running(state) as (sandbox, client):
        after = _picture(sandbox)
        assert after == before
        # And the restored account goes on working.
        await client.v1.payment_intents.capture_async(held.id)
        retried = await client.v1.payment_intents.capture_async(
            partial.id, params={"amount_to_capture": 1200}, options={"idempotency_key": "cap:1"}
        )
        assert retried.last_response.headers["Idempotent-Replayed"] == "true"


def _kwd_items() -> list[dict[str, Any]]:
    return [
        {
            "price_data": {
                "currency": "kwd",
                "unit_amount": 5120,
                "product_data": {"name": "Charging session"},
            },
            "quantity": 1,
        }
    ]
