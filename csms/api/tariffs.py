"""Tariffs over the management API: money in integer minor units, every tariff bounded.

A tariff is assigned only to a connector the charger has: connector 0 (all of them), or
one from 1 to the highest connector id the charger is known to have (from its
StatusNotifications and the connector details registered for it); while none is known,
up to `ocpp.max_connector_id`, the highest id a charger may report at all."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field
from pydantic.alias_generators import to_camel

from csms.api.sites import checked_split
from csms.api.transactions import ConnectorId
from csms.store.chargers import ChargerStore, connector_details
from httpapi.errors import ApiError, not_found
from httpapi.models import ApiModel, Page, PageQuery, decode_cursor, encode_cursor
from httpapi.routing import Api
from payments.pricing import Tariff, TariffError, checked_hold_amount, hold_amount
from payments.tariff_store import TariffStore
from storage.clock import utc_now
from storage.db import Row

# Bounded so that the hold, a sum of products of these, stays a 64-bit integer.
_MOST = 1_000_000_000
Amount = Field(default=0, ge=0, le=_MOST, description="Minor units (cents)")
Count = Field(default=0, ge=0, le=_MOST)
Cap = Field(default=None, ge=0, le=_MOST, description="null: no cap")
Limit = Field(default=None, ge=1, le=_MOST, description="null: no limit")


class TariffBand(ApiModel):
    """A price per kWh for a time of day (payments.bands)."""

    name: str = Field(default="", max_length=40, description="Shown on the receipt: Peak")
    start: str = Field(
        max_length=5, description="HH:MM, wall-clock time in the zone of the charger's site"
    )
    end: str = Field(
        max_length=5, description="HH:MM (24:00: midnight); at or before start: the next day"
    )
    days: list[str] = Field(
        default=[], max_length=7, description="Weekdays it starts on, mon to sun; empty: every day"
    )
    price_per_kwh: int = Amount


class TimeWindow(ApiModel):
    """A span of every day in the zone of the charger's site, e.g. 22:00 to 07:00."""

    start: str = Field(max_length=5, description="HH:MM")
    end: str = Field(max_length=5, description="HH:MM (24:00: midnight); before start: next day")


class TariffSettings(ApiModel):
    currency: str = Field(pattern=r"^[A-Za-z]{3}$", description="ISO 4217 code, e.g. eur")
    price_per_kwh: int = Amount
    session_fee: int = Amount
    time_fee_per_minute: int = Amount
    time_fee_free_minutes: int = Count
    time_fee_max_minutes: int | None = Cap
    idle_fee_per_minute: int = Amount
    idle_grace_minutes: int = Count
    idle_fee_max_minutes: int | None = Cap
    max_energy_wh: int | None = Limit
    max_duration_minutes: int | None = Limit
    tax_rate_basis_points: int = Field(
        default=0,
        ge=0,
        le=10000,
        description="VAT included in the prices (gross), in hundredths of a percent: 1900 = 19 %",
    )
    bands: list[TariffBand] = Field(
        default=[],
        max_length=24,
        description="Prices per kWh by time of day, never overlapping; at other times "
        "pricePerKwh applies. The hold counts maxEnergyWh at the highest price.",
    )
    time_fee_excluded: TimeWindow | None = Field(
        default=None, description="No time fee inside this window (null: none)"
    )
    split: dict[str, Any] | None = Field(
        default=None,
        description="How the money of sessions under this tariff is shared with the owner of"
        " the charger's site, overriding the site's split; the same fields as a site's split"
        " (commission_basis_points, fixed_per_kwh, operator_minimum); null: the site's split",
    )

    def tariff(self) -> Tariff:
        """The settings as a Tariff, refused (400 naming the field) unless it bounds the cost
        and Stripe would take its hold (currency, minimum and maximum charge)."""
        settings = self.model_dump(include=set(TariffSettings.model_fields))
        settings["split"] = checked_split(self.split)  # 400 naming split.<its field>
        try:
            tariff = Tariff(**settings)
            checked_hold_amount(tariff)
        except TariffError as error:
            raise ApiError(400, "invalid", error.message, api_field(error.field)) from None
        return tariff


class NewTariff(TariffSettings):
    id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="Goes into URLs: 1 to 64 of A-Z a-z 0-9 . _ -",
    )


class TariffOut(TariffSettings):
    id: str
    hold_amount: int = Field(description="What a session's card hold is: the most it can cost")

    @classmethod
    def of(cls, tariff_id: str, tariff: Tariff) -> TariffOut:
        return cls(id=tariff_id, hold_amount=hold_amount(tariff), **tariff.to_dict())


class TariffPage(Page[TariffOut]):
    pass


class TariffAssignment(ApiModel):
    charger_id: str = Field(min_length=1, max_length=48)
    connector_id: ConnectorId = Field(default=0, description="0: every connector of the charger")


class TariffAssignmentPage(Page[TariffAssignment]):
    pass


