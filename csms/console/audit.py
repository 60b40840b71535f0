"""The console's audit page, `/console/audit`: the money audit log, newest first, filtered by
reservation, action, actor and time, in pages; and the same lines as CSV.

The filters are the management API's (`AuditFilters` in csms/api/audit.py, under the same
names: reservationId, action, actor, from, to), and `/console/audit.csv` is made by the
API's own export (`audit_csv`): the same columns, the same formula neutralising, streamed.
Times are entered and shown in UTC (a time typed with no zone is UTC). Read-only: every
role may read it.
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiMapping

from csms.api.audit import AuditFilters, audit_csv
from csms.console.admin_forms import Errors, check, local_value, text, utc_moment
from csms.console.framework import Console
from httpapi.csv_export import stream_csv
from payments.audit_log import AuditLog
from payments.currency import format_money

PAGE_SIZE = 50
PATH = "/console/audit"
# The form's fields: the API's query parameters.
FIELDS = ("reservationId", "action", "actor", "from", "to")


def filters_of(query: MultiMapping[str]) -> AuditFilters | Errors:
    """The query's filters as the API reads them, or what is wrong with them."""
    values: dict[str, object] = {}
    for name in FIELDS:
        value = text(query, name)
        if value is not None:
            values[name] = utc_moment(value) if name in ("from", "to") else value
    return check(AuditFilters, values)


def _query(query: MultiMapping[str], **more: str) -> str:
    kept = {name: query[name] for name in FIELDS if query.get(name, "").strip()}
    return urlencode({**kept, **more})


def _amount(line: dict[str, object]) -> str:
    amount, currency = line.get("amount"), line.get("currency")
    if not isinstance(amount, int):
        return ""
    if not isinstance(currency, str) or not currency:
        return str(amount)
    try:
        return format_money(amount, currency)
    except (KeyError, ValueError):
        return f"{amount} {currency.upper()}"


class AuditPages:
    def __init__(self, console: Console, audit: AuditLog) -> None:
        self._console = console
        self._audit = audit

    def routes(self) -> list[web.RouteDef]:
        return [web.get(PATH, self.page), web.get(f"{PATH}.csv", self.csv)]

    async def page(self, request: web.Request) -> web.Response:
        self._console.require(request, "viewer")
        query = request.query
        entered = {name: query.get(name, "")[:200] for name in FIELDS}
        for name in ("from", "to"):  # shown back as the field takes it
            entered[name] = local_value(utc_moment(text(query, name))) or entered[name]
        where = filters_of(query)
        before = _before(query.get("before", ""))
        if not isinstance(where, AuditFilters) or before == 0:
            errors = where if not isinstance(where, AuditFilters) else {"before": "not a page"}
            return self._render(request, entered, errors, [], None, status=400)
        rows = await where.lines(self._audit, before, PAGE_SIZE + 1)
        lines = [{**row, "shown_amount": _amount(row)} for row in rows[:PAGE_SIZE]]
        following = None
        if len(rows) > PAGE_SIZE:
            following = f"{PATH}?{_query(query, before=str(rows[PAGE_SIZE - 1]['id']))}"
        return self._render(request, entered, {}, lines, following)

    def _render(
        self,
        request: web.Request,
        entered: dict[str, str],
        errors: Errors,
        lines: list[dict[str, object]],
        following: str | None,
        status: int = 200,
    ) -> web.Response:
        query = _query(request.query)
        return self._console.render(
            request,
            "audit.html",
            title="Audit log",
            status=status,
            entered=entered,
            errors=errors,
            lines=lines,
            following=following,
            first=f"{PATH}?{query}" if "before" in request.query else None,
            csv_link=f"{PATH}.csv?{query}" if query else f"{PATH}.csv",
        )

    async def csv(self, request: web.Request) -> web.StreamResponse:
        self._console.require(request, "viewer")
        where = filters_of(request.query)
        if not isinstance(where, AuditFilters):
            field, message = next(iter(where.items()))
            return self._console.problem(request, 400, f"{field}: {message}")
        return await stream_csv(request, "audit.csv", audit_csv(self._audit, where))


def _before(value: str) -> int | None:
    """The id the next page goes on below (None: the first page; 0: not a page of ours)."""
    if not value:
        return None
    return int(value) if value.isdigit() and 0 < int(value) < 2**63 else 0
