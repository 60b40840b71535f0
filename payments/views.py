"""What a reservation looks like to API clients and to the driver: pure functions of it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from payments.pricing import Breakdown, price
from payments.reservation import Hold, Reservation, State
from payments.reservation_model import session_usage

# The driver's view of where the session is.
_STAGES = {
    State.PENDING_PAYMENT: "payment",
    State.AUTHORISED: "waiting_for_charger",
    State.AWAITING_PLUG: "waiting_for_plug",
    State.START_REQUESTED: "starting",
    State.CHARGING: "charging",
    State.STOPPING: "stopping",
    State.WAITING_FOR_DISCONNECT: "waiting_for_disconnect",
    State.SETTLING: "finishing",
    State.COMPLETED: "done",
}


def stage(r: Reservation) -> str:
    return _STAGES.get(r.state, "failed")


def cost_so_far(r: Reservation, now: datetime) -> int:
    """The price of the session up to now (what would be captured if it ended now)."""
    if r.breakdown is not None:
        return min(r.breakdown.total, r.hold_amount)
    if r.started_at is None:
        return 0
    end = r.stopped_at or now
    usage = session_usage(r, r.started_at, end, now if r.stopped_at else end)
    return min(price(r.tariff, usage).total, r.hold_amount)


def released_amount(r: Reservation) -> int:
    if r.hold is Hold.RELEASED:
        return r.hold_amount
    if r.hold is Hold.CAPTURED:
        return r.hold_amount - r.captured_amount
    return 0


def _breakdown(breakdown: Breakdown) -> dict[str, Any]:
    return {
        "energyWh": breakdown.energy_wh,
        "energy": breakdown.energy,
        "sessionFee": breakdown.session_fee,
        "timeMinutes": breakdown.time_minutes,
        "timeFee": breakdown.time_fee,
        "idleMinutes": breakdown.idle_minutes,
        "idleFee": breakdown.idle_fee,
        "total": breakdown.total,
        "bands": [
            {
                "part": b.part,
                "energyWh": b.energy_wh,
                "pricePerKwh": b.price_per_kwh,
                "amount": b.amount,
            }
            for b in breakdown.bands
        ],
    }


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def reservation_json(r: Reservation, now: datetime) -> dict[str, Any]:
    return {
        "reservationId": r.id,
        "state": r.state.value,
        "stage": stage(r),
        "chargePointId": r.charger_id,
        "connectorId": r.connector_id,
        "currency": r.tariff.currency,
        "holdAmount": r.hold_amount,
        "hold": r.hold.value,
        "maxEnergyWh": r.tariff.max_energy_wh,
        "energyWh": r.energy_wh,
        "powerW": r.power_w,
        "meterWarning": r.meter_warning,
        "costSoFar": cost_so_far(r, now),
        "capturedAmount": r.captured_amount,
        "releasedAmount": released_amount(r),
        "breakdown": _breakdown(r.breakdown) if r.breakdown else None,
        "transactionId": r.transaction_id,
        "checkoutUrl": r.checkout_url if r.state is State.PENDING_PAYMENT else None,
        "failureReason": r.failure_reason,
        "createdAt": _time(r.created_at),
        "authorisedAt": _time(r.authorised_at),
        "startedAt": _time(r.started_at),
        "stoppedAt": _time(r.stopped_at),
        "unpluggedAt": _time(r.unplugged_at),
        "refundedAmount": r.refunded_amount,
        "ownerShare": _owner_share(r),
    }


def _owner_share(r: Reservation) -> dict[str, Any] | None:
    if r.owner_id is None or r.split is None:
        return None
    return {
        "ownerId": r.owner_id,
        "split": r.split.to_dict(),
        "ownerShare": r.owner_share,
        "operatorShare": r.operator_share,
        "transferStatus": r.transfer_status,
        "transferId": r.transfer_id,
        "transferredAmount": r.transferred_amount,
        "reversedAmount": r.reversed_amount,
        "transferFailure": r.transfer_failure,
    }
