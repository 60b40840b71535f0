"""The console's tariff pages: the list (the configured default, the stored tariffs and where
they apply), a tariff's page with its form and assignments, and the form's live preview.

- Anyone logged in reads; creating, editing, assigning and removing an assignment need
  admin (checked again in every POST handler, CSRF included, by `Console.form`).
- The form is read by `csms.console.tariff_form`, through the management API's own tariff
  model: the same rules, the same field names. Bad input shows the form again with the
  error naming the field, the typed values kept, and nothing stored.
- An assignment is checked as the API checks it (`csms.api.tariffs.check_assignment`): an
  unknown charger, or a connector the charger does not have, is refused naming the field.
- `POST /console/tariffs/preview` answers the form's inline script with the hold and the
  sample session's price (`tariff_form.preview`) as JSON; it stores nothing.
- Editing keeps the tariff's revenue split (the API's `split`), which the form does not show;
  sessions already paid keep the tariff they were paid under (the store's contract).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from csms.api.tariffs import TariffAssignment, check_assignment
from csms.config import Config
from csms.config_values import default_tariff
from csms.console.admin_forms import in_words
from csms.console.framework import Console
from csms.console.tariff_form import (
    LABELS,
    SAMPLE,
    FormError,
    form_of,
    new_tariff_of,
    preview,
    tariff_of,
)
from csms.store.chargers import ChargerStore
from httpapi.errors import ApiError
from payments.currency import format_money
from payments.pricing import Tariff, hold_amount
from payments.tariff_store import TariffStore
from storage.clock import utc_now

_BLANK = {"currency": "EUR", "sessionFee": "0.00", "pricePerKwh": "0.00", **SAMPLE}


def summary(tariff: Tariff) -> dict[str, Any]:
    """What the list shows of a tariff."""
    money = tariff.currency

    def show(amount: int) -> str:
        return format_money(amount, money)

    return {
        "currency": money.upper(),
        "price_per_kwh": show(tariff.price_per_kwh),
        "session_fee": show(tariff.session_fee),
        "time_fee": show(tariff.time_fee_per_minute) if tariff.time_fee_per_minute else None,
        "idle_fee": show(tariff.idle_fee_per_minute) if tariff.idle_fee_per_minute else None,
        "max_energy_wh": tariff.max_energy_wh,
        "bands": len(tariff.bands),
        "hold": show(hold_amount(tariff)),
    }


class TariffPages:
    def __init__(
        self,
        console: Console,
        tariffs: TariffStore,
        chargers: ChargerStore,
        config: Config,
    ) -> None:
        self.console = console
        self.tariffs = tariffs
        self.chargers = chargers
        self.default = default_tariff(config)  # checked at start-up
        self.max_connector_id = config.ocpp.max_connector_id

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/console/tariffs", self.list),
            web.get("/console/tariffs/new", self.new),
            web.post("/console/tariffs/new", self.create),
            web.post("/console/tariffs/preview", self.preview),
            web.get("/console/tariffs/{tariffId}", self.show),
            web.post("/console/tariffs/{tariffId}", self.edit),
            web.post("/console/tariffs/{tariffId}/assignments", self.assign),
            web.post("/console/tariffs/{tariffId}/assignments/remove", self.unassign),
        ]

    # -- reading

    async def list(self, request: web.Request) -> web.Response:
        stored = await self.tariffs.all()
        rows = [
            {"id": tariff_id, **summary(tariff), "assignments": await self._assignments(tariff_id)}
            for tariff_id, tariff in stored.items()
        ]
        return self.console.render(
            request,
            "tariffs.html",
            title="Tariffs",
            default=summary(self.default),
            tariffs=rows,
        )

    async def new(self, request: web.Request) -> web.Response:
        self.console.require(request, "admin")
        return self._form_page(request, None, dict(_BLANK))

    async def show(self, request: web.Request) -> web.Response:
        tariff_id = request.match_info["tariffId"]
        tariff = (await self.tariffs.all()).get(tariff_id)
        if tariff is None:
            return self.console.problem(request, 404, f"No tariff {tariff_id}")
        return await self._tariff_page(request, tariff_id, tariff, {**form_of(tariff), **SAMPLE})

    # -- writing (admin)

    async def create(self, request: web.Request) -> web.Response:
        form = await self.console.form(request, "admin")
        values = {**SAMPLE, **form}
        try:
            tariff_id, tariff = new_tariff_of(values)
        except FormError as error:
            return self._form_page(request, None, values, error, status=400)
        if tariff_id in await self.tariffs.all():
            error = FormError("id", f"a tariff {tariff_id} exists already")
            return self._form_page(request, None, values, error, status=409)
        await self.tariffs.put(tariff_id, tariff, utc_now())
        raise self.console.see_other(f"/console/tariffs/{tariff_id}", f"Tariff {tariff_id} added")

    async def edit(self, request: web.Request) -> web.Response:
        form = await self.console.form(request, "admin")
        tariff_id = request.match_info["tariffId"]
        current = (await self.tariffs.all()).get(tariff_id)
        if current is None:
            return self.console.problem(request, 404, f"No tariff {tariff_id}")
        values = {**SAMPLE, **form}
        split = current.split.to_dict() if current.split else None
        try:
            tariff = tariff_of(values, split)
        except FormError as error:
            return await self._tariff_page(request, tariff_id, current, values, error, 400)
        await self.tariffs.put(tariff_id, tariff, utc_now())
        raise self.console.see_other(f"/console/tariffs/{tariff_id}", f"Tariff {tariff_id} saved")

    async def assign(self, request: web.Request) -> web.Response:
        form = await self.console.form(request, "admin")
        tariff_id = request.match_info["tariffId"]
        current = (await self.tariffs.all()).get(tariff_id)
        if current is None:
            return self.console.problem(request, 404, f"No tariff {tariff_id}")
        values = {**form_of(current), **SAMPLE}
        fields = {"chargerId": form.get("chargerId", "").strip()}
        fields["connectorId"] = form.get("connectorId", "").strip() or "0"
        try:
            body = TariffAssignment.model_validate(fields)
            await check_assignment(self.chargers, self.max_connector_id, body)
        except ValidationError as invalid:
            first = invalid.errors()[0]
            name = ".".join(str(part) for part in first["loc"])
            error = FormError(name, in_words(first))
            return await self._tariff_page(request, tariff_id, current, values, error, 400, fields)
        except ApiError as refused:
            error = FormError(refused.field or "chargerId", refused.message)
            return await self._tariff_page(request, tariff_id, current, values, error, 400, fields)
        await self.tariffs.assign(tariff_id, body.charger_id, body.connector_id)
        where = _where(body.charger_id, body.connector_id)
        raise self.console.see_other(
            f"/console/tariffs/{tariff_id}", f"Tariff {tariff_id} applies to {where}"
        )

    async def unassign(self, request: web.Request) -> web.Response:
        form = await self.console.form(request, "admin")
        tariff_id = request.match_info["tariffId"]
        charger_id = form.get("chargerId", "")
        connector = form.get("connectorId", "")
        connector_id = int(connector) if connector.isdigit() and len(connector) < 10 else -1
        assigned = await self.tariffs.of_charger(charger_id)
        if assigned.get(connector_id) != tariff_id:
            return self.console.problem(
                request, 404, f"Tariff {tariff_id} is not assigned to {charger_id[:48]}"
            )
        await self.tariffs.unassign(charger_id, connector_id)
        where = _where(charger_id, connector_id)
        raise self.console.see_other(
            f"/console/tariffs/{tariff_id}", f"Tariff {tariff_id} no longer applies to {where}"
        )

    async def preview(self, request: web.Request) -> web.Response:
        form = await self.console.form(request, "viewer")
        return web.json_response(preview(dict(form)))

    # -- pages

    def _form_page(
        self,
        request: web.Request,
        tariff_id: str | None,
        values: Mapping[str, str],
        error: FormError | None = None,
        status: int = 200,
        **context: Any,
    ) -> web.Response:
        title = f"Tariff {tariff_id}" if tariff_id else "New tariff"
        return self.console.render(
            request,
            "tariff.html",
            title=title,
            status=status,
            tariff_id=tariff_id,
            values=values,
            error=error,
            preview=preview(values),
            labels=LABELS,
            **context,
        )

    async def _tariff_page(
        self,
        request: web.Request,
        tariff_id: str,
        tariff: Tariff,
        values: Mapping[str, str],
        error: FormError | None = None,
        status: int = 200,
        assignment: Mapping[str, str] | None = None,
    ) -> web.Response:
        chargers = [row["id"] for row in await self.chargers.list()]
        return self._form_page(
            request,
            tariff_id,
            values,
            error,
            status,
            summary=summary(tariff),
            split=tariff.split.to_dict() if tariff.split else None,
            assignments=await self._assignments(tariff_id),
            assignment=assignment or {},
            chargers=chargers,
        )

    async def _assignments(self, tariff_id: str) -> list[dict[str, Any]]:
        return [
            {**row, "where": _where(row["charger_id"], row["connector_id"])}
            for row in await self.tariffs.assignments(tariff_id)
        ]


def _where(charger_id: str, connector_id: int) -> str:
    return charger_id if connector_id == 0 else f"{charger_id} connector {connector_id}"
