"""The operator CA and chargers' certificates: `csms certs`, SignCertificate answered and
followed by CertificateSigned, an external CA command, renewal before expiry. Real
sockets on 127.0.0.1, certificates made in the test."""

from __future__ import annotations

import asyncio
import base64
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from websockets.asyncio.client import connect

from csms.app import CentralSystem
from csms.certs.authority import (
    Authority,
    CertificateError,
    check_charger_request,
    common_name,
    parse_request,
)
from csms.cli import main
from csms.config import ConfigError, ServerSettings, load_config
from csms.logs import configure_logging
from csms.ocpp16.auth import hash_password, tls_context
from csms.store.certificates import CertificateStore
from simulators.chargepoint.client_certificate import CertificateCharger, make_csr, new_key
from storage.clock import utc_now
from tests.conftest import MakeConfig, ocpp_url
from tests.ocpp_client import RawCharger
from tests.pki import ORGANISATION, events, leaf, make_pki
from tests.waiting import eventually


def rsa_csr(bits: int, common: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])
    request = (
        x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM).decode()


def tampered(csr: str) -> str:
    """The same request with one byte of its signature changed."""
    der = bytearray(x509.load_pem_x509_csr(csr.encode()).public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01
    body = base64.encodebytes(bytes(der)).decode()
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n"


# The CA on its own


def test_authority_issues_server_and_client_certificates(tmp_path: Path) -> None:
    now = utc_now()
    authority = Authority.create(tmp_path / "ca", ORGANISATION, 10, now)
    with pytest.raises(CertificateError, match="already holds a CA"):
        Authority.create(tmp_path / "ca", ORGANISATION, 10, now)
    assert (tmp_path / "ca" / "ca.key").stat().st_mode & 0o077 == 0
    loaded = Authority.load(tmp_path / "ca")
    assert loaded.certificate == authority.certificate

    _, server = authority.issue_server(["127.0.0.1", "csms.example"], 400, now)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(n.value) for n in names] == ["127.0.0.1", "csms.example"]
    # Never beyond the CA's own end.
    assert server.not_valid_after_utc == authority.certificate.not_valid_after_utc

    key = new_key()
    client = authority.sign_request(parse_request(make_csr(key, "CP-1", ORGANISATION)), 5, now)
    assert client.public_key() == key.public_key()
    assert client.subject.rfc4514_string() == f"CN=CP-1,O={ORGANISATION}"
    usage = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert client.not_valid_after_utc - now <= timedelta(days=5)

    other = Authority.create(tmp_path / "other", ORGANISATION, 10, now)
    (tmp_path / "ca" / "ca.key").unlink()
    (tmp_path / "ca" / "ca.key").write_bytes((tmp_path / "other" / "ca.key").read_bytes())
    with pytest.raises(CertificateError, match=r"is not the key of ca\.pem"):
        Authority.load(tmp_path / "ca")
    assert other.certificate != authority.certificate
    with pytest.raises(CertificateError, match="csms certs init"):
        Authority.load(tmp_path / "none")


@pytest.mark.parametrize(
    ("csr", "reason"),
    [
        ("not a request", "not a PEM certificate signing request"),
        (tampered(make_csr(new_key(), "CP-1", ORGANISATION)), "signature is not valid"),
        (rsa_csr(1024, "CP-1"), "RSA key of 1024 bits"),
        (make_csr(new_key(), "CP-2", ORGANISATION), "CN 'CP-2' is not the charge point id"),
        (make_csr(new_key(), "CP-1", "Someone Else"), "O 'Someone Else' is not"),
        (make_csr(new_key(), "CP-1"), "O None is not"),
    ],
)
def test_bad_requests_are_named(csr: str, reason: str) -> None:
    with pytest.raises(CertificateError, match=reason):
        check_charger_request(parse_request(csr), "CP-1", ORGANISATION)


def test_good_requests_pass() -> None:
    check_charger_request(parse_request(make_csr(new_key(), "CP-1", ORGANISATION)), "CP-1", "")
    check_charger_request(parse_request(rsa_csr(2048, "CP-1")), "CP-1", "")


# SignCertificate over OCPP


PASSWORD = "certificate-tests-password"
_HASH = hash_password(PASSWORD)  # once: about 50 ms each


@asynccontextmanager
async def authenticated(system: CentralSystem, charger_id: str) -> AsyncIterator[RawCharger]:
    """A raw client connected as a profile 1 charger: only those with credentials may ask
    for a certificate."""
    await system.chargers.register_with_password(charger_id, 1, _HASH)
    token = base64.b64encode(f"{charger_id}:{PASSWORD}".encode()).decode()
    async with connect(
        f"{ocpp_url(system)}/{charger_id}",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Basic {token}"},
        proxy=None,
    ) as connection:
        yield RawCharger(connection)


