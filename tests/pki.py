"""Certificates for tests, made with csms's own CA code: the operator CA, the server's
certificate for 127.0.0.1, chargers' keys and certificates."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from csms.certs.authority import Authority, cert_pem, key_pem, parse_request, write_private
from simulators.chargepoint.client_certificate import make_csr, new_key
from storage.clock import utc_now

ORGANISATION = "Example CPO"


@dataclass(frozen=True)
class Pki:
    folder: Path  # [certs] folder: ca.key, ca.pem
    authority: Authority
    server_cert: Path
    server_key: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    def client(
        self, common_name: str, where: Path, authority: Authority | None = None
    ) -> tuple[Path, Path]:
        """A key and a client certificate for `common_name`, signed by `authority` (ours)."""
        return client_files(authority or self.authority, common_name, where)

    def trusting(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


def make_pki(root: Path, name: str = "certs") -> Pki:
    folder = root / name
    authority = Authority.create(folder, ORGANISATION, 30, utc_now())
    key, certificate = authority.issue_server(["127.0.0.1", "localhost"], 30, utc_now())
    server_cert, server_key = root / f"{name}-server.pem", root / f"{name}-server.key"
    server_cert.write_text(cert_pem(certificate))
    write_private(server_key, key_pem(key))
    return Pki(folder, authority, server_cert, server_key)


def client_files(authority: Authority, common_name: str, where: Path) -> tuple[Path, Path]:
    key = new_key()
    request = parse_request(make_csr(key, common_name, ORGANISATION))
    certificate = authority.sign_request(request, 30, utc_now())
    where.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = where / f"{common_name}.pem", where / f"{common_name}.key"
    cert_path.write_text(cert_pem(certificate))
    key_path.write_bytes(key_pem(key))
    return cert_path, key_path


def leaf(chain: str) -> x509.Certificate:
    return x509.load_pem_x509_certificates(chain.encode())[0]


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, Any]]:
    """The structlog events called `name` that were logged during the test."""
    found = [r.msg for r in caplog.records if isinstance(r.msg, dict)]
    return [event for event in found if event.get("event") == name]