class TariffRoutes:
    def __init__(
        self, tariffs: TariffStore, chargers: ChargerStore, max_connector_id: int = 2**31 - 1
    ) -> None:
        self._tariffs = tariffs
        self._chargers = chargers
        self._max_connector_id = max_connector_id

    def register(self, api: Api) -> None:
        tag = "tariffs"
        api.add("GET", "/api/tariffs", self.list_tariffs, summary="List tariffs", tag=tag,
                query=PageQuery, response=TariffPage)  # fmt: skip
        api.add("POST", "/api/tariffs", self.create_tariff, summary="Add a tariff", tag=tag,
                body=NewTariff, response=TariffOut, status=201, errors=(409,))  # fmt: skip
        api.add("GET", "/api/tariffs/{tariffId}", self.get_tariff, summary="One tariff",
                tag=tag, response=TariffOut, errors=(404,))  # fmt: skip
        api.add("PUT", "/api/tariffs/{tariffId}", self.replace_tariff, tag=tag,
                summary="Replace a tariff's settings (sessions already paid keep theirs)",
                body=TariffSettings, response=TariffOut, errors=(404,))  # fmt: skip
        api.add("PUT", "/api/tariffs/{tariffId}/assignments", self.assign_tariff, tag=tag,
                summary="Apply a tariff to a charger or one of its connectors",
                body=TariffAssignment, status=204, errors=(404,),
                description="400 (connectorId) for a connector the charger does not have: above"
                " the highest connector id it is known to have (its StatusNotifications, its"
                " connector details), else above ocpp.max_connector_id")  # fmt: skip
        api.add("GET", "/api/tariffs/{tariffId}/assignments", self.list_assignments, tag=tag,
                summary="Where a tariff applies", query=PageQuery,
                response=TariffAssignmentPage, errors=(404,))  # fmt: skip

    async def list_tariffs(self, request: web.Request, query: PageQuery) -> TariffPage:
        after = str(decode_cursor(query.cursor, 1)[0]) if query.cursor else ""
        # Tariffs are few: one query for all of them, then the page.
        tariffs = [item for item in (await self._tariffs.all()).items() if item[0] > after]
        page = tariffs[: query.limit]
        more = len(tariffs) > query.limit
        return TariffPage(
            items=[TariffOut.of(tariff_id, tariff) for tariff_id, tariff in page],
            next_cursor=encode_cursor(page[-1][0]) if more else None,
        )

    async def create_tariff(self, request: web.Request, body: NewTariff) -> TariffOut:
        tariff = body.tariff()
        if body.id in await self._tariffs.all():
            raise ApiError(409, "exists", f"tariff {body.id} exists", "id")
        await self._tariffs.put(body.id, tariff, utc_now())
        return TariffOut.of(body.id, tariff)

    async def get_tariff(self, request: web.Request) -> TariffOut:
        tariff_id = request.match_info["tariffId"]
        return TariffOut.of(tariff_id, await self._found(tariff_id))

    async def replace_tariff(self, request: web.Request, body: TariffSettings) -> TariffOut:
        tariff_id = request.match_info["tariffId"]
        await self._found(tariff_id)
        tariff = body.tariff()
        await self._tariffs.put(tariff_id, tariff, utc_now())
        return TariffOut.of(tariff_id, tariff)

    async def assign_tariff(self, request: web.Request, body: TariffAssignment) -> web.Response:
        tariff_id = request.match_info["tariffId"]
        await self._found(tariff_id)
        await check_assignment(self._chargers, self._max_connector_id, body)
        await self._tariffs.assign(tariff_id, body.charger_id, body.connector_id)
        return web.Response(status=204)

    async def list_assignments(
        self, request: web.Request, query: PageQuery
    ) -> TariffAssignmentPage:
        tariff_id = request.match_info["tariffId"]
        await self._found(tariff_id)
        after = _assignment_key(query.cursor) if query.cursor else ("", -1)
        rows = await self._tariffs.assignments(tariff_id, after, query.limit + 1)
        page = rows[: query.limit]
        more = len(rows) > query.limit
        return TariffAssignmentPage(
            items=[TariffAssignment(**row) for row in page],
            next_cursor=encode_cursor(page[-1]["charger_id"], page[-1]["connector_id"])
            if more
            else None,
        )

    async def _found(self, tariff_id: str) -> Tariff:
        tariff = (await self._tariffs.all()).get(tariff_id)
        if tariff is None:
            raise not_found("tariff")
        return tariff


async def check_assignment(
    chargers: ChargerStore, max_connector_id: int, body: TariffAssignment
) -> None:
    """A 400 naming chargerId for an unknown charger, connectorId for a connector it does
    not have (rules in the module docstring); the console's assignments are checked here too."""
    charger = await chargers.get(body.charger_id)
    if charger is None:
        raise ApiError(400, "not_found", "no such charger", "chargerId")
    highest = await _highest_connector(chargers, max_connector_id, charger)
    if body.connector_id > highest:
        raise ApiError(
            400,
            "unknown_connector",
            f"{body.charger_id} has no connector {body.connector_id} (0 to {highest})",
            "connectorId",
        )


async def _highest_connector(chargers: ChargerStore, most: int, charger: Row) -> int:
    """The highest connector id the charger is known to have, else the highest allowed."""
    reported = [c.connector_id for c in await chargers.connectors(charger["id"])]
    known = [*reported, *connector_details(charger)]
    return min(max(known), most) if any(known) else most


def api_field(name: str) -> str:
    """A tariff setting's name as the API spells it: bands[1].price_per_kwh ->
    bands[1].pricePerKwh."""
    return ".".join(
        to_camel(head) + (f"[{rest}" if rest else "")
        for head, _, rest in (part.partition("[") for part in name.split("."))
    )


def _assignment_key(cursor: str) -> tuple[str, int]:
    charger_id, connector_id = decode_cursor(cursor, 2)
    if (
        not isinstance(charger_id, str)
        or not isinstance(connector_id, int)
        or isinstance(connector_id, bool)
        or not -(2**63) <= connector_id < 2**63  # what SQLite can compare
    ):
        raise ApiError(400, "invalid", "not a cursor from this API", "cursor")
    return charger_id, connector_id