async def sign(client: RawCharger, csr: str) -> str:
    return (await client.call("SignCertificate", {"csr": csr}))["status"]


async def test_sign_certificate_then_certificate_signed(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path)
    config = make_config(certs={"folder": str(pki.folder), "organisation": ORGANISATION})
    async with (
        CentralSystem(config) as system,
        authenticated(system, "CP-1") as client,
    ):
        key = new_key()
        assert await sign(client, make_csr(key, "CP-1", ORGANISATION)) == "Accepted"
        async with asyncio.timeout(10):  # a guard against hanging, not a measurement
            frame = await client.receive()
        assert frame[:3] == [2, frame[1], "CertificateSigned"]
        await client.send([3, frame[1], {"status": "Accepted"}])
        certificate = leaf(frame[3]["certificateChain"])
        assert certificate.public_key() == key.public_key()
        assert common_name(certificate.subject) == "CP-1"
        assert certificate.issuer == pki.authority.certificate.subject
        stored = await CertificateStore(system.db).list()
        assert [(c.charger_id, c.serial) for c in stored] == [
            ("CP-1", format(certificate.serial_number, "x"))
        ]
        assert leaf(stored[0].pem) == certificate


async def test_bad_requests_are_rejected_and_change_nothing(
    make_config: MakeConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    pki = make_pki(tmp_path)
    config = make_config(certs={"folder": str(pki.folder), "organisation": ORGANISATION})
    bad = [
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        tampered(make_csr(new_key(), "CP-1", ORGANISATION)),
        make_csr(new_key(), "CP-2", ORGANISATION),
        make_csr(new_key(), "CP-1", "Someone Else"),
    ]
    async with (
        CentralSystem(config) as system,
        authenticated(system, "CP-1") as client,
    ):
        for csr in bad:
            assert await sign(client, csr) == "Rejected"
        # Not a string at all: the schema's CALLERROR.
        reply = await client.call_raw("SignCertificate", {"csr": 42})
        assert reply[0] == 4 and reply[2] == "TypeConstraintViolation"
        # The next frame is the answer to this, not a CertificateSigned.
        assert "currentTime" in await client.call("Heartbeat", {})
        assert await CertificateStore(system.db).list() == []
    reasons = [e["reason"] for e in events(caplog, "ocpp.csr_rejected")]
    assert len(reasons) == 4 and "not the charge point id" in reasons[2]


async def test_chargers_without_credentials_get_no_certificate(
    make_config: MakeConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    pki = make_pki(tmp_path)
    async with (
        CentralSystem(make_config(certs={"folder": str(pki.folder)})) as system,
        RawCharger.connect(ocpp_url(system), "CP-0") as client,  # profile 0, registered now
    ):
        assert await sign(client, make_csr(new_key(), "CP-0")) == "Rejected"
        assert await CertificateStore(system.db).list() == []
    [event] = events(caplog, "ocpp.csr_rejected")
    assert "profile 0" in event["reason"]


async def test_without_a_ca_requests_are_rejected(make_config: MakeConfig) -> None:
    async with (
        CentralSystem(make_config()) as system,
        authenticated(system, "CP-1") as client,
    ):
        assert await sign(client, make_csr(new_key(), "CP-1")) == "Rejected"


EXTERNAL_CA = """\
# An external CA: the request on stdin, the chain on stdout. Only cryptography, as a
# separate product would be.
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

folder, mode = Path(sys.argv[1]), sys.argv[2]
if mode == "fail":
    print("the CA is down", file=sys.stderr)
    sys.exit(3)
ca_key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), None)
ca = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
request = x509.load_pem_x509_csr(sys.stdin.buffer.read())
key = request.public_key()
if mode == "other-key":
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
now = datetime.now(timezone.utc)
certificate = (
    x509.CertificateBuilder().subject_name(request.subject).issuer_name(ca.subject)
    .public_key(key).serial_number(x509.random_serial_number())
    .not_valid_before(now).not_valid_after(now + timedelta(days=3))
    .sign(ca_key, hashes.SHA256())
)
# "long": more intermediate certificates than CertificateSigned's 10,000 characters carry.
for each in (certificate, *[ca] * (20 if mode == "long" else 1)):
    sys.stdout.write(each.public_bytes(serialization.Encoding.PEM).decode())
"""


@pytest.mark.parametrize("mode", ["sign", "fail", "other-key", "long"])
async def test_external_ca_command(
    make_config: MakeConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    caplog.set_level(logging.INFO)
    external = Authority.create(tmp_path / "external", "External CA", 10, utc_now())
    script = tmp_path / "external_ca.py"
    script.write_text(EXTERNAL_CA)
    command = f"{sys.executable} {script} {tmp_path / 'external'} {mode}"
    config = make_config(certs={"external_ca_command": command})
    async with (
        CentralSystem(config) as system,
        authenticated(system, "CP-1") as client,
    ):
        key = new_key()
        assert await sign(client, make_csr(key, "CP-1")) == "Accepted"
        if mode == "sign":
            async with asyncio.timeout(10):  # a guard against hanging, not a measurement
                frame = await client.receive()
            await client.send([3, frame[1], {"status": "Accepted"}])
            chain = x509.load_pem_x509_certificates(frame[3]["certificateChain"].encode())
            assert [c.issuer for c in chain] == [external.certificate.subject] * 2
            assert chain[0].public_key() == key.public_key()
            assert len(await CertificateStore(system.db).list("CP-1")) == 1
            return

        outcome = "ocpp.certificate_not_sent" if mode == "long" else "ocpp.certificate_not_issued"

        async def failed() -> bool:
            return bool(events(caplog, outcome))

        await eventually(failed)
        [event] = events(caplog, outcome)
        expected = {
            "fail": "exit status 3: the CA is down",
            "other-key": "not for the request's key",
            "long": "certificateChain",
        }
        assert expected[mode] in event["reason"]
        # Issued and recorded, though not delivered; or not issued at all.
        assert len(await CertificateStore(system.db).list()) == (mode == "long")


# Renewal


async def test_chargers_due_are_asked_for_a_new_certificate(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path)
    config = make_config(
        certs={
            "folder": str(pki.folder),
            # Longer than the certificates last: every one is due as soon as it is issued.
            "renew_before_days": 400,
            "renewal_check_interval": 0,
        }
    )
    async with CentralSystem(config) as system:
        await system.chargers.register("CP-OFF")
        store = CertificateStore(system.db)
        await system.chargers.register_with_password("CP-1", 1, _HASH)
        charger = CertificateCharger(
            ocpp_url(system), "CP-1", folder=tmp_path / "charger", trust=pki.ca, password=PASSWORD
        )
        await charger.start()
        try:
            assert await charger.request_certificate() == "Accepted"

            async def installed(count: int) -> bool:
                return len(await store.list("CP-1")) == count and charger.certificate is not None

            await eventually(lambda: installed(1))
            first = charger.certificate
            assert first is not None
            assert [c for c, _ in await system.certificates.due()] == ["CP-1"]

            # An offline charger due is only reported.
            await store.add("ab12", "CP-OFF", utc_now(), utc_now() + timedelta(days=1), "-")
            assert await system.certificates.renew_due() == {
                "CP-OFF": "Offline",
                "CP-1": "Accepted",
            }

            async def renewed() -> bool:
                return charger.certificate is not first and await installed(2)

            await eventually(renewed)
            assert [a for a, _ in charger.received_calls if a != "CertificateSigned"] == [
                "ExtendedTriggerMessage"
            ]
        finally:
            await charger.stop()


async def test_the_renewal_job_asks_on_its_own(make_config: MakeConfig, tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    config = make_config(
        certs={"folder": str(pki.folder), "renew_before_days": 400, "renewal_check_interval": 0.05}
    )
    async with CentralSystem(config) as system:
        await system.chargers.register_with_password("CP-1", 1, _HASH)
        # Due from the start: issued before the charger connects.
        await CertificateStore(system.db).add("0a", "CP-1", utc_now(), utc_now(), "-")
        charger = CertificateCharger(
            ocpp_url(system), "CP-1", folder=tmp_path / "charger", trust=pki.ca, password=PASSWORD
        )
        await charger.start()
        try:

            async def renewed() -> bool:
                return charger.certificate is not None

            await eventually(renewed)
            assert (
                "ExtendedTriggerMessage",
                {"requestedMessage": "SignChargePointCertificate"},
            ) in (charger.received_calls)
        finally:
            await charger.stop()


def test_a_stray_quote_in_the_external_command_is_named() -> None:
    with pytest.raises(ConfigError, match=r"^certs\.external_ca_command: No closing quotation"):
        load_config(env={"CSMS_CERTS_EXTERNAL_CA_COMMAND": "sign 'ca"})


async def test_nothing_is_due_outside_the_window(make_config: MakeConfig, tmp_path: Path) -> None:
    config = make_config(certs={"renew_before_days": 30, "renewal_check_interval": 0})
    async with CentralSystem(config) as system:
        store = CertificateStore(system.db)
        now = utc_now()
        await store.add("01", "CP-1", now, now + timedelta(days=31), "-")
        await store.add("02", "CP-2", now, now + timedelta(days=29), "-")
        await store.add("03", "CP-2", now, now + timedelta(days=90), "-")  # renewed already
        await store.add("04", "CP-3", now, now + timedelta(days=2), "-")
        assert [c for c, _ in await system.certificates.due()] == ["CP-3"]
        assert await system.certificates.renew_due() == {"CP-3": "Offline"}


# csms certs


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CSMS_DATABASE_PATH", str(tmp_path / "cli.db"))
    monkeypatch.setenv("CSMS_DATABASE_URL", database_url)
    monkeypatch.setenv("CSMS_CERTS_FOLDER", str(tmp_path / "ca"))
    monkeypatch.setenv("CSMS_CERTS_ORGANISATION", ORGANISATION)
    yield tmp_path
    configure_logging("console", "warning")  # main() pointed logging at captured stderr


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_certs_commands(
    cli: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(capsys, "certs", "init")
    assert code == 0 and f"O={ORGANISATION}" in out
    code, _, err = run(capsys, "certs", "init")
    assert (code, err.strip()) == (2, f"csms: certs.folder: {cli / 'ca'} already holds a CA"
                                   " (ca.key, ca.pem)")  # fmt: skip

    code, out, _ = run(capsys, "certs", "server", "127.0.0.1", "csms.example")
    assert code == 0 and f'tls_cert = "{cli / "ca" / "server.pem"}"' in out
    code, _, err = run(capsys, "certs", "server", "127.0.0.1")
    assert code == 2 and "server.key: File exists (remove it, or name others with" in err
    settings = ServerSettings(
        tls_cert=str(cli / "ca" / "server.pem"), tls_key=str(cli / "ca" / "server.key")
    )
    assert tls_context(settings, str(cli / "ca" / "ca.pem")) is not None

    key = new_key()
    (cli / "cp7.csr").write_text(make_csr(key, "CP-7", ORGANISATION))
    code, out, _ = run(capsys, "certs", "sign", "cp7.csr", "--output", "cp7.pem")
    assert (code, out) == (0, "cp7.pem: certificate for CP-7\n")
    certificate = leaf((cli / "cp7.pem").read_text())
    assert certificate.public_key() == key.public_key()
    serial = format(certificate.serial_number, "x")

    code, out, _ = run(capsys, "certs", "list")
    assert code == 0 and out.startswith(f"CP-7\t{serial}\t") and "renew" not in out
    assert run(capsys, "certs", "list", "--due")[1] == ""
    monkeypatch.setenv("CSMS_CERTS_RENEW_BEFORE_DAYS", "400")
    assert run(capsys, "certs", "list", "--due")[1].endswith("\trenew\n")

    (cli / "bad.csr").write_text(make_csr(new_key(), "CP-7", "Someone Else"))
    code, _, err = run(capsys, "certs", "sign", "bad.csr")
    assert code == 2 and "subject O 'Someone Else'" in err
    code, _, err = run(capsys, "certs", "sign", "cp7.csr", "--charger", "CP-8")
    assert code == 2 and "not the charge point id" in err
    code, _, err = run(capsys, "certs", "sign", "missing.csr")
    assert code == 2 and "cannot read missing.csr" in err

    code, out, _ = run(capsys, "chargers", "add", "CP-7", "--security-profile", "3")
    assert (code, out) == (0, "CP-7: registered; security profile 3 (client certificate)\n")
    code, _, err = run(capsys, "chargers", "add", "CP-7", "--security-profile", "3",
                       "--password", "a-long-enough-password")  # fmt: skip
    assert code == 2 and "profile 3 uses a client certificate" in err

    monkeypatch.setenv("CSMS_CERTS_FOLDER", "")
    code, _, err = run(capsys, "certs", "init")
    assert (code, err) == (2, "csms: certs.folder: not set; name the folder to keep the CA in\n")


def test_profile_3_is_stored(cli: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "chargers", "add", "CP-7", "--security-profile", "3")[0] == 0
    assert _row(cli, "CP-7")["certificate_required"] == 1
    assert run(capsys, "chargers", "add", "CP-7", "--password", "a-long-enough-password")[0] == 0
    assert _row(cli, "CP-7")["certificate_required"] == 0


def _row(cli: Path, charger_id: str) -> Any:
    from csms.config import load_config
    from csms.config_values import open_database
    from csms.store.chargers import ChargerStore

    async def read() -> Any:
        db = await open_database(load_config())
        try:
            return await ChargerStore(db).get(charger_id)
        finally:
            await db.close()

    return asyncio.run(read())
