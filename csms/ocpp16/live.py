"""Connector statuses in memory: what payments asks on every event, without a query."""

from __future__ import annotations

from typing import Protocol


class StatusSink(Protocol):
    """Where the chargers' messages put each connector status they store."""

    def update(self, charger_id: str, connector_id: int, status: str, at: str) -> None: ...


class LiveStatus:
    def __init__(self) -> None:
        self._statuses: dict[tuple[str, int], tuple[str, str]] = {}

    def update(self, charger_id: str, connector_id: int, status: str, at: str) -> None:
        """Keep the newest status; one queued while offline may arrive after a newer one."""
        current = self._statuses.get((charger_id, connector_id))
        if current is None or at >= current[1]:
            self._statuses[(charger_id, connector_id)] = (status, at)

    def status(self, charger_id: str, connector_id: int) -> str | None:
        current = self._statuses.get((charger_id, connector_id))
        return current[0] if current else None
