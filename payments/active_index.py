"""Which connectors and transactions have an active reservation, in memory.

Most OCPP messages concern no payment; the index lets them pass without a query. Each
node keeps its own copy true: `apply` takes the entry of each of its own commits
(`IndexEntry.of`) and of those other nodes announce, and `resync` reads the database at
start-up and whenever news may have been missed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from payments.reservation import Reservation


@dataclass(frozen=True)
class IndexEntry:
    reservation_id: str
    charger_id: str
    connector_id: int
    transaction_id: int | None
    active: bool

    @classmethod
    def of(cls, r: Reservation) -> IndexEntry:
        return cls(r.id, r.charger_id, r.connector_id, r.transaction_id, r.active)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IndexEntry:
        return cls(
            str(data["reservation_id"]),
            str(data["charger_id"]),
            int(data["connector_id"]),
            None if data["transaction_id"] is None else int(data["transaction_id"]),
            bool(data["active"]),
        )


class ActiveIndex:
    def __init__(self) -> None:
        self.connectors: dict[tuple[str, int], str] = {}
        self.transactions: dict[int, str] = {}
        self.places: dict[str, tuple[str, int]] = {}  # reservation -> (charger, connector)

    def apply(self, entry: IndexEntry) -> None:
        key = (entry.charger_id, entry.connector_id)
        if entry.active:
            self.connectors[key] = entry.reservation_id
            self.places[entry.reservation_id] = key
            if entry.transaction_id is not None:
                self.transactions[entry.transaction_id] = entry.reservation_id
            return
        self.places.pop(entry.reservation_id, None)
        if self.connectors.get(key) == entry.reservation_id:
            del self.connectors[key]
        if (
            entry.transaction_id is not None
            and self.transactions.get(entry.transaction_id) == entry.reservation_id
        ):
            del self.transactions[entry.transaction_id]

    def known(self) -> set[str]:
        return set(self.places)

    def resync(self, active: Iterable[IndexEntry], known_before: set[str]) -> None:
        """The active reservations as the database had them when `known_before` was taken:
        every one is applied; one known then and not active in the database any more is
        dropped. An entry that arrived while the database was read is kept."""
        listed = set()
        for entry in active:
            listed.add(entry.reservation_id)
            self.apply(entry)
        for reservation_id in known_before - listed:
            place = self.places.get(reservation_id)
            if place is None:
                continue
            transaction = next(
                (t for t, rid in self.transactions.items() if rid == reservation_id), None
            )
            self.apply(IndexEntry(reservation_id, place[0], place[1], transaction, active=False))
