"""The seven central system -> charger operations of the OCPP 1.6 security extension, each
sent through the management API to the simulated charger and answered; the charger's
follow-up messages (LogStatusNotification, SignedFirmwareStatusNotification, security
events) reach the central system. Every request and answer is checked against the `ocpp`
library's schemas."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from csms.app import CentralSystem
from simulators.chargepoint import SimulatedCharger
from simulators.chargepoint.certificates import CertificateError, parse_certificate
from tests.conftest import API_HEADERS, ocpp_url
from tests.test_security_messages import assert_valid
from tests.waiting import eventually


def _openssl(*args: str) -> bytes:
    return subprocess.run(["openssl", *args], check=True, capture_output=True).stdout


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A self-signed root (CN=Test Root) and a certificate for CP-1 it signed."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make test certificates")
    folder: Path = tmp_path_factory.mktemp("pki")
    root_key, root = folder / "root.key", folder / "root.pem"
    leaf_key, csr, leaf = folder / "cp.key", folder / "cp.csr", folder / "cp.pem"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", str(root_key), "-out", str(root), "-days", "2",
             "-subj", "/CN=Test Root")  # fmt: skip
    _openssl("req", "-new", *ec, "-keyout", str(leaf_key), "-out", str(csr), "-subj", "/CN=CP-1")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(root), "-CAkey", str(root_key),
             "-out", str(leaf), "-days", "2", "-set_serial", "4660")  # fmt: skip
    serial = _openssl("x509", "-in", str(root), "-noout", "-serial").decode()
    public_key = _openssl("x509", "-in", str(root), "-noout", "-pubkey")
    spki = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "DER"],
        input=public_key,
        check=True,
        capture_output=True,
    ).stdout
    # The issuer name "CN=Test Root" in DER: SEQUENCE { SET { SEQUENCE { 2.5.4.3, UTF8 } } }.
    name = bytes.fromhex("3014311230100603550403" + "0c09") + b"Test Root"
    return {
        "root": root.read_text(),
        "leaf": leaf.read_text(),
        "root_hash": {
            "hashAlgorithm": "SHA256",
            "issuerNameHash": hashlib.sha256(name).hexdigest(),
            # A P-256 public key is the last 65 bytes of its SubjectPublicKeyInfo.
            "issuerKeyHash": hashlib.sha256(spki[-65:]).hexdigest(),
            "serialNumber": serial.strip().removeprefix("serial=").lower().lstrip("0"),
        },
    }


@pytest.fixture
async def simulator(csms: CentralSystem) -> AsyncIterator[SimulatedCharger]:
    sim = SimulatedCharger(ocpp_url(csms), "CP-1", connectors=2, meter_interval=60)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


async def send(csms: CentralSystem, operation: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST the command through the API; the request and the 200 answer are both valid."""
    assert_valid(operation, body)
    url = f"http://127.0.0.1:{csms.http.port}/api/chargers/CP-1/commands/{operation}"
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json=body, headers=API_HEADERS) as response,
    ):
        answer = await response.json()
    assert response.status == 200, answer
    assert_valid(f"{operation}Response", answer)
    return answer


async def security_events(csms: CentralSystem) -> list[str]:
    rows = await csms.db.fetchall("SELECT type FROM security_events ORDER BY id")
    return [row["type"] for row in rows]


def test_the_simulator_reads_certificates_as_openssl_made_them(pki: dict[str, Any]) -> None:
    root, leaf = parse_certificate(pki["root"]), parse_certificate(pki["leaf"])
    assert root.self_issued and not leaf.self_issued
    assert root.hash_data(root.public_key) == pki["root_hash"]
    assert leaf.serial == "1234"  # 4660
    assert leaf.issuer == root.subject
    with pytest.raises(CertificateError):
        parse_certificate("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----")


