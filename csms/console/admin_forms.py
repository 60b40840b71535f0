"""What the admin pages share in reading HTML forms: a form's text fields as the API's model
takes them, and a refusal as the field it names and why.

The console validates with the management API's own models (csms/api/*), so that a value the
API refuses the console refuses too, for the same reason. A form sends text: an empty field
is "not given" (None), a checkbox is there or not, and a time is typed as "YYYY-MM-DD HH:MM"
with no zone (it is read as UTC, and the pages say so). Times are plain text fields rather
than `datetime-local` ones: those split into a field per part, which a keyboard user must tab
through one by one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_snake

from httpapi.errors import ApiError

Errors = dict[str, str]  # form field -> what is wrong with it
M = TypeVar("M", bound=BaseModel)


def text(form: Mapping[str, str], name: str) -> str | None:
    """A text field, trimmed; None when empty or absent."""
    value = form.get(name, "").strip()
    return value or None


def utc_moment(value: str | None) -> str | None:
    """A typed time ("2026-11-03 08:00", or ISO 8601; no zone: UTC) as an ISO 8601 instant;
    text that is not a time at all is passed on as it is, for the model to refuse."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment).isoformat()


def local_value(moment: str | None) -> str:
    """An instant as stored, as its field shows it: UTC, to the minute ("2026-11-03 08:00")."""
    if not moment:
        return ""
    try:
        parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return ""
    return parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def refused(error: ValidationError) -> Errors:
    """Pydantic's refusal as form field (the model's field name) -> message."""
    found: Errors = {}
    for item in error.errors():
        location = [str(part) for part in item["loc"]]
        field = to_snake(location[0]) if location else "form"
        found.setdefault(field, in_words(item))
    return found


# What a model's patterns allow, as an operator reads it (pydantic shows the expression).
_PATTERNS = {
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$": "1 to 64 letters, digits, dots, underscores or"
    " hyphens, starting with a letter or digit",
    r"^\+?[0-9 ()./-]+$": "a phone number: digits, spaces and + ( ) . / - only",
    r"^[A-Za-z]{3}$": "a three-letter ISO 4217 code such as EUR",
}


def in_words(item: Mapping[str, Any]) -> str:
    """One of pydantic's refusals (an item of `errors()`) in an operator's words."""
    if item.get("type") == "missing":
        return "required"
    if item.get("type") == "string_pattern_mismatch":
        pattern = str(item.get("ctx", {}).get("pattern", ""))
        return _PATTERNS.get(pattern, "has characters that are not allowed here")
    return _message(str(item["msg"]))


def api_refused(error: ApiError) -> Errors:
    """An ApiError's field (camelCase, maybe `split.commissionBasisPoints`) as a form field."""
    field = to_snake((error.field or "form").split(".")[-1]) if error.field else "form"
    if error.field and error.field.startswith("split."):
        field = f"split_{to_snake(error.field.split('.', 1)[1])}"
    return {field: error.message}


def _message(text: str) -> str:
    # Pydantic says "Value error, ..." for a validator's own message.
    return text.removeprefix("Value error, ")


def check(model: type[M], values: Mapping[str, object]) -> M | Errors:
    """`values` as `model`, or the refusal as form field -> message."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as error:
        return refused(error)
