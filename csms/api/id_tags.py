"""Id tags (RFID cards) over the management API."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import AwareDatetime, Field

from csms.store.id_tags import IdTag, IdTagStore
from httpapi.errors import ApiError, not_found
from httpapi.models import ApiModel, Page, PageQuery, decode_cursor, encode_cursor
from httpapi.routing import Api
from storage.clock import to_text

IdTagText = Field(min_length=1, max_length=20, description="OCPP CiString20")


class IdTagOut(ApiModel):
    id_tag: str
    parent_id_tag: str | None
    expiry_date: str | None
    blocked: bool

    @classmethod
    def of(cls, tag: IdTag) -> IdTagOut:
        return cls(
            id_tag=tag.id_tag,
            parent_id_tag=tag.parent_id_tag,
            expiry_date=tag.expiry_date,
            blocked=tag.blocked,
        )


class IdTagPage(Page[IdTagOut]):
    pass


class NewIdTag(ApiModel):
    id_tag: str = IdTagText
    parent_id_tag: str | None = Field(default=None, min_length=1, max_length=20)
    expiry_date: AwareDatetime | None = None
    blocked: bool = False


class IdTagChange(ApiModel):
    parent_id_tag: str | None = Field(default=None, min_length=1, max_length=20)
    expiry_date: AwareDatetime | None = None
    blocked: bool | None = None


def _text(moment: datetime | None) -> str | None:
    return to_text(moment) if moment else None


class IdTagRoutes:
    def __init__(self, tags: IdTagStore) -> None:
        self._tags = tags

    def register(self, api: Api) -> None:
        tag = "id tags"
        api.add("GET", "/api/id-tags", self.list_id_tags, summary="List id tags", tag=tag,
                query=PageQuery, response=IdTagPage)  # fmt: skip
        api.add("POST", "/api/id-tags", self.create_id_tag, summary="Add an id tag", tag=tag,
                body=NewIdTag, response=IdTagOut, status=201, errors=(409,),
                role="support")  # fmt: skip
        api.add("GET", "/api/id-tags/{idTag}", self.get_id_tag, summary="One id tag", tag=tag,
                response=IdTagOut, errors=(404,))  # fmt: skip
        api.add("PATCH", "/api/id-tags/{idTag}", self.update_id_tag, tag=tag,
                summary="Change an id tag's expiry, parent or blocked flag",
                body=IdTagChange, response=IdTagOut, errors=(404,), role="support")  # fmt: skip
        api.add("DELETE", "/api/id-tags/{idTag}", self.delete_id_tag, summary="Remove an id tag",
                tag=tag, status=204, errors=(404,), role="support")  # fmt: skip

    async def list_id_tags(self, request: web.Request, query: PageQuery) -> IdTagPage:
        after = str(decode_cursor(query.cursor, 1)[0]) if query.cursor else ""
        tags = await self._tags.list(after, query.limit + 1)
        page = tags[: query.limit]
        more = len(tags) > query.limit
        return IdTagPage(
            items=[IdTagOut.of(t) for t in page],
            next_cursor=encode_cursor(page[-1].id_tag) if more else None,
        )

    async def create_id_tag(self, request: web.Request, body: NewIdTag) -> IdTagOut:
        if await self._tags.get(body.id_tag) is not None:
            raise ApiError(409, "exists", f"id tag {body.id_tag} exists", "idTag")
        await self._tags.put(
            body.id_tag,
            parent_id_tag=body.parent_id_tag,
            expiry_date=_text(body.expiry_date),
            blocked=body.blocked,
        )
        return IdTagOut.of(await self._found(body.id_tag))

    async def get_id_tag(self, request: web.Request) -> IdTagOut:
        return IdTagOut.of(await self._found(request.match_info["idTag"]))

    async def update_id_tag(self, request: web.Request, body: IdTagChange) -> IdTagOut:
        current = await self._found(request.match_info["idTag"])
        changed = body.model_fields_set
        await self._tags.put(
            current.id_tag,
            parent_id_tag=body.parent_id_tag
            if "parent_id_tag" in changed
            else current.parent_id_tag,
            expiry_date=_text(body.expiry_date)
            if "expiry_date" in changed
            else current.expiry_date,
            blocked=current.blocked if body.blocked is None else body.blocked,
        )
        return IdTagOut.of(await self._found(current.id_tag))

    async def delete_id_tag(self, request: web.Request) -> web.Response:
        if not await self._tags.delete(request.match_info["idTag"]):
            raise not_found("id tag")
        return web.Response(status=204)

    async def _found(self, id_tag: str) -> IdTag:
        tag = await self._tags.get(id_tag)
        if tag is None:
            raise not_found("id tag")
        return tag
