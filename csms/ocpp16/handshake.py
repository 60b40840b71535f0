"""Pure parts of the WebSocket handshake: the charge point id in the URL, the subprotocol."""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import unquote, urlsplit

SUBPROTOCOL = "ocpp1.6"

# Charge point identity: at most 48 characters (OCPP 1.6 Security Whitepaper) from the
# URL-safe set that OCPP 2.0.1 spells out, so ids survive URLs, logs and Basic auth.
_CHARGE_POINT_ID = re.compile(r"[A-Za-z0-9*\-_=+|@.]{1,48}")


def charge_point_id_from_path(path: str, prefix: str) -> str | None:
    """`/ocpp/CP%2D1` -> `CP-1`; None when the path is not `{prefix}/{id}` or the id is invalid."""
    route = urlsplit(path).path
    base = prefix.rstrip("/") + "/"
    if not route.startswith(base):
        return None
    segment = route[len(base) :].removesuffix("/")
    if not segment or "/" in segment:
        return None
    try:
        charge_point_id = unquote(segment, errors="strict")
    except UnicodeDecodeError:
        return None
    return charge_point_id if _CHARGE_POINT_ID.fullmatch(charge_point_id) else None


def select_subprotocol(offered: Sequence[str]) -> str | None:
    """`ocpp1.6` when offered; None completes the handshake without one (then we close)."""
    return SUBPROTOCOL if SUBPROTOCOL in offered else None
