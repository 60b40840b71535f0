"""Fault injection for the API: the failures a Stripe client must survive.

- `status=500` (or 502/503/429...): a Stripe-shaped error before the endpoint runs, so
  nothing changes and nothing is saved under the idempotency key; a retry succeeds.
- `status="timeout"`: the request hangs longer than any client timeout. With
  `after_processing=True` the endpoint runs (and its response is saved under the
  idempotency key) before the answer is withheld: the client cannot tell whether the
  capture happened, and must retry with the same key to find out.
- `delay_seconds`: a slow answer; the request holds its idempotency key meanwhile, so a
  concurrent retry sees `idempotency_key_in_use`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = int | Literal["timeout"]


@dataclass
class Fault:
    remaining: int
    status: Status | None
    delay_seconds: float = 0.0
    path: str | None = None
    method: str | None = None
    after_processing: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path is None or path.startswith(self.path)

    def describe(self) -> dict[str, object]:
        return {
            "remaining": self.remaining,
            "status": self.status,
            "delay_seconds": self.delay_seconds,
            "path": self.path,
            "method": self.method,
            "after_processing": self.after_processing,
        }


class FaultPlan:
    """Faults waiting for the next matching requests, first added first used."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(
        self,
        count: int = 1,
        status: Status | None = None,
        *,
        delay_seconds: float | None = None,
        path: str | None = None,
        method: str | None = None,
        after_processing: bool = False,
    ) -> Fault:
        if count < 1:
            raise ValueError("count must be at least 1")
        if status is None and delay_seconds is None:
            status = 500
        if isinstance(status, int) and not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status or 'timeout', not {status}")
        if isinstance(status, str) and status != "timeout":
            raise ValueError(f"status must be an HTTP error status or 'timeout', not {status!r}")
        if after_processing and status != "timeout":
            raise ValueError("after_processing applies to status='timeout' only")
        fault = Fault(count, status, delay_seconds or 0.0, path, method, after_processing)
        self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.matches(method, path):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        self._faults.clear()

    def pending(self) -> list[dict[str, object]]:
        return [fault.describe() for fault in self._faults]
