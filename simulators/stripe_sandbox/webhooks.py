"""Webhook delivery, signed exactly like Stripe's, with retries and switches for the bad days.

Each event is POSTed as JSON to the endpoint with
`Stripe-Signature: t={unix time},v1={hex HMAC-SHA256(secret, "{t}.{body}")}`. A non-2xx
answer or a connection failure is retried with exponential backoff (Stripe retries for
three days; the sandbox starts at half a second). First attempts go out one at a time
in event order; retries run on their own, so a failing event does not hold back the
others, and may arrive after them, as on Stripe.

Switches: `duplicates` (every event delivered n times), `shuffle` (pending events sent
in a different order), `pause()`/`resume()` (hold deliveries).

The endpoint subscribes to `enabled_events`, as a Stripe webhook endpoint does: event
types by name, or `["*"]` (the default) for all of them; `*` is the only wildcard Stripe
accepts there. Events of other types are not sent (their `pending_webhooks` stays 0).

`undelivered` holds every event not yet delivered, first attempts and retries alike:
the state file keeps it, and `restore()` sends those events again after a restart, as
Stripe keeps retrying while the receiver is down. A delivery made just before a crash
may be sent again: receivers must tolerate duplicates anyway.

No event goes out before the change it reports is on disk: a new event waits in
`enqueue()` until the sandbox has written its state and calls `release()`. `changed`
notes the events whose delivery changed (queued, delivered, given up) for the state
file, and `on_change` is told when one changes outside a request (delivered, given up).

The signature timestamp is wall-clock time even when the sandbox clock has been
advanced: receivers check it against their own clock (the SDK allows 300 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import re
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from .resources import JSON

log = logging.getLogger("simulators.stripe_sandbox.webhooks")

# In shuffle mode, wait this long for more events so there is something to reorder.
SHUFFLE_WINDOW = 0.3
ALL_EVENTS = "*"
_EVENT_TYPE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")


def check_enabled_events(enabled_events: object) -> list[str]:
    """`enabled_events` as Stripe accepts it: a non-empty list of event types, or `["*"]`."""
    if not isinstance(enabled_events, list) or not enabled_events:
        raise ValueError("enabled_events must be a non-empty list of event types, or ['*']")
    for event_type in enabled_events:
        if event_type == ALL_EVENTS:
            continue
        if not isinstance(event_type, str) or not _EVENT_TYPE.match(event_type):
            raise ValueError(
                f"Invalid enabled_events value {event_type!r}: an event type such as "
                "'checkout.session.completed', or '*' for all events (the only wildcard)"
            )
    return list(dict.fromkeys(enabled_events))


def signature_header(payload: str, secret: str, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


@dataclass(frozen=True)
class Attempt:
    event_id: str
    event_type: str
    copy: int
    attempt: int
    url: str
    status: int | None
    error: str | None
    at: float

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class WebhookDispatcher:
    def __init__(
        self,
        url: str | None,
        secret: str,
        *,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        max_attempts: int | None = None,
        timeout: float = 10.0,
        enabled_events: list[str] | None = None,
    ) -> None:
        self.url = url
        self.enabled_events = check_enabled_events(enabled_events or [ALL_EVENTS])
        self.secret = secret
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.duplicates = 1
        self.shuffle = False
        self.attempts: list[Attempt] = []
        # Event id -> event, for every event not delivered yet (in creation order).
        self.undelivered: dict[str, JSON] = {}
        # Ids of the events queued, delivered or given up since the state file took them.
        self.changed: dict[str, None] = {}
        # Called when an event is delivered or given up.
        self.on_change: Callable[[], None] = lambda: None
        # New events, until the change they report is on disk; then sent from `_pending`.
        self._staged: list[JSON] = []
        self._pending: list[JSON] = []
        self._wake = asyncio.Event()
        self._running = asyncio.Event()
        self._running.set()
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def subscribed(self, event_type: str) -> bool:
        return ALL_EVENTS in self.enabled_events or event_type in self.enabled_events

    def enqueue(self, event: JSON) -> None:
        """Called for every new event; events made while no endpoint is set, or of a type
        the endpoint does not subscribe to, are not sent."""
        if self.url is None or not self.subscribed(event["type"]):
            return
        event["pending_webhooks"] = 1
        self.undelivered[event["id"]] = event
        self.changed[event["id"]] = None
        self._staged.append(event)

    def release(self) -> None:
        """The events enqueued so far are on disk: send them."""
        if self._staged:
            self._pending.extend(self._staged)
            self._staged = []
            self._wake.set()

    def restore(self, events: list[JSON]) -> None:
        """Events a previous run had not delivered, instead of any waiting: sent again."""
        self._staged, self._pending, self.undelivered = [], [], {}
        self.changed.clear()
        for event in events:
            event["pending_webhooks"] = 1
            self.undelivered[event["id"]] = event
            self._pending.append(event)
        if events:
            self._wake.set()

    def _settled(self, event: JSON, *, delivered: bool) -> None:
        changed = False
        if delivered and event["pending_webhooks"]:
            event["pending_webhooks"] = 0
            changed = True
        # An event given up stays pending on Stripe, but nothing will send it again.
        if self.undelivered.pop(event["id"], None) is not None:
            changed = True
        if changed:
            self.changed[event["id"]] = None
            self.on_change()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        self._spawn(self._dispatch())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dispatch(self) -> None:
        while True:
            await self._wake.wait()
            await self._running.wait()
            if self.shuffle:
                await asyncio.sleep(SHUFFLE_WINDOW)
            self._wake.clear()
            batch, self._pending = self._pending, []
            if self.shuffle and len(batch) > 1:
                original = list(batch)
                while batch == original:
                    random.shuffle(batch)
            for event in batch:
                for copy in range(1, self.duplicates + 1):
                    await self._running.wait()
                    if not await self._send(event, copy, 1):
                        self._spawn(self._retry(event, copy))

    async def _retry(self, event: JSON, copy: int) -> None:
        delay = self.retry_initial
        attempt = 1
        while self.max_attempts is None or attempt < self.max_attempts:
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max)
            await self._running.wait()
            attempt += 1
            if await self._send(event, copy, attempt):
                return
        log.warning("webhook %s %s given up after %d attempts", event["id"], event["type"], attempt)
        self._settled(event, delivered=False)

    async def _send(self, event: JSON, copy: int, attempt: int) -> bool:
        url, session = self.url, self._session
        if url is None or session is None:
            return False
        payload = json.dumps(event, indent=2)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Cache-Control": "no-cache",
            "Stripe-Signature": signature_header(payload, self.secret, int(time.time())),
        }
        status: int | None = None
        error: str | None = None
        try:
            async with session.post(url, data=payload.encode(), headers=headers) as response:
                status = response.status
                await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        record = Attempt(event["id"], event["type"], copy, attempt, url, status, error, time.time())
        self.attempts.append(record)
        if record.delivered:
            self._settled(event, delivered=True)
            log.debug("webhook %s %s delivered", event["id"], event["type"])
        else:
            log.info(
                "webhook %s %s attempt %d failed: %s",
                event["id"],
                event["type"],
                attempt,
                status if error is None else error,
            )
        return record.delivered

    def report(self) -> list[dict[str, object]]:
        return [asdict(attempt) | {"delivered": attempt.delivered} for attempt in self.attempts]
