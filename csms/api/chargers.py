"""Chargers over the management API: registration, what they report, whether they are online.

A connector held by a paid session that has not begun charging (its payment pending or
authorised, waiting for the plug or the start) is reported as OCPP's `Reserved`, with the
reservation's id, where the charger itself reports it `Available`: no driver but that one
may use it. The holds are read from the payments service, as the driver's pages read them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Literal, cast, get_args

from aiohttp import web
from pydantic import Field, field_validator

from csms.api.transactions import TransactionOut
from csms.cluster.view import ClusterView
from csms.ocpp16.auth import (
    PASSWORD_PATTERN,
    PROFILE_BASIC,
    PROFILE_NONE,
    PROFILE_TLS_CERTIFICATE,
    hash_password,
    security_profile,
)
from csms.ocpp16.handshake import CHARGE_POINT_ID_RULE, charge_point_id_from_path
from csms.store.chargers import ChargerStore, ConnectorStatus, connector_details
from csms.store.sites import SiteStore
from csms.store.transactions import TransactionFilter, TransactionStore
from httpapi.errors import ApiError, not_found
from httpapi.models import ApiModel, Page, PageQuery, decode_cursor, encode_cursor
from httpapi.routing import Api
from payments.reservations_store import ReservationStore
from payments.tariff_store import TariffStore
from payments.web.operator import known_time_zone
from storage.db import Conflict, Row

RegistrationStatus = Literal["Accepted", "Pending", "Rejected"]
# Plug types a connector may be registered with: the connector standards of IEC 62196-2
# (Type1, Type2), IEC 62196-3 (CCS1, CCS2, CHAdeMO) and GB/T 20234, plus a domestic socket
# (Schuko, CEE 7/3), Tesla's own, and Other. OCPP 1.6 does not report a plug type.
PlugType = Literal["Type1", "Type2", "CCS1", "CCS2", "CHAdeMO", "GB/T", "Schuko", "Tesla", "Other"]
PLUG_TYPES: tuple[str, ...] = get_args(PlugType)
Label = Field(default=None, min_length=1, max_length=200)
# (charger, connector) -> the reservation holding it before its charge began.
Holds = dict[tuple[str, int], str]
HeldBeforeStart = Callable[[list[str]], Awaitable[Holds]]


class ConnectorOut(ApiModel):
    connector_id: int = Field(description="0 is the charger as a whole")
    status: str = Field(
        description="The latest reported status; Reserved where the charger reports Available"
        " and a paid session not yet charging holds the connector"
    )
    reported_status: str = Field(description="The status as the charger last reported it")
    reservation_id: str | None = Field(
        default=None,
        description="The paid session holding it before its charge began (payment pending,"
        " authorised, waiting for the plug or the start); null: none",
    )
    error_code: str
    status_at: str

    @classmethod
    def of(cls, connector: ConnectorStatus, held_by: str | None = None) -> ConnectorOut:
        reserved = held_by is not None and connector.status == "Available"
        return cls(
            connector_id=connector.connector_id,
            status="Reserved" if reserved else connector.status,
            reported_status=connector.status,
            reservation_id=held_by,
            error_code=connector.error_code,
            status_at=connector.status_at,
        )


class ConnectorDetails(ApiModel):
    plug_type: PlugType
    max_power_kw: float = Field(gt=0, le=1000, description="Maximum power in kW, e.g. 7.4")


class ChargerOut(ApiModel):
    id: str
    name: str | None
    location: str | None
    registration_status: RegistrationStatus
    online: bool = Field(description="Connected right now")
    node: str | None = Field(
        description="The node its connection is on (one of several behind a load balancer);"
        " null while offline"
    )
    last_seen_at: str | None
    last_boot_at: str | None
    vendor: str | None
    model: str | None
    firmware_version: str | None
    time_zone: str | None = Field(
        default=None,
        description="IANA time zone of its receipts; null: its site's, else the operator's",
    )
    site_id: str | None = Field(default=None, description="The site it belongs to; null: none")
    connectors: list[ConnectorOut] = Field(description="Each one's latest reported status")

    @classmethod
    def of(
        cls,
        row: Row,
        node: str | None,
        connectors: list[ConnectorStatus],
        holds: Holds | None = None,
    ) -> ChargerOut:
        held = holds or {}
        return cls(
            id=row["id"],
            name=row["name"],
            location=row["location"],
            registration_status=row["registration_status"],
            online=node is not None,
            node=node,
            last_seen_at=row["last_seen_at"],
            last_boot_at=row["last_boot_at"],
            vendor=row["vendor"],
            model=row["model"],
            time_zone=row["time_zone"],
            site_id=row["site_id"],
            firmware_version=row["firmware_version"],
            connectors=[
                ConnectorOut.of(c, held.get((row["id"], c.connector_id))) for c in connectors
            ],
        )


class ChargerPage(Page[ChargerOut]):
    pass


class ChargerTariff(ApiModel):
    connector_id: int = Field(description="0: every connector without its own tariff")
    tariff_id: str


class ChargerDetail(ChargerOut):
    security_profile: int = Field(
        description="OCPP 1.6 security profile, from the charger's next connection: 0 none,"
        " 1 password, 2 password over TLS, 3 client certificate"
    )
    serial_number: str | None
    charge_box_serial_number: str | None
    iccid: str | None
    imsi: str | None
    meter_type: str | None
    meter_serial_number: str | None
    connected_at: str | None
    disconnected_at: str | None
    diagnostics_status: str | None
    diagnostics_status_at: str | None
    firmware_status: str | None
    firmware_status_at: str | None
    signed_firmware_status: str | None = Field(
        description="The latest SignedFirmwareStatusNotification (security extension)"
    )
    signed_firmware_request_id: int | None
    signed_firmware_status_at: str | None
    log_status: str | None = Field(description="The latest LogStatusNotification")
    log_request_id: int | None
    log_status_at: str | None
    tariff_assignments: list[ChargerTariff] = Field(
        description="Empty: the default tariff applies everywhere"
    )
    open_transactions: list[TransactionOut]
    connector_details: dict[str, ConnectorDetails] = Field(
        description="Plug type and maximum power by connector id, as the operator entered"
        " them (OCPP 1.6 does not report them); the driver's start page shows them"
    )


class ChargerQuery(PageQuery):
    online: bool | None = Field(default=None, description="Connected right now, or not")
    registration_status: RegistrationStatus | None = None
    site_id: str | None = Field(default=None, max_length=64, description="Only this site's")


class NewCharger(ApiModel):
    id: str = Field(description=CHARGE_POINT_ID_RULE)
    name: str | None = Label
    location: str | None = Label
    registration_status: RegistrationStatus = "Accepted"

    @field_validator("id")
    @classmethod
    def _connectable(cls, charger_id: str) -> str:
        # The rule the WebSocket endpoint applies, so that a registered charger can connect.
        if charge_point_id_from_path(f"/x/{charger_id}", "/x") != charger_id:
            raise ValueError(CHARGE_POINT_ID_RULE)
        return charger_id


class ChargerChange(ApiModel):
    name: str | None = Label
    location: str | None = Label
    time_zone: str | None = Field(
        default=None,
        max_length=64,
        description="IANA time zone its receipts give times in, e.g. Europe/Berlin;"
        " null: its site's, else the operator's (operator.time_zone)",
    )
    registration_status: RegistrationStatus | None = None
    site_id: str | None = Field(
        default=None,
        max_length=64,
        description="The site it belongs to (its time zone and support contact apply unless"
        " the charger has its own zone); null: none",
    )
    tariff_id: str | None = Field(
        default=None, min_length=1, description="For every connector; null: the default tariff"
    )
    password: str | None = Field(
        default=None,
        min_length=16,
        max_length=40,
        pattern=PASSWORD_PATTERN,
        description="HTTP Basic auth password (AuthorizationKey), 16 to 40 printable ASCII"
        " characters; stored hashed, never returned. Without securityProfile: profile 1, or"
        " the charger's profile 2. From the charger's next connection",
        json_schema_extra={"writeOnly": True},
    )
    security_profile: Literal[0, 1, 2, 3] | None = Field(
        default=None,
        description="0: no password (removes it), 1: password over ws:// or wss://,"
        " 2: password over wss:// only, 3: a client certificate from the operator CA over"
        " wss:// (no password). 1 and 2 need a password set now or before",
    )
    connectors: dict[str, ConnectorDetails | None] | None = Field(
        default=None,
        description="Plug type and maximum power by connector id (1 to ocpp.max_connector_id),"
        ' e.g. {"1": {"plugType": "Type2", "maxPowerKw": 22}}; a connector given null loses'
        " its details, one not named keeps them",
    )


class ChargerRoutes:
    def __init__(
        self,
        chargers: ChargerStore,
        transactions: TransactionStore,
        reservations: ReservationStore,
        tariffs: TariffStore,
        connections: ClusterView,
        max_connector_id: int,
        sites: SiteStore,
        held_before_start: HeldBeforeStart,
    ) -> None:
        self._held_before_start = held_before_start
        self._max_connector_id = max_connector_id
        self._sites = sites
        self._chargers = chargers
        self._transactions = transactions
        self._reservations = reservations
        self._tariffs = tariffs
        self._connections = connections
        self._settings = ChargerSettings(chargers, tariffs, max_connector_id, sites)

    def register(self, api: Api) -> None:
        tag = "chargers"
        api.add("GET", "/api/chargers", self.list_chargers, summary="List chargers", tag=tag,
                query=ChargerQuery, response=ChargerPage)  # fmt: skip
        api.add("POST", "/api/chargers", self.create_charger, tag=tag, role="support",
                summary="Register a charger so that it may connect", body=NewCharger,
                response=ChargerDetail, status=201, errors=(409,))  # fmt: skip
        api.add("GET", "/api/chargers/{chargerId}", self.get_charger, tag=tag,
                summary="One charger: what it reported, its tariffs, its open transactions",
                response=ChargerDetail, errors=(404,))  # fmt: skip
        api.add("PATCH", "/api/chargers/{chargerId}", self.update_charger, tag=tag, role="support",
                summary="Change a charger's name, location, site, status, tariff or connectors",
                body=ChargerChange, response=ChargerDetail, errors=(404,))  # fmt: skip
        api.add("DELETE", "/api/chargers/{chargerId}", self.delete_charger, tag=tag, role="support",
                summary="Remove a charger that has never charged (it is disconnected)",
                status=204, errors=(404, 409))  # fmt: skip

    async def list_chargers(self, request: web.Request, query: ChargerQuery) -> ChargerPage:
        after = str(decode_cursor(query.cursor, 1)[0]) if query.cursor else ""
        # Online means connected to a node of the cluster now; the database flag may lag
        # behind it. One snapshot serves the filter and the answer, so that the two agree.
        connected = self._connections.holders()
        rows = await self._chargers.find(
            after,
            query.limit + 1,
            registration_status=query.registration_status,
            site_id=query.site_id,
            only_ids=connected.keys() if query.online is True else None,
            except_ids=connected.keys() if query.online is False else None,
        )
        page = rows[: query.limit]
        more = len(rows) > query.limit
        ids = [row["id"] for row in page]
        connectors = await self._chargers.connectors_of(ids)
        holds = await self._holds(ids)
        return ChargerPage(
            items=[
                ChargerOut.of(row, connected.get(row["id"]), connectors[row["id"]], holds)
                for row in page
            ],
            next_cursor=encode_cursor(page[-1]["id"]) if more else None,
        )

    async def create_charger(self, request: web.Request, body: NewCharger) -> ChargerDetail:
        await self._settings.register(body)
        return await self._detail(body.id)

    async def get_charger(self, request: web.Request) -> ChargerDetail:
        return await self._detail(request.match_info["chargerId"])

    async def update_charger(self, request: web.Request, body: ChargerChange) -> ChargerDetail:
        current = await self._found(request.match_info["chargerId"])
        await self._settings.change(current, body)
        return await self._detail(current["id"])

    async def delete_charger(self, request: web.Request) -> web.Response:
        charger_id = (await self._found(request.match_info["chargerId"]))["id"]
        open_transactions = TransactionFilter(charger_id=charger_id, open=True)
        if await self._transactions.find(open_transactions, limit=1):
            raise ApiError(409, "charging", f"{charger_id} has a transaction in progress")
        if await self._reservations.active_connectors(charger_id):
            raise ApiError(409, "paid_session", f"{charger_id} has a paid session in progress")
        try:
            deleted = await self._chargers.delete(charger_id)
        except Conflict:
            raise ApiError(
                409, "has_transactions", f"{charger_id} has transactions, kept for billing"
            ) from None
        if not deleted:
            raise not_found("charger")
        await self._tariffs.unassign(charger_id)
        # A charger that no longer exists may not stay connected as if it did.
        await self._connections.close(charger_id, "charger removed")
        return web.Response(status=204)

    async def _detail(self, charger_id: str) -> ChargerDetail:
        row = await self._found(charger_id)
        connectors = await self._chargers.connectors(charger_id)
        tariffs = await self._tariffs.of_charger(charger_id)
        open_transactions = await self._transactions.find(
            TransactionFilter(charger_id=charger_id, open=True)
        )
        node = self._connections.holder(charger_id)
        holds = await self._holds([charger_id])
        return ChargerDetail(
            **ChargerOut.of(row, node, connectors, holds).model_dump(),
            security_profile=security_profile(row),
            serial_number=row["serial_number"],
            charge_box_serial_number=row["charge_box_serial_number"],
            iccid=row["iccid"],
            imsi=row["imsi"],
            meter_type=row["meter_type"],
            meter_serial_number=row["meter_serial_number"],
            connected_at=row["connected_at"],
            disconnected_at=row["disconnected_at"],
            diagnostics_status=row["diagnostics_status"],
            diagnostics_status_at=row["diagnostics_status_at"],
            firmware_status=row["firmware_status"],
            firmware_status_at=row["firmware_status_at"],
            signed_firmware_status=row["signed_firmware_status"],
            signed_firmware_request_id=row["signed_firmware_request_id"],
            signed_firmware_status_at=row["signed_firmware_status_at"],
            log_status=row["log_status"],
            log_request_id=row["log_request_id"],
            log_status_at=row["log_status_at"],
            tariff_assignments=[
                ChargerTariff(connector_id=connector_id, tariff_id=tariff_id)
                for connector_id, tariff_id in tariffs.items()
            ],
            open_transactions=[TransactionOut.of(t) for t in open_transactions],
            connector_details={
                str(number): ConnectorDetails.model_validate(entry)
                for number, entry in connector_details(row).items()
            },
        )

    async def _holds(self, charger_ids: list[str]) -> Holds:
        if not charger_ids:
            return {}
        return await self._held_before_start(charger_ids)

    async def _found(self, charger_id: str) -> Row:
        row = await self._chargers.get(charger_id)
        if row is None:
            raise not_found("charger")
        return row


class ChargerSettings:
    """Registering chargers and changing their settings, for the management API and the
    operator console alike: one set of rules, each refusal an ApiError naming the field,
    checked before anything is written so that a refused request changes nothing."""

    def __init__(
        self,
        chargers: ChargerStore,
        tariffs: TariffStore,
        max_connector_id: int,
        sites: SiteStore,
    ) -> None:
        self._chargers = chargers
        self._tariffs = tariffs
        self._max_connector_id = max_connector_id
        self._sites = sites

    async def register(self, body: NewCharger, settings: ChargerChange | None = None) -> None:
        """Register a charger, with the password, security profile and site `settings`
        gives (the console's form); 409 `exists` when the id is taken."""
        security = await _security_change(settings, _UNREGISTERED) if settings else None
        site_id = settings.site_id if settings else None
        if site_id is not None and not await self._site_exists(site_id):
            raise ApiError(400, "not_found", "no such site", "siteId")
        if security is not None and security[1] is not None:
            created = await self._chargers.register_with_password(
                body.id,
                security[0],
                security[1],
                name=body.name,
                location=body.location,
                registration_status=body.registration_status,
            )
        else:
            created = await self._chargers.register(
                body.id,
                name=body.name,
                location=body.location,
                registration_status=body.registration_status,
            )
        if not created:
            raise ApiError(409, "exists", f"charger {body.id} exists", "id")
        if security is not None and security[0] == PROFILE_TLS_CERTIFICATE:
            await self._chargers.set_security(body.id, *security)
        if site_id is not None:
            await self._set_site(body.id, site_id)

    async def change(self, current: Row, body: ChargerChange) -> None:
        """Apply the fields `body` sets to a registered charger (its row `current`)."""
        changed = body.model_fields_set
        if body.time_zone is not None and not known_time_zone(body.time_zone):
            raise ApiError(
                400, "invalid", "not a known IANA time zone (e.g. Europe/Berlin)", "timeZone"
            )
        # Checked (and hashed) first: a refused change applies nothing.
        details = _details_change(body, current, self._max_connector_id)
        security = await _security_change(body, current)
        if body.site_id is not None and not await self._site_exists(body.site_id):
            raise ApiError(400, "not_found", "no such site", "siteId")
        if "tariff_id" in changed:
            if body.tariff_id is None:
                await self._tariffs.unassign(current["id"], 0)
            elif body.tariff_id in await self._tariffs.all():
                await self._tariffs.assign(body.tariff_id, current["id"])
            else:
                raise ApiError(400, "not_found", "no such tariff", "tariffId")
        await self._chargers.update(
            current["id"],
            name=body.name if "name" in changed else current["name"],
            location=body.location if "location" in changed else current["location"],
            registration_status=body.registration_status or current["registration_status"],
        )
        if security is not None:
            await self._chargers.set_security(current["id"], *security)
        if "time_zone" in changed:
            await self._chargers.set_time_zone(current["id"], body.time_zone)
        if "site_id" in changed:
            await self._set_site(current["id"], body.site_id)
        if details is not None:
            await self._chargers.set_connector_details(current["id"], details)

    async def _site_exists(self, site_id: str) -> bool:
        return await self._sites.get(site_id) is not None

    async def _set_site(self, charger_id: str, site_id: str | None) -> None:
        try:
            await self._chargers.set_site(charger_id, site_id)
        except Conflict:  # the foreign key: the site was removed meanwhile
            raise ApiError(400, "not_found", "no such site", "siteId") from None


# A charger being registered: no password, profile 0.
_UNREGISTERED = cast(Row, {"security_profile": PROFILE_NONE, "password_hash": None})


def _details_change(
    body: ChargerChange, current: Row, max_connector_id: int
) -> dict[int, dict[str, object]] | None:
    """Every connector's details after the change, or None to leave them; ApiError if refused."""
    if "connectors" not in body.model_fields_set:
        return None
    if body.connectors is None:
        raise ApiError(
            400, "invalid", "connectors cannot be null; give a connector null", "connectors"
        )
    details: dict[int, dict[str, object]] = dict(connector_details(current))
    for key, entry in body.connectors.items():
        number = int(key) if key.isascii() and key.isdigit() else 0
        if not 1 <= number <= max_connector_id or key != str(number):
            raise ApiError(
                400, "invalid", f"a connector id from 1 to {max_connector_id}", f"connectors.{key}"
            )
        if entry is None:
            details.pop(number, None)
        else:
            details[number] = entry.model_dump(mode="json", by_alias=True)
    return details


async def _security_change(body: ChargerChange, current: Row) -> tuple[int, str | None] | None:
    """(security profile, password hash) to store, or None to leave them; ApiError if refused."""
    changed = body.model_fields_set
    if "password" in changed and body.password is None:
        raise ApiError(
            400, "invalid", "a password cannot be null; securityProfile 0 removes it", "password"
        )
    profile = body.security_profile
    if profile == PROFILE_TLS_CERTIFICATE:
        if body.password is not None:
            raise ApiError(
                400, "invalid", "profile 3 uses a client certificate, not a password", "password"
            )
        return profile, current["password_hash"]
    if body.password is not None:
        if profile == PROFILE_NONE:
            raise ApiError(400, "invalid", "profile 0 has no password", "securityProfile")
        profile = profile or max(current["security_profile"], PROFILE_BASIC)
        return profile, await asyncio.to_thread(hash_password, body.password)
    if profile is None:
        return None
    if profile == PROFILE_NONE:
        return PROFILE_NONE, None
    if current["password_hash"] is None:
        raise ApiError(400, "invalid", "profiles 1 and 2 need a password", "password")
    return profile, current["password_hash"]
