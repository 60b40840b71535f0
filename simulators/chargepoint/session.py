"""The OCPP-J connection of a charge point: reconnects, offline queue, calls and waits.

SimulatedCharger builds on this; it supplies the charger-specific steps through the hooks.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import OCPPError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

from .errors import ChargerOffline, SimulatorError
from .link import OcppLink
from .outbox import Outbox, TransactionMessage

log = logging.getLogger("simulators.chargepoint")

SUBPROTOCOL = Subprotocol("ocpp1.6")
OPEN_TIMEOUT = 10.0
# Reconnect backoff after an unexpected drop: 1 s, doubling up to 30 s (by default).
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0


class SentCall(tuple[str, dict[str, Any]]):
    """(action, payload) as sent to the CSMS; `reply` is the answer's payload once it came."""

    reply: dict[str, Any] | None

    def __new__(cls, action: str, payload: dict[str, Any]) -> SentCall:
        sent = super().__new__(cls, (action, payload))
        sent.reply = None
        return sent

    @property
    def action(self) -> str:
        return self[0]

    @property
    def payload(self) -> dict[str, Any]:
        return self[1]


def _wire(message: Any) -> dict[str, Any]:
    """A payload dataclass as the camelCase dict that goes over the wire."""
    return remove_nones(snake_to_camel_case(serialize_as_dict(message)))


