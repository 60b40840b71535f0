"""Route an incoming CALL to its handler: schema check first, CALLERROR for anything wrong."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog

from csms.ocpp16.frames import Call, ErrorCode, encode_error, encode_result
from csms.ocpp16.schemas import SchemaViolation, known_actions, validate_request

log = structlog.get_logger()

Handler = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


class Dispatcher:
    def __init__(self, handlers: Mapping[str, Handler]) -> None:
        self._handlers = dict(handlers)

    async def __call__(self, charge_point_id: str, call: Call) -> str:
        handler = self._handlers.get(call.action)
        if handler is None:
            if call.action in known_actions():
                code, text = ErrorCode.NOT_SUPPORTED, f"{call.action} is not supported"
            else:
                code, text = ErrorCode.NOT_IMPLEMENTED, f"unknown action {call.action!r}"
            log.warning("ocpp.unhandled_action", action=call.action, code=code.value)
            return encode_error(call.unique_id, code, text)
        try:
            validate_request(call.action, call.payload)
        except SchemaViolation as violation:
            log.warning(
                "ocpp.invalid_payload",
                action=call.action,
                code=violation.code.value,
                reason=violation.description,
            )
            return encode_error(call.unique_id, violation.code, violation.description)
        try:
            reply = await handler(charge_point_id, call.payload)
        except Exception:
            # The charger learns only that it failed; the log has the detail.
            log.exception("ocpp.handler_failed", action=call.action)
            return encode_error(call.unique_id, ErrorCode.INTERNAL_ERROR, "internal error")
        return encode_result(call.unique_id, reply)
