"""A fleet for the console benchmark, written straight into a central system's database
before it starts: chargers with two connectors each, reservations and transactions.

Why directly: registering thousands of chargers and running thousands of paid sessions
through the product would take longer than the measurement. The rows are the product's own
shapes: each reservation's `data` is `payments.codec`'s encoding of a real `Reservation`,
at most one active reservation per connector (the table's own rule), a charging session's
transaction open on its connector, which reports Charging; connectors held before the
charge report Available (the console shows them Reserved). Times are spread over the last
two days, so a share of the sessions changed within the hour (the console's "recent").

Which chargers are online is not written here: a tenth of them connect for real over
WebSocket once the server runs (bench.perf.console). They are `online_ids(fleet)`, and
carry no active session, so their own StatusNotifications change nothing of the sessions.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from csms.config_values import migrations
from csms.store.users import UserStore
from payments.codec import encode_reservation
from payments.pricing import Tariff
from payments.reservation_model import Hold, Reservation, State
from storage.clock import to_text, utc_now
from storage.db import Connection, Database

CONNECTORS = 2
USER = "bench-console"
PASSWORD = "bench console password"
TARIFF = Tariff("EUR", price_per_kwh=35, session_fee=50)
# Of the connectors of chargers not online: the share with an active session, and how those
# sessions are spread over the states.
ACTIVE_SHARE = 0.1
ACTIVE_STATES = (State.CHARGING, State.CHARGING, State.AWAITING_PLUG, State.PENDING_PAYMENT)
# Finished sessions per charger, spread over two days, and charges without payment (RFID).
FINISHED_PER_CHARGER = 2
RFID_PER_CHARGER = 1
SPAN = timedelta(days=2)


@dataclass(frozen=True)
class Fleet:
    chargers: int
    connectors: int
    reservations: int
    active_reservations: int
    recent_reservations: int  # changed within the hour: in the live values too
    transactions: int
    open_transactions: int

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def charger_id(n: int) -> str:
    return f"cb{n:05d}"


def online_ids(chargers: int) -> list[str]:
    """The tenth of the fleet that connects for real: every tenth charger."""
    return [charger_id(n) for n in range(0, chargers, 10)]


async def fill(target: str, chargers: int, seed: int = 1) -> Fleet:
    """Create the schema at `target` (a SQLite path or a postgresql:// URL), the console's
    user, and the fleet; returns what was written."""
    dialect = "postgresql" if target.startswith("postgresql") else "sqlite"
    db = await Database.open(target, migrations(dialect), synchronous="normal")
    try:
        await UserStore(db).add(USER, "viewer", PASSWORD)
        rows = _Rows(chargers, utc_now(), random.Random(seed))
        await db.write(rows.write)
        if db.dialect.name == "postgresql":  # the ids were given: the identity goes on after
            await db.execute(
                "SELECT setval(pg_get_serial_sequence('transactions', 'id'), MAX(id))"
                " FROM transactions"
            )
        return rows.fleet()
    finally:
        await db.close()


class _Rows:
    """The fleet's rows, made in memory then written in a handful of statements."""

    def __init__(self, chargers: int, now: datetime, rng: random.Random) -> None:
        self.count = chargers
        self.now = now
        self.rng = rng
        self.chargers: list[tuple[object, ...]] = []
        self.connectors: list[tuple[object, ...]] = []
        self.transactions: list[tuple[object, ...]] = []
        self.reservations: list[tuple[object, ...]] = []
        self.recent = 0
        self.active = 0
        self.open = 0
        self._make()

    def fleet(self) -> Fleet:
        return Fleet(
            chargers=len(self.chargers),
            connectors=len(self.chargers) * CONNECTORS,
            reservations=len(self.reservations),
            active_reservations=self.active,
            recent_reservations=self.recent,
            transactions=len(self.transactions),
            open_transactions=self.open,
        )

    def _ago(self, most: timedelta) -> datetime:
        return self.now - most * self.rng.random()

    def _make(self) -> None:
        online = set(online_ids(self.count))
        for n in range(self.count):
            cid = charger_id(n)
            # Offline ones were last seen up to two days ago (some long enough to be alerts).
            seen = to_text(self.now if cid in online else self._ago(SPAN))
            self.chargers.append(
                (cid, f"Bench {n}", "Accepted", "Bench", "Console", seen, to_text(self.now - SPAN))
            )
            self.connectors.append((cid, 0, "Available", seen))
            for connector in range(1, CONNECTORS + 1):
                status = "Available"
                if cid not in online and self.rng.random() < ACTIVE_SHARE:
                    status = self._active_session(cid, connector)
                elif self.rng.random() < 0.05:
                    status = self.rng.choice(("Unavailable", "Faulted", "Finishing"))
                self.connectors.append((cid, connector, status, seen))
            for _ in range(FINISHED_PER_CHARGER):
                self._finished_session(cid, self.rng.randint(1, CONNECTORS))
            for _ in range(RFID_PER_CHARGER):
                start = self._ago(SPAN)
                self._transaction(cid, self.rng.randint(1, CONNECTORS), start, 18_000, True)

    def _transaction(
        self, cid: str, connector: int, start: datetime, energy: int, stopped: bool
    ) -> int:
        number = len(self.transactions) + 1
        tag = f"tag{number}"
        stop = start + timedelta(minutes=45)
        self.transactions.append(
            (
                number, cid, connector, tag, "Accepted", 1_000_000, to_text(start),
                energy, 11_000, to_text(stop if stopped else self.now),
                1_000_000 + energy if stopped else None, to_text(stop) if stopped else None,
                "EVDisconnected" if stopped else None, to_text(start), to_text(stop),
            )
        )  # fmt: skip
        self.open += not stopped
        return number

    def _reservation(
        self, cid: str, connector: int, state: State, hold: Hold, created: datetime, **more: object
    ) -> Reservation:
        number = len(self.reservations) + 1
        base = Reservation(
            id=f"res_bench_{number:06d}",
            charger_id=cid,
            connector_id=connector,
            id_tag=f"PAYBENCH{number:08d}",
            tariff=TARIFF,
            hold_amount=5000,
            created_at=created,
            payment_deadline=created + timedelta(minutes=30),
        )
        return dataclasses.replace(base, state=state, hold=hold, **more)  # type: ignore[arg-type]

    def _store(self, r: Reservation, updated: datetime) -> None:
        self.reservations.append(
            (
                r.id, r.charger_id, r.connector_id, r.id_tag, f"tok_{r.id}", r.state.value,
                r.hold.value, r.tariff.currency, r.hold_amount, r.captured_amount, r.energy_wh,
                r.transaction_id, r.payment_intent_id, encode_reservation(r),
                to_text(r.created_at), to_text(updated),
            )
        )  # fmt: skip
        self.active += r.state not in _FINISHED
        self.recent += updated >= self.now - timedelta(hours=1)

    def _active_session(self, cid: str, connector: int) -> str:
        state = self.rng.choice(ACTIVE_STATES)
        created = self._ago(timedelta(minutes=50))
        if state is State.CHARGING:
            energy = self.rng.randint(1_000, 30_000)
            number = self._transaction(cid, connector, created, energy, False)
            r = self._reservation(
                cid, connector, state, Hold.HELD, created, transaction_id=number,
                payment_intent_id=f"pi_bench_{cid}_{connector}", energy_wh=energy,
                meter_start_wh=1_000_000, started_at=created, charging_since=created,
            )  # fmt: skip
            self._store(r, self.now - timedelta(seconds=self.rng.randint(1, 120)))
            return "Charging"
        hold = Hold.HELD if state is State.AWAITING_PLUG else Hold.NONE
        more = {"payment_intent_id": f"pi_bench_{cid}_{connector}"} if hold is Hold.HELD else {}
        self._store(self._reservation(cid, connector, state, hold, created, **more), created)
        return "Available"

    def _finished_session(self, cid: str, connector: int) -> None:
        created = self._ago(SPAN)
        energy = self.rng.randint(2_000, 40_000)
        number = self._transaction(cid, connector, created, energy, True)
        captured = 50 + energy * 35 // 1000
        r = self._reservation(
            cid, connector, State.COMPLETED, Hold.CAPTURED, created, transaction_id=number,
            payment_intent_id=f"pi_bench_{number}", energy_wh=energy, captured_amount=captured,
            capture_amount=captured, meter_start_wh=1_000_000, started_at=created,
            stopped_at=created + timedelta(minutes=45),
        )  # fmt: skip
        self._store(r, created + timedelta(minutes=46))

    def write(self, conn: Connection) -> None:
        conn.executemany(
            "INSERT INTO chargers (id, name, registration_status, vendor, model, last_seen_at,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            self.chargers,
        )
        conn.executemany(
            "INSERT INTO connectors (charger_id, connector_id, status, error_code, status_at)"
            " VALUES (?, ?, ?, 'NoError', ?)",
            self.connectors,
        )
        conn.executemany(
            "INSERT INTO transactions (id, charger_id, connector_id, id_tag, id_tag_status,"
            " meter_start_wh, started_at, energy_wh, power_w, metered_at, meter_stop_wh,"
            " stopped_at, stop_reason, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            self.transactions,
        )
        conn.executemany(
            "INSERT INTO reservations (id, charger_id, connector_id, id_tag, token, state, hold,"
            " currency, hold_amount, captured_amount, energy_wh, transaction_id,"
            " payment_intent_id, data, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            self.reservations,
        )


_FINISHED = frozenset({State.COMPLETED})
