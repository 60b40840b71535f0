"""The console's paid sessions: a filtered list, a page per session, and what an operator
may do to one, as the role allows.

- `/console/sessions`: newest first, filtered by state, charger, needs review and the day
  it began (UTC), a page at a time with the API's cursors; state and energy stay live.
- `/console/sessions/{id}`: the summary (tariff snapshot, amounts, Stripe's ids), the state
  history, the meter chart, the outbox's effects, the audit lines and the refunds.
- Actions post to `/console/sessions/{id}/stop|cancel` (support) and `refund|review`
  (finance), go through `Payments` with the operator as actor (`user:{name}`, written to
  the money audit log), and redirect back to the session with a flash. A field that is
  wrong, or an action that does not apply (nothing refundable, more than is left, a
  session no longer in review), gets an error page saying why and changes nothing.

A refund form carries a key of its own: the same form sent twice refunds once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from csms.console.chart import meter_chart, readings_of
from csms.console.facts import kwh
from csms.console.framework import Console, moment
from csms.console.session_forms import (
    PAGE_SIZE,
    Filters,
    FormError,
    next_cursor,
    read_filters,
    read_refund,
    read_review,
)
from csms.store.transactions import TransactionStore
from payments.coordinator import RefundRefused, ReviewRefused
from payments.currency import exponent
from payments.reservation import ACTIVE, CANCELLABLE, Hold, Reservation, State
from payments.service import PaymentRecord, Payments
from payments.views import cost_so_far, released_amount
from payments.web.describe import tariff_in_words
from payments.web.texts import Texts

TEXTS = Texts("en")
STATES = [s.value for s in State]
_REVIEW_DONE = {
    "RetryCapture": "capture asked again",
    "ReleaseInReview": "hold released",
    "Resolve": "review resolved",
}


def money(minor: int, currency: str) -> str:
    return TEXTS.fmt.money(minor, currency)


@dataclass(frozen=True)
class Row:
    """One line of the list."""

    id: str
    started: str
    charger: str
    connector: int
    state: str
    energy: str
    held: str
    captured: str
    refunded: str

    @classmethod
    def of(cls, r: Reservation) -> Row:
        currency = r.tariff.currency
        return cls(
            id=r.id,
            started=moment(r.started_at or r.created_at),
            charger=r.charger_id,
            connector=r.connector_id,
            state=r.state.value,
            energy=kwh(r.energy_wh),
            held=money(r.hold_amount, currency) if r.hold is not Hold.FREE else "free",
            captured=money(r.captured_amount, currency),
            refunded=money(r.refunded_amount, currency),
        )


def summary(r: Reservation, now: Any) -> dict[str, Any]:
    """The session's facts as the detail page shows them."""
    currency = r.tariff.currency
    return {
        "id": r.id,
        "state": r.state.value,
        "hold": r.hold.value,
        "charger": r.charger_id,
        "connector": r.connector_id,
        "transaction": r.transaction_id,
        "created": moment(r.created_at),
        "started": moment(r.started_at),
        "stopped": moment(r.stopped_at),
        "energy": kwh(r.energy_wh),
        "currency": currency.upper(),
        "tariff": tariff_in_words(r.tariff, TEXTS) or ["free"],
        "max_energy": kwh(r.tariff.max_energy_wh) if r.tariff.max_energy_wh else "",
        "held": money(r.hold_amount, currency),
        "price": money(cost_so_far(r, now), currency),
        "captured": money(r.captured_amount, currency),
        "released": money(released_amount(r), currency),
        "refunded": money(r.refunded_amount, currency),
        "refunding": money(r.refunds_pending, currency) if r.refunds_pending else "",
        "refundable": money(r.refundable, currency),
        "refundable_major": _major(r.refundable, currency),
        "failure": r.failure_reason or "",
        "warning": r.meter_warning or "",
        "resolution": r.resolution or "",
        "owner_share": money(r.owner_share, currency) if r.owner_id else "",
    }


