"""Who runs the chargers, as the driver's pages name them (the `[operator]` settings), and
the site a charger stands at (its name, address and support contact)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


@dataclass(frozen=True)
class Operator:
    name: str = ""
    address: str = ""  # lines separated by newlines
    support_email: str = ""
    support_phone: str = ""
    support_url: str = ""
    terms_url: str = ""
    privacy_url: str = ""
    time_zone: tzinfo = UTC  # the receipt's times are in it, and name it

    @property
    def address_lines(self) -> list[str]:
        return [line.strip() for line in self.address.splitlines() if line.strip()]

    @property
    def support_contact(self) -> str:
        """Every way to reach support, on one line ("" when none is set)."""
        return " · ".join(
            c for c in (self.support_phone, self.support_email, self.support_url) if c
        )

    @property
    def has_support(self) -> bool:
        return bool(self.support_email or self.support_phone or self.support_url)

    def at_site(self, site: Mapping[str, object] | None) -> Operator:
        """The operator as a site's pages show it: the site's support contact when it has
        one (payments.ports.SiteInfo), else the operator's own. Name, address and terms stay
        the operator's: it runs the chargers and takes the money."""
        if not site:
            return self
        contact = {
            key: str(site.get(key) or "")
            for key in ("support_email", "support_phone", "support_url")
        }
        return replace(self, **contact) if any(contact.values()) else self


def known_time_zone(name: str) -> bool:
    """Whether `name` is an IANA time zone this system knows: "Europe/Berlin", "UTC" (not a
    file of the zone database that is no zone, such as "posixrules", nor "localtime": the
    machine's own setting, which changes with the machine the server runs on)."""
    if name not in _zones() or name == "localtime":
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def site_named(info: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A charger's site (payments.ports.ChargerInfo's) as the pages name it: its name and
    address lines; None: it belongs to no site."""
    site = (info or {}).get("site")
    if not site:
        return None
    lines = [line.strip() for line in (site.get("address") or "").splitlines() if line.strip()]
    return {"name": site["name"], "address_lines": lines}
