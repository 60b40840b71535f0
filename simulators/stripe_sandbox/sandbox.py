"""`StripeSandbox`: the server, its lifecycle, and the control methods tests use.

With `state_path`, the account lives in that SQLite file (see `persistence`): loaded at
start, each change written through before it is answered and before its webhooks go
out, so a restart, even after SIGKILL, finds every object, event, saved idempotent
response and undelivered webhook. A JSON state file of earlier versions is imported.
The control methods that act like Stripe's Dashboard (capture, refund, cancel, dispute)
emit the events their API twins emit, with a request id and no idempotency key.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from .api import Api
from .app import Pipeline, build_application
from .connect import Connect
from .connect_api import ConnectApi
from .control import Control
from .faults import FaultPlan, Status
from .hosted import HostedPage
from .idempotency import IdempotencyStore
from .onboarding import OnboardingPage
from .persistence import Parts, StateFile
from .resources import JSON, new_request_id
from .state import Account
from .state_types import Clock, Origin
from .webhooks import WebhookDispatcher, check_enabled_events

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
        state_path: str | os.PathLike[str] | None = None,
        enabled_events: list[str] | None = None,
    ) -> None:
        """`enabled_events`: the event types the webhook endpoint gets (`["*"]`, all, by
        default; with a state file, the stored ones unless given here)."""
        self.public_url = public_url.rstrip("/") if public_url else None
        self.clock = Clock()
        self.webhooks = WebhookDispatcher(
            webhook_url,
            webhook_secret,
            retry_initial=webhook_retry_initial,
            retry_max=webhook_retry_max,
            max_attempts=webhook_max_attempts,
            enabled_events=enabled_events,
        )
        self.webhooks.on_change = self._mark_dirty
        self.account = Account(
            clock=self.clock,
            api_version=api_version,
            page_url=self._page_url,
            publish=self.webhooks.enqueue,
        )
        self.connect = Connect(self.account, site_url=self._site_url)
        self.idempotency = IdempotencyStore(self.clock)
        self.state_file = StateFile(state_path) if state_path is not None else None
        self._parts = Parts(self.account, self.idempotency, self.clock, self.webhooks)
        self._enabled_events_given = enabled_events is not None
        self._dirty = False
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

    def _site_url(self) -> str:
        return self.public_url or self.base_url

    def _page_url(self, session_id: str) -> str:
        return f"{self._site_url()}/pay/{session_id}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._load()
        pipeline = Pipeline(
            account=self.account,
            idempotency=self.idempotency,
            faults=self.faults,
            api_version=self._api_version,
            stopping=self._stopping,
            hang_seconds=self._hang_seconds,
            commit=self.commit,
        )
        app = build_application(
            pipeline,
            Api(self.account, ConnectApi(self.connect).routes()),
            [
                *HostedPage(self.account, self.commit).routes(),
                *OnboardingPage(self.connect, self.commit).routes(),
            ],
            Control(self).routes(),
        )
        self._stopping.clear()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        try:
            await site.start()
        except BaseException:
            await self._runner.cleanup()
            self._runner = None
            self._unlock()
            raise
        bound_host, bound_port = self._runner.addresses[0][:2]
        self._base_url = f"http://{bound_host}:{bound_port}"
        self._refresh_page_urls()
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
        if self._dirty:
            self.commit()
        self._unlock()
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
            try:
                if self.account.sweep() or self._dirty:
                    self.commit()
            except OSError:
                # The state file could not be written (disk full...): try again next tick.
                log.exception("Stripe sandbox: the state could not be written")

    # -- the state file -------------------------------------------------------------------

    def commit(self) -> None:
        """Make the changes durable (with a state file), then send their webhooks.

        On OSError nothing is sent and the changes wait for the next commit."""
        self._dirty = True  # until written: the sweeper tries again if this fails
        if self.state_file is not None:
            self.state_file.write(self._parts)
        else:
            self._parts.forget_changes()
        self._dirty = False
        self.webhooks.release()

    def _mark_dirty(self) -> None:
        # A change worth keeping that need not be durable at once (a webhook delivered:
        # losing it means sending the event again): written with the next commit.
        self._dirty = True

    def _load(self) -> None:
        if self.state_file is None:
            return
        self.state_file.acquire()
        try:
            snapshot = self.state_file.open()
            if snapshot is not None:
                self._parts.restore(snapshot, keep_enabled_events=self._enabled_events_given)
                log.info(
                    "Stripe sandbox state loaded from %s: %d objects, %d events",
                    self.state_file.path,
                    len(self.account.objects),
                    len(self.account.events),
                )
            # Written at once: settings given at start are kept, and an unwritable file
            # fails the start rather than the first payment.
            self.commit()
        except BaseException:
            self._unlock()
            raise

    def _unlock(self) -> None:
        if self.state_file is not None:
            self.state_file.release()

    def _refresh_page_urls(self) -> None:
        # Open sessions from a previous run: their page is now at this run's address.
        objects = self.account.objects
        for obj in objects.values():
            if obj["object"] == "checkout.session" and obj["status"] == "open":
                obj["url"] = self._page_url(obj["id"])
                objects.touch(obj["id"])

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
        self.commit()
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

    @property
    def enabled_events(self) -> list[str]:
        """The event types the webhook endpoint subscribes to (`["*"]`: all)."""
        return list(self.webhooks.enabled_events)

    @enabled_events.setter
    def enabled_events(self, enabled_events: list[str]) -> None:
        self.webhooks.enabled_events = check_enabled_events(enabled_events)
        self.commit()

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
        still held; the API capture/cancel requests (refused ones included) and how many
        took effect; status, `created` and `metadata`. See `ledger.Ledger`."""
        return self.account.ledger()

    # -- what an operator does in the Dashboard -------------------------------------------

    def capture_payment_intent(self, intent_id: str, amount: int | None = None) -> JSON:
        """Capture an authorised PaymentIntent from the Dashboard, in full or `amount`."""
        _check_amount(amount, minimum=0)
        intent = self.account.capture(
            intent_id, amount, None, Origin(new_request_id()), by="dashboard"
        )
        self.commit()
        return copy.deepcopy(intent)

    def refund_payment_intent(
        self, intent_id: str, amount: int | None = None, reason: str | None = None
    ) -> JSON:
        """Refund a captured PaymentIntent from the Dashboard, in full or `amount`."""
        _check_amount(amount, minimum=1)
        refund = self.account.create_refund(
            intent_id=intent_id,
            charge_id=None,
            amount=amount,
            reason=reason,
            metadata={},
            origin=Origin(new_request_id()),
        )
        self.commit()
        return copy.deepcopy(refund)

    def cancel_payment_intent_elsewhere(
        self, intent_id: str, reason: str | None = "requested_by_customer"
    ) -> JSON:
        """Release an authorised PaymentIntent as the Dashboard or the issuer would."""
        intent = self.account.cancel_elsewhere(intent_id, reason)
        self.commit()
        return copy.deepcopy(intent)

    def create_dispute(self, intent_id: str, reason: str = "fraudulent") -> JSON:
        """The cardholder disputes a captured payment: `charge.dispute.created`."""
        dispute = self.account.create_dispute(intent_id, reason)
        self.commit()
        return copy.deepcopy(dispute)

    # -- Connect: what the owner of a connected account and the banks do ----------------------

    def complete_account(self, account_id: str) -> JSON:
        """The owner finishes onboarding without a browser: `account.updated`."""
        account = self.connect.complete_onboarding(account_id, Origin(new_request_id()))
        self.commit()
        return copy.deepcopy(account)

    def create_payout(
        self,
        account_id: str,
        amount: int,
        currency: str | None = None,
        status: str = "paid",
        failure_code: str = "account_closed",
    ) -> JSON:
        """A payout of a connected account: `payout.created`, then, unless `status` is
        "pending", `payout.paid` or `payout.failed` (Connect events)."""
        _check_amount(amount, minimum=1)
        if status not in ("paid", "failed", "pending"):
            raise ValueError("status must be paid, failed or pending")
        payout = self.connect.create_payout(
            account_id,
            amount,
            currency,
            status,
            failure_code,  # type: ignore[arg-type]
        )
        self.commit()
        return copy.deepcopy(payout)

    def settle_payout(
        self, payout_id: str, status: str = "paid", failure_code: str = "account_closed"
    ) -> JSON:
        """A pending payout arrives (`payout.paid`) or fails (`payout.failed`)."""
        if status not in ("paid", "failed"):
            raise ValueError("status must be paid or failed")
        payout = self.connect.settle_payout(payout_id, status, failure_code)  # type: ignore[arg-type]
        self.commit()
        return copy.deepcopy(payout)

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


def _check_amount(amount: int | None, *, minimum: int) -> None:
    if amount is not None and (
        not isinstance(amount, int) or isinstance(amount, bool) or amount < minimum
    ):
        raise ValueError(f"amount must be an integer >= {minimum} (minor units), not {amount!r}")
