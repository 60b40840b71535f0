"""Money back after a capture: refunds, and disputes.

A refund is of a captured charge (by PaymentIntent or charge id), never of a disputed one,
never more than is left unrefunded, in the currency's steps; Connect takes its part
(`on_refund`: reversing the transfer, refunding the application fee) before the events.
A refund's metadata may change afterwards (`refund.updated` only when it did). A dispute
(made from the Dashboard) opens on what is left of a captured charge.
"""

from __future__ import annotations

import logging

from . import money, resources
from .core import AccountCore
from .errors import StripeError, invalid_request, unexpected_state
from .params import merge_metadata
from .resources import JSON, new_id, new_request_id
from .state_types import Origin

log = logging.getLogger("simulators.stripe_sandbox")

DISPUTE_RESPONSE_WINDOW = 7 * 24 * 3600


class Refunds(AccountCore):
    """The account's refunds and disputes."""

    def create_refund(
        self,
        *,
        intent_id: str | None,
        charge_id: str | None,
        amount: int | None,
        reason: str | None,
        metadata: dict[str, str],
        origin: Origin,
        reverse_transfer: bool = False,
        refund_application_fee: bool = False,
    ) -> JSON:
        charge = self._refundable_charge(intent_id, charge_id)
        amount = _refund_amount(charge, amount)
        currency = charge["currency"]
        refund = resources.refund(
            charge,
            refund_id=new_id("re_3"),
            created=self.clock.now(),
            amount=amount,
            reason=reason,
            metadata=metadata,
        )
        self.objects[refund["id"]] = refund
        self.on_refund(charge, refund, reverse_transfer, refund_application_fee, origin)
        previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
        charge["refunds"]["data"].insert(0, refund)
        charge["refunds"]["total_count"] += 1
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        self.books[charge["payment_intent"]].ledger.amount_refunded += amount
        log.info("%s refunded %s", charge["payment_intent"], money.display(amount, currency))
        self._emit("refund.created", refund, origin)
        self._emit("charge.refunded", charge, origin, previous_attributes=previous)
        return refund

    def _refundable_charge(self, intent_id: str | None, charge_id: str | None) -> JSON:
        """The captured charge a refund names, by its PaymentIntent or by its own id."""
        if intent_id is not None:
            intent = self.retrieve("payment_intent", intent_id, "payment_intent")
            if intent["status"] != "succeeded":
                raise invalid_request(
                    "This PaymentIntent does not have a successful charge to refund.",
                    param="payment_intent",
                    saved=True,
                )
            return self.objects[intent["latest_charge"]]
        assert charge_id is not None
        charge = self.retrieve("charge", charge_id, "charge")
        if not charge["captured"]:
            raise invalid_request(
                f"Charge {charge_id} has not been captured: cancel its PaymentIntent to "
                "release the authorization.",
                param="charge",
                saved=True,
            )
        return charge

    def update_refund(
        self, refund_id: str, metadata: dict[str, str] | None, origin: Origin
    ) -> JSON:
        refund = self.retrieve("refund", refund_id, "refund")
        if metadata is not None:
            previous = {"metadata": dict(refund["metadata"])}
            refund["metadata"] = merge_metadata(refund["metadata"], metadata)
            if refund["metadata"] != previous["metadata"]:
                self._emit("refund.updated", refund, origin, previous_attributes=previous)
        return refund

    # -- disputes

    def create_dispute(self, intent_id: str, reason: str) -> JSON:
        intent = self.retrieve("payment_intent", intent_id, "intent")
        if intent["status"] != "succeeded":
            raise unexpected_state(
                f"Only a captured PaymentIntent can be disputed; {intent_id} has a status of "
                f"{intent['status']}."
            )
        charge = self.objects[intent["latest_charge"]]
        refunded = sum(r["amount"] for r in charge["refunds"]["data"])
        now = self.clock.now()
        dispute = resources.dispute(
            charge,
            dispute_id=new_id("dp_1"),
            created=now,
            amount=charge["amount_captured"] - refunded,
            reason=reason,
            due_by=now + DISPUTE_RESPONSE_WINDOW,
        )
        self.objects[dispute["id"]] = dispute
        charge["disputed"] = True
        self.books[intent_id].ledger.amount_disputed += dispute["amount"]
        log.info("%s disputed (%s)", intent_id, reason)
        self._emit("charge.dispute.created", dispute, Origin(new_request_id()))
        return dispute


def _refund_error(message: str, code: str, *, param: str | None = None) -> StripeError:
    return invalid_request(message, code=code, param=param, saved=True)


def _refund_amount(charge: JSON, amount: int | None) -> int:
    """What a refund of `charge` returns (all that is left unless told), or Stripe's error
    for a charge or an amount it refuses."""
    if charge["disputed"]:
        raise _refund_error(
            f"Charge {charge['id']} has been charged back; cannot issue a refund.",
            "charge_disputed",
        )
    currency = charge["currency"]
    refunded = sum(r["amount"] for r in charge["refunds"]["data"])
    refundable = charge["amount_captured"] - refunded
    if refundable <= 0:
        raise _refund_error(
            f"Charge {charge['id']} has already been refunded.", "charge_already_refunded"
        )
    if amount is not None and amount % money.step(currency):
        error = money.step_error(currency, "amount")
        error.saved = True
        raise error
    amount = refundable if amount is None else amount
    if amount > refundable:
        raise _refund_error(
            f"Refund amount ({money.display(amount, currency)}) is greater than unrefunded "
            f"amount on charge ({money.display(refundable, currency)})",
            "amount_too_large",
            param="amount",
        )
    return amount
