"""Chargers' certificates issued from their signing requests: by the operator CA in
`[certs] folder`, or by an external CA through `[certs] external_ca_command`.

The external command gets the request (PEM) on its standard input and prints the
certificate chain (PEM, the charger's certificate first); whatever it prints is checked
(the charger's key, the charger's CN) before it is used.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from csms.certs.authority import (
    Authority,
    CertificateError,
    cert_pem,
    common_name,
    load_chain,
    serial_text,
)
from csms.config import CertsSettings
from csms.store.certificates import CertificateStore
from storage.clock import utc_now


class Issuer:
    def __init__(
        self,
        settings: CertsSettings,
        store: CertificateStore,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._settings = settings
        self._store = store
        self._clock = clock

    async def unavailable(self) -> str | None:
        """Why no certificate can be issued now, or None."""
        if self._settings.external_ca_command:
            return None
        if not self._settings.folder:
            return "neither certs.folder nor certs.external_ca_command is set"
        try:
            await asyncio.to_thread(Authority.load, Path(self._settings.folder))
        except CertificateError as error:
            return str(error)
        return None

    async def issue(self, charger_id: str, request: x509.CertificateSigningRequest) -> str:
        """The chain (PEM) for a request already checked, recorded as issued to `charger_id`.

        CertificateError when the CA cannot issue it.
        """
        if self._settings.external_ca_command:
            chain = await self._external(request)
        else:
            authority = await asyncio.to_thread(Authority.load, Path(self._settings.folder))
            chain = [
                authority.sign_request(request, self._settings.charger_validity_days, self._clock())
            ]
        leaf = chain[0]
        await self._store.add(
            serial_text(leaf),
            charger_id,
            leaf.not_valid_before_utc,
            leaf.not_valid_after_utc,
            cert_pem(leaf),
        )
        return "".join(cert_pem(certificate) for certificate in chain)

    async def _external(self, request: x509.CertificateSigningRequest) -> list[x509.Certificate]:
        command = shlex.split(self._settings.external_ca_command)
        csr = request.public_bytes(serialization.Encoding.PEM)
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as error:
            raise CertificateError(
                f"certs.external_ca_command: cannot run {command[0]}: {error.strerror}"
            ) from None
        try:
            async with asyncio.timeout(self._settings.external_ca_timeout):
                out, err = await process.communicate(csr)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise CertificateError("certs.external_ca_command: no answer in time") from None
        if process.returncode != 0:
            last = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
            raise CertificateError(
                f"certs.external_ca_command: exit status {process.returncode}: {last[0][:200]}"
            )
        chain = load_chain(out.decode(errors="replace"))
        check_issued(chain[0], request)
        return chain


def check_issued(leaf: x509.Certificate, request: x509.CertificateSigningRequest) -> None:
    """The certificate is for the request: the same key and CN."""
    if leaf.public_key() != request.public_key():
        raise CertificateError("the certificate returned is not for the request's key")
    if common_name(leaf.subject) != common_name(request.subject):
        raise CertificateError("the certificate returned names another CN")
