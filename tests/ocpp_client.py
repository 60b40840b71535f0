"""A bare OCPP-J client for tests that need to send exactly the frames they choose."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect


class RawCharger:
    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self._ids = (str(n) for n in itertools.count(1))

    @classmethod
    @asynccontextmanager
    async def connect(
        cls, base_url: str, charge_point_id: str, subprotocols: list[str] | None = None
    ) -> AsyncIterator[RawCharger]:
        offered = ["ocpp1.6"] if subprotocols is None else subprotocols
        async with connect(
            f"{base_url}/{charge_point_id}",
            subprotocols=offered or None,  # type: ignore[arg-type]
            max_size=None,
            compression=None,
            proxy=None,  # loopback: never through a proxy from the environment
        ) as connection:
            yield cls(connection)

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send a CALL and return the CALLRESULT payload; fails on a CALLERROR."""
        reply = await self.call_raw(action, payload)
        assert reply[0] == 3, f"{action} answered with {reply}"
        return reply[2]

    async def call_raw(self, action: str, payload: Any) -> list[Any]:
        unique_id = next(self._ids)
        await self.send([2, unique_id, action, payload])
        reply = await self.receive()
        assert reply[1] == unique_id, reply
        return reply

    async def send(self, frame: Any) -> None:
        await self.connection.send(orjson.dumps(frame).decode())

    async def receive(self) -> list[Any]:
        return orjson.loads(await self.connection.recv())
