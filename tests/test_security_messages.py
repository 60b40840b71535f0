"""The charger -> central system messages of the OCPP 1.6 security extension, against the
real server over 127.0.0.1: stored, listed through the API, critical events alerted on."""

from __future__ import annotations

import asyncio
import json
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest

from csms.app import CentralSystem
from csms.cli import main
from csms.config import load_config
from csms.config_values import open_database
from csms.ocpp16.security_messages import (
    CRITICAL_SECURITY_EVENTS,
    OTHER_SECURITY_EVENTS,
    is_critical,
)
from csms.store.security import SecurityEvent, SecurityStore
from tests.conftest import API_HEADERS, ocpp_url
from tests.ocpp_client import RawCharger


def assert_valid(schema_name: str, payload: dict[str, Any]) -> None:
    """Checked against the `ocpp` library's own schema file, with its date-time format."""
    text = resources.files("ocpp.v16").joinpath("schemas", f"{schema_name}.json").read_text()
    jsonschema.validate(
        payload,
        json.loads(text),
        cls=jsonschema.Draft4Validator,
        format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER,
    )


async def notify(charger: RawCharger, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Send a valid request; the answer is checked against the response schema."""
    assert_valid(action, payload)
    reply = await charger.call(action, payload)
    assert_valid(f"{action}Response", reply)
    return reply


def event(kind: str, at: str = "2026-03-01T10:00:00Z", **extra: Any) -> dict[str, Any]:
    return {"type": kind, "timestamp": at, **extra}


async def api_get(system: CentralSystem, path: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{system.http.port}{path}", headers=API_HEADERS) as response,
    ):
        return response.status, await response.json()


def test_the_critical_list_is_the_specifications() -> None:
    assert {
        "FirmwareUpdated",
        "SettingSystemTime",
        "StartupOfTheDevice",
        "ResetOrReboot",
        "SecurityLogWasCleared",
        "MemoryExhaustion",
        "TamperDetectionActivated",
    } == CRITICAL_SECURITY_EVENTS
    assert not CRITICAL_SECURITY_EVENTS & OTHER_SECURITY_EVENTS
    assert len(CRITICAL_SECURITY_EVENTS | OTHER_SECURITY_EVENTS) == 18


async def test_security_event_is_stored_as_sent(csms: CentralSystem, charger: RawCharger) -> None:
    reply = await notify(
        charger,
        "SecurityEventNotification",
        event("InvalidTLSVersion", "2026-03-01T12:00:00+02:00", techInfo="TLS 1.1 offered"),
    )
    assert reply == {}
    rows = await csms.db.fetchall("SELECT * FROM security_events")
    assert len(rows) == 1
    row = rows[0]
    assert (row["charger_id"], row["type"], row["tech_info"]) == (
        "CP-1",
        "InvalidTLSVersion",
        "TLS 1.1 offered",
    )
    assert row["timestamp"] == "2026-03-01T10:00:00.000Z"  # normalised to UTC
    assert (row["critical"], row["alert_due"]) == (0, 0)


async def test_a_critical_event_raises_one_alert(csms: CentralSystem, charger: RawCharger) -> None:
    await notify(charger, "SecurityEventNotification", event("TamperDetectionActivated"))
    raised = await csms.alerts.check()
    assert [alert.kind for alert in raised] == ["security_event"]
    body = raised[0].body
    assert body["details"]["chargePointId"] == "CP-1"
    assert body["details"]["type"] == "TamperDetectionActivated"
    assert "CP-1 reported TamperDetectionActivated" in body["message"]
    # Raised once: the next check finds nothing new.
    assert await csms.alerts.check() == []
    status, alerts = await api_get(csms, "/api/alerts")
    assert status == 200
    assert [a["kind"] for a in alerts] == ["security_event"]


async def test_non_critical_and_vendor_events_raise_no_alert(
    csms: CentralSystem, charger: RawCharger
) -> None:
    await notify(charger, "SecurityEventNotification", event("InvalidMessages"))
    await notify(charger, "SecurityEventNotification", event("AcmeDoorOpened"))
    assert await csms.alerts.check() == []
    assert len(await csms.db.fetchall("SELECT id FROM security_events")) == 2
    await notify(charger, "SecurityEventNotification", event("MemoryExhaustion"))
    assert [a.body["details"]["type"] for a in await csms.alerts.check()] == ["MemoryExhaustion"]


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"timestamp": "2026-03-01T10:00:00Z"}, "ProtocolError"),
        ({"type": "X" * 51, "timestamp": "2026-03-01T10:00:00Z"}, "PropertyConstraintViolation"),
        ({"type": "StartupOfTheDevice", "timestamp": "yesterday"}, "PropertyConstraintViolation"),
        (
            {"type": "SettingSystemTime", "timestamp": "9999-12-31T23:00:00-05:00"},
            "PropertyConstraintViolation",
        ),
        ({"type": 7, "timestamp": "2026-03-01T10:00:00Z"}, "TypeConstraintViolation"),
        (event("StartupOfTheDevice", techInfo="t" * 256), "PropertyConstraintViolation"),
        (event("StartupOfTheDevice", extra=1), "FormationViolation"),
    ],
)
async def test_invalid_security_events_are_refused_and_change_nothing(
    csms: CentralSystem, charger: RawCharger, payload: dict[str, Any], code: str
) -> None:
    reply = await charger.call_raw("SecurityEventNotification", payload)
    assert reply[0] == 4 and reply[2] == code, reply
    assert await csms.db.fetchall("SELECT id FROM security_events") == []
    assert await csms.alerts.check() == []


async def test_firmware_and_log_statuses_keep_the_latest_and_the_history(
    csms: CentralSystem, charger: RawCharger
) -> None:
    for status in ("Downloading", "Downloaded", "SignatureVerified"):
        await notify(
            charger, "SignedFirmwareStatusNotification", {"status": status, "requestId": 4}
        )
    await notify(charger, "LogStatusNotification", {"status": "Uploading", "requestId": 9})
    await notify(charger, "LogStatusNotification", {"status": "Uploaded", "requestId": 9})
    status, detail = await api_get(csms, "/api/chargers/CP-1")
    assert status == 200
    assert (detail["signedFirmwareStatus"], detail["signedFirmwareRequestId"]) == (
        "SignatureVerified",
        4,
    )
    assert (detail["logStatus"], detail["logRequestId"]) == ("Uploaded", 9)
    assert detail["signedFirmwareStatusAt"] and detail["logStatusAt"]
    status, page = await api_get(csms, "/api/chargers/CP-1/log-firmware-statuses")
    assert status == 200
    assert [(r["kind"], r["status"]) for r in page["items"]] == [
        ("log", "Uploaded"),
        ("log", "Uploading"),
        ("firmware", "SignatureVerified"),
        ("firmware", "Downloaded"),
        ("firmware", "Downloading"),
    ]
    status, logs = await api_get(csms, "/api/chargers/CP-1/log-firmware-statuses?kind=log")
    assert [r["status"] for r in logs["items"]] == ["Uploaded", "Uploading"]


BAD_REPORTS = [
    ("SignedFirmwareStatusNotification", {"status": "Exploded"}, "PropertyConstraintViolation"),
    ("SignedFirmwareStatusNotification", {"requestId": 1}, "ProtocolError"),
    ("LogStatusNotification", {"status": "Uploaded", "requestId": "9"}, "TypeConstraintViolation"),
    # OCPP's integers have 32 bits: the schema alone does not say so.
    (
        "LogStatusNotification",
        {"status": "Idle", "requestId": 2**31},
        "PropertyConstraintViolation",
    ),
]


@pytest.mark.parametrize(("action", "payload", "code"), BAD_REPORTS)
async def test_invalid_status_reports_are_refused_and_change_nothing(
    csms: CentralSystem, charger: RawCharger, action: str, payload: dict[str, Any], code: str
) -> None:
    reply = await charger.call_raw(action, payload)
    assert reply[0] == 4 and reply[2] == code, reply
    assert await csms.db.fetchall("SELECT id FROM log_firmware_statuses") == []
    row = await csms.chargers.get("CP-1")
    assert row is not None and row["log_status"] is None and row["signed_firmware_status"] is None


async def test_security_events_listed_with_filters_and_pages(csms: CentralSystem) -> None:
    async with (
        RawCharger.connect(ocpp_url(csms), "CP-A") as a,
        RawCharger.connect(ocpp_url(csms), "CP-B") as b,
    ):
        boot = {"chargePointVendor": "V", "chargePointModel": "M"}
        for charger, kind, hour in (
            (a, "StartupOfTheDevice", 8),
            (a, "InvalidMessages", 9),
            (b, "ResetOrReboot", 10),
            (a, "TamperDetectionActivated", 11),
        ):
            await charger.call("BootNotification", boot)
            at = f"2026-03-01T{hour:02d}:00:00Z"
            await notify(charger, "SecurityEventNotification", event(kind, at))

    status, everything = await api_get(csms, "/api/security-events")
    assert status == 200
    assert [(e["chargerId"], e["type"]) for e in everything["items"]] == [
        ("CP-A", "TamperDetectionActivated"),
        ("CP-B", "ResetOrReboot"),
        ("CP-A", "InvalidMessages"),
        ("CP-A", "StartupOfTheDevice"),
    ]
    assert [e["critical"] for e in everything["items"]] == [True, True, False, True]
    first = everything["items"][0]
    assert first["timestamp"] == "2026-03-01T11:00:00.000Z" and first["receivedAt"]

    _, of_a = await api_get(csms, "/api/chargers/CP-A/security-events?critical=true")
    assert [e["type"] for e in of_a["items"]] == ["TamperDetectionActivated", "StartupOfTheDevice"]
    _, typed = await api_get(csms, "/api/security-events?type=ResetOrReboot")
    assert [e["chargerId"] for e in typed["items"]] == ["CP-B"]
    window = "from=2026-03-01T09:00:00Z&to=2026-03-01T11:00:00Z"
    _, timed = await api_get(csms, f"/api/security-events?{window}")
    assert [e["type"] for e in timed["items"]] == ["ResetOrReboot", "InvalidMessages"]

    seen, cursor = [], ""
    while True:
        _, page = await api_get(csms, f"/api/security-events?limit=3{cursor}")
        seen += [e["id"] for e in page["items"]]
        if page["nextCursor"] is None:
            break
        cursor = f"&cursor={page['nextCursor']}"
    assert seen == [e["id"] for e in everything["items"]]


async def test_security_event_listings_refuse_bad_queries(csms: CentralSystem) -> None:
    assert (await api_get(csms, "/api/chargers/CP-404/security-events"))[0] == 404
    assert (await api_get(csms, "/api/chargers/CP-404/log-firmware-statuses"))[0] == 404
    status, body = await api_get(csms, "/api/security-events?cursor=nonsense")
    assert status == 400 and body["error"]["field"] == "cursor"
    status, body = await api_get(csms, "/api/security-events?limit=0")
    assert status == 400


def test_cli_lists_security_events(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # no config.toml but the environment's
    monkeypatch.setenv("CSMS_DATABASE_PATH", str(tmp_path / "cli.db"))
    monkeypatch.setenv("CSMS_DATABASE_URL", database_url)
    assert main(["chargers", "add", "CP-1"]) == 0

    async def record() -> None:
        db = await open_database(load_config())
        try:
            store = SecurityStore(db)
            for kind, at, info in (
                ("StartupOfTheDevice", "2026-03-01T08:00:00.000Z", None),
                ("InvalidMessages", "2026-03-01T09:00:00.000Z", "frame 7 not JSON"),
            ):
                await store.record_event(SecurityEvent("CP-1", kind, at, info, is_critical(kind)))
        finally:
            await db.close()

    asyncio.run(record())
    capsys.readouterr()
    assert main(["security-events"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[1:] for line in lines] == [
        ["2026-03-01T09:00:00.000Z", "CP-1", "InvalidMessages", "-", "frame 7 not JSON"],
        ["2026-03-01T08:00:00.000Z", "CP-1", "StartupOfTheDevice", "CRITICAL", "-"],
    ]
    assert main(["security-events", "--critical"]) == 0
    assert [line.split("\t")[3] for line in capsys.readouterr().out.splitlines()] == [
        "StartupOfTheDevice"
    ]
    assert main(["security-events", "--from", "2026-03-01T08:30:00Z", "--charger", "CP-1"]) == 0
    assert "InvalidMessages" in capsys.readouterr().out
    assert main(["security-events", "--to", "soon"]) == 2
    assert "--to" in capsys.readouterr().err


async def test_removing_a_charger_removes_its_reports(
    csms: CentralSystem, charger: RawCharger
) -> None:
    await notify(charger, "SecurityEventNotification", event("TamperDetectionActivated"))
    await notify(charger, "LogStatusNotification", {"status": "Uploaded", "requestId": 1})
    async with (
        aiohttp.ClientSession() as http,
        http.delete(
            f"http://127.0.0.1:{csms.http.port}/api/chargers/CP-1", headers=API_HEADERS
        ) as response,
    ):
        assert response.status == 204
    assert await csms.db.fetchall("SELECT id FROM security_events") == []
    assert await csms.db.fetchall("SELECT id FROM log_firmware_statuses") == []
    # Its critical event, never alerted on, is not alerted on now.
    assert await csms.alerts.check() == []
