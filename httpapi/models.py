"""Base models: camelCase on the wire, unknown fields refused; cursor pagination."""

from __future__ import annotations

import base64
from typing import Generic, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from httpapi.errors import ApiError

T = TypeVar("T")


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Page(ApiModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; null on the last page."
    )


class PageQuery(ApiModel):
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=500)


def encode_cursor(*key: object) -> str:
    """An opaque cursor for the position after the row with this sort key."""
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode()


def decode_cursor(cursor: str, arity: int) -> list[object]:
    try:
        key = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, orjson.JSONDecodeError):
        raise ApiError(400, "invalid", "not a cursor from this API", "cursor") from None
    if not isinstance(key, list) or len(key) != arity:
        raise ApiError(400, "invalid", "not a cursor from this API", "cursor")
    return key
