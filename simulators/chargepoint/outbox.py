"""Transaction messages held back while offline, and the provisional transaction ids they use."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

from ocpp.v16 import call

TransactionMessage = call.StartTransaction | call.StopTransaction | call.MeterValues


@dataclass
class Pending:
    payload: TransactionMessage
    # For a StartTransaction: the id the charger uses until the CSMS assigns the real one.
    provisional_id: int | None = None


class Outbox:
    """FIFO of transaction messages; OCPP wants them delivered in order once back online."""

    def __init__(self) -> None:
        self._pending: deque[Pending] = deque()
        self._assigned: dict[int, int] = {}
        self._last_provisional = 0

    def __len__(self) -> int:
        return len(self._pending)

    def provisional_id(self) -> int:
        """A fresh local transaction id; negative so it can never clash with a CSMS one."""
        self._last_provisional -= 1
        return self._last_provisional

    def put(self, payload: TransactionMessage, provisional_id: int | None = None) -> None:
        self._pending.append(Pending(payload, provisional_id))

    def head(self) -> Pending | None:
        return self._pending[0] if self._pending else None

    def pop(self) -> None:
        self._pending.popleft()

    def assign(self, provisional_id: int, transaction_id: int) -> None:
        self._assigned[provisional_id] = transaction_id

    def resolve(self, payload: TransactionMessage) -> TransactionMessage | None:
        """The payload with its provisional id swapped for the CSMS one.

        None when the transaction never reached the CSMS (its StartTransaction was
        refused with a CALLERROR), so nothing about it can be delivered either.
        """
        transaction_id = getattr(payload, "transaction_id", None)
        if transaction_id is None or transaction_id >= 0:
            return payload
        if transaction_id in self._assigned:
            return replace(payload, transaction_id=self._assigned[transaction_id])
        return None
