"""Chargers' client certificates over OCPP (the security extension for OCPP 1.6).

SignCertificate (charger -> central system) is checked and answered at once; the
certificate is then issued and sent with CertificateSigned by a task of its own, through
the command layer, as handlers never wait for a charger. A job asks chargers whose newest
certificate ends within `[certs] renew_before_days` for a new request, with
ExtendedTriggerMessage(SignChargePointCertificate).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog

from csms.certs.authority import CertificateError, check_charger_request, parse_request
from csms.certs.issuer import Issuer
from csms.config import CertsSettings
from csms.ocpp16.auth import PROFILE_NONE, security_profile
from csms.ocpp16.commands import Answered, ChargerCommands, InvalidCommand
from csms.store.certificates import CertificateStore
from csms.store.chargers import ChargerStore
from storage.clock import utc_now
from storage.nodes import Leader, sole_node

log = structlog.get_logger()

RENEWAL_JOB = "certificate_renewal"


class ChargerCertificates:
    def __init__(
        self,
        settings: CertsSettings,
        issuer: Issuer,
        store: CertificateStore,
        commands: ChargerCommands,
        chargers: ChargerStore,
        *,
        clock: Callable[[], datetime] = utc_now,
        lead: Leader = sole_node,
    ) -> None:
        self._settings = settings
        self._issuer = issuer
        self._store = store
        self._commands = commands
        self._chargers = chargers
        self._clock = clock
        self._lead = lead
        self._tasks: set[asyncio.Task[None]] = set()
        self._job: asyncio.Task[None] | None = None

    def handlers(self) -> dict[str, Any]:
        return {"SignCertificate": self.sign_certificate}

    async def sign_certificate(self, charger_id: str, request: dict[str, Any]) -> dict[str, Any]:
        """Accepted when the request is a valid CSR for this charger, the charger proved who
        it is on connecting (security profile 1 or more), and a CA can sign it."""
        charger = await self._chargers.get(charger_id)
        if charger is None or security_profile(charger) == PROFILE_NONE:
            # Anybody may claim a profile 0 charger's id: no certificate in its name.
            log.warning("ocpp.csr_rejected", reason="the charger has no credentials (profile 0)")
            return {"status": "Rejected"}
        try:
            csr = parse_request(request["csr"])
            check_charger_request(csr, charger_id, self._settings.organisation)
        except CertificateError as error:
            log.warning("ocpp.csr_rejected", reason=str(error))
            return {"status": "Rejected"}
        problem = await self._issuer.unavailable()
        if problem is not None:
            log.warning("ocpp.csr_rejected", reason=f"no CA: {problem}")
            return {"status": "Rejected"}
        task = asyncio.get_running_loop().create_task(self._issue_and_send(charger_id, csr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return {"status": "Accepted"}

    async def _issue_and_send(self, charger_id: str, csr: Any) -> None:
        bound = log.bind(charge_point_id=charger_id)
        try:
            chain = await self._issuer.issue(charger_id, csr)
        except CertificateError as error:
            bound.error("ocpp.certificate_not_issued", reason=str(error))
            return
        try:
            result = await self._commands.send(
                charger_id, "CertificateSigned", {"certificateChain": chain}
            )
        except InvalidCommand as error:  # a chain longer than OCPP's 10,000 characters
            bound.error("ocpp.certificate_not_sent", reason=str(error))
            return
        status = result.payload["status"] if isinstance(result, Answered) else None
        if status == "Accepted":
            bound.info("ocpp.certificate_installed")
        else:
            # The charger asks again (SignCertificate), or renewal triggers it.
            bound.warning("ocpp.certificate_not_installed", result=status or type(result).__name__)

    # Renewal

    def start(self) -> None:
        if self._settings.renewal_check_interval > 0:
            self._job = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        pending = [*self._tasks, *([self._job] if self._job else [])]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._job = None

    async def _run(self) -> None:
        while True:
            try:
                if await self._lead(RENEWAL_JOB):
                    await self.renew_due()
            except Exception:
                log.exception("ocpp.certificate_renewal_failed")
            await asyncio.sleep(self._settings.renewal_check_interval)

    async def due(self) -> list[tuple[str, str]]:
        """(charger, not_after) of those whose newest certificate is to be renewed now."""
        window = timedelta(days=self._settings.renew_before_days)
        return await self._store.due(self._clock() + window)

    async def renew_due(self) -> dict[str, str]:
        """Ask each connected charger that is due for a new request; charger -> outcome."""
        outcomes: dict[str, str] = {}
        for charger_id, not_after in await self.due():
            if not self._commands.is_online(charger_id):
                log.info("ocpp.certificate_renewal_due", charge_point_id=charger_id, ends=not_after)
                outcomes[charger_id] = "Offline"
                continue
            result = await self._commands.send(
                charger_id,
                "ExtendedTriggerMessage",
                {"requestedMessage": "SignChargePointCertificate"},
            )
            outcome = (
                result.payload["status"] if isinstance(result, Answered) else type(result).__name__
            )
            log.info(
                "ocpp.certificate_renewal_requested",
                charge_point_id=charger_id,
                ends=not_after,
                result=outcome,
            )
            outcomes[charger_id] = outcome
        return outcomes
