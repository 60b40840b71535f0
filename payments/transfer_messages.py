"""The owner's share in the state machine's vocabulary: the events that report a transfer's
fate and the effects that move the money to (and back from) the owner's connected account.
Plain frozen values, encoded as they are into the outbox (`payments.codec`)."""

from __future__ import annotations

from dataclasses import dataclass

# Where the owner's share of a captured payment stands (`Reservation.transfer_status`).
ACCRUED = "accrued"  # owed to the owner; their account cannot take it yet
TRANSFERRING = "transferring"  # a TransferToOwner effect is under way
TRANSFERRED = "transferred"  # at the owner's account (less any reversals)
REFUSED = "refused"  # Stripe refused the transfer: the operator is alerted
NOTHING = "nothing"  # the owner's share came to 0: nothing to move


# --- Events.


@dataclass(frozen=True)
class OwnerNotReady:
    """The owner's connected account cannot receive transfers yet: the share accrues."""


@dataclass(frozen=True)
class OwnerReady:
    """The owner's account became ready: an accrued (or refused) share is transferred."""


@dataclass(frozen=True)
class Transferred:
    transfer_id: str  # Stripe's tr_ id
    amount: int


@dataclass(frozen=True)
class TransferRefused:
    reason: str


@dataclass(frozen=True)
class TransferReversed:
    key: str  # what the reversal was for: a refund id, or the transfer id (a catch-up)
    reversal_id: str  # Stripe's trr_ id
    amount: int


@dataclass(frozen=True)
class ReversalRefused:
    key: str
    amount: int
    reason: str


# --- Effects.


@dataclass(frozen=True)
class TransferToOwner:
    """Move `amount` of the captured charge to the owner's account (a Stripe Transfer with
    `source_transaction` the charge and `transfer_group` the reservation id)."""

    owner_id: str
    amount: int
    attempt: int = 1  # a transfer asked again after OwnerNotReady or a refusal


@dataclass(frozen=True)
class ReverseTransfer:
    """Take `amount` back from the owner's transfer, for a refund (`key`: the refund id) or
    for refunds that came while the transfer was under way (`key`: the transfer id)."""

    transfer_id: str
    amount: int
    key: str
