"""Commands for a charger connected to another node: sent there over the bus, carried out
there, and the typed result brought back to the caller here.

The request goes to the node that holds the charger's connection (csms/cluster/view.py);
that node sends the CALL with its own timeout and answers with the result. The caller
waits that timeout plus `margin` for the network and the database; no answer by then is
`TimedOut` (the outcome is unknown: the command may have reached the charger), as it is
for a charger that does not answer. A node that no longer holds the charger answers
`Offline`, as a charger that left does.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import structlog

from csms.cluster.bus import Bus, Message, Unreachable
from csms.cluster.view import ClusterView
from csms.ocpp16.commands import (
    CommandResult,
    LocalCommands,
    TimedOut,
    decode_result,
    encode_result,
)

log = structlog.get_logger()


class CommandRelay:
    """Implements `csms.ocpp16.commands.Relay` over the cluster's bus."""

    def __init__(
        self, bus: Bus, view: ClusterView, local: LocalCommands, *, margin: float = 2.0
    ) -> None:
        self._bus = bus
        self._view = view
        self._local = local
        self._margin = margin
        self._waiting: dict[str, asyncio.Future[CommandResult]] = {}
        self._serving: set[asyncio.Task[None]] = set()
        self.served = 0  # commands carried out here for another node's caller
        bus.on("call", self._serve)
        bus.on("reply", self._replied)

    def holder(self, charge_point_id: str) -> str | None:
        node_id = self._view.holder(charge_point_id)
        return node_id if node_id != self._bus.node_id else None

    def is_online(self, charge_point_id: str) -> bool:
        return self._view.is_online(charge_point_id)

    async def call(
        self, node_id: str, charge_point_id: str, action: str, payload: dict[str, Any]
    ) -> CommandResult:
        request_id = uuid.uuid4().hex
        answer: asyncio.Future[CommandResult] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = answer
        bound = log.bind(charge_point_id=charge_point_id, action=action, node=node_id)
        try:
            await self._bus.send(
                node_id,
                {
                    "t": "call",
                    "id": request_id,
                    "cp": charge_point_id,
                    "action": action,
                    "payload": payload,
                },
            )
            async with asyncio.timeout(self._local.timeout + self._margin):
                result = await answer
        except (Unreachable, TimeoutError) as error:
            bound.warning("cluster.command_unanswered", error=str(error) or "timeout")
            return TimedOut()
        finally:
            self._waiting.pop(request_id, None)
        bound.info("cluster.command_relayed", result=type(result).__name__)
        return result

    async def stop(self) -> None:
        for task in list(self._serving):
            task.cancel()
        await asyncio.gather(*self._serving, return_exceptions=True)

    # -- the other side

    async def _serve(self, message: Message) -> None:
        """Carry out a command for another node's caller, without holding up the bus."""
        task = asyncio.create_task(self._carry_out(message), name=f"relayed-{message['id']}")
        self._serving.add(task)
        task.add_done_callback(self._serving.discard)

    async def _carry_out(self, message: Message) -> None:
        result = await self._local.send(message["cp"], message["action"], message["payload"])
        self.served += 1
        reply = {"t": "reply", "id": message["id"], "result": encode_result(result)}
        try:
            await self._bus.send(message["from"], reply)
        except Unreachable as error:  # the caller times out: the outcome is unknown to it
            log.warning("cluster.reply_lost", charge_point_id=message["cp"], error=str(error))

    async def _replied(self, message: Message) -> None:
        answer = self._waiting.get(message["id"])
        if answer is not None and not answer.done():
            answer.set_result(decode_result(message["result"]))
