"""The owner's share of a session's money: the transitions that move it to the site owner's
Stripe connected account and take it back for refunds. Pure, called by the state machine
(`payments.reservation.transition`) after each event with the reservation before and after.

Separate charges and transfers: the driver pays the platform; once the charge is captured
the owner's share goes to their account as a Transfer linked to the charge
(`source_transaction`) and grouped by the reservation (`transfer_group`).

Money rules, whatever the order of events:
- the shares are computed from the totals (payments.split): the split of the capture,
  then `after_refunds` with all that was refunded; owner + operator == captured -
  refunded, both >= 0, and the owner's share only goes down;
- at most one transfer is under way at a time, and one succeeds at most: a transfer is
  asked for only when none was made (first capture, the owner becoming ready after it
  accrued, or after Stripe refused one); each attempt has its own idempotency key;
- the owner's account not ready: the share accrues (no retry loop) until `OwnerReady`;
- never more than the owner's share stays at the owner's: a refund after the transfer
  reverses the difference (one reversal per refund, its key the refund's id); refunds
  that come while a transfer is under way are reversed once it is done (its key the
  transfer's id), a capture Stripe corrected (its key the payment's id and the amount: a
  key is unique in the outbox, so it never names only an amount another payment may
  share); while accrued the share simply shrinks;
- Stripe refusing a transfer or a reversal is recorded with the reason (the operator is
  alerted); it does not put the payment in review: the driver's side is settled. An
  operator asks again (`OwnerReady`): a refused transfer is made again, and what the owner
  holds above the share after a refused reversal is reversed again (its key the transfer's
  id and the retry's number, so each retry is a new request to Stripe).
"""

from __future__ import annotations

from dataclasses import replace

from payments import split as splitting
from payments.reservation_messages import (
    CapturedElsewhere,
    Event,
    RefundedElsewhere,
    RefundSucceeded,
)
from payments.reservation_model import Hold, Reservation
from payments.transfer_messages import (
    ACCRUED,
    NOTHING,
    REFUSED,
    TRANSFERRED,
    TRANSFERRING,
    OwnerNotReady,
    OwnerReady,
    ReversalRefused,
    ReverseTransfer,
    Transferred,
    TransferRefused,
    TransferReversed,
    TransferToOwner,
)

Effects = tuple[TransferToOwner | ReverseTransfer, ...]


def billed_wh(r: Reservation) -> int:
    """The energy the session was billed for: what was metered, up to the tariff's maximum
    (a charge stops a little past it; the driver pays none of that, and the split's per kWh
    amount counts billed kWh only)."""
    cap = r.tariff.max_energy_wh
    energy = max(0, r.energy_wh)
    return energy if cap is None else min(energy, cap)


def shares(r: Reservation) -> splitting.Shares:
    """The shares of what the payment keeps now: captured less refunded."""
    if r.split is None or r.hold is not Hold.CAPTURED:
        return splitting.Shares(0, 0)
    initial = splitting.split(r.split, r.captured_amount, billed_wh(r))
    return splitting.after_refunds(initial, r.refunded_amount)


def owner_holds(r: Reservation) -> int:
    """What is at the owner's account now, or on its way back from it."""
    return r.transferred_amount - r.reversed_amount


def follow(before: Reservation, r: Reservation, event: Event) -> tuple[Reservation, Effects]:
    """The owner's side of a transition: `before` and `r` are the reservation before and
    after the machine applied `event`."""
    if r.owner_id is None or r.split is None:
        return r, ()
    now = shares(r)
    r = replace(r, owner_share=now.owner, operator_share=now.operator)
    if r.hold is not Hold.CAPTURED:
        return r, ()
    effects: list[TransferToOwner | ReverseTransfer] = []
    match event:
        case OwnerNotReady() if r.transfer_status == TRANSFERRING:
            r = replace(r, transfer_status=ACCRUED)
        case OwnerReady() if r.transfer_status in (ACCRUED, REFUSED):
            r = _transfer(r, effects)
        case OwnerReady() if r.transfer_status == TRANSFERRED and r.reversing_amount == 0:
            if owner_holds(r) > r.owner_share:  # a reversal Stripe refused
                retry = r.reversal_retries + 1
                r = _reverse(r, f"{r.transfer_id}:retry:{retry}", effects)
                r = replace(r, reversal_retries=retry)
        case Transferred(transfer_id, amount) if r.transfer_status == TRANSFERRING:
            r = replace(
                r,
                transfer_status=TRANSFERRED,
                transfer_id=transfer_id,
                transferred_amount=amount,
                transfer_failure=None,
            )
            r = _reverse(r, transfer_id, effects)  # refunds that came meanwhile
        case TransferRefused(reason) if r.transfer_status == TRANSFERRING:
            r = replace(r, transfer_status=REFUSED, transfer_failure=reason)
        case TransferReversed(_, _, amount):
            r = replace(
                r,
                reversed_amount=r.reversed_amount + amount,
                reversing_amount=max(0, r.reversing_amount - amount),
            )
            if owner_holds(r) - r.reversing_amount <= r.owner_share:
                r = replace(r, transfer_failure=None)  # a refused reversal made good
        case ReversalRefused(_, amount, reason):
            r = replace(
                r, reversing_amount=max(0, r.reversing_amount - amount), transfer_failure=reason
            )
        case RefundSucceeded(refund_id, _, _) | RefundedElsewhere(refund_id, _):
            r = _reverse(r, refund_id, effects)
        case CapturedElsewhere() if r.transfer_status == TRANSFERRED:
            r = _reverse(r, f"capture:{r.id}:{r.captured_amount}", effects)
    if r.transfer_status is None and before.hold is not Hold.CAPTURED:
        r = _transfer(r, effects)  # just captured
    return r, tuple(effects)


def _transfer(r: Reservation, effects: list[TransferToOwner | ReverseTransfer]) -> Reservation:
    """Ask for the owner's share to be transferred (nothing to move: say so)."""
    assert r.owner_id is not None
    if r.owner_share <= 0:
        return replace(r, transfer_status=NOTHING)
    attempt = r.transfer_attempts + 1
    effects.append(TransferToOwner(r.owner_id, r.owner_share, attempt))
    return replace(r, transfer_status=TRANSFERRING, transfer_attempts=attempt)


def _reverse(
    r: Reservation, key: str, effects: list[TransferToOwner | ReverseTransfer]
) -> Reservation:
    """Take back what the owner holds above their share (only once a transfer is done)."""
    if r.transfer_status != TRANSFERRED or r.transfer_id is None:
        return r
    excess = owner_holds(r) - r.reversing_amount - r.owner_share
    if excess <= 0:
        return r
    effects.append(ReverseTransfer(r.transfer_id, excess, key))
    return replace(r, reversing_amount=r.reversing_amount + excess)
