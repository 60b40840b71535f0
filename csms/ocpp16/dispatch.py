"""Route an incoming CALL to its handler: schema check and payload rules first (see
csms.ocpp16.values), CALLERROR for anything wrong."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import structlog

from csms.ocpp16.frames import Call, ErrorCode, encode_error, encode_result
from csms.ocpp16.schemas import SchemaViolation, known_actions, validate_request
from csms.ocpp16.values import PayloadRules, Refusal

if TYPE_CHECKING:
    from csms.metrics import Metrics

log = structlog.get_logger()

Handler = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
# The metrics label of actions outside OCPP 1.6: a charger must not make up label values.
UNKNOWN_ACTION = "unknown"


class Refused(Exception):
    """Raised by a handler for a request its schema allows but OCPP does not (an integer
    beyond OCPP's 32 bits...): the charger gets this CALLERROR, and nothing was stored."""

    def __init__(self, code: ErrorCode, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


class Dispatcher:
    def __init__(
        self,
        handlers: Mapping[str, Handler],
        metrics: Metrics | None = None,
        rules: PayloadRules | None = None,
    ) -> None:
        self._handlers = dict(handlers)
        self._metrics = metrics
        self._rules = rules or PayloadRules()

    async def __call__(self, charge_point_id: str, call: Call) -> str:
        handler = self._handlers.get(call.action)
        if handler is None:
            if call.action in known_actions():
                code, text = ErrorCode.NOT_SUPPORTED, f"{call.action} is not supported"
            else:
                code, text = ErrorCode.NOT_IMPLEMENTED, f"unknown action {call.action!r}"
            log.warning("ocpp.unhandled_action", action=call.action, code=code.value)
            known = code is ErrorCode.NOT_SUPPORTED
            self._record(call.action if known else UNKNOWN_ACTION, code.value)
            return encode_error(call.unique_id, code, text)
        refusal = self._refusal(call)
        if refusal is not None:
            log.warning(
                "ocpp.invalid_payload",
                action=call.action,
                code=refusal.code.value,
                reason=refusal.description,
            )
            self._record(call.action, refusal.code.value)
            return encode_error(call.unique_id, refusal.code, refusal.description)
        started = time.perf_counter()
        try:
            reply = await handler(charge_point_id, call.payload)
        except Refused as refused:
            log.warning("ocpp.refused", action=call.action, code=refused.code.value)
            self._record(call.action, refused.code.value, started)
            return encode_error(call.unique_id, refused.code, refused.description)
        except Exception:
            # The charger learns only that it failed; the log has the detail.
            log.exception("ocpp.handler_failed", action=call.action)
            self._record(call.action, ErrorCode.INTERNAL_ERROR.value, started)
            return encode_error(call.unique_id, ErrorCode.INTERNAL_ERROR, "internal error")
        self._record(call.action, "ok", started)
        return encode_result(call.unique_id, reply)

    def _refusal(self, call: Call) -> Refusal | None:
        """Why the payload may not reach its handler, or None (it may be made good first)."""
        refusal = self._rules.prepare(call.action, call.payload)
        if refusal is not None:
            return refusal
        try:
            validate_request(call.action, call.payload)
        except SchemaViolation as violation:
            return Refusal(violation.code, violation.description)
        return self._rules.check(call.action, call.payload)

    def _record(self, action: str, result: str, started: float | None = None) -> None:
        if self._metrics is not None:
            seconds = None if started is None else time.perf_counter() - started
            self._metrics.ocpp_message(action, result, seconds)
