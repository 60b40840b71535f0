"""Transactions a charger keeps running after csms refused their start, stopped remotely.

OCPP 1.6 lets a charger go on with a transaction whose StartTransaction was answered
with a status other than Accepted (StopTransactionOnInvalidId false): it then keeps
sending MeterValues for it. `RefusedTransactions.running` is told so by the MeterValues
handler and hands a RemoteStopTransaction to a task of its own: handlers never wait on
the charger, and the charger is waiting for the handler's answer meanwhile.

Each transaction is asked once while it runs; a command that found the charger offline or
got no answer is asked again at the charger's next MeterValues for it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any, Protocol

import structlog

from csms.ocpp16.commands import Answered, CommandResult, Offline, TimedOut

log = structlog.get_logger()


class Commands(Protocol):
    async def send(
        self, charge_point_id: str, action: str, payload: dict[str, Any]
    ) -> CommandResult: ...


class RefusedTransactions:
    def __init__(self, commands: Commands, *, enabled: bool, capacity: int = 10_000) -> None:
        self._commands = commands
        self._enabled = enabled
        self._capacity = capacity
        # (charger, transaction) asked already, oldest first; at most `capacity` remembered.
        self._asked: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def running(self, charger_id: str, transaction_id: int) -> None:
        """The charger sent meter values for a refused transaction: stop it. Returns at once."""
        key = (charger_id, transaction_id)
        if not self._enabled or key in self._asked:
            return
        self._asked[key] = None
        while len(self._asked) > self._capacity:
            self._asked.popitem(last=False)
        task = asyncio.create_task(self._stop(key), name=f"remote-stop-{transaction_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _stop(self, key: tuple[str, int]) -> None:
        charger_id, transaction_id = key
        bound = log.bind(charge_point_id=charger_id, transaction_id=transaction_id)
        bound.warning("ocpp.refused_transaction_running")
        try:
            result = await self._commands.send(
                charger_id, "RemoteStopTransaction", {"transactionId": transaction_id}
            )
        except Exception:
            # Asked again at the next MeterValues; the log has the detail.
            bound.exception("ocpp.refused_transaction_stop_failed")
            self._asked.pop(key, None)
            return
        if isinstance(result, Offline | TimedOut):
            self._asked.pop(key, None)
        status = result.payload.get("status") if isinstance(result, Answered) else None
        bound.info("ocpp.refused_transaction_stop", result=type(result).__name__, status=status)

    async def drain(self) -> None:
        """Wait until the commands under way have ended."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """Cancel the commands under way (at shutdown)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
