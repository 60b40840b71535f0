"""Central system -> charger commands: the one way the rest of the product talks to chargers.

`ChargerCommands.send` validates the request against the operation's schema (and its
integers against OCPP 1.6's 32 bits, which the schemas leave out), waits for
the charger's reply (one CALL in flight per charger, a configurable timeout) and returns a
typed result instead of raising, so callers handle every outcome explicitly.

A charger connected to this node gets the CALL from `LocalCommands`; one connected to
another node of the cluster gets it through that node (`Relay`, csms/cluster/routing.py),
and the caller gets the same typed result either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

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
    """No reply in time: the outcome is unknown."""


@dataclass(frozen=True)
class Offline:
    """The charger is not connected.

    `sent` False: nothing was sent. `sent` True: the connection dropped after the CALL was
    sent and before its reply, so the charger may or may not have carried it out; a caller
    that must know (a remote start that may have begun a charge) treats it as unanswered.
    """

    sent: bool = False

    @property
    def description(self) -> str:
        if self.sent:
            return (
                "the connection dropped after the command was sent;"
                " it may or may not have been applied"
            )
        return "not connected: nothing was sent"


CommandResult = Answered | Failed | TimedOut | Offline


class InvalidCommand(ValueError):
    """The request is not a valid CALL of that operation; nothing was sent."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def out_of_range(value: Any, where: str = "") -> str | None:
    """Where `value` holds an integer wider than OCPP 1.6's (32 bits, signed), as "a.b[0]":
    the schemas set no bound, and such a number cannot even be encoded to be sent."""
    if isinstance(value, dict):
        found = (out_of_range(v, f"{where}.{k}" if where else str(k)) for k, v in value.items())
        return next((w for w in found if w is not None), None)
    if isinstance(value, list):
        found = (out_of_range(v, f"{where}[{i}]") for i, v in enumerate(value))
        return next((w for w in found if w is not None), None)
    wide = isinstance(value, int) and not isinstance(value, bool)
    return (where or "payload") if wide and not -(2**31) <= value < 2**31 else None


class Relay(Protocol):
    """Commands for chargers connected to other nodes."""

    def holder(self, charge_point_id: str) -> str | None:
        """The other node holding the charger's connection, if one does."""
        ...

    def is_online(self, charge_point_id: str) -> bool: ...

    async def call(
        self, node_id: str, charge_point_id: str, action: str, payload: dict[str, Any]
    ) -> CommandResult: ...


class LocalCommands:
    """CALLs to the chargers connected to this node."""

    def __init__(self, sessions: Callable[[str], ChargerSession | None], timeout: float) -> None:
        self._sessions = sessions
        self.timeout = timeout

    def is_connected(self, charge_point_id: str) -> bool:
        return self._sessions(charge_point_id) is not None

    async def send(
        self, charge_point_id: str, action: str, payload: dict[str, Any]
    ) -> CommandResult:
        """A request already validated; Offline when the charger is not connected here."""
        session = self._sessions(charge_point_id)
        if session is None:
            return Offline()
        bound = log.bind(charge_point_id=charge_point_id, action=action)
        try:
            async with asyncio.timeout(self.timeout):
                reply = await session.call(action, payload)
        except NotConnected:
            return Offline()
        except ConnectionLost:
            bound.warning("ocpp.command_connection_lost")
            return Offline(sent=True)
        except TimeoutError:
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


class ChargerCommands:
    def __init__(self, local: LocalCommands, relay: Relay | None = None) -> None:
        self._local = local
        self._relay = relay

    def is_online(self, charge_point_id: str) -> bool:
        """Connected to this node or, in a cluster, to another live one."""
        if self._local.is_connected(charge_point_id):
            return True
        return self._relay is not None and self._relay.is_online(charge_point_id)

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
        where = out_of_range(payload)
        if where is not None:
            raise InvalidCommand(f"{where}: a whole number from {-(2**31)} to {2**31 - 1}", where)
        if not self._local.is_connected(charge_point_id) and self._relay is not None:
            node_id = self._relay.holder(charge_point_id)
            if node_id is not None:
                return await self._relay.call(node_id, charge_point_id, action, payload)
        return await self._local.send(charge_point_id, action, payload)


def encode_result(result: CommandResult) -> dict[str, Any]:
    """A result as JSON, for another node's caller."""
    return {"type": type(result).__name__, **asdict(result)}


def decode_result(data: dict[str, Any]) -> CommandResult:
    fields = {k: v for k, v in data.items() if k != "type"}
    match data.get("type"):
        case "Answered":
            return Answered(fields["payload"])
        case "Failed":
            return Failed(fields["code"], fields["description"], fields.get("details") or {})
        case "Offline":
            return Offline(sent=fields.get("sent") is True)
    return TimedOut()
