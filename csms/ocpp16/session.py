"""One charger's WebSocket connection: frames in order, CALLs answered, our CALLs correlated.

Incoming CALLs are handled one at a time, in arrival order, inside the receive loop:
OCPP requires the order (a StopTransaction after its MeterValues) and a charger has
at most one CALL outstanding anyway. Handlers never wait on the charger, so replies to
the central system's own CALLs are always read promptly.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from csms.ocpp16.frames import (
    Call,
    CallError,
    CallResult,
    FrameError,
    decode,
    encode_call,
    encode_error,
)

log = structlog.get_logger()

# Answers an incoming CALL with the encoded reply frame.
Dispatch = Callable[[str, Call], Awaitable[str]]


class NotConnected(Exception):
    """The connection closed before the CALL could be sent."""


class ConnectionLost(Exception):
    """The connection closed after the CALL was sent and before its reply: outcome unknown."""


@dataclass(frozen=True, slots=True)
class _Pending:
    unique_id: str
    future: asyncio.Future[CallResult | CallError]


class ChargerSession:
    def __init__(
        self, charge_point_id: str, connection: ServerConnection, dispatch: Dispatch
    ) -> None:
        self.charge_point_id = charge_point_id
        self.id = uuid.uuid4().hex  # tells this connection from the charger's next one
        self.connection = connection
        self._dispatch = dispatch
        # OCPP-J allows one CALL in flight per direction: the lock serialises ours.
        self._call_lock = asyncio.Lock()
        self._pending: _Pending | None = None
        self._closed = False

    async def run(self) -> None:
        """Serve until the connection closes."""
        try:
            async for raw in self.connection:
                await self._receive(raw)
        except ConnectionClosed:
            pass
        finally:
            self._closed = True
            if self._pending and not self._pending.future.done():
                self._pending.future.set_exception(ConnectionLost())

    async def _receive(self, raw: str | bytes) -> None:
        try:
            frame = decode(raw)
        except FrameError as error:
            log.warning("ocpp.bad_frame", code=error.code.value, reason=error.description)
            if error.reply_to is not None:
                await self._send(encode_error(error.reply_to, error.code, error.description))
            return
        if isinstance(frame, Call):
            await self._send(await self._dispatch(self.charge_point_id, frame))
            return
        pending = self._pending
        if pending is None or pending.unique_id != frame.unique_id or pending.future.done():
            log.warning("ocpp.unexpected_reply", unique_id=frame.unique_id)
            return
        pending.future.set_result(frame)

    async def _send(self, text: str) -> None:
        # On a closed connection the receive loop sees the close and ends the session.
        with contextlib.suppress(ConnectionClosed):
            await self.connection.send(text)

    async def call(self, action: str, payload: dict[str, Any]) -> CallResult | CallError:
        """Send a CALL and wait for its reply (the caller bounds the wait, turn included).

        Raises NotConnected (nothing sent) or ConnectionLost (sent, reply lost).
        """
        async with self._call_lock:
            if self._closed:
                raise NotConnected()
            unique_id = str(uuid.uuid4())
            future: asyncio.Future[CallResult | CallError] = (
                asyncio.get_running_loop().create_future()
            )
            self._pending = _Pending(unique_id, future)
            try:
                try:
                    await self.connection.send(encode_call(unique_id, action, payload))
                except ConnectionClosed:
                    raise NotConnected() from None
                return await future
            finally:
                self._pending = None

    async def close(self, code: int, reason: str) -> None:
        await self.connection.close(code, reason)
