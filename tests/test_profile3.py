"""Security profile 3: TLS with a client certificate from the operator CA, over real sockets on
127.0.0.1 with certificates made in the test. A charger gets its certificate through
SignCertificate and CertificateSigned on profile 2, then connects with it alone."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage, InvalidStatus

from csms.app import CentralSystem
from csms.certs.authority import Authority, common_name
from csms.config import Config, ConfigError
from csms.ocpp16.auth import hash_password
from csms.ocpp16.commands import Answered
from csms.store.certificates import CertificateStore
from simulators.chargepoint.__main__ import build_chargers, parse_args
from simulators.chargepoint.client_certificate import CertificateCharger
from storage.clock import to_text, utc_now
from tests.conftest import MakeConfig
from tests.pki import ORGANISATION, Pki, events, make_pki
from tests.waiting import eventually

PASSWORD = "profile-two-password-42"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


def tls_config(make_config: MakeConfig, pki: Pki) -> Config:
    return make_config(
        ocpp={"unknown_chargers": "reject"},
        server={"tls_cert": str(pki.server_cert), "tls_key": str(pki.server_key)},
        certs={"folder": str(pki.folder), "organisation": ORGANISATION},
    )


def wss(system: CentralSystem) -> str:
    return f"wss://127.0.0.1:{system.ocpp.port}/ocpp"


async def upgrade(url: str, context: ssl.SSLContext | None = None) -> int:
    """The HTTP status the upgrade is answered with (101 when the WebSocket opened)."""
    try:
        async with connect(
            url,
            subprotocols=["ocpp1.6"],
            ssl=context,
            proxy=None,
            open_timeout=5,  # type: ignore[list-item]
        ) as ws:
            await ws.send('[2,"1","Heartbeat",{}]')
            assert '"currentTime"' in await ws.recv()
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


def presenting(pki: Pki, files: tuple[Path, Path]) -> ssl.SSLContext:
    context = pki.trusting()
    context.load_cert_chain(*files)
    return context


async def test_certificate_from_sign_certificate_then_profile_3(
    make_config: MakeConfig, pki: Pki, tmp_path: Path
) -> None:
    async with CentralSystem(tls_config(make_config, pki)) as system:
        assert await system.chargers.register_with_password("CP-3", 2, hash_password(PASSWORD))
        options = {"folder": tmp_path / "charger", "trust": pki.ca, "organisation": ORGANISATION}
        # Profile 2: password over TLS; it asks for a certificate.
        charger = CertificateCharger(wss(system), "CP-3", password=PASSWORD, **options)
        await charger.start()
        try:
            assert await charger.request_certificate() == "Accepted"

            async def installed() -> bool:
                return charger.certificate is not None

            await eventually(installed)
        finally:
            await charger.stop()
        certificate = charger.certificate
        assert certificate is not None and charger.client_files is not None
        assert common_name(certificate.subject) == "CP-3"
        ca = pki.authority.certificate
        assert certificate.issuer == ca.subject
        public_key = ca.public_key()
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        public_key.verify(
            certificate.signature,
            certificate.tbs_certificate_bytes,
            ec.ECDSA(certificate.signature_hash_algorithm),  # type: ignore[arg-type]
        )
        store = CertificateStore(system.db)
        stored = await store.list("CP-3")
        assert [(c.serial, c.not_after) for c in stored] == [
            (format(certificate.serial_number, "x"), to_text(certificate.not_valid_after_utc))
        ]

        # Profile 3: the certificate alone, no password.
        assert await store.require("CP-3", True)
        on_certificate = CertificateCharger(wss(system), "CP-3", **options)
        # It finds the key and certificate where the first run kept them.
        assert on_certificate.client_files == charger.client_files
        await on_certificate.start()
        try:
            assert on_certificate.booted
            await on_certificate.send_heartbeat()
            assert system.sessions.get("CP-3") is not None
            # Renewal on profile 3: a new key and certificate, used from the next connection.
            assert await on_certificate.request_certificate() == "Accepted"

            async def renewed() -> bool:
                new = on_certificate.certificate
                return new is not None and new.serial_number != certificate.serial_number

            await eventually(renewed)
            await on_certificate.stop()
            await on_certificate.start()
            assert on_certificate.booted
        finally:
            await on_certificate.stop()
        assert on_certificate.certificate is not None
        assert on_certificate.certificate.serial_number != certificate.serial_number
        assert len(await store.list("CP-3")) == 2

        # The password no longer lets it in.
        elsewhere = {**options, "folder": tmp_path / "no-certificate"}
        with_password = CertificateCharger(wss(system), "CP-3", password=PASSWORD, **elsewhere)
        with pytest.raises(InvalidStatus) as refused:
            await with_password.start()
        assert refused.value.response.status_code == 403


async def test_wrong_certificates_are_refused_with_the_reason(
    make_config: MakeConfig, pki: Pki, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    other = Authority.create(tmp_path / "other", ORGANISATION, 30, utc_now())
    async with CentralSystem(tls_config(make_config, pki)) as system:
        await system.chargers.register("CP-3")
        assert await CertificateStore(system.db).require("CP-3", True)
        assert await system.chargers.register_with_password("CP-2", 2, hash_password(PASSWORD))
        url = f"{wss(system)}/CP-3"
        right = pki.client("CP-3", tmp_path / "right")

        # No certificate; one for another charger.
        assert await upgrade(url, pki.trusting()) == 403
        assert await upgrade(url, presenting(pki, pki.client("CP-9", tmp_path / "cn"))) == 403
        refused = events(caplog, "ocpp.certificate_refused")
        assert [(e["charge_point_id"], e["reason"]) for e in refused] == [
            ("CP-3", "no_certificate"),
            ("CP-3", "cn_mismatch"),
        ]

        # The right CN from another CA: the TLS handshake itself fails.
        stranger = presenting(pki, pki.client("CP-3", tmp_path / "other-ca", authority=other))
        with pytest.raises((OSError, InvalidMessage)):
            await upgrade(url, stranger)

        async def logged() -> bool:
            return bool(events(caplog, "ocpp.tls_refused"))

        await eventually(logged)
        [tls_refused] = events(caplog, "ocpp.tls_refused")
        assert tls_refused["reason"] == "certificate_not_trusted"
        assert tls_refused["remote"].startswith("127.0.0.1:")
        assert system.sessions.get("CP-3") is None

        # The right one; and a profile 2 charger still needs no certificate.
        assert await upgrade(url, presenting(pki, right)) == 101
        assert await upgrade(f"{wss(system)}/CP-2", pki.trusting()) == 401


async def test_profile_3_without_tls_is_refused(
    make_config: MakeConfig, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    config = make_config(ocpp={"unknown_chargers": "reject"}, certs={"folder": str(pki.folder)})
    async with CentralSystem(config) as system:
        await system.chargers.register("CP-3")
        assert await CertificateStore(system.db).require("CP-3", True)
        assert await upgrade(f"ws://127.0.0.1:{system.ocpp.port}/ocpp/CP-3") == 403
    [refused] = events(caplog, "ocpp.tls_required")
    assert (refused["charge_point_id"], refused["profile"]) == ("CP-3", 3)


async def test_a_certs_folder_without_a_ca_stops_start_up(
    make_config: MakeConfig, pki: Pki, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    config = make_config(
        server={"tls_cert": str(pki.server_cert), "tls_key": str(pki.server_key)},
        certs={"folder": str(empty)},
    )
    system = CentralSystem(config)
    with pytest.raises(ConfigError, match=r"^certs\.folder: no ca\.pem in "):
        await system.start()  # found before anything opens: nothing to stop
    assert not (tmp_path / "csms.db").exists()


async def test_simulator_command_line_keeps_its_certificate_across_runs(
    make_config: MakeConfig, pki: Pki, tmp_path: Path
) -> None:
    """`python -m simulators.chargepoint --ca ...`: asked by the CSMS, the charger requests a
    certificate and keeps it in --certificates; run again, it connects with it on profile 3."""
    folder = tmp_path / "sim"
    async with CentralSystem(tls_config(make_config, pki)) as system:
        assert await system.chargers.register_with_password("SIM", 2, hash_password(PASSWORD))
        argv = ["--url", f"{wss(system)}", "--id", "SIM", "--ca", str(pki.ca)]
        argv += ["--certificates", str(folder), "--organisation", ORGANISATION]
        [first] = build_chargers(parse_args([*argv, "--password", PASSWORD]))
        assert isinstance(first, CertificateCharger) and first.client_files is None
        await first.start()
        try:
            result = await system.commands.send(
                "SIM", "ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"}
            )
            assert result == Answered({"status": "Accepted"})

            async def installed() -> bool:
                return first.certificate is not None

            await eventually(installed)
        finally:
            await first.stop()
        assert sorted(p.name for p in folder.iterdir()) == ["SIM.key", "SIM.pem"]

        assert await CertificateStore(system.db).require("SIM", True)
        [second] = build_chargers(parse_args(argv))
        assert isinstance(second, CertificateCharger) and second.certificate == first.certificate
        await second.start()
        try:
            assert second.booted and system.sessions.get("SIM") is not None
        finally:
            await second.stop()
