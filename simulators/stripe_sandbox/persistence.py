"""The state file: everything the account holds, on disk, so a restart loses nothing.

What it holds: every object and event, the bookkeeping of Checkout Sessions and
PaymentIntents with their ledger, the saved responses of the idempotency cache (a retry
after a restart must get the saved response, not run again), the clock offset, the
webhook endpoint's `enabled_events`, and the events not yet delivered (sent again after
the restart). Not held: faults waiting to fire, delivery switches, the delivery log.

The file is a SQLite database (WAL, synchronous=FULL) with one row per record:

    objects      every object, events included, by id; `seq` keeps the creation order
    checkouts    what each Checkout Session was created from (spec, line items)
    books        each PaymentIntent's ledger, authorisation time and card awaiting 3DS
    idempotency  each saved response by (API key, Idempotency-Key), with its `created`
    undelivered  the ids of the events still to deliver, in their order
    settings     the clock offset and `enabled_events`

Write-through: `StripeSandbox.commit()` calls `write()` after every change and before it
answers; `write()` stores the changes since the previous write in one transaction, and
only once it is committed (the WAL fsynced) do the webhooks of those changes go out
(`WebhookDispatcher.release`). A SIGKILL at any instant leaves the last committed
transaction: everything answered, nothing half-written.

What a write holds (the rule; the cost of a write is what changed, never what the account
holds):
- objects, checkouts, books: every record stored or looked up by id since the previous
  write (`Records.touched`, see `records`), encoded again and written if its encoding
  differs from the one last written (a fingerprint is kept per record). Code that
  changes a record it reached otherwise (by iterating) must `touch()` it;
- events whose delivery changed (`WebhookDispatcher.changed`): the event row (its
  `pending_webhooks`) and its `undelivered` row;
- responses saved since (`IdempotencyStore.changed`); expired ones are deleted;
- the clock offset and `enabled_events`, when they differ from what was written.
A write that fails is rolled back and leaves all of it to the next write.

A charge's `refunds` list holds the refund objects themselves (so do a transfer's
`reversals` and an application fee's `refunds`): updating a refund changes its charge
without touching it, so at load the lists are linked to the objects again.

Earlier versions kept one JSON document (see `legacy`). Found at the state path, or,
when the state path does not exist, at the same name with the suffix `.json` (renamed
`.json.imported` then), it is imported once into a new SQLite file, which replaces it
atomically. A lock file keeps a second process from using the same state.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import codec
from .codec import Snapshot, dumps
from .idempotency import TTL, IdempotencyStore
from .legacy import is_legacy, read_legacy
from .records import Records
from .state import Account
from .state_types import Clock
from .webhooks import WebhookDispatcher

log = logging.getLogger("simulators.stripe_sandbox")

FORMAT = 2
_SCHEMA = """
CREATE TABLE objects (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE TABLE checkouts (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE TABLE books (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
CREATE TABLE idempotency (
    seq INTEGER PRIMARY KEY,
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    created INTEGER NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (scope, key)
);
CREATE INDEX idempotency_created ON idempotency (created);
CREATE TABLE undelivered (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE);
CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_RECORD_TABLES = ("objects", "checkouts", "books")
_UPSERT = (
    "INSERT INTO {} (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body"
)


@dataclass(frozen=True)
class Parts:
    """What the state file keeps, in the running sandbox."""

    account: Account
    idempotency: IdempotencyStore
    clock: Clock
    webhooks: WebhookDispatcher

    def records(self) -> Iterator[tuple[str, Records[Any], Callable[[Any], Any]]]:
        """(table, records, encoder to JSON) of each table of records."""
        yield "objects", self.account.objects, _identity
        yield "checkouts", self.account.checkouts, codec.checkout_json
        yield "books", self.account.books, codec.book_json

    def settings(self) -> dict[str, str]:
        return {
            "clock_offset": dumps(self.clock.offset),
            "enabled_events": dumps(self.webhooks.enabled_events),
        }

    def forget_changes(self) -> None:
        """Start afresh: the changes are written (or there is no state file to write)."""
        for _, records, _ in self.records():
            records.touched.clear()
        self.webhooks.changed.clear()
        self.idempotency.changed.clear()

    def restore(self, snapshot: Snapshot, *, keep_enabled_events: bool) -> None:
        """Replace the sandbox's state by `snapshot`; nothing counts as changed."""
        account, objects = self.account, snapshot.objects
        # Lists that hold the objects themselves: a charge's refunds, a transfer's
        # reversals, an application fee's refunds.
        embedded = {"charge": "refunds", "transfer": "reversals", "application_fee": "refunds"}
        for obj in objects.values():
            if obj["object"] in embedded:
                items = obj[embedded[obj["object"]]]["data"]
                items[:] = [objects.get(item["id"], item) for item in items]
        account.objects.load(objects.items())
        account.events = [obj for obj in objects.values() if obj["object"] == "event"]
        account.checkouts.load(snapshot.checkouts.items())
        account.books.load(snapshot.books.items())
        self.clock.offset = snapshot.clock_offset
        self.idempotency.restore(snapshot.idempotency)
        if not keep_enabled_events and snapshot.enabled_events is not None:
            self.webhooks.enabled_events = snapshot.enabled_events
        self.webhooks.restore([objects[event_id] for event_id in snapshot.undelivered])


def _identity(value: Any) -> Any:
    return value


def _fingerprint(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


class StateFile:
    """The SQLite state file, its lock, and what was last written to it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._lock: int | None = None
        self._db: sqlite3.Connection | None = None
        # Per table, per record id: the fingerprint of the encoding last written.
        self._written: dict[str, dict[str, bytes]] = {table: {} for table in _RECORD_TABLES}
        self._settings: dict[str, str] = {}
        # Rows inserted, updated or deleted since opened (for tests and measurements).
        self.rows_written = 0

    # -- opening and closing ------------------------------------------------------------

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
        """Close the database and free the lock."""
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def open(self) -> Snapshot | None:
        """Open the database, importing a JSON state of earlier versions first: the state
        it holds, or None when it is new. Call `acquire()` first."""
        self._written = {table: {} for table in _RECORD_TABLES}
        self._settings = {}
        self._import_legacy()
        try:
            db, created = _connect(self.path)
        except sqlite3.DatabaseError as exc:
            raise RuntimeError(f"{self.path}: not a Stripe sandbox state file ({exc})") from None
        self._db = db
        if created:
            _fsync_directory(self.path.parent)
            return None
        return self._read(db)

    def _read(self, db: sqlite3.Connection) -> Snapshot:
        snapshot = Snapshot()
        decoders: dict[str, Callable[[Any], Any]] = {
            "objects": _identity,
            "checkouts": codec.checkout_from,
            "books": codec.book_from,
        }
        for table, decode in decoders.items():
            records: dict[str, Any] = getattr(snapshot, table)
            written = self._written[table]
            for record_id, body in db.execute(f"SELECT id, body FROM {table} ORDER BY seq"):
                records[record_id] = decode(json.loads(body))
                written[record_id] = _fingerprint(body)
        for scope, key, body in db.execute("SELECT scope, key, body FROM idempotency ORDER BY seq"):
            snapshot.idempotency.append((scope, key, codec.saved_from(json.loads(body))))
        snapshot.undelivered = [
            event_id for (event_id,) in db.execute("SELECT event_id FROM undelivered ORDER BY seq")
        ]
        self._settings = dict(db.execute("SELECT name, value FROM settings"))
        if "clock_offset" in self._settings:
            snapshot.clock_offset = json.loads(self._settings["clock_offset"])
        if "enabled_events" in self._settings:
            snapshot.enabled_events = json.loads(self._settings["enabled_events"])
        return snapshot

    def _import_legacy(self) -> None:
        source = self.path
        if not is_legacy(source):
            source = self.path.with_suffix(".json")
            if self.path.exists() or source == self.path or not is_legacy(source):
                return
        snapshot = read_legacy(source)
        temporary = self.path.with_name(self.path.name + ".import")
        for leftover in (temporary, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
            leftover.unlink(missing_ok=True)
        db, _ = _connect(temporary, wal=False)
        try:
            _insert_all(db, snapshot)
        finally:
            db.close()
        with open(temporary, "rb") as file:
            os.fsync(file.fileno())
        os.replace(temporary, self.path)
        if source != self.path:
            os.replace(source, source.with_name(source.name + ".imported"))
        _fsync_directory(self.path.parent)
        log.info("Stripe sandbox state imported from %s into %s", source, self.path)

    # -- writing ------------------------------------------------------------------------

    def write(self, parts: Parts) -> None:
        """Store the changes since the previous write (see the module's rule), in one
        durable transaction; on failure (OSError) they are all kept for the next write."""
        assert self._db is not None, "the state file is not open"
        settled = parts.webhooks.changed
        rows: list[tuple[str, str, str, bytes]] = []
        for table, records, encode in parts.records():
            touched = records.touched
            if table == "objects" and settled:
                touched = touched | settled
            written = self._written[table]
            for record_id in touched:
                text = dumps(encode(records.peek(record_id)))
                fingerprint = _fingerprint(text)
                if written.get(record_id) != fingerprint:
                    rows.append((table, record_id, text, fingerprint))
        undelivered = parts.webhooks.undelivered
        deliveries = [(event_id, event_id in undelivered) for event_id in settled]
        saved = []
        for scope, key in parts.idempotency.changed:
            entry = parts.idempotency.saved(scope, key)
            if entry is not None and not entry.in_flight:
                saved.append((scope, key, entry.created, dumps(codec.saved_json(entry))))
        settings = {
            name: value
            for name, value in parts.settings().items()
            if self._settings.get(name) != value
        }
        if rows or deliveries or saved or settings:
            expired = parts.clock.now() - TTL
            self._transaction(rows, deliveries, saved, settings, expired)
        for table, record_id, _, fingerprint in rows:
            self._written[table][record_id] = fingerprint
        self._settings.update(settings)
        parts.forget_changes()

    def _transaction(
        self,
        rows: list[tuple[str, str, str, bytes]],
        deliveries: list[tuple[str, bool]],
        saved: list[tuple[str, str, int, str]],
        settings: dict[str, str],
        expired: int,
    ) -> None:
        db = self._db
        assert db is not None
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                changes = db.total_changes
                for table, record_id, text, _ in rows:
                    db.execute(_UPSERT.format(table), (record_id, text))
                for event_id, waiting in deliveries:
                    if waiting:
                        db.execute(
                            "INSERT OR IGNORE INTO undelivered (event_id) VALUES (?)", (event_id,)
                        )
                    else:
                        db.execute("DELETE FROM undelivered WHERE event_id = ?", (event_id,))
                db.executemany(
                    "INSERT OR REPLACE INTO idempotency (scope, key, created, body) "
                    "VALUES (?, ?, ?, ?)",
                    saved,
                )
                db.execute("DELETE FROM idempotency WHERE created <= ?", (expired,))
                db.executemany(
                    "INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)",
                    settings.items(),
                )
                changes = db.total_changes - changes
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise OSError(f"{self.path}: {exc}") from exc
        self.rows_written += changes


def _connect(path: Path, *, wal: bool = True) -> tuple[sqlite3.Connection, bool]:
    """A connection to the database at `path`, its schema created if new: (it, new)."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous = FULL")
        if wal and db.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
            raise RuntimeError(f"{path}: SQLite refuses WAL mode here")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == FORMAT:
            return db, False
        if version != 0 or db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise RuntimeError(f"{path}: unknown state format {version!r}")
        db.execute("BEGIN IMMEDIATE")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {FORMAT}")
        db.execute("COMMIT")
        return db, True
    except BaseException:
        db.close()
        raise


def _insert_all(db: sqlite3.Connection, snapshot: Snapshot) -> None:
    """Write a whole state into a new database (the import of a JSON state)."""
    db.execute("BEGIN IMMEDIATE")
    records: dict[str, tuple[dict[str, Any], Callable[[Any], Any]]] = {
        "objects": (snapshot.objects, _identity),
        "checkouts": (snapshot.checkouts, codec.checkout_json),
        "books": (snapshot.books, codec.book_json),
    }
    for table, (values, encode) in records.items():
        db.executemany(
            f"INSERT INTO {table} (id, body) VALUES (?, ?)",
            ((record_id, dumps(encode(value))) for record_id, value in values.items()),
        )
    db.executemany(
        "INSERT INTO idempotency (scope, key, created, body) VALUES (?, ?, ?, ?)",
        (
            (scope, key, saved.created, dumps(codec.saved_json(saved)))
            for scope, key, saved in snapshot.idempotency
        ),
    )
    db.executemany(
        "INSERT INTO undelivered (event_id) VALUES (?)",
        ((event_id,) for event_id in snapshot.undelivered),
    )
    settings = {"clock_offset": dumps(snapshot.clock_offset)}
    if snapshot.enabled_events is not None:
        settings["enabled_events"] = dumps(snapshot.enabled_events)
    db.executemany("INSERT INTO settings (name, value) VALUES (?, ?)", settings.items())
    db.execute("COMMIT")


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
