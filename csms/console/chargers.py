"""The console's charger pages: the list, one charger's page, and a form per OCPP operation.

- `/console/chargers`: every charger with its live status, searched by id, name or location
  and filtered by online, connector status and site; support registers a charger there.
- `/console/chargers/{id}`: its connectors (Reserved while a paid session holds one before
  its charge begins, as the management API reports it), what it said at boot, its status
  history, its recent transactions (linked to their paid session), its configuration read
  on demand with GetConfiguration, and its registration settings.
- `/console/chargers/{id}/commands/{action}`: the form of one of OCPP 1.6's 19 operations,
  built from its schema (csms.console.ocpp_forms), sent through the command layer
  (`ChargerCommands`, as `POST /api/chargers/{id}/commands/{action}` is) and its typed
  result shown: the charger's answer, its CALLERROR, offline or no answer in time.

Registration and settings go through `ChargerSettings`, the management API's rules: one
set of checks, a refusal naming the field and changing nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web
from pydantic import ValidationError

from csms.api.chargers import (
    ChargerChange,
    ChargerSettings,
    ConnectorOut,
    HeldBeforeStart,
    NewCharger,
)
from csms.cluster.view import ClusterView
from csms.console.framework import Console
from csms.console.ocpp_forms import OPERATIONS, Invalid, OperationForm, form_for, parse
from csms.ocpp16.auth import security_profile
from csms.ocpp16.commands import (
    Answered,
    ChargerCommands,
    CommandResult,
    Failed,
    InvalidCommand,
    Offline,
)
from csms.roles import allows
from csms.store.chargers import ChargerStore
from csms.store.sites import SiteStore
from csms.store.transactions import TransactionFilter, TransactionStore
from httpapi.errors import ApiError
from payments.service import Payments
from payments.tariff_store import TariffStore
from storage.db import Row

if TYPE_CHECKING:
    from csms.app import CentralSystem

log = structlog.get_logger()

SECURITY_PROFILES = {
    0: "0: no password",
    1: "1: password (ws:// or wss://)",
    2: "2: password over TLS (wss:// only)",
    3: "3: client certificate (wss://)",
}
CONNECTOR_STATUSES = (
    "Available", "Preparing", "Charging", "SuspendedEVSE", "SuspendedEV", "Finishing",
    "Reserved", "Unavailable", "Faulted",
)  # fmt: skip
HISTORY_ROWS = 50
RECENT_TRANSACTIONS = 20


@dataclass(frozen=True)
class Outcome:
    """A command's typed result, as the page shows it."""

    kind: str  # Answered, CALLERROR, Offline, Timeout
    status: str  # the answer's status (Accepted, Rejected, ...) or the kind
    message: str
    payload: dict[str, Any] | None = None

    @property
    def payload_json(self) -> str:
        return json.dumps(self.payload, indent=2) if self.payload is not None else ""

    @classmethod
    def of(cls, charger_id: str, result: CommandResult) -> Outcome:
        match result:
            case Answered(payload):
                status = payload.get("status")
                return cls(
                    "Answered",
                    status if isinstance(status, str) else "Answered",
                    f"{charger_id} answered",
                    payload,
                )
            case Failed(code, description, details):
                return cls(
                    "CALLERROR",
                    code,
                    f"{charger_id} refused the call: {code}: {description or 'no description'}",
                    details or None,
                )
            case Offline():
                return cls("Offline", "offline", f"{charger_id} is offline: {result.description}")
        return cls(
            "Timeout", "Timeout", f"{charger_id} did not answer in time: the outcome is unknown"
        )


@dataclass(frozen=True)
class ChargerServices:
    """What the charger pages read and change, each through its own store or service."""

    chargers: ChargerStore
    settings: ChargerSettings
    commands: ChargerCommands
    connections: ClusterView
    transactions: TransactionStore
    sites: SiteStore
    tariffs: TariffStore
    payments: Payments
    held_before_start: HeldBeforeStart


