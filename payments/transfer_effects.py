"""Carrying out the owner's-share effects (`TransferToOwner`, `ReverseTransfer`) and the
event that reports each outcome back to the reservation.

The owner is read when the transfer is made, not when it was queued: an account that is
not ready (no account yet, onboarding unfinished, Stripe disabled it) answers
`OwnerNotReady` without calling Stripe, and the share accrues until the owner's readiness
hook (`payments.transfers.TransferService.on_ready`) asks again. `StripeUnavailable`
propagates: the runner retries the effect with the same key. A refusal is an event.
"""

from __future__ import annotations

from typing import Protocol

from payments.outbox import PendingEffect
from payments.reservation import Event, Reservation
from payments.stripe_gateway import StripeRejected
from payments.transfer_gateway import TransferGateway
from payments.transfer_messages import (
    OwnerNotReady,
    ReversalRefused,
    ReverseTransfer,
    Transferred,
    TransferRefused,
    TransferReversed,
    TransferToOwner,
)


class OwnerAccount(Protocol):
    @property
    def stripe_account_id(self) -> str | None: ...

    @property
    def ready(self) -> bool: ...


class OwnerDirectory(Protocol):
    """What the transfers need of payments.owners.OwnerStore."""

    async def get(self, owner_id: str) -> OwnerAccount | None: ...


class TransferEffects:
    def __init__(self, gateway: TransferGateway, owners: OwnerDirectory) -> None:
        self._gateway = gateway
        self._owners = owners

    async def execute(self, pending: PendingEffect, r: Reservation, repeated: bool) -> Event:
        """`repeated`: an earlier attempt of this very effect may have reached Stripe (a
        retry, a crash, a lost answer): what it made is looked for before making anything."""
        key = pending.idempotency_key
        look_first = repeated
        match pending.effect:
            case TransferToOwner(owner_id, amount):
                owner = await self._owners.get(owner_id)
                if owner is None or not owner.ready or owner.stripe_account_id is None:
                    return OwnerNotReady()
                assert r.payment_intent_id is not None
                try:
                    transfer_id = await self._gateway.transfer(
                        payment_intent_id=r.payment_intent_id,
                        destination=owner.stripe_account_id,
                        amount=amount,
                        currency=r.tariff.currency,
                        group=r.id,
                        key=key,
                        look_first=look_first,
                    )
                except StripeRejected as rejected:
                    return TransferRefused(f"{rejected.code}: {rejected.message}")
                return Transferred(transfer_id, amount)
            case ReverseTransfer(transfer_id, amount, reason_key):
                try:
                    reversal_id = await self._gateway.reverse(
                        transfer_id, amount, key, look_first=look_first
                    )
                except StripeRejected as rejected:
                    return ReversalRefused(
                        reason_key, amount, f"{rejected.code}: {rejected.message}"
                    )
                return TransferReversed(reason_key, reversal_id, amount)
        raise AssertionError(f"not a transfer effect: {pending.effect!r}")
