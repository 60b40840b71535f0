"""Central system -> charger commands: the one way the rest of the product talks to chargers.

`send` validates the request against the operation's schema, waits for the charger's
reply (one CALL in flight per charger, a configurable timeout) and returns a typed
result instead of raising, so callers handle every outcome explicitly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from csms.ocpp16.frames import CallError
from csms.ocpp16.schemas import CSMS_ACTIONS, SchemaViolation, validate_request, validate_response
from csms.ocpp16.session import ChargerSession, ConnectionLost, NotConnected

log = structlog.get_logger()


@dataclass(frozen=True)
class Answered:
    """The charger's CALLRESULT payload."""

    payload: dict[str, Any]


@dataclass(frozen=True)
class Failed:
    """The charger answered with a CALLERROR (or with a reply that breaks the schema)."""

    code: str
    description: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TimedOut:
    """No reply in time, or the connection dropped after sending: the outcome is unknown."""


@dataclass(frozen=True)
class Offline:
    """The charger is not connected: nothing was sent."""


CommandResult = Answered | Failed | TimedOut | Offline


class InvalidCommand(ValueError):
    """The request is not a valid CALL of that operation; nothing was sent."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ChargerCommands:
    def __init__(self, sessions: Callable[[str], ChargerSession | None], timeout: float) -> None:
        self._sessions = sessions
        self._timeout = timeout

    def is_online(self, charge_point_id: str) -> bool:
        return self._sessions(charge_point_id) is not None

    async def send(
        self, charge_point_id: str, action: str, payload: dict[str, Any]
    ) -> CommandResult:
        if action not in CSMS_ACTIONS:
            raise InvalidCommand(f"{action!r} is not a central system operation of OCPP 1.6")
        try:
            validate_request(action, payload)
        except SchemaViolation as violation:
            raise InvalidCommand(
                violation.description, violation.description.split(":")[0]
            ) from None
        session = self._sessions(charge_point_id)
        if session is None:
            return Offline()
        bound = log.bind(charge_point_id=charge_point_id, action=action)
        try:
            async with asyncio.timeout(self._timeout):
                reply = await session.call(action, payload)
        except NotConnected:
            return Offline()
        except (TimeoutError, ConnectionLost):
            bound.warning("ocpp.command_timed_out")
            return TimedOut()
        if isinstance(reply, CallError):
            bound.warning("ocpp.command_failed", code=reply.code, reason=reply.description)
            return Failed(reply.code, reply.description, reply.details)
        try:
            validate_response(action, reply.payload)
        except SchemaViolation as violation:
            bound.warning("ocpp.command_bad_reply", reason=violation.description)
            return Failed(violation.code.value, f"invalid reply: {violation.description}")
        bound.info("ocpp.command_answered")
        return Answered(reply.payload)
