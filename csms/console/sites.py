"""The console's sites page, `/console/sites`: the sites where chargers stand, and the owners
they belong to with links to their monthly statements (csms/console/owners.py acts on
owners).

Admins register and change sites: name, address, time zone, owner, split rule and support
contact. The values are checked exactly as the management API checks them (csms/api/sites.py:
the `NewSite` and `SiteChange` models, then `site_from` for the time zone, the split rule and
the contact; and the owner must exist): a refused form is shown again with the field named
and nothing changes. A site that chargers belong to is not removed (the store refuses it and
the page names them).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, tzinfo
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import available_timezones

from aiohttp import web

from csms.api.sites import NewSite, SiteChange, SiteSettings, site_from
from csms.config_values import operator
from csms.console.admin_forms import Errors, api_refused, check, text
from csms.console.framework import Console
from csms.store.sites import Site, SiteStore
from httpapi.errors import ApiError
from payments.owners import OwnerStore
from payments.split import SplitRule

if TYPE_CHECKING:
    from csms.app import CentralSystem

PATH = "/console/sites"
SPLIT_FIELDS = tuple(SplitRule.__dataclass_fields__)
CONTACT = ("support_email", "support_phone", "support_url")


@lru_cache(maxsize=1)
def time_zones() -> list[str]:
    return sorted(zone for zone in available_timezones() if "/" in zone or zone == "UTC")


def split_of(form: Mapping[str, str]) -> dict[str, Any] | None:
    """The split rule's fields as the form gives them (None: all empty, no split). A number
    is passed as one; anything else as text, for the rule to refuse naming the field."""
    given = {name: text(form, f"split_{name}") for name in SPLIT_FIELDS}
    if all(value is None for value in given.values()):
        return None
    return {
        name: int(value) if value.isdigit() else value
        for name, value in given.items()
        if value is not None
    }


def settings_of(form: Mapping[str, str]) -> dict[str, Any]:
    """What a site form sets, as the API's model takes it (every field: empty clears)."""
    address = [line.strip() for line in form.get("address", "").splitlines() if line.strip()]
    return {
        "name": text(form, "name"),
        "time_zone": text(form, "time_zone"),
        "address": address or None,
        "owner_id": text(form, "owner_id"),
        "split": split_of(form),
        **{name: text(form, name) for name in CONTACT},
    }


def form_values(site: Site) -> dict[str, str]:
    """A site as its form shows it."""
    split = site.split or {}
    return {
        "id": site.id,
        "name": site.name,
        "time_zone": site.time_zone,
        "address": "\n".join(site.address_lines),
        "owner_id": site.owner_id or "",
        **{f"split_{name}": str(split[name]) if name in split else "" for name in SPLIT_FIELDS},
        **{name: getattr(site, name) or "" for name in CONTACT},
    }


class SitePages:
    def __init__(
        self, console: Console, sites: SiteStore, owners: OwnerStore, time_zone: tzinfo
    ) -> None:
        self._console = console
        self._sites = sites
        self._owners = owners
        self._zone = time_zone  # the operator's: statements' months are in it

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(PATH, self.list),
            web.post(PATH, self.create),
            web.get(PATH + "/{site}", self.show),
            web.post(PATH + "/{site}", self.change),
            web.post(PATH + "/{site}/delete", self.delete),
        ]

    async def list(self, request: web.Request) -> web.Response:
        self._console.require(request, "viewer")
        return await self._list(request, {}, {})

    async def _list(
        self, request: web.Request, errors: Errors, entered: dict[str, str], status: int = 200
    ) -> web.Response:
        sites = await self._sites.find()
        counts = {site.id: len(await self._sites.chargers(site.id)) for site in sites}
        today = datetime.now(self._zone)
        last = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
        return self._console.render(
            request,
            "sites.html",
            title="Sites & owners",
            status=status,
            sites=sites,
            chargers=counts,
            owners=await self._owners.all(),
            errors=errors,
            entered=entered,
            zones=time_zones(),
            split_fields=SPLIT_FIELDS,
            this_month=today.strftime("%Y-%m"),
            last_month=last,
        )

    async def create(self, request: web.Request) -> web.Response:
        form = await self._console.form(request, "admin")
        entered = {name: form.get(name, "") for name in form if name != "csrf"}
        values = {"id": form.get("id", "").strip(), **settings_of(form)}
        body = check(NewSite, {name: value for name, value in values.items() if value is not None})
        if not isinstance(body, NewSite):
            return await self._list(request, body, entered, status=400)
        site = await self._checked(body, Site(id=body.id, name=body.name, time_zone=""))
        if not isinstance(site, Site):
            return await self._list(request, site, entered, status=400)
        if not await self._sites.add(site):
            return await self._list(request, {"id": f"site {site.id} exists"}, entered, 409)
        raise self._console.see_other(PATH, f"Site {site.id} added")

    async def show(self, request: web.Request) -> web.Response:
        self._console.require(request, "viewer")
        site = await self._sites.get(request.match_info["site"])
        if site is None:
            return self._console.problem(request, 404, "No such site.")
        return await self._site_page(request, site, form_values(site), {})

    async def _site_page(
        self,
        request: web.Request,
        site: Site,
        entered: dict[str, str],
        errors: Errors,
        status: int = 200,
    ) -> web.Response:
        return self._console.render(
            request,
            "site.html",
            title=f"Site {site.name}",
            status=status,
            site=site,
            site_chargers=await self._sites.chargers(site.id),
            owners=await self._owners.all(),
            entered=entered,
            errors=errors,
            zones=time_zones(),
            split_fields=SPLIT_FIELDS,
        )

    async def change(self, request: web.Request) -> web.Response:
        form = await self._console.form(request, "admin")
        current = await self._sites.get(request.match_info["site"])
        if current is None:
            return self._console.problem(request, 404, "No such site.")
        entered = {**form_values(current), **{name: form.get(name, "") for name in form}}
        values = settings_of(form)
        missing = {name: "cannot be empty" for name in ("name", "time_zone") if not values[name]}
        body = missing or check(SiteChange, values)
        if not isinstance(body, SiteChange):
            return await self._site_page(request, current, entered, body, status=400)
        site = await self._checked(body, current)
        if not isinstance(site, Site):
            return await self._site_page(request, current, entered, site, status=400)
        await self._sites.update(site)
        raise self._console.see_other(f"{PATH}/{site.id}", f"Site {site.id} saved")

    async def delete(self, request: web.Request) -> web.Response:
        await self._console.form(request, "admin")
        site_id = request.match_info["site"]
        removal = await self._sites.delete(site_id)
        if not removal.found:
            return self._console.problem(request, 404, "No such site.")
        if not removal.removed:
            return self._console.problem(
                request,
                409,
                f"Chargers belong to site {site_id}: {', '.join(removal.chargers)}."
                " Move them to another site (or none) first.",
            )
        raise self._console.see_other(PATH, f"Site {site_id} removed")

    async def _checked(self, body: SiteSettings, current: Site) -> Site | Errors:
        """`current` with what `body` sets, checked as the API checks it; else the refusal."""
        try:
            site = site_from(body, current)
        except ApiError as error:
            return api_refused(error)
        if body.owner_id is not None and not await self._owners.exists(body.owner_id):
            return {"owner_id": "no such owner"}
        return site


def site_pages(console: Console, system: CentralSystem) -> SitePages:
    """The sites page over the system's sites and owners, months in the operator's zone."""
    return SitePages(console, system.sites, system.owners, operator(system.config).time_zone)
