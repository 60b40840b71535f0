"""The state file of earlier versions: one JSON document (format 1), rewritten whole on
every change. `persistence` imports it once into a SQLite state file.

Its layout: `clock_offset`, `enabled_events`, `undelivered` and `pending_webhooks`
(event ids), `books` (by PaymentIntent id), `events` (ids, oldest first), `objects`
(the objects that can change) and `frozen` (events and payment methods, which cannot),
`checkouts` (by session id) and `idempotency` (a list of saved responses with their
`scope` and `key`).
"""

from __future__ import annotations

import json
from pathlib import Path

from .codec import Snapshot, book_from, checkout_from, saved_from

FORMAT = 1


def is_legacy(path: Path) -> bool:
    """Whether the file at `path` is a JSON state file (a SQLite file starts otherwise)."""
    try:
        with open(path, "rb") as file:
            head = file.read(64)
    except FileNotFoundError:
        return False
    return head.lstrip().startswith(b"{")


def read_legacy(path: Path) -> Snapshot:
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != FORMAT:
        raise RuntimeError(f"{path}: unknown state format {data.get('format')!r}")
    # Each kind of object is wholly in one of the two, so each kind keeps its order.
    objects = {**data["objects"], **data["frozen"]}
    pending = set(data["pending_webhooks"])
    for event_id in data["events"]:
        objects[event_id]["pending_webhooks"] = 1 if event_id in pending else 0
    idempotency = []
    for entry in data["idempotency"]:
        entry = dict(entry)
        scope, key = entry.pop("scope"), entry.pop("key")
        idempotency.append((scope, key, saved_from(entry)))
    return Snapshot(
        objects=objects,
        checkouts={sid: checkout_from(checkout) for sid, checkout in data["checkouts"].items()},
        books={intent_id: book_from(book) for intent_id, book in data["books"].items()},
        idempotency=idempotency,
        undelivered=list(data["undelivered"]),
        clock_offset=data["clock_offset"],
        enabled_events=data["enabled_events"],
    )
