"""Timestamps as the database stores them: ISO 8601 UTC text with milliseconds and a Z."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def now_text() -> str:
    return to_text(utc_now())


def parse_ocpp_time(text: str) -> datetime:
    """An OCPP dateTime (RFC 3339, the schemas have checked its shape) as an aware datetime."""
    moment = datetime.fromisoformat(text.replace("z", "Z"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def normalise_ocpp_time(text: str) -> str:
    """A charger's timestamp in the database's form, so that times sort and compare as text."""
    return to_text(parse_ocpp_time(text))
