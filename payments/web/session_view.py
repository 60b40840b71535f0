"""The session page's figures and words: a pure function of the reservation, what is known of
the charger (online, its connector's OCPP status) and the page's language.

It only describes the payment state machine (payments/reservation.py): what the card shows
follows the hold (held, being captured or released, captured, released, lost), never a guess.
Failure pages give a plain reason per state, never the internal one (a Stripe error, an id).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from payments.reservation import TERMINAL, Hold, Reservation, State
from payments.views import cost_so_far, released_amount, stage
from payments.web.pending import checkout_link
from payments.web.texts import Texts

# Stages where the driver's button ends the session: before the charge it cancels, during
# it stops the charge.
_CANCELLABLE = frozenset({"payment", "waiting_for_plug", "waiting_for_charger", "starting"})
_STOPPABLE = frozenset({"charging"})
# Stages where the charger's connection matters to the driver (a charge is under way or due).
_NEEDS_CHARGER = frozenset(
    {"waiting_for_charger", "waiting_for_plug", "starting", "charging", "stopping"}
)
# Failed sessions where scanning again makes sense (nothing is left open on the card).
_RETRY = frozenset(
    {
        State.EXPIRED,
        State.PAYMENT_FAILED,
        State.CANCELLED,
        State.START_REJECTED,
        State.START_TIMEOUT,
    }
)
# Connector statuses worth telling during a charge, in the driver's words (`status.*`).
_CHARGING_STATUSES = frozenset({"SuspendedEV", "SuspendedEVSE", "Finishing"})
_SETTLED = frozenset({Hold.CAPTURED, Hold.RELEASED, Hold.FREE, Hold.LOST, Hold.NONE})


@dataclass(frozen=True)
class ChargerState:
    """What is known server-side of the session's charger."""

    online: bool
    connector_status: str | None
    support_contact: str = ""


def driver_view(r: Reservation, now: datetime, charger: ChargerState, t: Texts) -> dict[str, Any]:
    """The session as the page (and its event stream) shows it."""
    current = stage(r)
    fmt, money = t.fmt, r.tariff.currency
    elapsed = 0
    if r.started_at is not None:
        elapsed = int(((r.stopped_at or now) - r.started_at).total_seconds())
    final = r.state in TERMINAL and r.hold in _SETTLED
    offline = not charger.online and current in _NEEDS_CHARGER
    failed = current == "failed"
    # The hold as a figure while it simply stands; once settled or in question, in words.
    held = r.hold is Hold.HELD and not failed
    return {
        "stage": current,
        "stageText": _status_line(r, current, charger, t),
        "energy": fmt.kwh(r.energy_wh, 2),
        # Power only while it flows and is known: not before, after, or while offline.
        "power": fmt.kw(r.power_w) if current == "charging" and not offline else None,
        "costLabel": t("session.cost_final" if r.breakdown or final else "session.cost"),
        "cost": fmt.money(cost_so_far(r, now), money),
        "elapsed": f"{elapsed // 3600}:{elapsed % 3600 // 60:02d}:{elapsed % 60:02d}",
        "hold": fmt.money(r.hold_amount, money) if held else None,
        "offline": t("session.offline_money") if offline else None,
        "money": _money_words(r, t),
        "reason": t(f"reason.{r.state.value}") if failed else None,
        "contact": charger.support_contact if failed and charger.support_contact else None,
        "retry": _retry_link(r) if r.state in _RETRY else None,
        "button": _button(current, t),
        # Not paid yet: back to the same Checkout page (the button above cancels).
        "checkout": checkout_link(r),
        "receipt": current == "done",
        "final": final,
    }


def _status_line(r: Reservation, current: str, charger: ChargerState, t: Texts) -> str:
    """One short line (the only one announced to screen readers): where the session is."""
    if not charger.online and current in _NEEDS_CHARGER:
        return t("session.offline")
    if current == "charging" and charger.connector_status in _CHARGING_STATUSES:
        return t(f"status.{charger.connector_status}")
    return t(f"stage.{current}")


def _money_words(r: Reservation, t: Texts) -> str | None:
    """What happened to the money, consistent with the hold (None while simply held)."""
    fmt, money = t.fmt, r.tariff.currency
    if r.hold is Hold.RELEASED:
        return t("session.no_charge")
    if r.hold is Hold.CAPTURED:
        captured = fmt.money(r.captured_amount, money)
        rest = released_amount(r)
        if rest:
            return t("money.captured_rest", captured=captured, released=fmt.money(rest, money))
        return t("money.captured", captured=captured)
    if r.hold is Hold.CAPTURING:
        return t("money.capturing")
    if r.hold is Hold.RELEASING:
        return t("money.releasing")
    if r.hold is Hold.LOST:
        return t("money.lost")
    if r.hold is Hold.HELD and r.state in TERMINAL:
        return t("money.checking", hold=fmt.money(r.hold_amount, money))
    return None


def _retry_link(r: Reservation) -> str:
    return f"/c/{quote(r.charger_id, safe='')}/{r.connector_id}"


def _button(current: str, t: Texts) -> dict[str, str] | None:
    """The session's one action: Cancel before the charge, Stop charging during it."""
    if current in _CANCELLABLE:
        return {"kind": "cancel", "label": t("session.cancel")}
    if current in _STOPPABLE:
        return {"kind": "stop", "label": t("session.stop")}
    return None
