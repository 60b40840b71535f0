"""What an operator types on the session pages, read and checked. Pure.

The list's filters (state, charger, needs review, dates, the page's cursor), a refund's
amount and reason, and a review's action: each reader returns the value the page acts on,
or a `FormError` naming the field and saying what is wrong, so that a bad field gets a
clear answer and changes nothing (never a traceback, never a guess).

Amounts are typed in major units, as the operator reads them ("1.50" EUR, "500" JPY) and
become integer minor units by the currency's own exponent (`payments.currency.to_minor`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from httpapi.errors import ApiError
from httpapi.models import decode_cursor, encode_cursor
from payments.currency import format_money, to_minor
from payments.reservation import ReleaseInReview, Resolve, RetryCapture, ReviewAction, State
from storage.clock import to_text

MAX_CHARGER_ID = 48
MAX_REASON = 500
MAX_NOTE = 1000
PAGE_SIZE = 50
REVIEW_ACTIONS = ("retry-capture", "release", "resolve")


@dataclass(frozen=True)
class FormError:
    field: str
    message: str
    conflict: bool = False  # the value is fine, but the session does not allow it (409)

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class Filters:
    """The list's filters as typed (for the form) and as the store takes them."""

    state: str = ""
    charger: str = ""
    review: bool = False
    date_from: str = ""
    date_to: str = ""
    before: tuple[str, str] | None = None

    @property
    def wanted_state(self) -> str | None:
        return State.NEEDS_REVIEW.value if self.review else (self.state or None)

    @property
    def since(self) -> str | None:
        return _day_start(self.date_from, 0)

    @property
    def until(self) -> str | None:
        return _day_start(self.date_to, 1)  # the whole of the last day

    def query(self, cursor: str | None = None) -> dict[str, str]:
        """The filters as a query string's fields (for the next page's link)."""
        fields = {
            "state": self.state,
            "charger": self.charger,
            "review": "1" if self.review else "",
            "from": self.date_from,
            "to": self.date_to,
            "cursor": cursor or "",
        }
        return {name: value for name, value in fields.items() if value}


def read_filters(query: Mapping[str, str]) -> Filters | FormError:
    state = query.get("state", "").strip()
    if state and state not in {s.value for s in State}:
        return FormError("state", f"not a session state: {state!r}")
    charger = query.get("charger", "").strip()
    if len(charger) > MAX_CHARGER_ID:
        return FormError("charger", f"at most {MAX_CHARGER_ID} characters")
    review = query.get("review", "") not in ("", "0")
    if review and state and state != State.NEEDS_REVIEW.value:
        return FormError("state", f"{state} sessions are never in review: choose one or the other")
    days = {}
    for name in ("from", "to"):
        text = query.get(name, "").strip()
        if text:
            try:
                days[name] = date.fromisoformat(text)
            except ValueError:
                return FormError(name, f"not a date (YYYY-MM-DD): {text!r}")
    if "from" in days and "to" in days and days["from"] > days["to"]:
        return FormError("to", "is before the from date")
    before = None
    if cursor := query.get("cursor", ""):
        try:
            created, reservation_id = decode_cursor(cursor, 2)
        except ApiError:
            return FormError("cursor", "not a link from this list")
        before = (str(created), str(reservation_id))
    return Filters(
        state=state,
        charger=charger,
        review=review,
        date_from=days["from"].isoformat() if "from" in days else "",
        date_to=days["to"].isoformat() if "to" in days else "",
        before=before,
    )


def next_cursor(created_at: datetime, reservation_id: str) -> str:
    return encode_cursor(to_text(created_at), reservation_id)


def _day_start(text: str, later: int) -> str | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text) + timedelta(days=later)
    except OverflowError:  # the day after 9999-12-31: no end
        return None
    return to_text(datetime(day.year, day.month, day.day, tzinfo=UTC))


def read_amount(text: str, currency: str, field: str = "amount") -> int | FormError | None:
    """An amount in major units as minor units; empty: None (the default amount)."""
    text = text.strip()
    if not text:
        return None
    try:
        minor = to_minor(text, currency)
    except ValueError as error:
        return FormError(field, str(error))
    if minor <= 0:
        return FormError(field, "must be more than 0")
    return minor


@dataclass(frozen=True)
class RefundAsk:
    amount: int | None  # None: everything still refundable
    reason: str


def read_refund(form: Mapping[str, str], currency: str, refundable: int) -> RefundAsk | FormError:
    """A refund of at most what is still refundable, with a reason."""
    if refundable <= 0:
        return FormError("amount", "nothing is left to refund", conflict=True)
    amount = read_amount(form.get("amount", ""), currency)
    if isinstance(amount, FormError):
        return amount
    if amount is not None and amount > refundable:
        return FormError(
            "amount",
            f"{format_money(amount, currency)} is more than the "
            f"{format_money(refundable, currency)} still refundable",
            conflict=True,
        )
    reason = form.get("reason", "").strip()
    if not reason:
        return FormError("reason", "say why the money goes back")
    if len(reason) > MAX_REASON:
        return FormError("reason", f"at most {MAX_REASON} characters")
    return RefundAsk(amount, reason)


def read_review(form: Mapping[str, str], currency: str) -> ReviewAction | FormError:
    """The API's three ways out of a review: retry the capture (of an amount, else the
    price), release the hold, or resolve with a note."""
    action = form.get("action", "")
    if action == "retry-capture":
        amount = read_amount(form.get("amount", ""), currency)
        return amount if isinstance(amount, FormError) else RetryCapture(amount)
    if action == "release":
        return ReleaseInReview()
    if action == "resolve":
        note = form.get("note", "").strip()
        if not note:
            return FormError("note", "say what was found and done")
        if len(note) > MAX_NOTE:
            return FormError("note", f"at most {MAX_NOTE} characters")
        return Resolve(note)
    return FormError("action", f"one of {', '.join(REVIEW_ACTIONS)}")
