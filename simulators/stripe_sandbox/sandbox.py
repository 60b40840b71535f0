"""`StripeSandbox`: the server, its lifecycle, and the control methods tests use."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from .api import Api
from .app import Pipeline, build_application
from .control import Control
from .faults import FaultPlan, Status
from .hosted import HostedPage
from .idempotency import IdempotencyStore
from .resources import JSON
from .state import Account, Clock
from .webhooks import WebhookDispatcher

log = logging.getLogger("simulators.stripe_sandbox")

# The API version of stripe-python 16 (stripe._api_version), reported in events.
DEFAULT_API_VERSION = "2026-10-28.endive"


class StripeSandbox:
    """A local, stateful, Stripe-compatible HTTP server.

    >>> sandbox = StripeSandbox(webhook_url="http://127.0.0.1:8080/stripe/webhook")
    >>> await sandbox.start(port=0)   # then point the SDK at sandbox.base_url
    """

    def __init__(
        self,
        webhook_url: str | None = None,
        webhook_secret: str = "whsec_test_sandbox",
        public_url: str | None = None,
        *,
        api_version: str = DEFAULT_API_VERSION,
        webhook_retry_initial: float = 0.5,
        webhook_retry_max: float = 30.0,
        webhook_max_attempts: int | None = None,
        hang_seconds: float = 300.0,
        sweep_interval: float = 1.0,
    ) -> None:
        self.public_url = public_url.rstrip("/") if public_url else None
        self.clock = Clock()
        self.webhooks = WebhookDispatcher(
            webhook_url,
            webhook_secret,
            retry_initial=webhook_retry_initial,
            retry_max=webhook_retry_max,
            max_attempts=webhook_max_attempts,
        )
        self.account = Account(
            clock=self.clock,
            api_version=api_version,
            page_url=self._page_url,
            publish=self.webhooks.enqueue,
        )
        self.faults = FaultPlan()
        self._api_version = api_version
        self._hang_seconds = hang_seconds
        self._sweep_interval = sweep_interval
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._base_url: str | None = None

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """`http://HOST:PORT` of the running server: the SDK's `api` base address."""
        if self._base_url is None:
            raise RuntimeError("the sandbox is not started")
        return self._base_url

    @property
    def webhook_url(self) -> str | None:
        return self.webhooks.url

    @webhook_url.setter
    def webhook_url(self, url: str | None) -> None:
        self.webhooks.url = url

    def _page_url(self, session_id: str) -> str:
        return f"{self.public_url or self.base_url}/pay/{session_id}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        pipeline = Pipeline(
            account=self.account,
            idempotency=IdempotencyStore(self.clock),
            faults=self.faults,
            api_version=self._api_version,
            stopping=self._stopping,
            hang_seconds=self._hang_seconds,
        )
        app = build_application(
            pipeline,
            Api(self.account),
            HostedPage(self.account).routes(),
            Control(self).routes(),
        )
        self._stopping.clear()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self._base_url = f"http://{bound_host}:{bound_port}"
        await self.webhooks.start()
        self._sweeper = asyncio.create_task(self._sweep_forever())
        log.info("Stripe sandbox listening on %s", self._base_url)
        return self._base_url

    async def stop(self) -> None:
        self._stopping.set()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await self.webhooks.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        log.info("Stripe sandbox stopped")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _sweep_forever(self) -> None:
        # Sessions and authorisations also expire in real time, not only via advance_clock.
        while True:
            await asyncio.sleep(self._sweep_interval)
            self.account.sweep()

    # -- control methods ------------------------------------------------------------------

    def now(self) -> int:
        """The sandbox clock, in Unix seconds."""
        return self.clock.now()

    def advance_clock(self, seconds: int) -> int:
        """Move the sandbox clock forward and apply what expires meanwhile; the new time."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self.clock.offset += seconds
        self.account.sweep()
        return self.clock.now()

    def fail_next(
        self,
        count: int = 1,
        status: Status | None = None,
        *,
        delay_seconds: float | None = None,
        path: str | None = None,
        method: str | None = None,
        after_processing: bool = False,
    ) -> None:
        """Make the next `count` API requests (matching `path` prefix / `method`) fail.

        `status`: an HTTP error status (default 500 `api_error`) or "timeout" (the request
        hangs; with `after_processing=True` it is executed first). `delay_seconds` alone
        makes answers slow but successful.
        """
        self.faults.add(
            count,
            status,
            delay_seconds=delay_seconds,
            path=path,
            method=method,
            after_processing=after_processing,
        )

    def clear_faults(self) -> None:
        self.faults.clear()

    def webhook_duplicates(self, copies: int) -> None:
        """Deliver every event `copies` times (1 = normal)."""
        if not isinstance(copies, int) or copies < 1:
            raise ValueError("copies must be an integer >= 1")
        self.webhooks.duplicates = copies

    def webhook_shuffle(self, enabled: bool = True) -> None:
        """Deliver pending events out of their creation order."""
        self.webhooks.shuffle = enabled

    def pause_webhooks(self) -> None:
        self.webhooks.pause()

    def resume_webhooks(self) -> None:
        self.webhooks.resume()

    def deliveries(self) -> list[dict[str, object]]:
        """Every webhook delivery attempt so far."""
        return self.webhooks.report()

    def ledger(self) -> dict[str, dict[str, Any]]:
        """Per PaymentIntent: amounts authorised, captured, released, refunded, disputed,
        still held, and the capture/cancel requests that changed state."""
        return self.account.ledger()

    def cancel_payment_intent_elsewhere(
        self, intent_id: str, reason: str | None = "requested_by_customer"
    ) -> JSON:
        """Release an authorised PaymentIntent as the Dashboard or the issuer would."""
        return copy.deepcopy(self.account.cancel_elsewhere(intent_id, reason))

    def create_dispute(self, intent_id: str, reason: str = "fraudulent") -> JSON:
        """The cardholder disputes a captured payment: `charge.dispute.created`."""
        return copy.deepcopy(self.account.create_dispute(intent_id, reason))

    def events(self, event_type: str | None = None) -> list[JSON]:
        """Every event so far, oldest first, optionally of one type."""
        return [
            copy.deepcopy(event)
            for event in self.account.events
            if event_type is None or event["type"] == event_type
        ]

    def get(self, object_id: str) -> JSON:
        """Any object by id (session, PaymentIntent, charge, refund, event...)."""
        return copy.deepcopy(self.account.objects[object_id])
