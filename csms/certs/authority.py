"""The operator's certificate authority for OCPP 1.6 security profile 3, with `cryptography`.

The CA is a key and a self-signed certificate in `[certs] folder` (ca.key, ca.pem). It
issues the server's certificate for the chargers' endpoint and the chargers' client
certificates from their certificate signing requests (SignCertificate). Keys are ECDSA on
P-256. Everything here is pure apart from reading and writing the folder's files.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CertificatePublicKeyTypes = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

CA_KEY = "ca.key"
CA_CERT = "ca.pem"
# Certificates start a little in the past: a charger whose clock is slightly behind
# still accepts them.
BACKDATE = timedelta(minutes=5)
_RSA_MIN_BITS = 2048
_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)


class CertificateError(ValueError):
    """A certificate, key or request that cannot be used; the message says why."""


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def write_private(path: Path, content: bytes) -> None:
    """A key file readable by its owner only; an existing file is never overwritten."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)


def common_name(name: x509.Name) -> str | None:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else None


def organisation(name: x509.Name) -> str | None:
    values = name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(values[0].value) if values else None


def serial_text(certificate: x509.Certificate) -> str:
    return format(certificate.serial_number, "x")


@dataclass(frozen=True)
class Authority:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def create(cls, folder: Path, organisation_name: str, days: int, now: datetime) -> Authority:
        """A new CA in `folder` (made if missing); CertificateError when one is there already."""
        folder.mkdir(parents=True, exist_ok=True)
        if (folder / CA_KEY).exists() or (folder / CA_CERT).exists():
            raise CertificateError(f"{folder} already holds a CA ({CA_KEY}, {CA_CERT})")
        key = _new_key()
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation_name),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{organisation_name} charger CA"),
            ]
        )
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        write_private(folder / CA_KEY, key_pem(key))
        (folder / CA_CERT).write_text(cert_pem(certificate))
        return cls(key, certificate)

    @classmethod
    def load(cls, folder: Path) -> Authority:
        """The CA in `folder`; CertificateError naming the file that is missing or unusable."""
        try:
            key_bytes = (folder / CA_KEY).read_bytes()
            cert_bytes = (folder / CA_CERT).read_bytes()
        except OSError as error:
            raise CertificateError(
                f"no CA in {folder} ({error.filename}: {error.strerror}); create one with"
                " `csms certs init`"
            ) from None
        try:
            key = serialization.load_pem_private_key(key_bytes, password=None)
            certificate = x509.load_pem_x509_certificate(cert_bytes)
        except (ValueError, TypeError, UnsupportedAlgorithm) as error:
            raise CertificateError(f"{folder}: CA key or certificate unreadable: {error}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or (
            key.public_key() != certificate.public_key()
        ):
            raise CertificateError(f"{folder}: {CA_KEY} is not the key of {CA_CERT}")
        return cls(key, certificate)

    def _builder(
        self, subject: x509.Name, public_key: CertificatePublicKeyTypes, days: int, now: datetime
    ) -> x509.CertificateBuilder:
        not_after = min(now + timedelta(days=days), self.certificate.not_valid_after_utc)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )

    def sign_request(
        self, request: x509.CertificateSigningRequest, days: int, now: datetime
    ) -> x509.Certificate:
        """A client certificate (TLS client auth) for a request already checked."""
        return (
            self._builder(request.subject, request.public_key(), days, now)
            .add_extension(_usage(), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .sign(self.key, hashes.SHA256())
        )

    def issue_server(
        self, names: list[str], days: int, now: datetime
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """A key and certificate for the chargers' endpoint, for host names and IP addresses."""
        if not names:
            raise CertificateError("name at least one host name or IP address")
        alternatives: list[x509.GeneralName] = []
        for name in names:
            try:
                alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alternatives.append(x509.DNSName(name))
        key = _new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
        certificate = (
            self._builder(subject, key.public_key(), days, now)
            .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
            .add_extension(_usage(), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .sign(self.key, hashes.SHA256())
        )
        return key, certificate


def _usage(*, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def parse_request(text: str) -> x509.CertificateSigningRequest:
    """A PEM certificate signing request with a valid signature and an acceptable key."""
    try:
        request = x509.load_pem_x509_csr(text.encode())
    except (ValueError, UnsupportedAlgorithm) as error:
        raise CertificateError(f"not a PEM certificate signing request: {error}") from None
    try:
        valid = request.is_signature_valid
    except UnsupportedAlgorithm:
        valid = False
    if not valid:
        raise CertificateError("the request's signature is not valid")
    key = request.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < _RSA_MIN_BITS:
            raise CertificateError(f"RSA key of {key.key_size} bits; at least {_RSA_MIN_BITS}")
    elif not (isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, _CURVES)):
        raise CertificateError("the key is neither RSA nor ECDSA on P-256, P-384 or P-521")
    return request


def check_charger_request(
    request: x509.CertificateSigningRequest, charge_point_id: str, organisation_name: str
) -> None:
    """The security whitepaper's rule: CN is the charge point id, O the operator's name (when
    `[certs] organisation` is set)."""
    found = common_name(request.subject)
    if found != charge_point_id:
        raise CertificateError(f"subject CN {found!r} is not the charge point id")
    if organisation_name and organisation(request.subject) != organisation_name:
        raise CertificateError(
            f"subject O {organisation(request.subject)!r} is not {organisation_name!r}"
        )


def load_chain(text: str) -> list[x509.Certificate]:
    """The PEM certificates in `text`, leaf first; CertificateError when there is none."""
    try:
        chain = x509.load_pem_x509_certificates(text.encode())
    except ValueError as error:
        raise CertificateError(f"no PEM certificate: {error}") from None
    return chain
