"""Forms for the 19 OCPP 1.6 operations the central system sends, built from their schemas.

The operator console shows one form per operation of OCPP 1.6's feature profiles
(`PROFILE_ACTIONS`). The forms are not written by hand: each is read from the
operation's JSON schema as the `ocpp` library ships it (`load_schema`, the schemas the
command layer validates against), so a form can never ask for a field the operation lacks
nor miss one it requires.

A top-level property becomes one field: a string is text, an enum a choice, a date-time a
datetime, an integer or a number a number, a boolean a yes/no choice; a nested object (a
ChargingProfile) or an array (GetConfiguration's keys, a local list) is entered as JSON.

`parse` turns a submitted form into the payload: types converted, empty optional fields
left out. It is pure and returns a typed outcome: `Parsed(payload)` or `Invalid(errors)`
with a message per field name. What it does not check (a nested object's own rules, a
string's length) the command layer checks against the same schema before anything is sent,
naming the field too.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any, Literal

from csms.ocpp16.schemas import PROFILE_ACTIONS, load_schema

Kind = Literal["text", "integer", "decimal", "boolean", "choice", "datetime", "json"]

# The operations a form is offered for, in alphabetical order.
OPERATIONS: tuple[str, ...] = tuple(sorted(PROFILE_ACTIONS))
BOOLEAN_CHOICES = ("true", "false")


@dataclass(frozen=True)
class FormField:
    name: str  # the payload's property, e.g. connectorId
    label: str  # e.g. "Connector id"
    kind: Kind
    required: bool
    choices: tuple[str, ...] = ()  # choice (the enum) and boolean
    max_length: int | None = None  # text
    hint: str = ""  # what to type, e.g. the JSON's shape
    json_array: bool = False  # json: an array (else an object)

    @property
    def input_id(self) -> str:
        return f"field-{self.name}"


@dataclass(frozen=True)
class OperationForm:
    action: str
    fields: tuple[FormField, ...]

    def field(self, name: str) -> FormField | None:
        return next((f for f in self.fields if f.name == name), None)


@dataclass(frozen=True)
class Parsed:
    payload: dict[str, Any]


@dataclass(frozen=True)
class Invalid:
    errors: dict[str, str] = field(default_factory=dict)  # field name -> what is wrong


ParseResult = Parsed | Invalid


@cache
def form_for(action: str) -> OperationForm | None:
    """The form of one of the 19 operations; None for any other name."""
    if action not in PROFILE_ACTIONS:
        return None
    schema = load_schema(action)
    required = set(schema.get("required", ()))
    properties: dict[str, dict[str, Any]] = schema.get("properties", {})
    return OperationForm(
        action,
        tuple(_field(name, spec, name in required) for name, spec in properties.items()),
    )


def forms() -> list[OperationForm]:
    return [form for action in OPERATIONS if (form := form_for(action)) is not None]


def label(name: str) -> str:
    """connectorId -> "Connector id", csChargingProfiles -> "Cs charging profiles"."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).lower()
    return words[:1].upper() + words[1:]


def _field(name: str, spec: Mapping[str, Any], required: bool) -> FormField:
    kind: Kind
    choices: tuple[str, ...] = ()
    hint = ""
    match spec.get("type"):
        case "integer":
            kind = "integer"
        case "number":
            kind = "decimal"
            hint = "a number, e.g. 11.5"
        case "boolean":
            kind, choices = "boolean", BOOLEAN_CHOICES
        case "string" if "enum" in spec:
            kind, choices = "choice", tuple(spec["enum"])
        case "string" if spec.get("format") == "date-time":
            kind, hint = "datetime", "ISO 8601, e.g. 2026-12-01T08:00:00Z (UTC if no offset)"
        case "string":
            kind = "text"
            if spec.get("format") == "uri":
                hint = "a URI, e.g. ftp://example.com/upload"
        case "array":
            kind, hint = "json", "a JSON array, e.g. " + _example(spec)
        case _:
            kind, hint = "json", "a JSON object with " + ", ".join(spec.get("properties", {}))
    return FormField(
        name,
        label(name),
        kind,
        required,
        choices,
        spec.get("maxLength"),
        hint,
        json_array=spec.get("type") == "array",
    )


def _example(spec: Mapping[str, Any]) -> str:
    items = spec.get("items", {})
    if items.get("type") == "string":
        return '["HeartbeatInterval", "MeterValueSampleInterval"]'
    return "[{" + ", ".join(f'"{p}": ...' for p in items.get("properties", {})) + "}]"


def parse(form: OperationForm, submitted: Mapping[str, str]) -> ParseResult:
    """The payload a submitted form stands for, or what is wrong with it, field by field.

    Fields the operation lacks (the CSRF token, buttons) are ignored; an empty optional
    field is left out; an empty required one is an error.
    """
    payload: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for spec in form.fields:
        text = (submitted.get(spec.name) or "").strip()
        if not text:
            if spec.required:
                errors[spec.name] = f"{spec.label} is required"
            continue
        try:
            payload[spec.name] = _convert(spec, text)
        except ValueError as wrong:
            errors[spec.name] = f"{spec.label}: {wrong}"
    return Invalid(errors) if errors else Parsed(payload)


def _convert(spec: FormField, text: str) -> Any:
    match spec.kind:
        case "integer":
            if not re.fullmatch(r"[+-]?\d+", text):
                raise ValueError("a whole number, e.g. 1")
            return int(text)
        case "decimal":
            return _decimal(text)
        case "boolean":
            if text not in BOOLEAN_CHOICES:
                raise ValueError("true or false")
            return text == "true"
        case "choice":
            if text not in spec.choices:
                raise ValueError("one of " + ", ".join(spec.choices))
            return text
        case "datetime":
            return _datetime(text)
        case "json":
            return _json(spec, text)
    if spec.max_length is not None and len(text) > spec.max_length:
        raise ValueError(f"at most {spec.max_length} characters")
    return text


def _decimal(text: str) -> int | float:
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError("a number, e.g. 11.5") from None
    if not number.is_finite():
        raise ValueError("a finite number")
    value = float(number)
    if math.isinf(value):
        raise ValueError("a number within range")
    return int(number) if re.fullmatch(r"[+-]?\d+", text) else value


def _datetime(text: str) -> str:
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ValueError("a date and time such as 2026-12-01T08:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _json(spec: FormField, text: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError as wrong:
        raise ValueError(f"not valid JSON ({wrong})") from None
    if not isinstance(value, list if spec.json_array else dict):
        raise ValueError("a JSON array" if spec.json_array else "a JSON object")
    return value


def values(form: OperationForm, payload: Mapping[str, Any]) -> dict[str, str]:
    """The form's text for a payload (what `parse` reads back into it): to fill a form in."""
    filled: dict[str, str] = {}
    for spec in form.fields:
        if spec.name not in payload:
            continue
        value = payload[spec.name]
        if spec.kind == "json":
            filled[spec.name] = json.dumps(value)
        elif spec.kind == "boolean":
            filled[spec.name] = "true" if value else "false"
        else:
            filled[spec.name] = str(value)
    return filled
