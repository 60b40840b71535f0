"""The chargers as the payments side sees them (its `ChargerControl` port)."""

from __future__ import annotations

from typing import Any, Protocol

from csms.ocpp16.commands import Answered, ChargerCommands, CommandResult, Failed, Offline
from csms.store.chargers import ChargerStore, connector_details
from csms.store.sites import SiteStore
from csms.store.transactions import TransactionStore


class Statuses(Protocol):
    def status(self, charger_id: str, connector_id: int) -> str | None: ...


class RemoteControl:
    def __init__(
        self,
        commands: ChargerCommands,
        live: Statuses,
        chargers: ChargerStore,
        transactions: TransactionStore,
        sites: SiteStore,
    ) -> None:
        self._sites = sites
        self._commands = commands
        self._live = live
        self._chargers = chargers
        self._transactions = transactions

    def is_online(self, charger_id: str) -> bool:
        return self._commands.is_online(charger_id)

    async def charger_info(self, charger_id: str) -> dict[str, Any] | None:
        row = await self._chargers.get(charger_id)
        if row is None:
            return None
        model = " ".join(part for part in (row["vendor"], row["model"]) if part) or None
        site = await self._site(row["site_id"])
        return {
            "name": row["name"],
            "location": row["location"],
            "model": model,
            # Its own zone, else its site's; None: the operator's.
            "time_zone": row["time_zone"] or (site["time_zone"] if site else None),
            "site": site,
            "connectors": {
                number: {"plug_type": d["plugType"], "max_power_kw": d["maxPowerKw"]}
                for number, d in connector_details(row).items()
            },
        }

    async def _site(self, site_id: str | None) -> dict[str, Any] | None:
        """The site as payments.ports.SiteInfo; None without one."""
        site = await self._sites.get(site_id) if site_id else None
        if site is None:
            return None
        return {
            "id": site.id,
            "name": site.name,
            "address": site.address,
            "time_zone": site.time_zone,
            "owner_id": site.owner_id,
            "split": site.split,
            "support_email": site.support_email,
            "support_phone": site.support_phone,
            "support_url": site.support_url,
        }

    def connector_status(self, charger_id: str, connector_id: int) -> str | None:
        return self._live.status(charger_id, connector_id)

    async def open_transaction(self, charger_id: str, connector_id: int) -> int | None:
        open_ones = await self._transactions.open_on(charger_id, connector_id)
        return open_ones[-1]["id"] if open_ones else None

    async def remote_start(self, charger_id: str, connector_id: int, id_tag: str) -> str:
        return _outcome(
            await self._commands.send(
                charger_id,
                "RemoteStartTransaction",
                {"connectorId": connector_id, "idTag": id_tag},
            )
        )

    async def remote_stop(self, charger_id: str, transaction_id: int) -> str:
        return _outcome(
            await self._commands.send(
                charger_id, "RemoteStopTransaction", {"transactionId": transaction_id}
            )
        )


def _outcome(result: CommandResult) -> str:
    match result:
        case Answered(payload):
            status: Any = payload.get("status")
            return "Accepted" if status == "Accepted" else "Rejected"
        case Failed():
            return "Failed"
        case Offline(sent=False):
            return "Offline"
    # No answer, or the connection dropped after the CALL was sent: it may have been applied.
    return "Timeout"