async def test_install_list_and_delete_certificates(
    csms: CentralSystem, simulator: SimulatedCharger, pki: dict[str, Any]
) -> None:
    use = {"certificateType": "CentralSystemRootCertificate"}
    assert await send(csms, "GetInstalledCertificateIds", use) == {"status": "NotFound"}
    installed = await send(csms, "InstallCertificate", {**use, "certificate": pki["root"]})
    assert installed == {"status": "Accepted"}
    assert await simulator.wait_for_call("InstallCertificate") == {
        **use,
        "certificate": pki["root"],
    }
    # Not a root, and not a certificate: refused.
    assert (await send(csms, "InstallCertificate", {**use, "certificate": pki["leaf"]}))[
        "status"
    ] == "Rejected"
    assert (await send(csms, "InstallCertificate", {**use, "certificate": "junk"}))[
        "status"
    ] == "Rejected"

    listed = await send(csms, "GetInstalledCertificateIds", use)
    assert listed == {"status": "Accepted", "certificateHashData": [pki["root_hash"]]}
    other = {"certificateType": "ManufacturerRootCertificate"}
    assert (await send(csms, "GetInstalledCertificateIds", other))["status"] == "NotFound"

    wrong = {**pki["root_hash"], "serialNumber": "ff"}
    assert await send(csms, "DeleteCertificate", {"certificateHashData": wrong}) == {
        "status": "NotFound"
    }
    deleted = await send(csms, "DeleteCertificate", {"certificateHashData": pki["root_hash"]})
    assert deleted == {"status": "Accepted"}
    assert (await send(csms, "GetInstalledCertificateIds", use))["status"] == "NotFound"


async def test_certificate_signed(
    csms: CentralSystem, simulator: SimulatedCharger, pki: dict[str, Any]
) -> None:
    chain = pki["leaf"] + pki["root"]
    assert await send(csms, "CertificateSigned", {"certificateChain": chain}) == {
        "status": "Accepted"
    }
    assert [c.serial for c in simulator.security.certificates.own_chain] == [
        "1234",
        pki["root_hash"]["serialNumber"],
    ]
    refused = await send(csms, "CertificateSigned", {"certificateChain": "not a certificate"})
    assert refused == {"status": "Rejected"}

    async def reported() -> bool:
        return await security_events(csms) == ["InvalidChargePointCertificate"]

    await eventually(reported)
    # The accepted chain stays.
    assert len(simulator.security.certificates.own_chain) == 2


async def test_get_log_uploads_and_reports_progress(
    csms: CentralSystem, simulator: SimulatedCharger
) -> None:
    body = {
        "logType": "SecurityLog",
        "requestId": 17,
        "log": {"remoteLocation": "https://logs.example/upload"},
    }
    answer = await send(csms, "GetLog", body)
    assert answer["status"] == "Accepted" and answer["filename"].startswith("CP-1-SecurityLog-")

    async def uploaded() -> bool:
        row = await csms.chargers.get("CP-1")
        return row is not None and row["log_status"] == "Uploaded"

    await eventually(uploaded)
    reports = await csms.security.reports("CP-1", "log")
    assert [(r["status"], r["request_id"]) for r in reversed(reports)] == [
        ("Uploading", 17),
        ("Uploaded", 17),
    ]


async def test_signed_update_firmware_installs_and_reports_progress(
    csms: CentralSystem, simulator: SimulatedCharger, pki: dict[str, Any]
) -> None:
    firmware = {
        "location": "https://fw.example/2.0.bin",
        "retrieveDateTime": "2026-01-01T00:00:00Z",
        "signingCertificate": pki["root"],
        "signature": "c2lnbmF0dXJl",
    }
    answer = await send(csms, "SignedUpdateFirmware", {"requestId": 5, "firmware": firmware})
    assert answer == {"status": "Accepted"}

    async def installed() -> bool:
        return "FirmwareUpdated" in await security_events(csms)

    await eventually(installed)
    reports = await csms.security.reports("CP-1", "firmware")
    assert [(r["status"], r["request_id"]) for r in reversed(reports)] == [
        ("Downloading", 5),
        ("Downloaded", 5),
        ("SignatureVerified", 5),
        ("Installing", 5),
        ("Installed", 5),
    ]
    # FirmwareUpdated is critical: the operator hears of it.
    raised = await csms.alerts.check()
    assert [a.body["details"]["type"] for a in raised] == ["FirmwareUpdated"]

    bad = {**firmware, "signingCertificate": "-----BEGIN CERTIFICATE-----\nAA==\n"}
    answer = await send(csms, "SignedUpdateFirmware", {"requestId": 6, "firmware": bad})
    assert answer == {"status": "InvalidCertificate"}

    async def refused() -> bool:
        return "InvalidFirmwareSigningCertificate" in await security_events(csms)

    await eventually(refused)
    latest = await csms.security.reports("CP-1", "firmware", limit=1)
    assert latest[0]["request_id"] == 5  # nothing was reported for the refused update


