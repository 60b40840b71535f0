"""Whether an id tag may charge: the IdTagInfo that Authorize and StartTransaction answer with."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from csms.clock import parse_ocpp_time
from csms.ocpp16.events import TagAuthority
from csms.store.id_tags import IdTag, IdTagStore
from storage.clock import to_text


def id_tag_info(tag: IdTag | None, now: datetime) -> dict[str, Any]:
    """Pure: a stored tag (or none) at a moment -> IdTagInfo (OCPP 1.6 section 7.29)."""
    if tag is None:
        return {"status": "Invalid"}
    info: dict[str, Any] = {}
    if tag.blocked:
        info["status"] = "Blocked"
    elif tag.expiry_date is not None and parse_ocpp_time(tag.expiry_date) <= now:
        info["status"] = "Expired"
    else:
        info["status"] = "Accepted"
    if tag.expiry_date is not None:
        info["expiryDate"] = to_text(parse_ocpp_time(tag.expiry_date))
    if tag.parent_id_tag is not None:
        info["parentIdTag"] = tag.parent_id_tag
    return info


class Authorizer:
    """Asks the tag authorities (the payments side's generated tags), then the local list."""

    def __init__(self, id_tags: IdTagStore, authorities: Sequence[TagAuthority] = ()) -> None:
        self._id_tags = id_tags
        self._authorities = list(authorities)

    async def authorize(
        self, charger_id: str, connector_id: int | None, id_tag: str, now: datetime
    ) -> dict[str, Any]:
        for authority in self._authorities:
            status = await authority.authorize_tag(charger_id, connector_id, id_tag)
            if status is not None:
                return {"status": status}
        return id_tag_info(await self._id_tags.get(id_tag), now)
