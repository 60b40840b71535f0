"""A simulated charger with a client certificate (OCPP 1.6 security profile 3).

It makes a key and a certificate signing request and sends them with SignCertificate
(on its own, or when ExtendedTriggerMessage asks for SignChargePointCertificate), keeps
the certificate that CertificateSigned brings when it is for that key, and from then on
presents it on its wss:// connections.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ocpp.routing import on
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action, CertificateSignedStatus, MessageTrigger, TriggerMessageStatus
from websockets.asyncio.client import ClientConnection

from .charger import SimulatedCharger
from .link import OcppLink

log = logging.getLogger("simulators.chargepoint")


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def make_csr(key: ec.EllipticCurvePrivateKey, common_name: str, organisation: str = "") -> str:
    """A PEM certificate signing request for `key`: CN the charge point id, O the operator."""
    names = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organisation:
        names.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    request = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names))
    signed = request.sign(key, hashes.SHA256())
    return signed.public_bytes(serialization.Encoding.PEM).decode()


class CertificateLink(OcppLink):
    """The OCPP link with the certificate messages of the security extension."""

    _charger: CertificateCharger

    @on(Action.certificate_signed)
    def on_certificate_signed(
        self, certificate_chain: str, **_: Any
    ) -> call_result.CertificateSigned:
        installed = self._charger.install_certificate(certificate_chain)
        status = CertificateSignedStatus.accepted if installed else CertificateSignedStatus.rejected
        return call_result.CertificateSigned(status)

    @on(Action.extended_trigger_message)
    def on_extended_trigger_message(
        self, requested_message: str, **rest: Any
    ) -> call_result.ExtendedTriggerMessage:
        if requested_message == MessageTrigger.sign_charge_point_certificate:
            self._then(self._charger.request_certificate)
            return call_result.ExtendedTriggerMessage(TriggerMessageStatus.accepted)
        # The other messages, when the link answers them itself.
        others = getattr(super(), "on_extended_trigger_message", None)
        if others is None:
            return call_result.ExtendedTriggerMessage(TriggerMessageStatus.not_implemented)
        return others(requested_message=requested_message, **rest)  # type: ignore[no-any-return]


class CertificateCharger(SimulatedCharger):
    """A SimulatedCharger that trusts the CSMS certificate in `trust` and keeps its own key
    and certificate in `folder` (<id>.key, <id>.pem)."""

    def __init__(
        self,
        url: str,
        charge_point_id: str,
        *,
        folder: Path,
        trust: Path,
        organisation: str = "",
        **options: Any,
    ) -> None:
        super().__init__(url, charge_point_id, **options)
        self.folder, self.trust, self.organisation = folder, trust, organisation
        self._pending: ec.EllipticCurvePrivateKey | None = None
        # The client certificate and key presented on connecting, when there is one: those
        # kept in `folder` from an earlier run.
        self.client_files: tuple[Path, Path] | None = None
        self.certificate: x509.Certificate | None = None
        cert_path, key_path = self._paths()
        if cert_path.is_file() and key_path.is_file():
            self.client_files = (cert_path, key_path)
            self.certificate = x509.load_pem_x509_certificates(cert_path.read_bytes())[0]

    def _paths(self) -> tuple[Path, Path]:
        return (
            self.folder / f"{self.charge_point_id}.pem",
            self.folder / f"{self.charge_point_id}.key",
        )

    async def request_certificate(self) -> str:
        """Send SignCertificate with a request for a new key; the CSMS's answer."""
        self._pending = new_key()
        csr = make_csr(self._pending, self.charge_point_id, self.organisation)
        reply = await self._call(call.SignCertificate(csr=csr))
        return str(reply.status)

    def install_certificate(self, chain: str) -> bool:
        """Keep the chain when its first certificate is for the key last requested."""
        try:
            leaf = x509.load_pem_x509_certificates(chain.encode())[0]
        except ValueError:
            log.warning("%s: CertificateSigned without a PEM certificate", self.charge_point_id)
            return False
        key = self._pending
        if key is None or leaf.public_key() != key.public_key():
            log.warning("%s: CertificateSigned for a key not requested", self.charge_point_id)
            return False
        self.folder.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = self._paths()
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_path.chmod(0o600)
        cert_path.write_text(chain)
        self.client_files, self.certificate, self._pending = (cert_path, key_path), leaf, None
        log.info("%s: certificate %x installed", self.charge_point_id, leaf.serial_number)
        self._notify()
        return True

    def _new_link(self, ws: ClientConnection) -> OcppLink:
        return CertificateLink(self, ws)

    def _tls_context(self) -> ssl.SSLContext | None:
        if not self._endpoint.startswith("wss://"):
            return None
        context = ssl.create_default_context(cafile=str(self.trust))
        if self.client_files is not None:
            context.load_cert_chain(*self.client_files)
        return context
