"""The OCPP 1.6 JSON schemas shipped with the `ocpp` library, compiled once with fastjsonschema.

The library validates with `jsonschema` in a thread for every frame; compiled validators
are an order of magnitude cheaper and run inline. A schema violation becomes the
CALLERROR code that OCPP-J 1.6 section 4.2.3 prescribes for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema

from csms.ocpp16.frames import ErrorCode

Validator = Callable[[Any], Any]

# Charger -> central system operations of OCPP 1.6 (the core and the other feature profiles).
CHARGER_ACTIONS = frozenset(
    {
        "Authorize",
        "BootNotification",
        "DataTransfer",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "SignCertificate",
        "StartTransaction",
        "StatusNotification",
        "StopTransaction",
        # The security extension ("Improved security for OCPP 1.6-J").
        "LogStatusNotification",
        "SecurityEventNotification",
        "SignedFirmwareStatusNotification",
    }
)

# Central system -> charger operations of OCPP 1.6's feature profiles (the 19 of core,
# firmware management, local auth list, reservation, smart charging and remote trigger).
PROFILE_ACTIONS = frozenset(
    {
        "CancelReservation",
        "ChangeAvailability",
        "ChangeConfiguration",
        "ClearCache",
        "ClearChargingProfile",
        "DataTransfer",
        "GetCompositeSchedule",
        "GetConfiguration",
        "GetDiagnostics",
        "GetLocalListVersion",
        "RemoteStartTransaction",
        "RemoteStopTransaction",
        "ReserveNow",
        "Reset",
        "SendLocalList",
        "SetChargingProfile",
        "TriggerMessage",
        "UnlockConnector",
        "UpdateFirmware",
    }
)
# Central system -> charger operations of OCPP 1.6: the 19 of the feature profiles, then
# the 7 of the security extension.
CSMS_ACTIONS = PROFILE_ACTIONS | frozenset(
    {
        "CertificateSigned",
        "DeleteCertificate",
        "ExtendedTriggerMessage",
        "GetInstalledCertificateIds",
        "GetLog",
        "InstallCertificate",
        "SignedUpdateFirmware",
    }
)

_RULE_TO_ERROR = {
    "type": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "required": ErrorCode.PROTOCOL_ERROR,
    "minItems": ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
    "maxItems": ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
    "additionalProperties": ErrorCode.FORMATION_VIOLATION,
}


class SchemaViolation(Exception):
    def __init__(self, code: ErrorCode, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def _schema_dir():  # type: ignore[no-untyped-def]
    return resources.files("ocpp.v16").joinpath("schemas")


@cache
def known_actions() -> frozenset[str]:
    """Every action the OCPP 1.6 schemas describe, the security extension's included."""
    files = (entry.name for entry in _schema_dir().iterdir())
    return frozenset(
        name.removesuffix(".json")
        for name in files
        if name.endswith(".json") and not name.endswith("Response.json")
    )


def load_schema(schema_name: str) -> dict[str, Any]:
    """An operation's schema as the library ships it (`Reset`, `ResetResponse`): a fresh copy."""
    loaded: dict[str, Any] = json.loads(
        _schema_dir().joinpath(f"{schema_name}.json").read_text("utf-8")
    )
    return loaded


@cache
def _validator(schema_name: str) -> Validator:
    schema = load_schema(schema_name)
    # multipleOf on floats (charging-schedule limits) fails for values such as 21.4 whose
    # binary form is not an exact multiple of 0.1; chargers round, so the rule is dropped.
    return fastjsonschema.compile(_without(schema, "multipleOf"))


def _without(node: Any, keyword: str) -> Any:
    if isinstance(node, dict):
        return {k: _without(v, keyword) for k, v in node.items() if k != keyword}
    if isinstance(node, list):
        return [_without(v, keyword) for v in node]
    return node


def validate_request(action: str, payload: dict[str, Any]) -> None:
    _validate(action, payload)


def validate_response(action: str, payload: dict[str, Any]) -> None:
    _validate(f"{action}Response", payload)


def _validate(schema_name: str, payload: dict[str, Any]) -> None:
    try:
        _validator(schema_name)(payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        code = _RULE_TO_ERROR.get(exc.rule or "", ErrorCode.PROPERTY_CONSTRAINT_VIOLATION)
        where = exc.name.removeprefix("data").lstrip(".") or "payload"
        raise SchemaViolation(
            code, f"{where}: {exc.message.removeprefix(exc.name + ' ')}"
        ) from None


def warm_up() -> None:
    """Compile every validator the server uses now, not on a charger's first message."""
    for action in CHARGER_ACTIONS:
        _validator(action)
        _validator(f"{action}Response")
    for action in CSMS_ACTIONS:
        _validator(action)
        _validator(f"{action}Response")
