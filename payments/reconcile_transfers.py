"""Reconciliation of owners' shares: the transfers and reversals at Stripe, listed by
transfer group (the reservation id), compared with what our books say was moved.

Rules (pure, `compare`), for a payment with an owner whose share is not moving right now
(no transfer or reversal under way: their answers decide first):
- at most one transfer per payment: two or more is REVIEW (transferred twice);
- books say transferred: the one transfer at Stripe is ours (same id), for the amount we
  recorded, with the reversals we recorded (`amount_reversed`); else REVIEW;
- books say transferred and all of that agrees, but less is at the owner's than its share
  (a capture made elsewhere for more than ours raised the share after the transfer): REVIEW,
  since one transfer per payment is the rule and the owner must not be short silently;
- books say accrued, refused, nothing to move, or not captured: no transfer at Stripe; one
  there is REVIEW (money at the owner's that our books do not know of).
A REVIEW goes through the state machine (`ReviewNeeded`) like the other findings, with a
key naming what was seen, so the same disagreement is applied once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from payments.reconcile import CLOCK_SKEW, Finding, Kind
from payments.reservation import TERMINAL, Reservation, ReviewNeeded
from payments.transfer_gateway import StripeTransfer, TransferGateway
from payments.transfer_messages import TRANSFERRED, TRANSFERRING
from payments.transfers import TransferStore
from storage.clock import to_text


def compare(r: Reservation, found: Sequence[StripeTransfer]) -> Finding | None:
    """The disagreement between one payment's books and its transfers at Stripe, if any."""
    if r.owner_id is None or r.transfer_status == TRANSFERRING or r.reversing_amount:
        return None
    if r.state not in TERMINAL:
        return None
    detail: str | None = None
    seen = ",".join(f"{t.id}:{t.amount}:{t.amount_reversed}" for t in found)
    if len(found) > 1:
        detail = f"{len(found)} transfers at Stripe for one payment: {seen}"
    elif r.transfer_status == TRANSFERRED:
        if not found:
            detail = f"transfer {r.transfer_id} recorded here, none at Stripe"
        else:
            (t,) = found
            if t.id != r.transfer_id or t.amount != r.transferred_amount:
                detail = f"transfer {t.id} of {t.amount} at Stripe, ours {r.transfer_id}"
                detail += f" of {r.transferred_amount}"
            elif t.amount_reversed != r.reversed_amount:
                detail = f"{t.amount_reversed} reversed at Stripe, {r.reversed_amount} here"
            elif t.amount - t.amount_reversed < r.owner_share:
                held = t.amount - t.amount_reversed
                detail = f"{held} at the owner's, its share is {r.owner_share}: never transferred"
    elif found:
        detail = f"a transfer at Stripe while our books say {r.transfer_status}: {seen}"
    if detail is None:
        return None
    stripe_id = found[0].id if found else (r.transfer_id or r.id)
    return Finding(
        Kind.REVIEW,
        r.id,
        stripe_id,
        detail,
        r.owner_share,
        r.tariff.currency,
        ReviewNeeded(f"owner's share: {detail}"),
        f"reconcile:transfers:{r.id}:{seen or 'none'}",
    )


def findings_source(
    gateway: TransferGateway, store: TransferStore
) -> Callable[[datetime], Awaitable[list[Finding]]]:
    """For the reconciler: the transfer findings of the window that starts at `since`.

    One listing of the transfers created in the window; the payments made in it are
    compared with their groups there (a payment's transfers are made after it, so all are
    listed). A transfer in the window for an older payment (its share accrued long) has
    that payment's whole group listed on its own."""

    async def find(since: datetime) -> list[Finding]:
        start = int(since.timestamp())
        groups: dict[str, list[StripeTransfer]] = defaultdict(list)
        for transfer in await gateway.transfers_since(start - CLOCK_SKEW):
            if transfer.group:
                groups[transfer.group].append(transfer)
        recent = {r.id: r for r in await store.with_owner_since(to_text(since))}
        older = await store.named(sorted(set(groups) - set(recent)))
        findings = [compare(r, groups.get(r.id, [])) for r in recent.values()]
        findings += [compare(r, await gateway.transfers_of(r.id)) for r in older]
        return [finding for finding in findings if finding is not None]

    return find
