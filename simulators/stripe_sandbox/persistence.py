"""The state file: everything the account holds, on disk, so a restart loses nothing.

What it holds: every object and event, the bookkeeping of Checkout Sessions and
PaymentIntents with their ledger, the saved responses of the idempotency cache (a retry
after a restart must get the saved response, not run again), the clock offset, the
webhook endpoint's `enabled_events`, and the events not yet delivered (sent again after
the restart). Not held: faults waiting to fire, delivery switches, the delivery log.

Write-through: `StripeSandbox` writes the whole state after every change and before it
answers, so whatever was answered survives a SIGKILL at any instant. Each write goes to
a temporary file, is fsynced, renamed over the state file and the directory fsynced:
the file on disk is always one complete state, the old one or the new one. Parts that
never change once written (events, payment methods, line items, saved responses) are
encoded once and their JSON reused, so a write costs mostly the mutable objects and the
disk. A lock file keeps a second process from writing the same state.

Card numbers never reach the file: a card waiting for 3D Secure is kept as a `Card`.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .cards import Card, CardProfile
from .idempotency import IdempotencyStore, Saved
from .ledger import Ledger
from .resources import JSON
from .specs import LineItemSpec, PaymentIntentSpec, SessionSpec
from .state import Account, Checkout, Clock, IntentBook
from .webhooks import WebhookDispatcher

FORMAT = 1
# Objects that never change once created: their JSON is encoded once.
_FROZEN_OBJECTS = frozenset({"event", "payment_method"})


def _dumps(value: Any) -> str:
    # Compact, and without the check for cycles: the state is a tree.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, check_circular=False)


class StateFile:
    """One JSON file, replaced atomically and durably on every write."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._temporary = self.path.with_name(self.path.name + ".tmp")
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._lock: int | None = None

    def acquire(self) -> None:
        """Take the lock file; a second process on the same state is refused."""
        if self._lock is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RuntimeError(f"{self.path} is in use by another Stripe sandbox") from None
        self._lock = fd

    def release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def read(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise RuntimeError(f"{self.path}: unknown state format {data.get('format')!r}")
        return data

    def write(self, text: str) -> None:
        with open(self._temporary, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(self._temporary, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


class Snapshots:
    """Encodes the sandbox's state as JSON text, and restores it from that text."""

    def __init__(
        self,
        account: Account,
        idempotency: IdempotencyStore,
        clock: Clock,
        webhooks: WebhookDispatcher,
    ) -> None:
        self.account = account
        self.idempotency = idempotency
        self.clock = clock
        self.webhooks = webhooks
        # JSON of what never changes once written, by id (or idempotency scope and key).
        self._frozen: dict[str, str] = {}
        self._saved: dict[tuple[str, str, str], str] = {}

    # -- encoding ---------------------------------------------------------------------

    def encode(self) -> str:
        account = self.account
        mutable: dict[str, JSON] = {}
        frozen: list[str] = []
        for object_id, obj in account.objects.items():
            if obj["object"] in _FROZEN_OBJECTS:
                frozen.append(self._frozen_json(object_id, object_id, obj))
            else:
                mutable[object_id] = obj
        checkouts = ",".join(
            self._frozen_json(f"{session_id}#checkout", session_id, checkout)
            for session_id, checkout in account.checkouts.items()
        )
        head = {
            "format": FORMAT,
            "clock_offset": self.clock.offset,
            "enabled_events": self.webhooks.enabled_events,
            "undelivered": list(self.webhooks.undelivered),
            "pending_webhooks": [e["id"] for e in account.events if e["pending_webhooks"]],
            "books": {intent_id: _book_json(book) for intent_id, book in account.books.items()},
            "events": [event["id"] for event in account.events],
        }
        return (
            f"{_dumps(head)[:-1]}"
            f',"objects":{_dumps(mutable)}'
            f',"frozen":{{{",".join(frozen)}}}'
            f',"checkouts":{{{checkouts}}}'
            f',"idempotency":[{",".join(self._saved_json())}]}}'
        )

    def _frozen_json(self, cache_key: str, name: str, value: JSON | Checkout) -> str:
        """`"name":value` of something that never changes, encoded once."""
        text = self._frozen.get(cache_key)
        if text is None:
            if isinstance(value, Checkout):
                value = {"spec": asdict(value.spec), "line_items": value.line_items}
            text = self._frozen[cache_key] = f"{_dumps(name)}:{_dumps(value)}"
        return text

    def _saved_json(self) -> list[str]:
        current: dict[tuple[str, str, str], str] = {}
        for scope, key, saved in self.idempotency.completed():
            cache_key = (scope, key, saved.request_id)
            text = self._saved.get(cache_key)
            if text is None:
                text = _dumps(
                    {"scope": scope, "key": key, **asdict(saved), "body": saved.body.decode()}
                )
            current[cache_key] = text
        self._saved = current
        return list(current.values())

    # -- decoding ---------------------------------------------------------------------

    def restore(self, data: dict[str, Any], *, keep_enabled_events: bool) -> None:
        """Replace the state by the one in `data` (as `StateFile.read` returns it)."""
        account = self.account
        self.clock.offset = data["clock_offset"]
        account.objects = {**data["objects"], **data["frozen"]}
        account.events = [account.objects[event_id] for event_id in data["events"]]
        pending = set(data["pending_webhooks"])
        for event in account.events:
            event["pending_webhooks"] = 1 if event["id"] in pending else 0
        account.checkouts = {
            session_id: Checkout(_spec(checkout["spec"]), checkout["line_items"])
            for session_id, checkout in data["checkouts"].items()
        }
        account.books = {intent_id: _book(book) for intent_id, book in data["books"].items()}
        self.idempotency.restore(
            [(entry.pop("scope"), entry.pop("key"), _saved(entry)) for entry in data["idempotency"]]
        )
        if not keep_enabled_events:
            self.webhooks.enabled_events = data["enabled_events"]
        self.webhooks.restore([account.objects[event_id] for event_id in data["undelivered"]])
        self._frozen.clear()
        self._saved.clear()


def _book_json(book: IntentBook) -> JSON:
    pending = None
    if book.pending is not None:
        card, method_id = book.pending
        pending = {"card": asdict(card), "payment_method": method_id}
    return {
        "ledger": book.ledger.to_json(),
        "authorized_at": book.authorized_at,
        "pending": pending,
    }


def _book(data: JSON) -> IntentBook:
    pending = None
    if data["pending"] is not None:
        card = dict(data["pending"]["card"])
        card["profile"] = CardProfile(**card["profile"])
        pending = (Card(**card), data["pending"]["payment_method"])
    return IntentBook(Ledger.from_json(data["ledger"]), data["authorized_at"], pending)


def _spec(data: JSON) -> SessionSpec:
    fields = dict(data)
    fields["line_items"] = tuple(LineItemSpec(**item) for item in data["line_items"])
    fields["payment_intent"] = PaymentIntentSpec(**data["payment_intent"])
    for name in ("allowed_payment_method_types", "excluded_payment_method_types"):
        if fields[name] is not None:
            fields[name] = tuple(fields[name])
    return SessionSpec(**fields)


def _saved(entry: JSON) -> Saved:
    entry = dict(entry)
    entry["body"] = entry["body"].encode()
    return Saved(**entry)
