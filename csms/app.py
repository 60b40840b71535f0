"""Composition root: builds every part from the config, starts them, stops them in order.

The only module that knows both the OCPP side (`csms`) and the payments side
(`payments`): it hands the payments coordinator to the OCPP handlers as their event
listener and tag authority, and the chargers to payments as its `ChargerControl`.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

import structlog

from csms import startup
from csms.alerting import alert_job
from csms.api.docs import register_docs
from csms.api.management import build_api
from csms.api.server import HttpServer, create_app, metrics_app
from csms.authorization import Authorizer
from csms.certs.issuer import Issuer
from csms.cluster.bus import Bus, LocalBus, PgBus
from csms.cluster.routing import CommandRelay
from csms.cluster.view import ClusterView
from csms.config import Config
from csms.config_values import default_tariff, open_database, operator, payment_policy
from csms.console.app import console_routes, make_console
from csms.first_start import make_first_admin_and_key
from csms.heap import keep_collections_short
from csms.metrics import Metrics
from csms.ocpp16.certificates import ChargerCertificates
from csms.ocpp16.commands import ChargerCommands, LocalCommands
from csms.ocpp16.control import RemoteControl
from csms.ocpp16.dispatch import Dispatcher
from csms.ocpp16.handlers import ChargerMessages, VendorHandler
from csms.ocpp16.refused import RefusedTransactions
from csms.ocpp16.registry import Sessions
from csms.ocpp16.schemas import warm_up
from csms.ocpp16.security_messages import SecurityMessages
from csms.ocpp16.server import OcppServer
from csms.ocpp16.values import PayloadRules
from csms.open_files import raise_open_files_limit
from csms.store.api_keys import ApiKeys
from csms.store.certificates import CertificateStore
from csms.store.chargers import ChargerStore
from csms.store.id_tags import IdTagStore
from csms.store.security import SecurityStore
from csms.store.sites import SiteStore
from csms.store.transactions import TransactionStore
from csms.store.users import UserStore
from httpapi.middleware import api_errors, api_key_required, security_headers
from payments.active_index import IndexEntry
from payments.audit_log import AuditLog
from payments.charger_events import ChargerEventsListener
from payments.connect_gateway import ConnectGateway
from payments.connect_webhooks import ConnectWebhooks
from payments.coordinator import Coordinator
from payments.effects import EffectExecutor
from payments.http import PaymentRoutes, WebhookSettings
from payments.onboarding import Onboarding
from payments.outbox import Outbox
from payments.owners import OwnerStore
from payments.owners_http import OnboardingPages
from payments.pricing import Tariff
from payments.reconcile_transfers import findings_source
from payments.reconciler import Reconciler
from payments.refunds import RefundStore
from payments.reservation import Reservation
from payments.reservations_store import ReservationStore
from payments.runner import EffectRunner
from payments.service import Payments
from payments.stripe_gateway import StripeGateway
from payments.tariff_store import TariffStore
from payments.transfer_effects import TransferEffects
from payments.transfer_gateway import TransferGateway
from payments.transfers import TransferService, TransferStore
from payments.web.guards import RateLimit
from payments.web.pages import DriverPages
from simulators.stripe_sandbox import StripeSandbox
from storage.clock import utc_now
from storage.nodes import Node, default_node_id

log = structlog.get_logger()

SANDBOX_API_KEY = "sk_test_sandbox"
SANDBOX_WEBHOOK_SECRET = "whsec_sandbox_local"
CHECKOUT_EXPIRY_MARGIN = 120  # seconds
# API routes anyone may call: Stripe signs its webhooks; the API's own documentation.
OPEN_API_PATHS = frozenset({"/api/stripe/webhook", "/api/openapi.json", "/api/docs"})


# The user made at first start when there is none; its password is shown once.
class CentralSystem:
    """The running product: the chargers' endpoint and the HTTP endpoint over one database."""

    def __init__(
        self,
        config: Config,
        vendor_handlers: dict[str, VendorHandler] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.config = config
        self._vendor_handlers = vendor_handlers or {}
        self._clock = clock
        self.sandbox: StripeSandbox | None = None
        self.metrics_http: HttpServer | None = None  # /metrics on its own address
        self._console_closing = asyncio.Event()  # ends the console's live streams

    @property
    def clock(self) -> Callable[[], datetime]:
        return self._clock

    async def start(self) -> None:
        """Everything, or (ConfigError, StartupError) nothing left open or listening."""
        tariff = default_tariff(self.config)  # a bad [tariff], before anything opens
        # TLS files, the database's folder, busy ports: found before anything is created.
        startup.check_before_start(self.config)
        warm_up()
        async with AsyncExitStack() as self._opened:  # closed again if start-up fails
            await self._start(tariff)
            self._opened.pop_all()

    async def _start(self, tariff: Tariff) -> None:
        config = self.config
        opened = self._opened
        await self._open_storage()
        self._join_cluster()
        self.metrics = Metrics(self.db, self.sessions.ids, clock=self._clock)
        self.gateway, webhook_secrets = await self._stripe()
        control = RemoteControl(
            self.commands, self.view, self.chargers, self.transactions, self.sites
        )
        await self._build_payments(control)
        await self.bus.start()
        opened.push_async_callback(self.bus.stop)
        await self.view.start()
        opened.push_async_callback(self.view.stop)
        self._build_ocpp()
        self.api_keys = ApiKeys(self.db, config.api.keys.split(","))
        await make_first_admin_and_key(self.users, self.api_keys)
        self._build_http(control, tariff, webhook_secrets)

        listeners = startup.listeners(config)
        await listeners["ocpp"].listen(self.ocpp.start)
        opened.push_async_callback(self.ocpp.close)
        await listeners["http"].listen(self.http.start)
        opened.push_async_callback(self.http.close)
        if "metrics" in listeners:
            self.metrics_http = await self._metrics_server(listeners["metrics"])
            opened.push_async_callback(self.metrics_http.close)
        if not config.payments.public_base_url:
            self.executor.public_base_url = f"http://127.0.0.1:{self.http.port}"
        if self.sandbox is not None:
            self.sandbox.webhook_url = f"http://127.0.0.1:{self.http.port}/api/stripe/webhook"
        self.runner.start()
        try:  # shares that accrued for owners who became ready meanwhile
            await self.transfer_service.sweep()
        except Exception:
            log.exception("payments.owner_sweep_failed")  # the next start tries again
        self.alerts.start()
        self.reconciler.start()
        self.certificates.start()
        log.info(
            "csms.started",
            ocpp=f"ws://{config.server.ocpp_host}:{self.ocpp.port}{config.server.ocpp_path}/{{id}}",
            http=f"http://{config.server.http_host}:{self.http.port}",
            database=config.database.shown,
            stripe="sandbox" if self.sandbox else "stripe",
        )

    async def _open_storage(self) -> None:
        """The database, this node's lease in it, and the stores."""
        config = self.config
        self.db = await open_database(config)
        self._opened.push_async_callback(self.db.close)
        self.node = Node(
            self.db,
            config.cluster.node_id or default_node_id(self.db.backend),
            lease=config.cluster.lease,
            clock=self._clock,
        )
        await self.node.join()
        self._opened.push_async_callback(self.node.leave)
        self.chargers = ChargerStore(self.db)
        self.sites = SiteStore(self.db)
        self.id_tags = IdTagStore(self.db)
        self.security = SecurityStore(self.db)
        self.transactions = TransactionStore(self.db)
        self.reservations = ReservationStore(self.db)
        self.outbox = Outbox(self.db, self.node.id)
        self.tariffs = TariffStore(self.db)
        self.audit = AuditLog(self.db)
        self.refunds = RefundStore(self.db)
        self.users = UserStore(self.db)

    def _join_cluster(self) -> None:
        """This node's chargers, what it knows of the others', and commands to any of them
        (one node on SQLite: nothing to tell, nowhere to relay)."""
        config = self.config
        self.sessions = Sessions()  # the chargers connected to this node
        self.bus: Bus = (
            PgBus(config.database.target, self.node.id)
            if self.db.backend == "postgresql"
            else LocalBus(self.node.id)
        )
        self.view = ClusterView(
            self.bus,
            self.db,
            self.chargers,
            self.sessions,
            clock=self._clock,
            lead=self.node.lead,
            resync=config.cluster.lease,
        )
        local = LocalCommands(self.sessions.get, config.ocpp.call_timeout)
        self.relay = CommandRelay(self.bus, self.view, local)
        self.commands = ChargerCommands(local, self.relay)

    async def _build_payments(self, control: RemoteControl) -> None:
        """The coordinator and the jobs around it: the effect runner, alerts, reconciliation."""
        config = self.config
        self.coordinator = Coordinator(
            self.reservations,
            self.outbox,
            self.audit,
            self.refunds,
            control,
            payment_policy(config),
            # An unpaid reservation frees its connector after the short pending window;
            # never later than Checkout's own expiry, whose webhook would come first.
            payment_window=min(
                config.payments.pending_window,
                config.stripe.checkout_expiry_minutes * 60 + 2 * CHECKOUT_EXPIRY_MARGIN,
            ),
            clock=self._clock,
            observer=self.metrics,
        )
        await self.coordinator.load()
        # Each node's index of active reservations, kept true by the others' news.
        self.coordinator.on_changed(
            lambda entry: self.view.tell({"t": "reservation", **entry.to_json()})
        )
        self.bus.on("reservation", self._reservation_elsewhere)
        self.view.on_resync(self.coordinator.load)
        # Owners' shares: moved by the runner, asked again once an owner is ready.
        self.transfer_service = TransferService(
            TransferStore(self.db), self.coordinator, OwnerStore(self.db)
        )
        self.executor = EffectExecutor(
            self.gateway,
            control,
            self.refunds,
            public_base_url=config.payments.public_base_url,
            checkout_expires_at=self._checkout_expiry,
            transfers=TransferEffects(TransferGateway(self.gateway), OwnerStore(self.db)),
        )
        self.runner = EffectRunner(
            self.outbox,
            self.reservations,
            self.coordinator,
            self.executor,
            retry_base=config.payments.retry_base,
            retry_ceiling=config.payments.retry_ceiling,
            idle_poll=config.payments.tick_interval,
            lead=self.node.lead,
        )
        self.alerts = alert_job(
            config, self.db, self.metrics.registry, self._clock, lead=self.node.lead
        )
        self.reconciler = Reconciler(
            self.gateway,
            self.coordinator,
            self.db,
            interval=config.payments.reconcile_interval,
            window=timedelta(hours=config.payments.reconcile_window_hours),
            observer=self.metrics,
            lead=self.node.lead,
        )
        self.reconciler.sources.append(
            findings_source(TransferGateway(self.gateway), TransferStore(self.db))
        )
        self._build_owners()

    def _build_owners(self) -> None:
        """Owners as Stripe Connect accounts: onboarding, and Connect's webhooks."""
        self.owners = OwnerStore(self.db)
        self.connect = ConnectGateway(self.gateway)
        # An owner who becomes ready is paid the shares that accrued meanwhile.
        self.connect_webhooks = ConnectWebhooks(
            self.db,
            self.owners,
            self.audit,
            self.connect,
            clock=self._clock,
            on_ready=self.transfer_service.on_ready_hook,
            on_transfer=self.transfer_service.webhook,
        )
        self.onboarding = Onboarding(
            self.db,
            self.owners,
            self.audit,
            self.connect,
            self.connect_webhooks,
            public_base_url=lambda: self.executor.public_base_url,
            clock=self._clock,
        )
        self.reconciler.after_run.append(self.onboarding.refresh_unready)
        # Then accrued shares of ready owners asked for again (a readiness hook call lost).
        self.reconciler.after_run.append(self.transfer_service.sweep)
        self.connect_webhooks.observer = self.metrics

    def _build_ocpp(self) -> None:
        """The chargers' endpoint, its messages turned into payment events."""
        settings = self.config.ocpp
        charger_events = ChargerEventsListener(self.coordinator, self.reservations)
        self.refused = RefusedTransactions(
            self.commands, enabled=settings.stop_refused_transactions
        )
        messages = ChargerMessages(
            settings,
            self.chargers,
            self.transactions,
            Authorizer(self.id_tags, [charger_events]),
            self.view,
            events=charger_events,
            vendor_handlers=self._vendor_handlers,
            refused=self.refused,
        )
        rules = PayloadRules(settings.max_connector_id, settings.timestamps_without_zone)
        certificates = CertificateStore(self.db)
        self.certificates = ChargerCertificates(
            self.config.certs,
            Issuer(self.config.certs, certificates, self._clock),
            certificates,
            self.commands,
            self.chargers,
            clock=self._clock,
            lead=self.node.lead,
        )
        self.ocpp = OcppServer(
            self.config,
            self.chargers,
            Dispatcher(
                {
                    **messages.handlers(),
                    **SecurityMessages(self.security).handlers(),
                    **self.certificates.handlers(),
                },
                self.metrics,
                rules,
            ),
            self.sessions,
            self.view,
            events=charger_events,
            db=self.db,
            clock=self._clock,
        )

    def _build_http(
        self, control: RemoteControl, tariff: Tariff, webhook_secrets: list[str]
    ) -> None:
        """The HTTP endpoint: the management API, payments, Stripe's webhooks, the driver's
        pages."""
        config = self.config
        console = make_console(self)
        app = create_app(
            self.db,
            self.sessions.ids,
            [
                console.middleware(),
                api_errors(),
                api_key_required(
                    self.api_keys.verify,
                    open_paths=OPEN_API_PATHS,
                    proxies=config.server.proxies,
                ),
            ],
            self.metrics,
            serve_metrics=config.metrics.address is None,
            metrics_verify=self._metrics_verify(),
        )
        # The sandbox's Checkout page is plain http on another port: forms must reach it.
        checkout = [self.sandbox.base_url] if self.sandbox is not None else []
        app.on_response_prepare.append(security_headers(checkout))
        # The one entry point for money: the API, the driver's pages and the operator routes.
        self.payment_service = Payments(
            self.reservations,
            self.outbox,
            self.tariffs,
            self.audit,
            self.refunds,
            self.coordinator,
            self.runner,
            control,
            tariff,
            time_zone=config.operator.time_zone,
        )
        self.routes = PaymentRoutes(
            self.payment_service,
            WebhookSettings(webhook_secrets, insecure=config.stripe.insecure_webhooks),
            connect=self.connect_webhooks,
        )
        api = build_api(self)
        api.register(app)
        register_docs(app, api)
        self.driver_pages = DriverPages(
            self.payment_service,
            rate_limit=RateLimit(
                self.db,
                config.payments.start_limit_count,
                config.payments.start_limit_window,
                clock=self._clock,
            ),
            trusted_proxies=config.server.proxies,
            enabled=config.payments.enabled,
            operator=operator(config),
        )
        self.driver_pages.register(app)
        OnboardingPages().register(app)
        app.add_routes(console_routes(self, console, self._console_closing))
        self.http = HttpServer(
            app,
            config.server.http_host,
            config.server.http_port,
            shutdown_timeout=min(5.0, config.server.shutdown_timeout),
        )

    def _metrics_verify(self) -> Callable[[str], Awaitable[object | None]] | None:
        return self.api_keys.verify if self.config.metrics.require_api_key else None

    async def _metrics_server(self, listener: startup.Listener) -> HttpServer:
        """`/metrics` on its own address (metrics.listen), started."""
        server = HttpServer(
            metrics_app(self.metrics, self._metrics_verify()), listener.host, listener.port
        )
        await listener.listen(server.start)
        return server

    async def _reservation_elsewhere(self, message: dict[str, Any]) -> None:
        self.coordinator.index.apply(IndexEntry.from_json(message))

    async def _stripe(self) -> tuple[StripeGateway, list[str]]:
        """The real Stripe with a key; without one, the bundled sandbox, started here."""
        stripe = self.config.stripe
        secrets = [s.strip() for s in stripe.webhook_secrets.split(",") if s.strip()]
        options = {"max_network_retries": stripe.max_network_retries, "timeout": stripe.timeout}
        if stripe.api_key:
            gateway = StripeGateway(
                stripe.api_key,
                api_base=stripe.api_base or None,
                observer=self.metrics,
                **options,
            )
            self._opened.push_async_callback(gateway.close)
            return gateway, secrets
        # The sandbox keeps its account beside the database, so a restart loses no payment.
        database = self.config.database.path
        state = f"{database}.stripe-sandbox.db" if database not in ("", ":memory:") else None
        self.sandbox = StripeSandbox(webhook_secret=SANDBOX_WEBHOOK_SECRET, state_path=state)
        sandbox = self.sandbox
        await startup.listeners(self.config)["sandbox"].listen(
            lambda: sandbox.start(host=stripe.sandbox_host, port=stripe.sandbox_port)
        )
        self._opened.push_async_callback(sandbox.stop)
        log.warning(
            "csms.stripe_sandbox",
            message="no stripe.api_key: payments go to the bundled Stripe sandbox, not to Stripe",
            sandbox=self.sandbox.base_url,
        )
        gateway = StripeGateway(
            SANDBOX_API_KEY, api_base=self.sandbox.base_url, observer=self.metrics, **options
        )
        self._opened.push_async_callback(gateway.close)
        return gateway, [SANDBOX_WEBHOOK_SECRET, *secrets]

    def _checkout_expiry(self, r: Reservation) -> datetime:
        # Stripe wants at least 30 minutes from when it receives the request; the margin
        # keeps it so, and fixed from created_at a retried request has the same parameters.
        return r.created_at + timedelta(
            minutes=self.config.stripe.checkout_expiry_minutes, seconds=CHECKOUT_EXPIRY_MARGIN
        )

    async def stop(self) -> None:
        """Stop accepting, close chargers' sockets with 1001 (so they reconnect), let effects
        under way finish within the shutdown timeout, park the rest for the next start."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.server.shutdown_timeout
        self.driver_pages.close()
        self._console_closing.set()
        await self.http.close()
        if self.metrics_http is not None:
            await self.metrics_http.close()
        await self.ocpp.close()
        await self.refused.close()
        await self.reconciler.stop()
        await self.certificates.stop()
        await self.runner.stop(max(0.0, deadline - loop.time()))
        await self.alerts.stop()
        await self.relay.stop()
        await self.view.stop()
        await self.bus.stop()
        await self.gateway.close()
        if self.sandbox is not None:
            await self.sandbox.stop()
        await self.node.leave()
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
    """Run until SIGINT or SIGTERM, then shut down within the configured time."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    limit = raise_open_files_limit()
    system = CentralSystem(config)
    await system.start()  # a failure is its one line on stderr (csms.cli), nothing before it
    log.info("csms.open_files_limit", limit=limit)
    collections = None
    if config.server.gc_freeze_interval:
        # Process-wide, so here rather than in CentralSystem (tests run many in one process).
        collections = asyncio.create_task(
            keep_collections_short(
                config.server.gc_freeze_interval, config.server.gc_full_collection_interval
            )
        )
    await stop.wait()
    if collections is not None:
        collections.cancel()
    log.info("csms.stopping", within=config.server.shutdown_timeout)
    try:
        # Each step is bounded on its own; this bounds them all, in case one hangs.
        async with asyncio.timeout(config.server.shutdown_timeout + 5):
            await system.stop()
    except TimeoutError:
        log.error("csms.shutdown_overran")
