"""The chargers' WebSocket endpoint: handshake, one session per charger, the live registry."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from typing import Protocol
from weakref import WeakKeyDictionary

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from csms.certs.authority import CA_CERT
from csms.config import Config, ConfigError
from csms.ocpp16.auth import (
    CHALLENGE,
    PROFILE_NONE,
    PROFILE_TLS_CERTIFICATE,
    FailureThrottle,
    check_basic_auth,
    check_client_certificate,
    security_profile,
    throttle_key,
    tls_context,
    transport_allowed,
)
from csms.ocpp16.events import ChargerEvents
from csms.ocpp16.handshake import charge_point_id_from_path, select_subprotocol
from csms.ocpp16.registry import Sessions
from csms.ocpp16.session import ChargerSession, Dispatch
from csms.ocpp16.tls_gate import gated
from csms.store.chargers import ChargerStore
from httpapi.forwarded import HEADER, client_address
from storage.clock import utc_now
from storage.db import Database, Row

log = structlog.get_logger()

# Close codes (RFC 6455): 1001 going away (we shut down), 1002 protocol error, 1008 policy.
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_POLICY = 1008
# Seconds for the TLS handshake, and then for the WebSocket upgrade (websockets' default).
OPEN_TIMEOUT = 10.0


def client_ca(config: Config) -> str:
    """The operator CA's certificate that clients' certificates are checked against: ca.pem
    in [certs] folder; empty without a folder. A folder without one stops start-up."""
    if not config.certs.folder:
        return ""
    path = Path(config.certs.folder) / CA_CERT
    if not path.is_file():
        raise ConfigError(f"certs.folder: no {CA_CERT} in {config.certs.folder} (csms certs init)")
    return str(path)


class Presence(Protocol):
    """Where a charger's connections are recorded: the charger is online while its current
    one lasts, cluster-wide (csms/cluster/view.py)."""

    async def connected(self, charger_id: str, session_id: str) -> None: ...

    async def disconnected(self, charger_id: str, session_id: str) -> bool:
        """True when it was the charger's current connection: the charger is offline now."""
        ...


