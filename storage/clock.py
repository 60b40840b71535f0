"""Timestamps as the database stores them: ISO 8601 UTC text with milliseconds and a Z.

Fixed width, so text order is time order and SQL can compare them.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def now_text() -> str:
    return to_text(utc_now())
