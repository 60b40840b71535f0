"""Hypothesis tests of payments.split: the shares of a capture and after refunds are whole
minor units, never negative, add up to what the payment keeps, and follow the rule."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.split import SplitError, SplitRule, after_refunds, operator_fee, split

rules = st.builds(
    SplitRule,
    commission_basis_points=st.integers(0, 10_000),
    fixed_per_kwh=st.integers(0, 10_000),
    operator_minimum=st.integers(0, 100_000),
)
amounts = st.integers(0, 10_000_000)
energies = st.integers(-1_000, 500_000_000)


@given(rules, amounts, energies)
def test_shares_are_never_negative_and_add_up(rule: SplitRule, captured: int, wh: int) -> None:
    shares = split(rule, captured, wh)
    assert shares.owner >= 0 and shares.operator >= 0
    assert shares.owner + shares.operator == captured == shares.total


@given(rules, amounts, energies)
def test_the_operator_keeps_its_fee_within_what_was_captured(
    rule: SplitRule, captured: int, wh: int
) -> None:
    fee = operator_fee(rule, captured, wh)
    commission = Decimal(captured) * rule.commission_basis_points / 10000
    per_kwh = Decimal(max(wh, 0)) * rule.fixed_per_kwh / 1000
    wanted = int((commission + per_kwh).to_integral_value(ROUND_HALF_UP))
    # Rounded once each: the sum of two half-ups is within one unit of the sum rounded once.
    assert abs(max(wanted, rule.operator_minimum) - max(fee, 0)) <= 1 or fee == captured
    assert fee <= captured
    assert fee >= min(rule.operator_minimum, captured)


@given(rules, amounts, energies, st.lists(st.integers(0, 2_000_000), max_size=8))
def test_refunds_take_the_owner_share_back_in_proportion(
    rule: SplitRule, captured: int, wh: int, refunds: list[int]
) -> None:
    initial = split(rule, captured, wh)
    refunded, previous = 0, initial
    for amount in refunds:
        refunded = min(captured, refunded + amount)
        now = after_refunds(initial, refunded)
        assert now.owner >= 0 and now.operator >= 0
        assert now.owner + now.operator == captured - refunded
        assert now.owner <= previous.owner, "the owner's share only goes down"
        # In proportion: within half a unit of owner x kept / captured.
        if captured:
            exact = _proportion(initial.owner, captured - refunded, captured)
            assert abs(Decimal(now.owner) - exact) <= Decimal("0.5")
        previous = now
    assert after_refunds(initial, captured) == after_refunds(initial, captured + 5)
    assert after_refunds(initial, captured).total == 0


def _proportion(owner: int, kept: int, captured: int) -> Decimal:
    return Decimal(owner) * kept / captured


@given(rules, st.integers(1, 10_000_000), energies, st.integers(1, 10_000_000))
def test_one_refund_or_the_same_total_in_pieces_gives_the_same_shares(
    rule: SplitRule, captured: int, wh: int, refund: int
) -> None:
    initial = split(rule, captured, wh)
    refund = min(refund, captured)
    pieces = [refund // 3, refund // 3, refund - 2 * (refund // 3)]
    total = 0
    for piece in pieces:
        total += piece
        last = after_refunds(initial, total)
    assert last == after_refunds(initial, refund)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"commission_basis_points": 10_001}, "commission_basis_points"),
        ({"fixed_per_kwh": -1}, "fixed_per_kwh"),
        ({"operator_minimum": 1.5}, "operator_minimum"),
        ({"commission_basis_points": True}, "commission_basis_points"),
        ({"percent": 10}, "percent"),
    ],
)
def test_an_unusable_rule_names_its_setting(settings: dict[str, object], field: str) -> None:
    with pytest.raises(SplitError) as raised:
        SplitRule.from_dict(settings)
    assert raised.value.field == field


@given(rules)
def test_a_rule_survives_its_dict(rule: SplitRule) -> None:
    assert SplitRule.from_dict(rule.to_dict()) == rule