class OcppServer:
    def __init__(
        self,
        config: Config,
        chargers: ChargerStore,
        dispatch: Dispatch,
        sessions: Sessions,
        presence: Presence,
        events: ChargerEvents | None = None,
        *,
        db: Database,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        """`db` keeps the failed logins' counts (shared by every node), by `clock`'s time."""
        self._config = config
        self._chargers = chargers
        self._dispatch = dispatch
        self._sessions = sessions
        self._presence = presence
        self._events = events
        self._server: Server | None = None
        settings = config.ocpp
        self._throttle = FailureThrottle(
            db, settings.auth_failures_allowed, settings.auth_failure_window, clock=clock
        )
        self._proxies = config.server.proxies
        # Each accepted upgrade's charger, by its registered id (which may differ in case
        # from the one in the URL), for the connection that follows.
        self._accepted: WeakKeyDictionary[ServerConnection, str] = WeakKeyDictionary()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        settings = self._config.ocpp
        # Read before listening: a bad certificate or key stops start-up, naming its key.
        server = self._config.server
        tls = tls_context(server, client_ca(self._config) if server.tls_cert else "")
        self._server = await serve(
            self._serve_connection,
            self._config.server.ocpp_host,
            self._config.server.ocpp_port,
            process_request=self._check_request,
            select_subprotocol=_negotiate,
            ping_interval=settings.ping_interval or None,
            ping_timeout=settings.ping_timeout,
            # A vanished charger cannot finish the closing handshake: do not wait long for it.
            close_timeout=min(5.0, settings.ping_timeout),
            max_size=settings.max_frame_bytes,
            # Meter values compress well, but deflate costs CPU and memory per connection.
            compression=None,
            # TLS started by each connection, so that a refused handshake is logged.
            create_connection=None if tls is None else gated(tls, OPEN_TIMEOUT),
            open_timeout=OPEN_TIMEOUT,
        )
        if tls is not None:
            log.info("ocpp.tls", cert=self._config.server.tls_cert)

    async def close(self) -> None:
        """Stop accepting, then close every charger's socket with 1001 so it reconnects."""
        if self._server is None:
            return
        self._server.close(close_connections=False)
        await asyncio.gather(
            *(s.close(CLOSE_GOING_AWAY, "server shutting down") for s in self._sessions.all()),
            return_exceptions=True,
        )
        await self._server.wait_closed()

    async def _check_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        """Refuse before the upgrade: throttled addresses (429), unknown paths and (by policy)
        unknown chargers (404), the wrong transport for the charger's security profile (403),
        missing or wrong credentials (401).
        """
        charge_point_id = charge_point_id_from_path(request.path, self._config.server.ocpp_path)
        client, remote = self._client(connection, request.headers)
        address = throttle_key(client)
        wait = await self._throttle.retry_after(address)
        if wait:
            log.warning("ocpp.auth_throttled", charge_point_id=charge_point_id, remote=remote)
            response = connection.respond(
                HTTPStatus.TOO_MANY_REQUESTS, "Too many failed authentication attempts\n"
            )
            response.headers["Retry-After"] = str(math.ceil(wait))
            return response
        if charge_point_id is None:
            log.warning("ocpp.bad_path", path=request.path[:200])
            return connection.respond(HTTPStatus.NOT_FOUND, "Not a charge point URL\n")
        charger = await self._chargers.get_ignoring_case(charge_point_id)
        if charger is None:
            if self._config.ocpp.unknown_chargers != "accept":
                log.warning("ocpp.unknown_charger_refused", charge_point_id=charge_point_id)
                return connection.respond(HTTPStatus.NOT_FOUND, "Unknown charge point\n")
            await self._chargers.register(charge_point_id)
            log.info("ocpp.charger_registered", charge_point_id=charge_point_id)
            self._accepted[connection] = charge_point_id
            return None  # security profile 0: no credentials to check
        charge_point_id = self._accepted[connection] = charger["id"]
        profile = security_profile(charger)
        if profile == PROFILE_NONE:
            return None  # credentials it may send are not checked, as before profiles existed
        tls = connection.transport.get_extra_info("ssl_object")
        if not transport_allowed(profile, over_tls=tls is not None):
            log.warning(
                "ocpp.tls_required", charge_point_id=charge_point_id, remote=remote, profile=profile
            )
            return connection.respond(HTTPStatus.FORBIDDEN, "This charge point must use wss://\n")
        if profile == PROFILE_TLS_CERTIFICATE:
            problem = check_client_certificate(tls.getpeercert(), charge_point_id)
            if problem is None:
                return None
            log.warning(
                "ocpp.certificate_refused",
                charge_point_id=charge_point_id,
                remote=remote,
                reason=problem,
            )
            return connection.respond(HTTPStatus.FORBIDDEN, "Client certificate required\n")
        return await self._check_credentials(connection, request, charger, address, remote)

    async def _check_credentials(
        self,
        connection: ServerConnection,
        request: Request,
        charger: Row,
        address: str,
        remote: str,
    ) -> Response | None:
        """None when the Authorization header proves the upgrade is `charger`'s, else 401."""
        charge_point_id = charger["id"]
        # Never logged: the header carries the password.
        credentials = request.headers.get_all("Authorization")
        if credentials:
            # A failure meanwhile, so that parallel guesses are limited as well.
            with self._throttle.guessing(address):
                problem = await asyncio.to_thread(
                    check_basic_auth, credentials, charge_point_id, charger["password_hash"]
                )
                if problem is not None:
                    await self._throttle.record_failure(address)
            if problem is None:
                return None
            log.warning(
                "ocpp.auth_failed", charge_point_id=charge_point_id, remote=remote, reason=problem
            )
        else:
            # Not counted as a failure: a client may send credentials only once challenged.
            log.warning("ocpp.auth_missing", charge_point_id=charge_point_id, remote=remote)
        response = connection.respond(HTTPStatus.UNAUTHORIZED, "Authentication required\n")
        response.headers["WWW-Authenticate"] = CHALLENGE
        return response

    async def _serve_connection(self, connection: ServerConnection) -> None:
        charge_point_id = self._accepted.pop(connection, None)
        assert charge_point_id is not None  # _check_request let it through
        structlog.contextvars.bind_contextvars(charge_point_id=charge_point_id)
        if connection.subprotocol is None:
            # OCPP-J 1.6 section 3.1.2: complete the handshake without one, then close.
            log.warning(
                "ocpp.no_subprotocol",
                offered=connection.request.headers.get_all("Sec-WebSocket-Protocol"),
            )
            await connection.close(CLOSE_PROTOCOL_ERROR, "subprotocol ocpp1.6 required")
            return
        session = ChargerSession(charge_point_id, connection, self._dispatch)
        previous = self._sessions.put(session)
        if previous is not None:
            log.info("ocpp.connection_replaced")
            await previous.close(CLOSE_POLICY, "replaced by a new connection")
        await self._presence.connected(charge_point_id, session.id)
        log.info("ocpp.connected", remote=self._client(connection, connection.request.headers)[1])
        await self._tell(charge_point_id)
        try:
            await session.run()
        finally:
            # The session that replaced this one (here or on another node) owns the registry
            # entry and the online flag.
            self._sessions.discard(session)
            if await self._presence.disconnected(charge_point_id, session.id):
                await self._tell(charge_point_id)
            log.info(
                "ocpp.disconnected", code=connection.close_code, reason=connection.close_reason
            )

    async def _tell(self, charge_point_id: str) -> None:
        if self._events is not None:
            await self._events.charger_changed(charge_point_id, None, None)

    def _client(self, connection: ServerConnection, headers: Headers) -> tuple[str, str]:
        """The client's address (httpapi.forwarded: the peer's, or the one a trusted proxy
        forwarded), and that address as logs show it: with the port when it is the peer's."""
        peer = connection.remote_address
        host = peer[0] if peer else None
        client = client_address(host, headers.get_all(HEADER), self._proxies)
        return client, f"{client}:{peer[1]}" if peer and client == host else client


def _negotiate(connection: ServerConnection, offered: Sequence[str]) -> str | None:
    return select_subprotocol(offered)