def stripe_ids(record: PaymentRecord) -> list[tuple[str, str]]:
    """(what, Stripe's id) for everything this session has at Stripe, in the order made.
    The charge's id is not kept here: Stripe shows it on the PaymentIntent."""
    r = record.reservation
    ids = [
        ("Checkout Session", r.checkout_session_id or "none"),
        ("PaymentIntent", r.payment_intent_id or "none"),
        ("Charge", "not kept: the PaymentIntent's latest charge at Stripe"),
    ]
    ids += [(f"Refund {x.id}", x.stripe_refund_id or "not yet") for x in record.refunds]
    ids.append(("Transfer to the owner", r.transfer_id or "none"))
    return ids


def _major(minor: int, currency: str) -> str:
    digits = exponent(currency)
    return f"{minor / 10**digits:.{digits}f}" if minor > 0 else ""


class SessionPages:
    def __init__(
        self, console: Console, payments: Payments, transactions: TransactionStore
    ) -> None:
        self._console = console
        self._payments = payments
        self._transactions = transactions

    def routes(self) -> list[web.RouteDef]:
        base = "/console/sessions"
        return [
            web.get(base, self.list),
            web.get(base + "/{id}", self.detail),
            web.post(base + "/{id}/stop", self.stop),
            web.post(base + "/{id}/cancel", self.cancel),
            web.post(base + "/{id}/refund", self.refund),
            web.post(base + "/{id}/review", self.review),
        ]

    # -- reading

    async def list(self, request: web.Request) -> web.Response:
        self._console.require(request, "viewer")
        filters = read_filters(request.query)
        if isinstance(filters, FormError):
            return self._render_list(request, Filters(), [], None, filters)
        found = await self._payments.page(
            state=filters.wanted_state,
            charger_id=filters.charger or None,
            since=filters.since,
            until=filters.until,
            before=filters.before,
            limit=PAGE_SIZE + 1,
        )
        shown = found[:PAGE_SIZE]
        more = None
        if len(found) > PAGE_SIZE:
            more = filters.query(next_cursor(shown[-1].created_at, shown[-1].id))
        return self._render_list(request, filters, [Row.of(r) for r in shown], more, None)

    def _render_list(
        self,
        request: web.Request,
        filters: Filters,
        rows: list[Row],
        more: dict[str, str] | None,
        error: FormError | None,
    ) -> web.Response:
        return self._console.render(
            request,
            "sessions.html",
            title="Sessions",
            status=400 if error else 200,
            filters=filters,
            rows=rows,
            more=more,
            error=error,
            states=STATES,
        )

    async def detail(self, request: web.Request) -> web.Response:
        self._console.require(request, "viewer")
        record = await self._payments.record(request.match_info["id"])
        if record is None:
            return self._missing(request)
        r = record.reservation
        rows = await self._transactions.meter_values(r.transaction_id) if r.transaction_id else []
        chart = meter_chart(readings_of(rows, r.meter_start_wh), label=f"Meter of session {r.id}")
        return self._console.render(
            request,
            "session.html",
            title=f"Session {r.id}",
            s=summary(r, self._payments.clock()),
            stripe=stripe_ids(record),
            history=[{**line, "at": moment(line["at"])} for line in record.history],
            effects=record.effects,
            audit=[self._audit_line(line, r.tariff.currency) for line in record.audit],
            refunds=[
                {
                    "id": x.id,
                    "amount": money(x.amount, r.tariff.currency),
                    "reason": x.reason,
                    "status": x.status,
                    "stripe": x.stripe_refund_id or "",
                    "failure": x.failure or "",
                    "by": x.requested_by,
                    "at": moment(x.created_at),
                }
                for x in record.refunds
            ],
            chart=chart,
            can_stop=r.state in ACTIVE,
            can_cancel=r.state in CANCELLABLE,
            can_refund=r.state not in ACTIVE and r.refundable > 0,
            in_review=r.state is State.NEEDS_REVIEW,
            refund_key=secrets.token_hex(12),
        )

    @staticmethod
    def _audit_line(line: dict[str, Any], currency: str) -> dict[str, Any]:
        amount = line.get("amount")
        return {
            **line,
            "at": moment(line["at"]),
            "money": "" if amount is None else money(amount, line.get("currency") or currency),
        }

    # -- acting

    async def stop(self, request: web.Request) -> web.Response:
        await self._console.form(request, "support")
        r = await self._payments.get(request.match_info["id"])
        if r is None:
            return self._missing(request)
        after = await self._payments.stop(r.id, actor=self._console.user(request).actor)
        return self._back(r, after, "Stop requested", "Nothing to stop")

    async def cancel(self, request: web.Request) -> web.Response:
        await self._console.form(request, "support")
        r = await self._payments.get(request.match_info["id"])
        if r is None:
            return self._missing(request)
        after = await self._payments.cancel(r.id, actor=self._console.user(request).actor)
        return self._back(r, after, "Cancelled", "Nothing to cancel")

    def _back(self, before: Reservation, after: Reservation, done: str, none: str) -> web.Response:
        """Back to the session, saying whether the action changed anything."""
        changed = (after.state, after.stop_requested_at) != (before.state, before.stop_requested_at)
        said = done if changed else none
        raise self._console.see_other(
            f"/console/sessions/{after.id}", f"{said}: the session is {after.state.value}."
        )

    async def refund(self, request: web.Request) -> web.Response:
        form = await self._console.form(request, "finance")
        r = await self._payments.get(request.match_info["id"])
        if r is None:
            return self._missing(request)
        if r.state in ACTIVE:
            return self._refused(
                request, r, 409, f"The session is {r.state.value}: it can be refunded once settled."
            )
        ask = read_refund(form, r.tariff.currency, r.refundable)
        if isinstance(ask, FormError):
            status = 409 if ask.conflict else 400
            return self._refused(request, r, status, f"Refund refused: {ask}.")
        key = form.get("key", "") or secrets.token_hex(12)
        refund_id = "rf_" + hashlib.sha256(f"{r.id}:console:{key}".encode()).hexdigest()[:24]
        user = self._console.user(request)
        try:
            record = await self._payments.refund(
                r.id, refund_id, ask.amount, ask.reason, actor=user.actor
            )
        except RefundRefused as refused:
            return self._refused(request, r, 409, f"Refund refused: {refused}.")
        flash = f"Refund of {money(record.amount, r.tariff.currency)} asked of Stripe."
        raise self._console.see_other(f"/console/sessions/{r.id}", flash)

    async def review(self, request: web.Request) -> web.Response:
        form = await self._console.form(request, "finance")
        r = await self._payments.get(request.match_info["id"])
        if r is None:
            return self._missing(request)
        action = read_review(form, r.tariff.currency)
        if isinstance(action, FormError):
            return self._refused(request, r, 400, f"Review: {action}.")
        user = self._console.user(request)
        try:
            after = await self._payments.review(r.id, action, actor=user.actor)
        except ReviewRefused as refused:
            return self._refused(request, r, 409, f"Review refused: {refused}.")
        done = _REVIEW_DONE[type(action).__name__]
        raise self._console.see_other(
            f"/console/sessions/{r.id}", f"Review: {done}; the session is {after.state.value}."
        )

    def _refused(
        self, request: web.Request, r: Reservation, status: int, message: str
    ) -> web.Response:
        """Why an action was not taken, with the way back to the session."""
        title = "Not valid" if status == 400 else "Not possible now"
        return self._console.render(
            request, "session_problem.html", title=title, status=status, message=message,
            session_id=r.id,
        )  # fmt: skip

    def _missing(self, request: web.Request) -> web.Response:
        return self._console.problem(request, 404, "No such session.")