@pytest.mark.parametrize(
    ("requested", "follow_up"),
    [
        ("BootNotification", "BootNotification"),
        ("Heartbeat", "Heartbeat"),
        ("StatusNotification", "StatusNotification"),
        ("MeterValues", "MeterValues"),
        ("FirmwareStatusNotification", "SignedFirmwareStatusNotification"),
        ("LogStatusNotification", "LogStatusNotification"),
    ],
)
async def test_extended_trigger_message_sends_the_message(
    csms: CentralSystem, simulator: SimulatedCharger, requested: str, follow_up: str
) -> None:
    await simulator.wait_online()
    before = len(simulator.sent)
    body = {"requestedMessage": requested, "connectorId": 1}
    assert await send(csms, "ExtendedTriggerMessage", body) == {"status": "Accepted"}

    async def triggered() -> bool:
        return any(
            sent.action == follow_up and sent.reply is not None for sent in simulator.sent[before:]
        )

    await eventually(triggered)
    for sent in simulator.sent[before:]:
        assert_valid(sent.action, sent.payload)
        if sent.reply is not None:
            assert_valid(f"{sent.action}Response", sent.reply)


async def test_extended_trigger_message_refusals(
    csms: CentralSystem, simulator: SimulatedCharger
) -> None:
    wrong_connector = {"requestedMessage": "StatusNotification", "connectorId": 9}
    assert await send(csms, "ExtendedTriggerMessage", wrong_connector) == {"status": "Rejected"}
    no_csr = {"requestedMessage": "SignChargePointCertificate"}
    assert await send(csms, "ExtendedTriggerMessage", no_csr) == {"status": "NotImplemented"}


async def test_security_event_sent_by_the_simulator(
    csms: CentralSystem, simulator: SimulatedCharger
) -> None:
    await simulator.wait_online()
    await simulator.send_security_event("TamperDetectionActivated", "door sensor 2")
    await simulator.send_security_event("InvalidMessages")
    sent = [s for s in simulator.sent if s.action == "SecurityEventNotification"]
    for each in sent:
        assert_valid("SecurityEventNotification", each.payload)
        assert each.reply is not None
        assert_valid("SecurityEventNotificationResponse", each.reply)
    assert sent[0].payload["techInfo"] == "door sensor 2"
    assert await security_events(csms) == ["TamperDetectionActivated", "InvalidMessages"]
    raised = await csms.alerts.check()
    assert [a.body["details"]["type"] for a in raised] == ["TamperDetectionActivated"]


@pytest.mark.parametrize(
    ("operation", "body", "field"),
    [
        ("InstallCertificate", {"certificateType": "Mine", "certificate": "x"}, "certificateType"),
        ("GetLog", {"logType": "SecurityLog", "requestId": 1}, "payload"),  # log is missing
        ("CertificateSigned", {"certificateChain": "x" * 10001}, "certificateChain"),
        ("DeleteCertificate", {"certificateHashData": {"hashAlgorithm": "MD5"}}, None),
    ],
)
async def test_invalid_commands_are_refused_before_sending(
    csms: CentralSystem, simulator: SimulatedCharger, operation: str, body: dict, field: str | None
) -> None:
    url = f"http://127.0.0.1:{csms.http.port}/api/chargers/CP-1/commands/{operation}"
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json=body, headers=API_HEADERS) as response,
    ):
        answer = await response.json()
    assert response.status == 400, answer
    if field is not None:
        assert answer["error"]["field"] == field
    assert all(action != operation for action, _ in simulator.received_calls)
