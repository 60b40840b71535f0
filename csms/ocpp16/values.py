"""What a charger's payload must meet beyond its schema, so that no value a schema accepts
makes a handler fail.

The dispatcher runs `PayloadRules.prepare` before the schema check (timestamps without a
time zone, which chargers in the field send) and `PayloadRules.check` after it: integers
within what the database stores, connector ids as OCPP 1.6 defines them, timestamps that
name a moment csms can keep, no NUL character (PostgreSQL cannot store one). No I/O but
the warning `prepare` logs when it mends a timestamp in place; each refusal names the
field as schema violations do, and comes before anything is stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import structlog

from csms.clock import EARLIEST, LATEST, ocpp_time
from csms.ocpp16.frames import ErrorCode

log = structlog.get_logger()

INT32_MAX = 2**31 - 1
# Energy registers in Wh: exact as JSON numbers everywhere, and never near the 64-bit
# columns' limit however they are added up.
METER_MAX = 2**53 - 1
DEFAULT_MAX_CONNECTOR_ID = 100

LENIENT, STRICT = "lenient", "strict"

# Where each charger -> central system action carries dateTime fields: a path of keys,
# "*" standing for every element of a list.
_TIME_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "MeterValues": (("meterValue", "*", "timestamp"),),
    "SecurityEventNotification": (("timestamp",),),
    "StartTransaction": (("timestamp",),),
    "StatusNotification": (("timestamp",),),
    "StopTransaction": (("timestamp",), ("transactionData", "*", "timestamp")),
}
# A dateTime as the schemas accept it, but without Z or an offset.
_WITHOUT_ZONE = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?")


@dataclass(frozen=True, slots=True)
class Refusal:
    """The CALLERROR a payload gets instead of its handler."""

    code: ErrorCode
    description: str


@dataclass(frozen=True)
class PayloadRules:
    # The highest connector id a charger may name (ocpp.max_connector_id).
    max_connector_id: int = DEFAULT_MAX_CONNECTOR_ID
    # LENIENT: a timestamp without a time zone is read as UTC; STRICT: refused.
    timestamps_without_zone: str = LENIENT

    def prepare(self, action: str, payload: dict[str, Any]) -> Refusal | None:
        """Before the schema check: a timestamp without a time zone gets "Z" in `payload`
        (lenient, with a warning) or refuses the payload (strict)."""
        for where, container, key in _fields(payload, _TIME_FIELDS.get(action, ())):
            text = container[key]
            if not isinstance(text, str) or not _WITHOUT_ZONE.fullmatch(text):
                continue
            if self.timestamps_without_zone == STRICT:
                return _violation(
                    where, f"{text!r} has no time zone; send UTC (Z) or an offset (+01:00)"
                )
            log.warning("ocpp.timestamp_without_zone", action=action, field=where, value=text)
            container[key] = text + "Z"
        return None

    def check(self, action: str, payload: dict[str, Any]) -> Refusal | None:
        """After the schema check: the values the handler stores are within range."""
        return (
            _no_nul(payload)
            or self._integers(action, payload)
            or _times(payload, _TIME_FIELDS.get(action, ()))
        )

    def _integers(self, action: str, payload: dict[str, Any]) -> Refusal | None:
        for name, low, high in self._bounds(action):
            value = payload.get(name)
            if value is not None and not low <= value <= high:
                return _violation(name, f"{value} is outside {low}..{high}")
        return None

    def _bounds(self, action: str) -> tuple[tuple[str, int, int], ...]:
        """The integer fields an action stores, with the range each may take.

        Transaction ids are not here: one that is none of ours is answered as unknown
        (csms.store.transactions), whatever its size.
        """
        connectors = self.max_connector_id
        match action:
            case "StatusNotification":  # connector 0 is the charger itself
                return (("connectorId", 0, connectors),)
            case "MeterValues":  # connector 0 is the charger's main meter
                return (("connectorId", 0, connectors),)
            case "StartTransaction":  # a transaction is always on a connector
                return (
                    ("connectorId", 1, connectors),
                    ("meterStart", -METER_MAX, METER_MAX),
                    ("reservationId", -INT32_MAX, INT32_MAX),
                )
            case "StopTransaction":
                return (("meterStop", -METER_MAX, METER_MAX),)
            case "LogStatusNotification" | "SignedFirmwareStatusNotification":
                return (("requestId", -INT32_MAX, INT32_MAX),)
        return ()


def _violation(where: str, what: str) -> Refusal:
    return Refusal(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, f"{where}: {what}")


def _times(payload: dict[str, Any], paths: tuple[tuple[str, ...], ...]) -> Refusal | None:
    for where, container, key in _fields(payload, paths):
        if ocpp_time(container[key]) is None:
            return _violation(
                where,
                f"{container[key]!r} is no time from {EARLIEST.year} to {LATEST.year - 1} (UTC)",
            )
    return None


def _no_nul(value: Any, where: str = "payload") -> Refusal | None:
    if isinstance(value, str):
        return _violation(where, "must not contain NUL characters") if "\x00" in value else None
    if isinstance(value, dict):
        items: Iterator[tuple[str, Any]] = ((f"{where}.{k}", v) for k, v in value.items())
    elif isinstance(value, list):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for inner_where, inner in items:
        refusal = _no_nul(inner, inner_where.removeprefix("payload."))
        if refusal is not None:
            return refusal
    return None


def _fields(
    payload: Any, paths: tuple[tuple[str, ...], ...]
) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(name as the schema errors spell it, its dict, its key) of each field on `paths` that
    is present, whatever shape the payload has (it may not have been checked yet)."""
    for path in paths:
        yield from _walk(payload, path, "")


def _walk(
    node: Any, path: tuple[str, ...], where: str
) -> Iterator[tuple[str, dict[str, Any], str]]:
    step, rest = path[0], path[1:]
    if step == "*":
        if isinstance(node, list):
            for index, item in enumerate(node):
                yield from _walk(item, rest, f"{where}[{index}]")
        return
    if not isinstance(node, dict) or step not in node:
        return
    name = f"{where}.{step}" if where else step
    if rest:
        yield from _walk(node[step], rest, name)
    else:
        yield name, node, step
