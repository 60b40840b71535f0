"""Pure parts of the WebSocket handshake: the charge point id in the URL, the subprotocol."""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import unquote, urlsplit

SUBPROTOCOL = "ocpp1.6"

# Charge point identity: at most 48 characters (OCPP 1.6 Security Whitepaper), printable
# ASCII as every CiString of OCPP is, from the URL-safe set that OCPP 2.0.1 spells out plus
# the space of OCPP-J 1.6's own example ("RDAM 123", sent as RDAM%20123), so ids survive
# URLs, logs and Basic auth. A space may not begin or end an id, nor follow another: ids
# that differ only in spacing would be told apart by nobody who reads them. No "/"
# (it would end the path) and no ":" (it ends the Basic auth username).
_CHARGE_POINT_ID = re.compile(r"(?=.{1,48}$)[A-Za-z0-9*\-_=+|@.]+( [A-Za-z0-9*\-_=+|@.]+)*")

CHARGE_POINT_ID_RULE = "1 to 48 characters of A-Z a-z 0-9 * - _ = + | @ . and single inner spaces"


def charge_point_id_from_path(path: str, prefix: str) -> str | None:
    """`/ocpp/CP%2D1` -> `CP-1`, `/ocpp/RDAM%20123` -> `RDAM 123`; None when the path is not
    `{prefix}/{id}` or the id is invalid."""
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
