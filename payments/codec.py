"""Reservations, events and effects to JSON and back, for the database and the outbox."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from enum import Enum
from typing import Any

import orjson

from payments import reservation as machine
from payments.pricing import Breakdown, Tariff
from payments.reservation import Effect, Event, Hold, Reservation, State
from payments.split import SplitRule
from payments.transfer_messages import ReverseTransfer, TransferToOwner

_EFFECTS: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        machine.CreateCheckout,
        machine.ExpireCheckout,
        machine.VerifyPayment,
        machine.RemoteStart,
        machine.RemoteStop,
        machine.Capture,
        machine.ReleaseHold,
        machine.Refund,
        TransferToOwner,
        ReverseTransfer,
    )
}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def encode_reservation(r: Reservation) -> str:
    return orjson.dumps(_plain(r)).decode()


def decode_reservation(text: str) -> Reservation:
    data = orjson.loads(text)
    for f in dataclasses.fields(Reservation):
        value = data.get(f.name)
        if value is None:
            continue
        if f.type in ("datetime", "datetime | None"):
            data[f.name] = datetime.fromisoformat(value)
    data["state"] = State(data["state"])
    data["hold"] = Hold(data["hold"])
    data["tariff"] = Tariff.from_dict(data["tariff"])
    if data.get("breakdown") is not None:
        data["breakdown"] = Breakdown.from_dict(data["breakdown"])
    data["band_energy_wh"] = tuple(data.get("band_energy_wh") or ())
    if data.get("split") is not None:
        data["split"] = SplitRule.from_dict(data["split"])
    return Reservation(**data)


def effect_kind(effect: Effect) -> str:
    return type(effect).__name__


def encode_effect(effect: Effect) -> str:
    return orjson.dumps(_plain(effect)).decode()


def decode_effect(kind: str, payload: str) -> Effect:
    return _EFFECTS[kind](**orjson.loads(payload))


def event_name(event: Event) -> str:
    return type(event).__name__
