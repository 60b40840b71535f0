"""The certificates a simulated charger keeps: X.509 read with the standard library alone.

Only what OCPP's certificate messages need is read from each certificate: the issuer and
subject names, the serial number, the validity period and the public key. From those come
the CertificateHashData that identifies an installed certificate (InstallCertificate,
GetInstalledCertificateIds, DeleteCertificate): SHA-256 of the issuer's DER-encoded name,
of the issuer's public key, and the serial number in hex without leading zeros.
"""

from __future__ import annotations

import hashlib
import re
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime

_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
_SEQUENCE, _INTEGER, _BIT_STRING, _VERSION = 0x30, 0x02, 0x03, 0xA0
_UTC_TIME, _GENERALIZED_TIME = 0x17, 0x18


class CertificateError(ValueError):
    """Not a well-formed X.509 certificate in PEM."""


@dataclass(frozen=True)
class Certificate:
    pem: str
    serial: str  # hex, no leading zeros
    issuer: bytes  # the DER-encoded name
    subject: bytes
    public_key: bytes  # the subjectPublicKey bits
    not_before: datetime
    not_after: datetime

    @property
    def self_issued(self) -> bool:
        return self.issuer == self.subject

    def valid_at(self, moment: datetime) -> bool:
        return self.not_before <= moment <= self.not_after

    def hash_data(self, issuer_key: bytes) -> dict[str, str]:
        """CertificateHashData (camelCase, as on the wire), SHA256."""
        return {
            "hashAlgorithm": "SHA256",
            "issuerNameHash": hashlib.sha256(self.issuer).hexdigest(),
            "issuerKeyHash": hashlib.sha256(issuer_key).hexdigest(),
            "serialNumber": self.serial,
        }


def parse_chain(text: str) -> list[Certificate]:
    """Every certificate of a PEM text, in order; CertificateError if there is none or one
    does not parse."""
    found = _PEM.findall(text)
    if not found:
        raise CertificateError("no PEM certificate")
    return [parse_certificate(pem) for pem in found]


def parse_certificate(pem: str) -> Certificate:
    try:
        der = ssl.PEM_cert_to_DER_cert(pem.strip())
    except ValueError as error:
        raise CertificateError(str(error)) from None
    outer = _items(der, *_value(der, 0, _SEQUENCE))
    tbs = outer[0]
    fields = _items(der, tbs[1], tbs[2])
    if fields and fields[0][0] == _VERSION:
        fields = fields[1:]
    if len(fields) < 6 or fields[0][0] != _INTEGER:
        raise CertificateError("not a certificate")
    serial, _, issuer, validity, subject, key_info = fields[:6]
    times = _items(der, validity[1], validity[2])
    key_parts = _items(der, key_info[1], key_info[2])
    if len(times) != 2 or len(key_parts) != 2 or key_parts[1][0] != _BIT_STRING:
        raise CertificateError("not a certificate")
    return Certificate(
        pem=pem.strip(),
        serial=der[serial[1] : serial[2]].hex().lstrip("0") or "0",
        issuer=der[issuer[3] : issuer[2]],
        subject=der[subject[3] : subject[2]],
        public_key=der[key_parts[1][1] + 1 : key_parts[1][2]],  # past the unused-bits byte
        not_before=_time(der, times[0]),
        not_after=_time(der, times[1]),
    )


# A DER element: (tag, where its value starts, where it ends, where the element starts).
_Element = tuple[int, int, int, int]


def _value(der: bytes, at: int, tag: int | None = None) -> tuple[int, int]:
    element = _element(der, at, len(der))
    if tag is not None and element[0] != tag:
        raise CertificateError("not a certificate")
    return element[1], element[2]


def _element(der: bytes, at: int, limit: int) -> _Element:
    if at + 2 > limit:
        raise CertificateError("truncated")
    tag, length, start = der[at], der[at + 1], at + 2
    if length & 0x80:
        size = length & 0x7F
        if not 0 < size <= 4 or start + size > limit:
            raise CertificateError("bad length")
        length = int.from_bytes(der[start : start + size], "big")
        start += size
    if start + length > limit:
        raise CertificateError("truncated")
    return tag, start, start + length, at


def _items(der: bytes, start: int, end: int) -> list[_Element]:
    found = []
    while start < end:
        element = _element(der, start, end)
        found.append(element)
        start = element[2]
    if not found:
        raise CertificateError("not a certificate")
    return found


def _time(der: bytes, element: _Element) -> datetime:
    text = der[element[1] : element[2]].decode("ascii", "replace")
    formats = {_UTC_TIME: "%y%m%d%H%M%SZ", _GENERALIZED_TIME: "%Y%m%d%H%M%SZ"}
    if element[0] not in formats:
        raise CertificateError("bad time")
    try:
        return datetime.strptime(text, formats[element[0]]).replace(tzinfo=UTC)
    except ValueError:
        raise CertificateError("bad time") from None


class CertificateStore:
    """Root certificates by use (CentralSystemRootCertificate, ManufacturerRootCertificate),
    and the charger's own certificate chain (CertificateSigned)."""

    def __init__(self) -> None:
        self.roots: dict[str, list[Certificate]] = {}
        self.own_chain: list[Certificate] = []

    def install(self, use: str, certificate: Certificate, now: datetime) -> str:
        """InstallCertificate's status: a root must be self-issued and valid now."""
        if not certificate.self_issued or not certificate.valid_at(now):
            return "Rejected"
        installed = self.roots.setdefault(use, [])
        if all(c.pem != certificate.pem for c in installed):
            installed.append(certificate)
        return "Accepted"

    def hash_data(self, use: str) -> list[dict[str, str]]:
        return [c.hash_data(c.public_key) for c in self.roots.get(use, [])]

    def delete(self, wanted: dict[str, str]) -> str:
        """DeleteCertificate's status."""
        for installed in self.roots.values():
            for certificate in installed:
                if _same(certificate.hash_data(certificate.public_key), wanted):
                    installed.remove(certificate)
                    return "Accepted"
        return "NotFound"


def _same(ours: dict[str, str], theirs: dict[str, str]) -> bool:
    """OCPP compares the hashes case-insensitively; only SHA256 hashes are kept here."""
    return all(ours[key].lower() == str(theirs.get(key, "")).lower() for key in ours)
