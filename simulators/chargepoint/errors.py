"""Why a simulated action could not happen."""

from __future__ import annotations


class SimulatorError(Exception):
    """The requested action is impossible in the charger's current state."""


class AuthorizationRejected(SimulatorError):
    """A local start was refused because the idTag is not Accepted."""

    def __init__(self, id_tag: str, status: str) -> None:
        super().__init__(f"idTag {id_tag!r} not accepted: {status}")
        self.id_tag = id_tag
        self.status = status


class ChargerOffline(SimulatorError):
    """A message needs the connection and there is none."""
