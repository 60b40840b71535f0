"""OCPP timestamps: parsed, and normalised to the database's form (see storage.clock)."""

from __future__ import annotations

from datetime import UTC, datetime

from storage.clock import to_text


def parse_ocpp_time(text: str) -> datetime:
    """An OCPP dateTime (RFC 3339, the schemas have checked its shape) as an aware datetime."""
    moment = datetime.fromisoformat(text.replace("z", "Z"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def normalise_ocpp_time(text: str) -> str:
    """A charger's timestamp in the database's form, so that times sort and compare as text."""
    return to_text(parse_ocpp_time(text))
