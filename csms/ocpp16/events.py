"""What the OCPP side tells the rest of the product, and what it asks of it.

Plain values only: the payments side implements these protocols without either side
importing the other; the composition root connects them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol


class ChargerEvents(Protocol):
    """Told after the charger's message is stored and before it is answered, so a crash in
    between makes the charger resend it: listeners must be idempotent."""

    async def transaction_started(
        self,
        charger_id: str,
        connector_id: int,
        id_tag: str,
        transaction_id: int,
        meter_start_wh: int,
        started_at: datetime,
    ) -> None: ...

    async def meter_values(
        self,
        charger_id: str,
        transaction_id: int,
        energy_register_wh: int | None,
        power_w: int | None,
        at: datetime,
    ) -> None:
        """One reading (see metering.readings); a MeterValues with several timestamps is
        told as several readings, oldest first."""
        ...

    async def transaction_stopped(
        self,
        charger_id: str,
        transaction_id: int,
        meter_stop_wh: int,
        stopped_at: datetime,
        readings: Sequence[tuple[datetime, int]] = (),
    ) -> None:
        """`readings`: the energy register in transactionData, (timestamp, Wh) oldest first."""
        ...

    async def charger_changed(
        self, charger_id: str, connector_id: int | None, status_at: datetime | None
    ) -> None:
        """Connected or disconnected (connector None), or a connector's status changed."""
        ...


class TagAuthority(Protocol):
    async def authorize_tag(
        self, charger_id: str, connector_id: int | None, id_tag: str
    ) -> str | None:
        """The status for a tag this authority issued ("Accepted", "Invalid"...), else None."""
        ...
