"""Start-up failures an operator can act on, each told in one line naming the setting.

Before `csms serve` creates anything (the database file, an API key), the ports it will
listen on are tried and the TLS files loaded; a database that cannot be opened or reached,
and a port taken between that check and the real listening, are reported the same way.
"""

from __future__ import annotations

import errno
import socket
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from csms.config import Config, DatabaseSettings
from csms.ocpp16.auth import tls_context
from csms.ocpp16.server import client_ca
from storage.db import is_postgres

WILDCARDS = ("", "0.0.0.0", "::")


class StartupError(Exception):
    """What a setting points at cannot be used (a busy port, a database out of reach); the
    message names the setting."""


@dataclass(frozen=True)
class Listener:
    """One address the product listens on, and the settings that give it."""

    host_setting: str
    port_setting: str
    host: str
    port: int

    @property
    def shown(self) -> str:
        return f"{self.host or '*'}:{self.port}"

    def error(self, error: OSError) -> StartupError:
        """`error`, from binding this address, told as the setting to change."""
        if isinstance(error, socket.gaierror):
            return StartupError(
                f"{self.host_setting}: cannot listen on {self.host!r}: {error.strerror}"
            )
        if error.errno == errno.EADDRINUSE:
            return StartupError(
                f"{self.port_setting}: port {self.port} is already in use ({self.shown});"
                " stop what listens there or choose another port"
            )
        if error.errno == errno.EACCES:
            return StartupError(
                f"{self.port_setting}: port {self.port} needs privileges this process lacks"
                " (choose a port above 1023)"
            )
        if error.errno == errno.EADDRNOTAVAIL:
            return StartupError(f"{self.host_setting}: {self.host} is no address of this machine")
        return StartupError(
            f"{self.port_setting}: cannot listen on {self.shown}: {error.strerror or error}"
        )

    async def listen(self, start: Callable[[], Awaitable[object]]) -> None:
        """Run `start`, which binds this address; an OSError from it as a StartupError."""
        try:
            await start()
        except OSError as error:
            raise self.error(error) from None


def listeners(config: Config) -> dict[str, Listener]:
    """The chargers' endpoint ("ocpp"), the HTTP endpoint ("http"), `/metrics` on its own
    address when metrics.listen is set ("metrics") and, without a Stripe key, the bundled
    sandbox ("sandbox")."""
    server, stripe = config.server, config.stripe
    found = {
        name: Listener(f"server.{name}_host", f"server.{name}_port", host, port)
        for name, host, port in (
            ("ocpp", server.ocpp_host, server.ocpp_port),
            ("http", server.http_host, server.http_port),
        )
    }
    if config.metrics.address is not None:
        found["metrics"] = Listener("metrics.listen", "metrics.listen", *config.metrics.address)
    if not stripe.api_key:
        sandbox = ("stripe.sandbox_host", "stripe.sandbox_port")
        found["sandbox"] = Listener(*sandbox, stripe.sandbox_host, stripe.sandbox_port)
    return found


def check_before_start(config: Config) -> None:
    """The TLS files load, the database's folder exists and every address can be bound,
    else ConfigError or StartupError naming the setting; nothing is created here."""
    tls_context(config.server, client_ca(config) if config.server.tls_cert else "")
    check_database_folder(config.database)
    found = list(listeners(config).values())
    for index, listener in enumerate(found):
        for earlier in found[:index]:
            if _overlap(earlier, listener):
                raise StartupError(
                    f"{listener.port_setting}: port {listener.port} is {earlier.port_setting}"
                    " too; give each its own port"
                )
    for listener in found:
        _try_binding(listener)  # port 0 too: the host must be an address of this machine


def _overlap(a: Listener, b: Listener) -> bool:
    same_host = a.host == b.host or a.host in WILDCARDS or b.host in WILDCARDS
    return a.port != 0 and a.port == b.port and same_host


def _try_binding(listener: Listener) -> None:
    """Bind (and let go of) each address the server would, as asyncio binds them."""
    try:
        addresses = socket.getaddrinfo(
            listener.host or None,
            listener.port,
            type=socket.SOCK_STREAM,
            flags=socket.AI_PASSIVE,
        )
    except socket.gaierror as error:
        raise listener.error(error) from None
    for family, kind, protocol, _, address in addresses:
        with socket.socket(family, kind, protocol) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as error:
                raise listener.error(error) from None


def check_database_folder(settings: DatabaseSettings) -> None:
    """A SQLite file's folder must exist: csms does not create it, as a misspelt folder
    would otherwise hold a second, empty database."""
    if settings.url or settings.path in ("", ":memory:"):
        return
    folder = Path(settings.path).parent
    if not folder.is_dir():
        raise StartupError(
            f"database.path: the folder {folder} does not exist; create it, or set"
            " database.path to a file in an existing folder"
        )


def database_errors(target: str) -> tuple[type[BaseException], ...]:
    """What opening `target` raises when it cannot be opened or reached."""
    if is_postgres(target):
        import psycopg  # only when PostgreSQL is used

        return (psycopg.OperationalError,)
    return (sqlite3.DatabaseError,)


def database_error(settings: DatabaseSettings, error: BaseException) -> StartupError:
    # psycopg's message goes on with hints on further lines; its first says what failed.
    lines = str(error).strip().splitlines()
    cause = lines[0] if lines else type(error).__name__
    if settings.url:
        return StartupError(f"database.url: cannot connect to {settings.shown}: {cause}")
    return StartupError(f"database.path: cannot open {settings.path}: {cause}")
