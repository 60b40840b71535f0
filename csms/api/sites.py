"""Sites over the management API: where chargers stand, whose they are, whom drivers ask.

A site's time zone is the one its chargers' receipts use (unless a charger has its own),
and its support contact is the one the driver's pages show (else the operator's). Its
chargers are listed with `GET /api/chargers?siteId=`; a charger joins or leaves a site with
`PATCH /api/chargers/{id}` (`siteId`). A site with chargers is not deleted (409 naming them).

`owner_id` names an owner of the payments side. The routes check it with `owner_exists`,
which the composition root passes; without it any non-empty id is accepted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import Field, field_validator
from pydantic.alias_generators import to_camel
from yarl import URL

from csms.store.sites import Site, SiteStore
from httpapi.errors import ApiError, not_found
from httpapi.models import ApiModel, Page, PageQuery, decode_cursor, encode_cursor
from httpapi.routing import Api
from payments.http import valid_email
from payments.split import SplitError, SplitRule
from payments.web.operator import known_time_zone

OwnerExists = Callable[[str], Awaitable[bool]]
SITE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# Split amounts are bounded so that they stay 64-bit integers wherever they go.
_MOST = 1_000_000_000
_SPLIT = (
    "How the money of its sessions is shared with the owner (payments.split.SplitRule, its"
    " own field names): commission_basis_points (the operator's commission, 1500 = 15 %),"
    " fixed_per_kwh (the operator's, minor units per kWh), operator_minimum (the least the"
    " operator keeps per session, minor units); null: no split"
)
_ADDRESS = Field(default=None, max_length=8, description="Its lines, e.g. street, city")
_NAME = Field(min_length=1, max_length=200)
_ZONE = Field(max_length=64, description="IANA time zone of its receipts, e.g. Europe/Berlin")
_OWNER = Field(
    default=None, min_length=1, max_length=64, description="An owner's id; null: the operator"
)
_EMAIL = Field(default=None, min_length=3, max_length=254)
_PHONE = Field(default=None, min_length=3, max_length=40, pattern=r"^\+?[0-9 ()./-]+$")
_URL = Field(default=None, min_length=8, max_length=500, description="http:// or https://")


class SiteSettings(ApiModel):
    address: list[str] | None = _ADDRESS
    owner_id: str | None = _OWNER
    split: dict[str, Any] | None = Field(default=None, description=_SPLIT)
    support_email: str | None = _EMAIL
    support_phone: str | None = _PHONE
    support_url: str | None = _URL


class NewSite(SiteSettings):
    id: str = Field(pattern=SITE_ID_PATTERN, description="1 to 64 of A-Z a-z 0-9 . _ -")
    name: str = _NAME
    time_zone: str = _ZONE


class SiteChange(SiteSettings):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    time_zone: str | None = Field(default=None, max_length=64, description=_ZONE.description)


class SiteOut(ApiModel):
    id: str
    name: str
    address: list[str] = Field(description="Its lines; empty: none given")
    time_zone: str
    owner_id: str | None
    split: dict[str, int] | None = Field(description=_SPLIT)
    support_email: str | None
    support_phone: str | None
    support_url: str | None

    @field_validator("address", mode="before")
    @classmethod
    def _lines(cls, address: object) -> object:
        if address is None or isinstance(address, str):
            return [line.strip() for line in (address or "").splitlines() if line.strip()]
        return address


class SiteDetail(SiteOut):
    chargers: list[str] = Field(description="The ids of the chargers that belong to it")


class SitePage(Page[SiteOut]):
    pass


class SiteRoutes:
    def __init__(self, sites: SiteStore, owner_exists: OwnerExists | None = None) -> None:
        self._sites = sites
        self._owner_exists = owner_exists

    def register(self, api: Api) -> None:
        tag = "sites"
        api.add("GET", "/api/sites", self.list_sites, summary="List sites", tag=tag,
                query=PageQuery, response=SitePage)  # fmt: skip
        api.add("POST", "/api/sites", self.create_site, tag=tag,
                summary="Register a site: its address, time zone, owner, split and contact",
                body=NewSite, response=SiteDetail, status=201, errors=(409,))  # fmt: skip
        api.add("GET", "/api/sites/{siteId}", self.get_site, tag=tag,
                summary="One site and its chargers", response=SiteDetail,
                errors=(404,))  # fmt: skip
        api.add("PATCH", "/api/sites/{siteId}", self.update_site, tag=tag,
                summary="Change a site (null clears an optional field)", body=SiteChange,
                response=SiteDetail, errors=(404,))  # fmt: skip
        api.add("DELETE", "/api/sites/{siteId}", self.delete_site, tag=tag,
                summary="Remove a site no charger belongs to", status=204,
                errors=(404, 409))  # fmt: skip

    async def list_sites(self, request: web.Request, query: PageQuery) -> SitePage:
        after = str(decode_cursor(query.cursor, 1)[0]) if query.cursor else ""
        sites = await self._sites.find(after, query.limit + 1)
        page = sites[: query.limit]
        return SitePage(
            items=[SiteOut.model_validate(site, from_attributes=True) for site in page],
            next_cursor=encode_cursor(page[-1].id) if len(sites) > query.limit else None,
        )

    async def create_site(self, request: web.Request, body: NewSite) -> SiteDetail:
        site = await self._checked(body, Site(id=body.id, name=body.name, time_zone=""))
        if not await self._sites.add(site):
            raise ApiError(409, "exists", f"site {body.id} exists", "id")
        return await self._detail(body.id)

    async def get_site(self, request: web.Request) -> SiteDetail:
        return await self._detail(request.match_info["siteId"])

    async def update_site(self, request: web.Request, body: SiteChange) -> SiteDetail:
        current = await self._found(request.match_info["siteId"])
        for required in ("name", "time_zone"):
            if required in body.model_fields_set and getattr(body, required) is None:
                raise ApiError(400, "invalid", "cannot be null", to_camel(required))
        site = await self._checked(body, current)
        await self._sites.update(site)
        return await self._detail(site.id)

    async def delete_site(self, request: web.Request) -> web.Response:
        site_id = request.match_info["siteId"]
        removal = await self._sites.delete(site_id)
        if not removal.found:
            raise not_found("site")
        if not removal.removed:
            raise ApiError(
                409,
                "has_chargers",
                f"chargers belong to site {site_id}: {', '.join(removal.chargers)}"
                " (PATCH each with siteId null first)",
            )
        return web.Response(status=204)

    async def _checked(self, body: SiteSettings, current: Site) -> Site:
        """`current` with the fields `body` sets, checked; ApiError naming a refused field."""
        site = site_from(body, current)
        if body.owner_id is not None and not await self._owner_known(body.owner_id):
            raise ApiError(400, "not_found", "no such owner", "ownerId")
        return site

    async def _owner_known(self, owner_id: str) -> bool:
        return self._owner_exists is None or await self._owner_exists(owner_id)

    async def _detail(self, site_id: str) -> SiteDetail:
        site = await self._found(site_id)
        chargers = await self._sites.chargers(site.id)
        out = SiteOut.model_validate(site, from_attributes=True)
        return SiteDetail(**out.model_dump(), chargers=chargers)

    async def _found(self, site_id: str) -> Site:
        site = await self._sites.get(site_id)
        if site is None:
            raise not_found("site")
        return site


def site_from(body: SiteSettings, current: Site) -> Site:
    """`current` with the fields `body` sets, checked (all but the owner's existence);
    ApiError naming a refused field."""
    values = {name: getattr(current, name) for name in Site.__dataclass_fields__}
    for name in body.model_fields_set:
        values[name] = getattr(body, name)
    if isinstance(body, NewSite) or "address" in body.model_fields_set:
        values["address"] = _address(body.address)
    if not known_time_zone(values["time_zone"]):
        raise ApiError(
            400, "invalid", "not a known IANA time zone (e.g. Europe/Berlin)", "timeZone"
        )
    if "split" in body.model_fields_set:
        values["split"] = checked_split(body.split)
    if body.support_email is not None and not valid_email(body.support_email):
        raise ApiError(400, "invalid", "not an e-mail address", "supportEmail")
    if body.support_url is not None and not _web_address(body.support_url):
        raise ApiError(400, "invalid", "an http:// or https:// address", "supportUrl")
    return Site(**values)


def checked_split(split: dict[str, Any] | None) -> dict[str, int] | None:
    """A split rule as stored (every field of SplitRule), or ApiError naming `split.<field>`."""
    if split is None:
        return None
    try:
        rule = SplitRule.from_dict(split)
    except SplitError as error:
        raise ApiError(400, "invalid", error.message, f"split.{error.field}") from None
    except TypeError:
        raise ApiError(400, "invalid", "not a split rule", "split") from None
    for name, value in rule.to_dict().items():
        if value > _MOST:
            raise ApiError(400, "invalid", f"must be at most {_MOST}", f"split.{name}")
    return rule.to_dict()


def _address(lines: list[str] | None) -> str | None:
    kept = [line.strip() for line in lines or () if line.strip()]
    if any(len(line) > 200 or "\n" in line or "\r" in line for line in kept):
        raise ApiError(400, "invalid", "lines of at most 200 characters", "address")
    return "\n".join(kept) or None


def _web_address(text: str) -> bool:
    try:
        url = URL(text)
    except ValueError:
        return False
    return url.scheme in ("http", "https") and bool(url.host) and " " not in text
