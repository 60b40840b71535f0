"""What payments needs from the chargers' side, as protocols the composition root fills in.

Plain values cross the boundary (strings, ints), so `csms` can implement these without
importing anything from `payments`, and `payments` never imports `csms`.
"""

from __future__ import annotations

from typing import Literal, Protocol, TypedDict

# The charger's answer to a command, or why there is none.
CommandOutcome = Literal["Accepted", "Rejected", "Offline", "Timeout", "Failed"]


class ConnectorDetails(TypedDict):
    plug_type: str  # one of the API's plug types, e.g. "Type2" (entered by the operator)
    max_power_kw: float


class SiteInfo(TypedDict):
    """The site a charger belongs to, as the operator registered it."""

    id: str
    name: str
    address: str | None  # lines separated by newlines
    time_zone: str  # IANA zone: receipts, and tariffs by time of day, use it
    owner_id: str | None  # who owns the site's chargers (payments.owners); None: the operator
    split: dict[str, object] | None  # payments.split.SplitRule as a dict; None: no split
    support_email: str | None
    support_phone: str | None
    support_url: str | None


class ChargerInfo(TypedDict):
    name: str | None
    location: str | None
    model: str | None  # vendor and model from its BootNotification (None: not booted yet)
    time_zone: str | None  # IANA zone its receipts give times in (None: the operator's)
    site: SiteInfo | None  # None: the charger belongs to no site
    # Plug type and maximum power by connector id, as entered at registration (OCPP 1.6
    # does not report them); a connector without an entry has none known.
    connectors: dict[int, ConnectorDetails]


class ChargerControl(Protocol):
    # The two facts below are read inside units of work, on the database thread: they must
    # be plain in-memory reads, answered at once.
    def is_online(self, charger_id: str) -> bool: ...

    async def charger_info(self, charger_id: str) -> ChargerInfo | None:
        """Name, location and model of a registered charger (None: no such charger)."""
        ...

    def connector_status(self, charger_id: str, connector_id: int) -> str | None:
        """The connector's last reported OCPP status (None: never reported)."""
        ...

    async def open_transaction(self, charger_id: str, connector_id: int) -> int | None:
        """The id of a transaction still open on the connector, if any."""
        ...

    async def remote_start(
        self, charger_id: str, connector_id: int, id_tag: str
    ) -> CommandOutcome: ...

    async def remote_stop(self, charger_id: str, transaction_id: int) -> CommandOutcome: ...
