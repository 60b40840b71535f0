"""The console's forms for the 19 OCPP operations: built from the schemas, read back into
payloads the command layer accepts, and bad values refused naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from csms.console.ocpp_forms import (
    OPERATIONS,
    FormField,
    Invalid,
    Parsed,
    form_for,
    forms,
    label,
    parse,
    values,
)
from csms.ocpp16.schemas import CSMS_ACTIONS, PROFILE_ACTIONS, load_schema, validate_request

PROFILE = {
    "chargingProfileId": 1,
    "stackLevel": 0,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": {
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
    },
}
# What a JSON field of each operation holds in the round trips.
JSON_SAMPLES: dict[str, Any] = {
    "key": ["HeartbeatInterval", "MeterValueSampleInterval"],
    "chargingProfile": {**PROFILE, "chargingProfilePurpose": "TxProfile"},
    "csChargingProfiles": PROFILE,
    "localAuthorizationList": [{"idTag": "TAG-1", "idTagInfo": {"status": "Accepted"}}],
}


def sample(spec: FormField) -> str:
    """A valid text for a field, as an operator would type it."""
    match spec.kind:
        case "integer":
            return "2"
        case "decimal":
            return "11.5"
        case "boolean":
            return "true"
        case "choice":
            return spec.choices[-1]
        case "datetime":
            return "2026-12-01T08:00:00Z"
        case "json":
            return json.dumps(JSON_SAMPLES[spec.name])
    return "ftp://example.com/x" if spec.name == "location" else "TAG-1"


def test_every_one_of_the_19_operations_gets_a_form() -> None:
    assert len(OPERATIONS) == 19
    assert set(OPERATIONS) == PROFILE_ACTIONS
    assert PROFILE_ACTIONS < CSMS_ACTIONS
    assert [form.action for form in forms()] == list(OPERATIONS)
    for action in OPERATIONS:
        form = form_for(action)
        assert form is not None
        schema = load_schema(action)
        assert [f.name for f in form.fields] == list(schema.get("properties", {}))
        assert {f.name for f in form.fields if f.required} == set(schema.get("required", []))
    assert form_for("BootNotification") is None  # the charger's, not ours
    assert form_for("CertificateSigned") is None  # the security extension's
    assert form_for("Nope") is None


def test_kinds_come_from_the_schema() -> None:
    change = form_for("ChangeAvailability")
    assert change is not None
    connector, kind = change.fields
    assert (connector.kind, connector.required) == ("integer", True)
    assert connector.label == "Connector id"
    assert (kind.kind, kind.choices) == ("choice", ("Inoperative", "Operative"))
    firmware = form_for("UpdateFirmware")
    assert firmware is not None and firmware.field("retrieveDate").kind == "datetime"  # type: ignore[union-attr]
    profile = form_for("SetChargingProfile")
    assert profile is not None
    assert profile.field("csChargingProfiles").kind == "json"  # type: ignore[union-attr]
    config = form_for("GetConfiguration")
    assert config is not None and config.field("key").json_array  # type: ignore[union-attr]
    data = form_for("DataTransfer")
    assert data is not None and data.field("vendorId").max_length == 255  # type: ignore[union-attr]
    assert label("csChargingProfiles") == "Cs charging profiles"


@pytest.mark.parametrize("action", OPERATIONS)
def test_round_trip_every_field_filled(action: str) -> None:
    form = form_for(action)
    assert form is not None
    submitted = {spec.name: sample(spec) for spec in form.fields}
    parsed = parse(form, {**submitted, "csrf": "token"})
    assert isinstance(parsed, Parsed), parsed
    validate_request(action, parsed.payload)  # what the command layer checks before sending
    assert set(parsed.payload) == {spec.name for spec in form.fields}
    assert parse(form, values(form, parsed.payload)) == parsed


@pytest.mark.parametrize("action", OPERATIONS)
def test_round_trip_only_what_is_required(action: str) -> None:
    form = form_for(action)
    assert form is not None
    submitted = {spec.name: sample(spec) if spec.required else "" for spec in form.fields}
    parsed = parse(form, submitted)
    assert isinstance(parsed, Parsed), parsed
    assert set(parsed.payload) == {spec.name for spec in form.fields if spec.required}
    validate_request(action, parsed.payload)


def test_types_are_converted() -> None:
    form = form_for("GetDiagnostics")
    assert form is not None
    parsed = parse(
        form,
        {
            "location": " ftp://example.com/logs ",
            "retries": "3",
            "retryInterval": "",
            "startTime": "2026-12-01T09:00:00+01:00",
            "stopTime": "2026-12-01T10:30",
        },
    )
    assert parsed == Parsed(
        {
            "location": "ftp://example.com/logs",
            "retries": 3,
            "startTime": "2026-12-01T08:00:00Z",
            "stopTime": "2026-12-01T10:30:00Z",
        }
    )


@pytest.mark.parametrize(
    ("action", "submitted", "field", "message"),
    [
        ("ChangeAvailability", {"connectorId": "one", "type": "Operative"}, "connectorId",
         "whole number"),
        ("ChangeAvailability", {"connectorId": "1.5", "type": "Operative"}, "connectorId",
         "whole number"),
        ("ChangeAvailability", {"connectorId": "1", "type": "Broken"}, "type", "one of"),
        ("ChangeAvailability", {"connectorId": "1"}, "type", "required"),
        ("Reset", {"type": ""}, "type", "required"),
        ("UpdateFirmware", {"location": "ftp://x", "retrieveDate": "tomorrow"}, "retrieveDate",
         "date and time"),
        ("SetChargingProfile", {"connectorId": "1", "csChargingProfiles": "{oops"},
         "csChargingProfiles", "not valid JSON"),
        ("SetChargingProfile", {"connectorId": "1", "csChargingProfiles": "[1]"},
         "csChargingProfiles", "a JSON object"),
        ("GetConfiguration", {"key": '{"a": 1}'}, "key", "a JSON array"),
        ("DataTransfer", {"vendorId": "v" * 256}, "vendorId", "at most 255"),
    ],
)  # fmt: skip
def test_bad_values_name_the_field(
    action: str, submitted: dict[str, str], field: str, message: str
) -> None:
    form = form_for(action)
    assert form is not None
    parsed = parse(form, submitted)
    assert isinstance(parsed, Invalid)
    assert field in parsed.errors
    assert message in parsed.errors[field]
    assert parsed.errors[field].startswith(form.field(field).label)  # type: ignore[union-attr]


def test_several_bad_fields_are_all_named() -> None:
    form = form_for("ReserveNow")
    assert form is not None
    parsed = parse(form, {"connectorId": "x", "expiryDate": "", "idTag": "T", "reservationId": "1"})
    assert isinstance(parsed, Invalid)
    assert set(parsed.errors) == {"connectorId", "expiryDate"}
