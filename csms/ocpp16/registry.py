"""The connected chargers: one live session per charge point id."""

from __future__ import annotations

from csms.ocpp16.session import ChargerSession


class Sessions:
    def __init__(self) -> None:
        self._by_id: dict[str, ChargerSession] = {}

    def get(self, charge_point_id: str) -> ChargerSession | None:
        return self._by_id.get(charge_point_id)

    def put(self, session: ChargerSession) -> ChargerSession | None:
        """Register a session; returns the one it replaces, if any."""
        previous = self._by_id.get(session.charge_point_id)
        self._by_id[session.charge_point_id] = session
        return previous

    def discard(self, session: ChargerSession) -> bool:
        """Forget a session unless a newer one replaced it; True when it was the current one."""
        if self._by_id.get(session.charge_point_id) is session:
            del self._by_id[session.charge_point_id]
            return True
        return False

    def ids(self) -> list[str]:
        return list(self._by_id)

    def all(self) -> list[ChargerSession]:
        return list(self._by_id.values())
