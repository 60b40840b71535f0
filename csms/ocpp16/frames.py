"""OCPP-J 1.6 framing: decode a WebSocket text frame into a CALL, CALLRESULT or CALLERROR.

Pure: no I/O, no schema knowledge. A malformed frame raises `FrameError`, which says
which CALLERROR to answer with and under which unique id (None when the frame is too
broken to answer at all: then it is only logged).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

import orjson

MAX_UNIQUE_ID_LENGTH = 36


class MessageType(IntEnum):
    CALL = 2
    CALLRESULT = 3
    CALLERROR = 4


class ErrorCode(StrEnum):
    """The CALLERROR codes of OCPP-J 1.6, section 4.2.3, spelled as the standard spells them."""

    NOT_IMPLEMENTED = "NotImplemented"  # the action is not known
    NOT_SUPPORTED = "NotSupported"  # the action is known but not supported
    INTERNAL_ERROR = "InternalError"
    PROTOCOL_ERROR = "ProtocolError"  # the payload is incomplete
    SECURITY_ERROR = "SecurityError"
    FORMATION_VIOLATION = "FormationViolation"
    PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
    OCCURENCE_CONSTRAINT_VIOLATION = "OccurenceConstraintViolation"
    TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"
    GENERIC_ERROR = "GenericError"


@dataclass(frozen=True, slots=True)
class Call:
    unique_id: str
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallResult:
    unique_id: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallError:
    unique_id: str
    code: str
    description: str
    details: dict[str, Any]


Frame = Call | CallResult | CallError


class FrameError(Exception):
    def __init__(self, code: ErrorCode, description: str, reply_to: Any = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        # The unique id to answer under, exactly as the peer sent it; None: do not answer.
        self.reply_to = reply_to


def decode(raw: str | bytes) -> Frame:
    if isinstance(raw, bytes):
        raise FrameError(ErrorCode.FORMATION_VIOLATION, "OCPP-J frames must be text frames")
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise FrameError(ErrorCode.FORMATION_VIOLATION, "frame is not valid JSON") from None
    if not isinstance(message, list) or len(message) < 3:
        raise FrameError(
            ErrorCode.FORMATION_VIOLATION, "frame must be an array [MessageTypeId, UniqueId, ...]"
        )
    message_type, unique_id = message[0], message[1]
    # Only a CALL is answered: answering a broken response would confuse the peer.
    reply_to = unique_id if message_type == MessageType.CALL else None
    if not isinstance(unique_id, str) or not 0 < len(unique_id) <= MAX_UNIQUE_ID_LENGTH:
        raise FrameError(
            ErrorCode.FORMATION_VIOLATION,
            f"UniqueId must be a string of 1 to {MAX_UNIQUE_ID_LENGTH} characters",
            reply_to,
        )
    if message_type == MessageType.CALL:
        if len(message) != 4 or not isinstance(message[2], str):
            raise FrameError(
                ErrorCode.FORMATION_VIOLATION,
                "CALL must be [2, UniqueId, Action, Payload]",
                reply_to,
            )
        payload = _payload(message[3])
        if payload is None:
            raise FrameError(
                ErrorCode.FORMATION_VIOLATION, "CALL payload must be a JSON object", reply_to
            )
        return Call(unique_id, message[2], payload)
    if message_type == MessageType.CALLRESULT:
        payload = _payload(message[2]) if len(message) == 3 else None
        if payload is None:
            raise FrameError(
                ErrorCode.FORMATION_VIOLATION, "CALLRESULT must be [3, UniqueId, Payload]"
            )
        return CallResult(unique_id, payload)
    if message_type == MessageType.CALLERROR:
        if (
            len(message) != 5
            or not isinstance(message[2], str)
            or not isinstance(message[3], str)
            or not isinstance(message[4], dict)
        ):
            raise FrameError(
                ErrorCode.FORMATION_VIOLATION,
                "CALLERROR must be [4, UniqueId, ErrorCode, ErrorDescription, ErrorDetails]",
            )
        return CallError(unique_id, message[2], message[3], message[4])
    raise FrameError(ErrorCode.FORMATION_VIOLATION, f"unknown MessageTypeId {message_type!r}")


def _payload(value: Any) -> dict[str, Any] | None:
    """A payload as a dict, or None when it is none. OCPP-J 1.6 section 4.1.3: a message
    without arguments may have null or {} as its payload; both are the empty payload."""
    if value is None:
        return {}
    return value if isinstance(value, dict) else None


def encode_call(unique_id: str, action: str, payload: dict[str, Any]) -> str:
    return orjson.dumps([MessageType.CALL, unique_id, action, payload]).decode()


def encode_result(unique_id: str, payload: dict[str, Any]) -> str:
    return orjson.dumps([MessageType.CALLRESULT, unique_id, payload]).decode()


def encode_error(
    unique_id: Any, code: ErrorCode, description: str, details: dict[str, Any] | None = None
) -> str:
    return orjson.dumps(
        [MessageType.CALLERROR, unique_id, code.value, description, details or {}]
    ).decode()
