"""The management API: every resource's routes, gathered into one `Api` (and its document)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from csms.api.audit import AuditRoutes
from csms.api.chargers import ChargerRoutes
from csms.api.cluster import ClusterRoutes
from csms.api.commands import CommandRoutes
from csms.api.id_tags import IdTagRoutes
from csms.api.reports import ReportRoutes, system_reports
from csms.api.security import SecurityRoutes
from csms.api.sites import SiteRoutes
from csms.api.tariffs import TariffRoutes
from csms.api.transactions import TransactionRoutes
from csms.api.users import UserRoutes
from csms.config_values import operator
from httpapi.routing import Api
from payments.admin import PaymentAdminRoutes
from payments.alerts_http import AlertRoutes
from payments.owners_http import OwnerRoutes
from payments.reconcile_http import ReconcileRoutes
from payments.reviews_http import ReviewRoutes
from payments.statements_http import StatementRoutes
from payments.statements_store import StatementBook
from payments.transfers_http import OwnerTransferRoutes

if TYPE_CHECKING:
    from csms.app import CentralSystem

DESCRIPTION = (
    "Manage chargers, id tags, tariffs, transactions and payments of an OCPP 1.6J central "
    "system, and send OCPP commands to connected chargers. Every route needs the X-API-Key "
    "header, and the role its x-role names (viewer, support, finance or admin: the key's "
    "user's); a key without it gets 403 naming the role. Errors are {error: {code, message, "
    "field?}} everywhere; on /api/payments they "
    "also keep the {status, ...} keys that payment front-ends expect (the error object's "
    "code is that status in snake case)."
)


def build_api(system: CentralSystem) -> Api:
    api = Api("csms", "1.0", DESCRIPTION)
    IdTagRoutes(system.id_tags).register(api)
    ChargerRoutes(
        system.chargers,
        system.transactions,
        system.reservations,
        system.tariffs,
        system.view,
        system.config.ocpp.max_connector_id,
        system.sites,
        system.payment_service.held_before_start,
    ).register(api)
    SiteRoutes(system.sites, owner_exists=system.owners.exists).register(api)
    TariffRoutes(system.tariffs, system.chargers, system.config.ocpp.max_connector_id).register(api)
    TransactionRoutes(system.transactions).register(api)
    CommandRoutes(system.commands, system.chargers).register(api)
    SecurityRoutes(system.security, system.chargers).register(api)
    system.routes.register_api(api)
    PaymentAdminRoutes(system.payment_service).register(api)
    ReviewRoutes(system.payment_service).register(api)
    OwnerTransferRoutes(system.payment_service, system.coordinator.handle, system.owners).register(
        api
    )
    AlertRoutes(system.alerts).register(api)
    ReconcileRoutes(system.reconciler).register(api)
    OwnerRoutes(system.onboarding).register(api)
    statement_routes(system).register(api)
    AuditRoutes(system.audit).register(api)
    ReportRoutes(system_reports(system)).register(api)
    ClusterRoutes(system.node, system.view, system.db.backend).register(api)
    UserRoutes(system.users, system.api_keys, system.audit).register(api)
    return api


def statement_routes(system: CentralSystem) -> StatementRoutes:
    """Owners' monthly statements, in the operator's time zone, naming the operator."""
    settings = operator(system.config)
    book = StatementBook(
        system.db, system.onboarding.owners, system.payment_service.charger_info,
        settings.time_zone,
    )  # fmt: skip
    return StatementRoutes(book, settings)
