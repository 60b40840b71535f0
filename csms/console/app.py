"""The operator console's parts, built from the running system: its frame (`make_console`,
whose middleware goes into the HTTP app) and every page group's routes (`console_routes`).
One line per page group; the pages call the system's services, never each other."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from csms.api.reports import system_reports
from csms.console.audit import AuditPages
from csms.console.chargers import ChargerPages
from csms.console.facts import ConsoleFacts
from csms.console.framework import Console
from csms.console.idtags import IdTagPages
from csms.console.login import LoginPages
from csms.console.logins import Logins
from csms.console.overview import OverviewPages
from csms.console.owners import owner_pages
from csms.console.qr import qr_pages
from csms.console.reports import ReportPages
from csms.console.sessions import SessionPages
from csms.console.sites import site_pages
from csms.console.tariffs import TariffPages
from csms.console.users import UserPages
from csms.ocpp16.auth import FailureThrottle
from csms.roles import Role

if TYPE_CHECKING:
    from csms.app import CentralSystem

STATIC = Path(__file__).parent / "static"


def make_console(system: CentralSystem) -> Console:
    settings = system.config.console
    logins = Logins(system.db, timedelta(hours=settings.session_hours), clock=system.clock)

    async def role_of(name: str) -> Role | None:
        user = await system.users.get(name)
        return None if user is None or user.disabled else user.role

    return Console(logins, role_of, system.config.server.proxies)


def console_routes(
    system: CentralSystem, console: Console, closing: asyncio.Event
) -> list[web.AbstractRouteDef]:
    config = system.config
    facts = ConsoleFacts(
        system.db,
        system.view,
        system.payment_service.held_before_start,
        config.operator.time_zone,
        timedelta(minutes=config.console.offline_alert_minutes),
        clock=system.clock,
    )
    throttle = FailureThrottle(
        system.db, config.console.login_attempts, config.console.login_window,
        clock=system.clock, scope="console_login",
    )  # fmt: skip
    return [
        web.static("/console/static", STATIC),
        *LoginPages(
            console,
            system.users,
            throttle,
            config.server.proxies,
            config.console.session_hours * 3600,
        ).routes(),
        *OverviewPages(console, facts, closing).routes(),
        *TariffPages(console, system.tariffs, system.chargers, config).routes(),
        *ReportPages(console, system_reports(system)).routes(),
        *ChargerPages.of(console, system).routes(),
        *SessionPages(console, system.payment_service, system.transactions).routes(),
        *IdTagPages(console, system.id_tags).routes(),
        *AuditPages(console, system.audit).routes(),
        *qr_pages(console, system).routes(),
        *site_pages(console, system).routes(),
        *owner_pages(console, system).routes(),
        *UserPages(console, system.users, system.api_keys, system.audit).routes(),
    ]
