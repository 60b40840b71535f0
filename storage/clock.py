"""Timestamps as the database stores them: ISO 8601 UTC text with milliseconds and a Z.

Fixed width, so text order is time order and SQL can compare them.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_text(moment: datetime) -> str:
    # isoformat is a quarter cheaper than strftime, and this runs for every stored message.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def now_text() -> str:
    return to_text(utc_now())
