"""Whether an id tag may charge: the IdTagInfo that Authorize and StartTransaction answer with."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from csms.clock import parse_ocpp_time
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
    """Looks id tags up in the local tag list."""

    def __init__(self, id_tags: IdTagStore) -> None:
        self._id_tags = id_tags

    async def authorize(self, id_tag: str, now: datetime) -> dict[str, Any]:
        return id_tag_info(await self._id_tags.get(id_tag), now)
