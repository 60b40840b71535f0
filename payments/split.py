"""How a session's money is shared between the operator and the site's owner. Pure: integer
minor units, explicit rounding, no I/O.

A split rule says what the operator keeps; the owner gets the rest:
- `commission_basis_points`: a share of what was captured, in hundredths of a percent
  (1500 = 15 %), half up;
- `fixed_per_kwh`: minor units per kWh of billed energy, half up;
- both add up; `operator_minimum`: the operator keeps at least this much of a session.
What the operator keeps never exceeds what was captured: the owner's share is never
negative.

Refunds take back the owner's share in proportion: after refunds of `refunded` out of
`captured`, the owner keeps `owner * (captured - refunded) / captured` (half up) and the
operator the rest. Computed from the totals, never refund by refund, so no rounding drifts:
whatever the refunds, owner + operator == captured - refunded, both >= 0, and the owner's
share only goes down.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from decimal import ROUND_HALF_UP, Decimal
from typing import Any


class SplitError(ValueError):
    """A split rule that cannot be used; `field` names the offending setting."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class SplitRule:
    commission_basis_points: int = 0  # the operator's commission: 1500 = 15 %
    fixed_per_kwh: int = 0  # the operator's fixed amount per kWh, minor units
    operator_minimum: int = 0  # the operator keeps at least this per session

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise SplitError(f.name, f"must be a whole number >= 0, got {value!r}")
        if self.commission_basis_points > 10000:
            raise SplitError("commission_basis_points", "must be at most 10000 (100 %)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SplitRule:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise SplitError(sorted(unknown)[0], "unknown split setting")
        return cls(**data)


@dataclass(frozen=True)
class Shares:
    owner: int
    operator: int

    @property
    def total(self) -> int:
        return self.owner + self.operator


def _half_up(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


def operator_fee(rule: SplitRule, captured: int, energy_wh: int) -> int:
    """What the operator keeps of a capture of `captured` for `energy_wh`: at most all of it."""
    commission = _half_up(Decimal(captured) * rule.commission_basis_points / 10000)
    per_kwh = _half_up(Decimal(max(energy_wh, 0)) * rule.fixed_per_kwh / 1000)
    return min(max(commission + per_kwh, rule.operator_minimum), max(captured, 0))


def split(rule: SplitRule, captured: int, energy_wh: int) -> Shares:
    """The shares of a capture, before any refund."""
    captured = max(captured, 0)
    fee = operator_fee(rule, captured, energy_wh)
    return Shares(owner=captured - fee, operator=fee)


def after_refunds(initial: Shares, refunded: int) -> Shares:
    """The shares once `refunded` of the capture has gone back to the driver: the owner's in
    proportion, the operator's the rest."""
    captured = initial.total
    left = min(max(captured - refunded, 0), captured)
    if captured == 0:
        return Shares(0, 0)
    owner = _half_up(Decimal(initial.owner) * left / captured)
    return Shares(owner=owner, operator=left - owner)
