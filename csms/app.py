"""Composition root: builds every part from the config, starts them, stops them in order."""

from __future__ import annotations

import asyncio
import signal
from types import TracebackType

import structlog

from csms.api.server import HttpServer, create_app
from csms.authorization import Authorizer
from csms.config import Config
from csms.ocpp16.commands import ChargerCommands
from csms.ocpp16.dispatch import Dispatcher
from csms.ocpp16.handlers import ChargerMessages, VendorHandler
from csms.ocpp16.schemas import warm_up
from csms.ocpp16.server import OcppServer
from csms.store.chargers import ChargerStore
from csms.store.id_tags import IdTagStore
from csms.store.transactions import TransactionStore
from storage.db import Database
from storage.migrate import load_migrations

log = structlog.get_logger()


def migrations():  # type: ignore[no-untyped-def]
    return load_migrations("csms", "csms.store")


async def open_database(config: Config) -> Database:
    return await Database.open(
        config.database.path, migrations(), synchronous=config.database.synchronous
    )


class CentralSystem:
    """The running product: the chargers' endpoint and the HTTP endpoint over one database."""

    def __init__(
        self, config: Config, vendor_handlers: dict[str, VendorHandler] | None = None
    ) -> None:
        self.config = config
        self._vendor_handlers = vendor_handlers or {}

    async def start(self) -> None:
        config = self.config
        warm_up()
        self.db = await open_database(config)
        self.chargers = ChargerStore(self.db)
        self.id_tags = IdTagStore(self.db)
        self.transactions = TransactionStore(self.db)
        await self.chargers.mark_all_offline()
        messages = ChargerMessages(
            config.ocpp,
            self.chargers,
            self.transactions,
            Authorizer(self.id_tags),
            self._vendor_handlers,
        )
        self.ocpp = OcppServer(config, self.chargers, Dispatcher(messages.handlers()))
        self.commands = ChargerCommands(self.ocpp.session, config.ocpp.call_timeout)
        self.http = HttpServer(
            create_app(self.db, self.ocpp.connected),
            config.server.http_host,
            config.server.http_port,
        )
        await self.ocpp.start()
        await self.http.start()
        log.info(
            "csms.started",
            ocpp=f"ws://{config.server.ocpp_host}:{self.ocpp.port}{config.server.ocpp_path}/{{id}}",
            http=f"http://{config.server.http_host}:{self.http.port}",
            database=config.database.path,
        )

    async def stop(self) -> None:
        await self.http.close()
        await self.ocpp.close()
        await self.db.close()
        log.info("csms.stopped")

    async def __aenter__(self) -> CentralSystem:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def serve(config: Config) -> None:
    """Run until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with CentralSystem(config):
        await stop.wait()