class OcppSession(ABC):
    """Keeps one charge point connected to `url`/{id} and its messages flowing in order."""

    def __init__(
        self, url: str, charge_point_id: str, *, reconnect_ceiling: float = BACKOFF_MAX
    ) -> None:
        self.charge_point_id = charge_point_id
        # The longest wait between two reconnect attempts (the backoff doubles up to it).
        self.reconnect_ceiling = reconnect_ceiling
        self._endpoint = f"{url.rstrip('/')}/{quote(charge_point_id, safe='')}"
        self.booted = False
        self.connected = False
        self.received_calls: list[tuple[str, dict[str, Any]]] = []
        self.sent: list[SentCall] = []

        self._ws: ClientConnection | None = None
        self._link: OcppLink | None = None
        self._runner: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._offline_timer: asyncio.Task[None] | None = None
        # Cleared while the charger must stay off the network (go_offline, reboot).
        self._online_allowed = asyncio.Event()
        # True once connected, booted, the outbox replayed and statuses resent.
        self._in_sync = False
        self._outbox = Outbox()
        # Keeps transaction messages in order between live sends and the offline replay.
        self._tx_lock = asyncio.Lock()
        # Set (and replaced) on every state change, to wake the wait_*() methods.
        self._changed = asyncio.Event()
        self._consumed: Counter[str] = Counter()

    # Lifecycle

    async def start(self) -> None:
        """Connect, boot (retrying while Pending/Rejected) and report every connector's status.

        Connection failures propagate: OSError when refused, websockets' InvalidStatus when the
        CSMS answers the upgrade with an HTTP error.
        """
        if self._runner is not None:
            raise SimulatorError("already started")
        self._online_allowed.set()
        await self._connect()
        self._runner = self.spawn(self._run())
        try:
            await self._come_online()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Close the connection and cancel every task (a power-off: no StopTransaction)."""
        self._online_allowed.clear()
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()
        if self._link is not None:
            self._mark_lost(self._link)
        self._runner = None
        self.booted = False
        log.info("%s: stopped", self.charge_point_id)

    async def go_offline(self, seconds: float | None = None) -> None:
        """Drop the connection now; reconnect after `seconds`, or on reconnect() when None.

        Transaction messages are queued meanwhile and replayed in order on reconnection.
        """
        if self._runner is None:
            raise SimulatorError("not started")
        log.info("%s: going offline for %s", self.charge_point_id, seconds or "a while")
        await self._drop(seconds, abrupt=True)

    async def reconnect(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """End an offline period; returns once back online with the queue replayed."""
        if self._offline_timer is not None:
            self._offline_timer.cancel()
        self._online_allowed.set()
        await self.wait_online(timeout)

    async def wait_online(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until connected and booted with queued messages replayed and statuses resent."""
        await self._wait(lambda: self._in_sync, timeout, "the connection")

    # Observation and background work

    async def wait_for_call(self, action: str, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        """The next CSMS CALL of `action` not returned yet by an earlier wait_for_call()."""

        def payloads() -> list[dict[str, Any]]:
            return [payload for name, payload in self.received_calls if name == action]

        await self._wait(
            lambda: len(payloads()) > self._consumed[action], timeout, f"{action} call"
        )
        payload = payloads()[self._consumed[action]]
        self._consumed[action] += 1
        return payload

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run `coro` in the background; stop() cancels it and failures are logged."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._forget)
        return task

    def record_call(self, action: str, payload: dict[str, Any]) -> None:
        self.received_calls.append((action, payload))
        self._notify()

    # Hooks for the charger

    @abstractmethod
    def _new_link(self, ws: ClientConnection) -> OcppLink:
        """The OCPP session object for a fresh connection."""

    @abstractmethod
    def _password(self) -> str | None:
        """The HTTP Basic auth password for the next connection, if any."""

    def _tls_context(self) -> ssl.SSLContext | None:
        """The TLS context for a wss:// connection (None: the system's defaults)."""
        return None

    @abstractmethod
    async def _boot(self) -> None:
        """BootNotification until Accepted; must set `booted`."""

    @abstractmethod
    async def _resync(self) -> None:
        """After a (re)connection and the replay: tell the CSMS what changed meanwhile."""

    @abstractmethod
    def _transaction_confirmed(self, provisional_id: int, reply: Any) -> None:
        """The CSMS answered a StartTransaction that waited in the outbox."""

    # Connection

    @property
    def _online(self) -> bool:
        """Messages other than BootNotification may be sent."""
        return self.connected and self.booted

    async def _connect(self) -> None:
        headers = {}
        password = self._password()
        if password:
            token = base64.b64encode(f"{self.charge_point_id}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        tls = self._tls_context()
        # proxy=None: a charger does not pick up the host's proxy settings.
        ws = await connect(
            self._endpoint,
            subprotocols=[SUBPROTOCOL],
            additional_headers=headers,
            open_timeout=OPEN_TIMEOUT,
            proxy=None,
            **({"ssl": tls} if tls is not None else {}),
        )
        if ws.subprotocol != SUBPROTOCOL:
            log.warning(
                "%s: CSMS did not select ocpp1.6 (got %r)", self.charge_point_id, ws.subprotocol
            )
        self._ws = ws
        self._link = self._new_link(ws)
        self.connected = True
        self._notify()
        log.info("%s: connected to %s", self.charge_point_id, self._endpoint)

    async def _run(self) -> None:
        """Read frames; when the connection ends, sit out any offline period and reconnect."""
        while True:
            link, ws = self._link, self._ws
            assert link is not None and ws is not None
            try:
                await link.start()
            except ConnectionClosed as exc:
                log.info("%s: connection closed (%s)", self.charge_point_id, exc)
            except Exception:
                log.exception("%s: reading from the CSMS failed", self.charge_point_id)
                await ws.close()
            unexpected = self._online_allowed.is_set()
            self._mark_lost(link)
            await self._reconnect(BACKOFF_FIRST if unexpected else 0.0)
            self.spawn(self._resume())

    async def _reconnect(self, delay: float) -> None:
        while True:
            await asyncio.sleep(delay)
            await self._online_allowed.wait()
            try:
                await self._connect()
                return
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                delay = min(max(delay * 2, BACKOFF_FIRST), self.reconnect_ceiling)
                log.warning(
                    "%s: reconnect failed (%s); retry in %.0f s", self.charge_point_id, exc, delay
                )

    def _mark_lost(self, link: OcppLink) -> None:
        self.connected = False
        self._in_sync = False
        if not link.lost.done():
            link.lost.set_result(None)
        self._notify()

    async def _drop(self, reconnect_after: float | None, *, abrupt: bool) -> None:
        """Leave the network now; come back after `reconnect_after` s (None: on reconnect())."""
        self._online_allowed.clear()
        if self._offline_timer is not None:
            self._offline_timer.cancel()
        if reconnect_after is not None:
            self._offline_timer = self.spawn(self._allow_online_after(reconnect_after))
        link, ws = self._link, self._ws
        if not self.connected or link is None or ws is None:
            return
        if abrupt:
            # Like a lost network: no closing handshake.
            ws.transport.abort()
        else:
            await ws.close()
        await link.lost

    async def _allow_online_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._online_allowed.set()

    async def _resume(self) -> None:
        try:
            await self._come_online()
        except ChargerOffline:
            log.info("%s: connection lost again while resuming", self.charge_point_id)
        except (OCPPError, TimeoutError) as exc:
            log.warning("%s: resuming failed: %r", self.charge_point_id, exc)

    async def _come_online(self) -> None:
        """After connecting: boot if needed, replay the outbox, then let the charger resync."""
        if not self.booted:
            await self._boot()
        await self._replay()
        await self._resync()
        self._in_sync = True
        self._notify()

    # Calls

    async def _call(self, payload: Any) -> Any:
        """Send a CALL and return the reply; ChargerOffline if the connection is (or goes) away."""
        link = self._link
        if link is None or not self.connected:
            raise ChargerOffline(self.charge_point_id)
        sent = SentCall(type(payload).__name__, _wire(payload))
        self.sent.append(sent)
        request = asyncio.ensure_future(link.call(payload, suppress=False))
        try:
            done, _ = await asyncio.wait({request, link.lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not request.done():
                request.cancel()
        if request not in done:
            raise ChargerOffline(self.charge_point_id)
        try:
            reply = request.result()
        except ConnectionClosed as exc:
            raise ChargerOffline(self.charge_point_id) from exc
        sent.reply = _wire(reply)
        return reply

    async def _try_call(self, payload: Any) -> Any | None:
        """A call whose failure is only logged (heartbeats, notifications)."""
        try:
            return await self._call(payload)
        except ChargerOffline:
            return None
        except (OCPPError, TimeoutError) as exc:
            log.warning("%s: %s failed: %r", self.charge_point_id, type(payload).__name__, exc)
            return None

    async def _tx_call(
        self, payload: TransactionMessage, provisional_id: int | None = None
    ) -> Any | None:
        """Send a transaction message, or queue it while offline; None when queued."""
        async with self._tx_lock:
            if self._online and not self._outbox:
                resolved = self._outbox.resolve(payload)
                if resolved is None:
                    log.warning(
                        "%s: dropping %r: the CSMS refused its transaction",
                        self.charge_point_id,
                        payload,
                    )
                    return None
                try:
                    return await self._call(resolved)
                except ChargerOffline:
                    pass
            log.info("%s: offline, queueing %s", self.charge_point_id, type(payload).__name__)
            self._outbox.put(payload, provisional_id)
            return None

    async def _replay(self) -> None:
        """Deliver queued transaction messages in order, swapping provisional transaction ids."""
        async with self._tx_lock:
            while (pending := self._outbox.head()) is not None:
                payload = self._outbox.resolve(pending.payload)
                if payload is None:
                    log.warning("%s: dropping queued %r", self.charge_point_id, pending.payload)
                    self._outbox.pop()
                    continue
                try:
                    reply = await self._call(payload)
                except (OCPPError, TimeoutError) as exc:
                    log.warning(
                        "%s: CSMS refused queued %r: %r", self.charge_point_id, payload, exc
                    )
                    self._outbox.pop()
                    continue
                self._outbox.pop()
                if pending.provisional_id is not None:
                    self._transaction_confirmed(pending.provisional_id, reply)

    # Helpers

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait(self, predicate: Callable[[], bool], seconds: float, what: str) -> None:
        try:
            async with asyncio.timeout(seconds):
                while not predicate():
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(f"{self.charge_point_id}: no {what} within {seconds} s") from None

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: background task failed", self.charge_point_id, exc_info=task.exception())
