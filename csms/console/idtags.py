"""The console's id tags page, `/console/id-tags`: the RFID cards and app tokens chargers ask
about, searched and paged; support adds, blocks and unblocks, changes expiry and parent, and
deletes them.

The values are checked with the management API's models (csms/api/id_tags.py: `NewIdTag`,
`IdTagChange`), so the console refuses what the API refuses: a refused form is shown again
with the field named, and nothing changes. Writes go to the id tag store, as the API's do.
An expiry is entered and shown in UTC (a time typed with no zone is UTC).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlencode

from aiohttp import web

from csms.api.id_tags import IdTagChange, NewIdTag
from csms.console.admin_forms import Errors, check, local_value, text, utc_moment
from csms.console.framework import Console
from csms.store.id_tags import IdTag, IdTagStore
from storage.clock import to_text

PAGE_SIZE = 50
PATH = "/console/id-tags"


def state(tag: IdTag, now: datetime) -> str:
    """Blocked, Expired or Accepted: what a charger asking about the tag is told."""
    if tag.blocked:
        return "Blocked"
    if tag.expiry_date:
        try:
            expiry = datetime.fromisoformat(tag.expiry_date.replace("Z", "+00:00"))
        except ValueError:
            return "Accepted"
        if expiry.tzinfo is not None and expiry <= now:
            return "Expired"
    return "Accepted"


class IdTagPages:
    def __init__(self, console: Console, tags: IdTagStore) -> None:
        self._console = console
        self._tags = tags

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(PATH, self.list),
            web.post(PATH, self.add),
            web.post(f"{PATH}/block", self.block),
            web.post(f"{PATH}/unblock", self.unblock),
            web.post(f"{PATH}/change", self.change),
            web.post(f"{PATH}/delete", self.delete),
        ]

    async def list(self, request: web.Request) -> web.Response:
        self._console.require(request, "viewer")
        return await self._page(request, {}, {})

    async def _page(
        self, request: web.Request, errors: Errors, entered: dict[str, str], status: int = 200
    ) -> web.Response:
        search = request.query.get("q", "").strip()[:20]
        after = request.query.get("after", "")[:20]
        if search:
            tags = await self._tags.search(search, after, PAGE_SIZE + 1)
        else:
            tags = await self._tags.list(after, PAGE_SIZE + 1)
        page = tags[:PAGE_SIZE]
        now = datetime.now(UTC)
        editing = await self._tags.get(request.query.get("edit", "")[:20])
        return self._console.render(
            request,
            "id_tags.html",
            title="Id tags",
            status=status,
            tags=[
                {
                    "tag": tag,
                    "state": state(tag, now),
                    "expiry_value": local_value(tag.expiry_date),
                }
                for tag in page
            ],
            search=search,
            after=after,
            next_after=page[-1].id_tag if len(tags) > PAGE_SIZE else None,
            errors=errors,
            entered=entered,
            editing=editing,
            editing_expiry=local_value(editing.expiry_date) if editing else "",
        )

    async def add(self, request: web.Request) -> web.Response:
        form = await self._console.form(request, "support")
        entered = {name: form.get(name, "") for name in ("id_tag", "parent_id_tag", "expiry_date")}
        body = check(
            NewIdTag,
            {
                "id_tag": form.get("id_tag", "").strip(),
                "parent_id_tag": text(form, "parent_id_tag"),
                "expiry_date": utc_moment(text(form, "expiry_date")),
                "blocked": "blocked" in form,
            },
        )
        if not isinstance(body, NewIdTag):
            return await self._page(request, body, entered, status=400)
        if await self._tags.get(body.id_tag) is not None:
            errors = {"id_tag": f"id tag {body.id_tag} exists"}
            return await self._page(request, errors, entered, status=409)
        await self._tags.put(
            body.id_tag,
            parent_id_tag=body.parent_id_tag,
            expiry_date=to_text(body.expiry_date) if body.expiry_date else None,
            blocked=body.blocked,
        )
        raise self._console.see_other(PATH, f"Id tag {body.id_tag} added")

    async def block(self, request: web.Request) -> web.Response:
        return await self._set_blocked(request, True)

    async def unblock(self, request: web.Request) -> web.Response:
        return await self._set_blocked(request, False)

    async def _set_blocked(self, request: web.Request, blocked: bool) -> web.Response:
        form = await self._console.form(request, "support")
        tag = await self._tags.get(form.get("id_tag", ""))
        if tag is None:
            return self._console.problem(request, 404, "No such id tag.")
        await self._tags.put(
            tag.id_tag,
            parent_id_tag=tag.parent_id_tag,
            expiry_date=tag.expiry_date,
            blocked=blocked,
        )
        done = "blocked" if blocked else "unblocked"
        raise self._console.see_other(_back(form), f"Id tag {tag.id_tag} {done}")

    async def change(self, request: web.Request) -> web.Response:
        """A tag's parent and expiry, as the form gives them (an empty field clears it)."""
        form = await self._console.form(request, "support")
        tag = await self._tags.get(form.get("id_tag", ""))
        if tag is None:
            return self._console.problem(request, 404, "No such id tag.")
        body = check(
            IdTagChange,
            {
                "parent_id_tag": text(form, "parent_id_tag"),
                "expiry_date": utc_moment(text(form, "expiry_date")),
            },
        )
        if not isinstance(body, IdTagChange):
            field, message = next(iter(body.items()))
            name = {"parent_id_tag": "Parent", "expiry_date": "Expiry"}.get(field, field)
            return self._console.problem(
                request, 400, f"{name}: {message}. Id tag {tag.id_tag} was not changed."
            )
        await self._tags.put(
            tag.id_tag,
            parent_id_tag=body.parent_id_tag,
            expiry_date=to_text(body.expiry_date) if body.expiry_date else None,
            blocked=tag.blocked,
        )
        raise self._console.see_other(_back(form), f"Id tag {tag.id_tag} changed")

    async def delete(self, request: web.Request) -> web.Response:
        form = await self._console.form(request, "support")
        id_tag = form.get("id_tag", "")
        if not await self._tags.delete(id_tag):
            return self._console.problem(request, 404, "No such id tag.")
        raise self._console.see_other(_back(form), f"Id tag {id_tag} deleted")


def _back(form: Mapping[str, str]) -> str:
    """The listing again, with the search the action was taken from."""
    search = form.get("q", "")[:20]
    return f"{PATH}?{urlencode({'q': search})}" if search else PATH