class ChargerPages:
    def __init__(self, console: Console, services: ChargerServices) -> None:
        self._console = console
        self._s = services

    @classmethod
    def of(cls, console: Console, system: CentralSystem) -> ChargerPages:
        settings = ChargerSettings(
            system.chargers, system.tariffs, system.config.ocpp.max_connector_id, system.sites
        )
        return cls(
            console,
            ChargerServices(
                system.chargers, settings, system.commands, system.view, system.transactions,
                system.sites, system.tariffs, system.payment_service,
                system.payment_service.held_before_start,
            ),
        )  # fmt: skip

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/console/chargers", self.index),
            web.post("/console/chargers", self.register),
            web.get("/console/chargers/{id}", self.charger),
            web.post("/console/chargers/{id}/settings", self.change),
            web.post("/console/chargers/{id}/configuration", self.configuration),
            web.get("/console/chargers/{id}/commands/{action}", self.command_form),
            web.post("/console/chargers/{id}/commands/{action}", self.send_command),
        ]

    # The list

    async def index(self, request: web.Request) -> web.Response:
        return await self._list(request)

    async def _list(
        self,
        request: web.Request,
        *,
        errors: Mapping[str, str] | None = None,
        entered: Mapping[str, str] | None = None,
        status: int = 200,
    ) -> web.Response:
        query = request.query
        search = query.get("q", "").strip()
        online, connector_status, site = (query.get(k, "") for k in ("online", "status", "site"))
        connected = self._s.connections.holders()
        rows = await self._s.chargers.find(
            site_id=site or None,
            only_ids=connected.keys() if online == "online" else None,
            except_ids=connected.keys() if online == "offline" else None,
        )
        if search:
            rows = [row for row in rows if _matches(row, search.casefold())]
        ids = [row["id"] for row in rows]
        connectors = await self._s.chargers.connectors_of(ids)
        holds = await self._s.held_before_start(ids) if ids else {}
        items = []
        for row in rows:
            shown = [
                ConnectorOut.of(c, holds.get((row["id"], c.connector_id)))
                for c in connectors[row["id"]]
                if c.connector_id > 0
            ]
            if connector_status and not any(c.status == connector_status for c in shown):
                continue
            items.append({"row": row, "online": row["id"] in connected, "connectors": shown})
        return self._console.render(
            request,
            "chargers.html",
            title="Chargers",
            status=status,
            items=items,
            search=search,
            online=online,
            connector_status=connector_status,
            site=site,
            statuses=CONNECTOR_STATUSES,
            sites=await self._s.sites.find(),
            profiles=SECURITY_PROFILES,
            errors=errors or {},
            entered=entered or {},
        )

    async def register(self, request: web.Request) -> web.Response:
        form = await self._console.form(request, "support")
        entered = {k: form.get(k, "").strip() for k in ("id", "name", "location", "site")}
        entered["securityProfile"] = form.get("securityProfile", "")
        try:
            body = NewCharger.model_validate(
                {
                    "id": entered["id"],
                    "name": entered["name"] or None,
                    "location": entered["location"] or None,
                }
            )
            settings = _change(
                {"siteId": entered["site"] or None},
                password=form.get("password", ""),
                profile=entered["securityProfile"],
            )
            await self._s.settings.register(body, settings)
        except ValidationError as error:
            return await self._list(
                request, errors=_model_errors(error), entered=entered, status=400
            )
        except ApiError as error:
            field = _form_field(error.field)
            status = 409 if error.status == 409 else 400
            return await self._list(
                request, errors={field: error.message}, entered=entered, status=status
            )
        actor = self._console.user(request).actor
        log.info("console.charger_registered", charger_id=body.id, actor=actor)
        raise self._console.see_other(
            f"/console/chargers/{body.id}", f"Charger {body.id} registered"
        )

    # One charger

    async def charger(self, request: web.Request) -> web.Response:
        row = await self._s.chargers.get(request.match_info["id"])
        if row is None:
            return self._unknown(request)
        return await self._page(request, row)

    async def _page(
        self,
        request: web.Request,
        row: Row,
        *,
        configuration: Mapping[str, Any] | None = None,
        errors: Mapping[str, str] | None = None,
        status: int = 200,
    ) -> web.Response:
        charger_id = row["id"]
        connectors = await self._s.chargers.connectors(charger_id)
        holds = await self._s.held_before_start([charger_id])
        tariffs = await self._s.tariffs.of_charger(charger_id)
        return self._console.render(
            request,
            "charger.html",
            title=f"Charger {charger_id}",
            status=status,
            charger=row,
            node=self._s.connections.holder(charger_id),
            security_profile=security_profile(row),
            connectors=[ConnectorOut.of(c, holds.get((charger_id, c.connector_id)))
                        for c in connectors],
            history=await self._s.chargers.recent_status_history(charger_id, HISTORY_ROWS),
            transactions=await self._transactions(charger_id),
            configuration=configuration,
            operations=OPERATIONS,
            sites=await self._s.sites.find(),
            tariff_ids=sorted(await self._s.tariffs.all()),
            tariff=tariffs.get(0, ""),
            profiles=SECURITY_PROFILES,
            errors=errors or {},
        )  # fmt: skip

    async def _transactions(self, charger_id: str) -> list[dict[str, Any]]:
        """Its recent transactions, each with the paid session it belongs to (if any)."""
        found = await self._s.transactions.find(
            TransactionFilter(charger_id=charger_id), limit=RECENT_TRANSACTIONS
        )
        paid = await self._s.payments.page(
            state=None, charger_id=charger_id, since=None, until=None, before=None, limit=200
        )
        sessions = {r.transaction_id: r.id for r in paid if r.transaction_id is not None}
        return [{"row": row, "session": sessions.get(row["id"])} for row in found]

    async def change(self, request: web.Request) -> web.Response:
        row = await self._s.chargers.get(request.match_info["id"])
        if row is None:
            return self._unknown(request)
        user = self._console.user(request)
        form = await self._console.form(request, "support")
        fields: dict[str, Any] = {
            "name": form.get("name", "").strip() or None,
            "location": form.get("location", "").strip() or None,
            "siteId": form.get("site", "").strip() or None,
        }
        if "tariff" in form:
            if not allows(user.role, "admin"):  # the tariff is the admin's, as on /console/tariffs
                return self._console.problem(request, 403, "Assigning a tariff needs admin")
            fields["tariffId"] = form["tariff"] or None
        try:
            change = _change(
                fields,
                password=form.get("password", ""),
                profile=form.get("securityProfile", ""),
            )
            await self._s.settings.change(row, change)
        except ValidationError as error:
            return await self._page(request, row, errors=_model_errors(error), status=400)
        except ApiError as error:
            errors = {_form_field(error.field): error.message}
            return await self._page(request, row, errors=errors, status=400)
        log.info("console.charger_changed", charger_id=row["id"], actor=user.actor)
        raise self._console.see_other(f"/console/chargers/{row['id']}", "Settings saved")

    async def configuration(self, request: web.Request) -> web.Response:
        """GetConfiguration now, its keys shown on the charger's page."""
        row = await self._s.chargers.get(request.match_info["id"])
        if row is None:
            return self._unknown(request)
        await self._console.form(request, "support")
        result = await self._s.commands.send(row["id"], "GetConfiguration", {})
        outcome = Outcome.of(row["id"], result)
        keys = outcome.payload.get("configurationKey", []) if outcome.kind == "Answered" else []
        unknown = outcome.payload.get("unknownKey", []) if outcome.kind == "Answered" else []
        shown = {"outcome": outcome, "keys": keys or [], "unknown": unknown or []}
        return await self._page(request, row, configuration=shown)

    # Commands

    async def command_form(self, request: web.Request) -> web.Response:
        found = await self._command(request)
        if isinstance(found, web.Response):
            return found
        row, form = found
        filled = {f.name: request.query[f.name] for f in form.fields if f.name in request.query}
        return self._command_page(request, row, form, filled)

    async def send_command(self, request: web.Request) -> web.Response:
        found = await self._command(request)
        if isinstance(found, web.Response):
            return found
        row, form = found
        submitted = await self._console.form(request, "support")
        filled = {f.name: submitted.get(f.name, "") for f in form.fields}
        parsed = parse(form, submitted)
        if isinstance(parsed, Invalid):
            return self._command_page(request, row, form, filled, errors=parsed.errors, status=400)
        try:
            result = await self._s.commands.send(row["id"], form.action, parsed.payload)
        except InvalidCommand as invalid:
            where = (invalid.field or "").split(".")[0]
            name = where if form.field(where) is not None else "payload"
            errors = {name: str(invalid)}
            return self._command_page(request, row, form, filled, errors=errors, status=400)
        outcome = Outcome.of(row["id"], result)
        log.info(
            "console.command_sent", charger_id=row["id"], action=form.action,
            outcome=outcome.kind, status=outcome.status, actor=self._console.user(request).actor,
        )  # fmt: skip
        return self._command_page(request, row, form, filled, outcome=outcome)

    async def _command(self, request: web.Request) -> tuple[Row, OperationForm] | web.Response:
        action = request.match_info["action"]
        form = form_for(action)
        if form is None:
            return self._console.problem(request, 404, f"{action} is not an OCPP 1.6 operation")
        row = await self._s.chargers.get(request.match_info["id"])
        if row is None:
            return self._unknown(request)
        return row, form

    def _command_page(
        self,
        request: web.Request,
        row: Row,
        form: OperationForm,
        filled: Mapping[str, str],
        *,
        errors: Mapping[str, str] | None = None,
        outcome: Outcome | None = None,
        status: int = 200,
    ) -> web.Response:
        return self._console.render(
            request,
            "command.html",
            title=f"{form.action} to {row['id']}",
            status=status,
            charger=row,
            online=self._s.commands.is_online(row["id"]),
            form=form,
            filled=filled,
            errors=errors or {},
            outcome=outcome,
        )

    def _unknown(self, request: web.Request) -> web.Response:
        return self._console.problem(
            request, 404, f"No charger {request.match_info['id']} is registered"
        )


def _matches(row: Row, needle: str) -> bool:
    return any(needle in (row[column] or "").casefold() for column in ("id", "name", "location"))


def _change(fields: dict[str, Any], *, password: str, profile: str) -> ChargerChange:
    """The settings a form gives, as the API's model: a blank password keeps the one set,
    a blank profile lets the password decide (1 with one, else unchanged)."""
    if password:
        fields["password"] = password
    if profile:
        fields["securityProfile"] = int(profile) if profile.isdigit() else profile
    return ChargerChange.model_validate(fields)


def _model_errors(error: ValidationError) -> dict[str, str]:
    """The first problem of each field of a refused model, by form field."""
    errors: dict[str, str] = {}
    for problem in error.errors():
        where = str(problem["loc"][0]) if problem["loc"] else "form"
        errors.setdefault(_form_field(where), problem["msg"])
    return errors


def _form_field(api_field: str | None) -> str:
    """The API's field name (camelCase) as the form names it."""
    if api_field is None:
        return "form"
    return {"siteId": "site", "tariffId": "tariff"}.get(api_field, api_field)
