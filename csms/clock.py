"""OCPP timestamps: parsed, and normalised to the database's form (see storage.clock)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from storage.clock import to_text

# A leap second (23:59:60) is read as the last millisecond before the next minute, which
# keeps its order among the charger's other times.
_LEAP_SECOND = re.compile(r"([Tt]\d{2}:\d{2}:)60(\.\d+)?")
# The times csms keeps and computes with (deadlines a while after a stop): a charger's
# time outside them is refused rather than stored.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)


def parse_ocpp_time(text: str) -> datetime:
    """An OCPP dateTime (RFC 3339, the schemas have checked its shape) as an aware datetime.

    ValueError for one that names no moment (year 0, say); see `ocpp_time` for a check.
    """
    moment = datetime.fromisoformat(_LEAP_SECOND.sub(r"\g<1>59.999", text.replace("z", "Z")))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def ocpp_time(text: str) -> datetime | None:
    """`parse_ocpp_time`, or None when the text is no moment between EARLIEST and LATEST."""
    try:
        moment = parse_ocpp_time(text)
        in_range = EARLIEST <= moment < LATEST
    except (ValueError, OverflowError):
        return None
    return moment if in_range else None


def normalise_ocpp_time(text: str) -> str:
    """A charger's timestamp in the database's form, so that times sort and compare as text."""
    return to_text(parse_ocpp_time(text))
