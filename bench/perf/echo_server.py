"""(a) The floor: a raw `websockets` server that answers every CALL with an empty CALLRESULT
`[3, id, {}]`. No validation, no routing, no storage: what Python websockets costs here.

    python -m bench.perf.echo_server --port PORT
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

import orjson
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

CALL = 2
OCPP16 = Subprotocol("ocpp1.6")


async def answer(connection: ServerConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for frame in connection:
            message = orjson.loads(frame)
            if message[0] == CALL:
                # Already UTF-8: sent as a text frame without decoding and encoding again.
                await connection.send(orjson.dumps([3, message[1], {}]), text=True)


async def main(port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with serve(answer, "127.0.0.1", port, subprotocols=[OCPP16], compression=None):
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.perf.echo_server")
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args().port))
