"""PaymentIntents after authorisation: capture (whole or partial) and cancel.

A PaymentIntent in `requires_capture` is captured once, for at most what is capturable,
at least the currency's minimum and in its steps (Stripe's messages and codes), the rest
released; or it is canceled, by the API, the Dashboard or the issuer ("elsewhere"), or
automatically when the authorisation lapses, the hold released. The ledger counts the
requests and what moved (`ledger`), Connect takes its part of a capture (`on_capture`),
and the events follow. Any other status is refused with Stripe's error, nothing changed.
"""

from __future__ import annotations

import copy
import logging
from typing import Literal

from . import money
from .core import AccountCore
from .destination import check_capture
from .errors import invalid_request, unexpected_state
from .ledger import CanceledBy
from .params import merge_metadata
from .resources import JSON, new_id, new_request_id
from .state_types import Origin

log = logging.getLogger("simulators.stripe_sandbox")

CANCELABLE = (
    "requires_payment_method, requires_capture, requires_confirmation, requires_action, processing"
)


class PaymentIntents(AccountCore):
    """The account's PaymentIntents: capture and cancel."""

    def capture(
        self,
        intent_id: str,
        amount_to_capture: int | None,
        metadata: dict[str, str] | None,
        origin: Origin,
        *,
        by: Literal["api", "dashboard"] = "api",
        application_fee_amount: int | None = None,
        transfer_amount: int | None = None,
    ) -> JSON:
        intent = self.retrieve("payment_intent", intent_id, "intent")
        ledger = self.books[intent_id].ledger
        if by == "api":
            ledger.capture_requests += 1
        amount = _capture_amount(intent, amount_to_capture)
        capturable, currency = intent["amount_capturable"], intent["currency"]
        check_capture(intent, amount, application_fee_amount, transfer_amount)
        if application_fee_amount is not None:
            intent["application_fee_amount"] = application_fee_amount
        if transfer_amount is not None:
            intent["transfer_data"]["amount"] = transfer_amount
        released = capturable - amount
        charge = self.objects[intent["latest_charge"]]
        charge.update(
            captured=True,
            amount_captured=amount,
            balance_transaction=new_id("txn_3"),
            # Stripe shows the uncaptured rest of a partial capture as refunded.
            amount_refunded=charge["amount_refunded"] + released,
        )
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        intent.update(
            status="succeeded",
            amount_received=amount,
            amount_capturable=0,
            metadata=merge_metadata(intent["metadata"], metadata),
        )
        ledger.amount_captured += amount
        ledger.amount_released += released
        ledger.captured_by = by
        if by == "api":
            ledger.captures += 1
        log.info(
            "%s captured %s, released %s",
            intent_id,
            money.display(amount, currency),
            money.display(released, currency),
        )
        self.on_capture(intent, charge, origin)
        self._emit("charge.captured", charge, origin)
        self._emit("payment_intent.succeeded", intent, origin)
        return intent

    def cancel(self, intent_id: str, reason: str | None, origin: Origin) -> JSON:
        intent = self.retrieve("payment_intent", intent_id, "intent")
        self.books[intent_id].ledger.cancel_requests += 1
        status = intent["status"]
        if status in ("succeeded", "canceled"):
            raise unexpected_state(
                f"You cannot cancel this PaymentIntent because it has a status of {status}. "
                f"Only a PaymentIntent with one of the following statuses may be canceled: "
                f"{CANCELABLE}.",
                extra={"payment_intent": copy.deepcopy(intent)},
            )
        if status != "requires_capture":
            # Every sandbox PaymentIntent belongs to a Checkout Session.
            raise unexpected_state(
                "You can only cancel the PaymentIntent for a Checkout Session when it has a "
                "status of requires_capture. Expire the Checkout Session instead.",
                extra={"payment_intent": copy.deepcopy(intent)},
            )
        self._cancel(intent, reason, origin, by="api")
        return intent

    def cancel_elsewhere(self, intent_id: str, reason: str | None) -> JSON:
        """The hold is released outside the API calls under test (Dashboard, issuer)."""
        intent = self.retrieve("payment_intent", intent_id, "intent")
        if intent["status"] != "requires_capture":
            raise unexpected_state(
                f"Only an authorised PaymentIntent can be canceled elsewhere; {intent_id} has "
                f"a status of {intent['status']}."
            )
        self._cancel(intent, reason, Origin(new_request_id()), by="elsewhere")
        return intent

    def _cancel(
        self,
        intent: JSON,
        reason: str | None,
        origin: Origin,
        *,
        by: CanceledBy,
    ) -> None:
        ledger = self.books[intent["id"]].ledger
        was_held = intent["status"] == "requires_capture"
        released = intent["amount_capturable"]
        intent.update(
            status="canceled",
            canceled_at=self.clock.now(),
            cancellation_reason=reason,
            amount_capturable=0,
            next_action=None,
        )
        ledger.canceled_by = by
        if by == "api":
            ledger.cancels += 1
        if was_held:
            # Stripe marks a released authorisation as refunded on the charge.
            charge = self.objects[intent["latest_charge"]]
            charge["amount_refunded"] += released
            charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
            ledger.amount_released += released
            if by == "automatic":
                self._emit("charge.expired", charge, origin)
        log.info("%s canceled (%s, by %s)", intent["id"], reason, by)
        self._emit("payment_intent.canceled", intent, origin)


def _capture_amount(intent: JSON, amount_to_capture: int | None) -> int:
    """What a capture of `intent` takes (all that is capturable unless told), or Stripe's
    error for a status or an amount it refuses."""
    if intent["status"] != "requires_capture":
        raise unexpected_state(
            "This PaymentIntent could not be captured because it has a status of "
            f"{intent['status']}. Only a PaymentIntent with one of the following statuses "
            "may be captured: requires_capture.",
            extra={"payment_intent": copy.deepcopy(intent)},
        )
    capturable, currency = intent["amount_capturable"], intent["currency"]
    amount = capturable if amount_to_capture is None else amount_to_capture
    if amount > capturable:
        raise invalid_request(
            f"The amount to capture ({amount}) must be less than or equal to the "
            f"PaymentIntent's amount_capturable ({capturable}).",
            param="amount_to_capture",
            code="amount_too_large",
            saved=True,
        )
    minimum = money.minimum_charge(currency)
    if amount < minimum:
        raise invalid_request(
            f"Amount must be at least {money.in_message(minimum, currency)}",
            param="amount_to_capture",
            code="amount_too_small",
            saved=True,
        )
    if amount % money.step(currency):
        error = money.step_error(currency, "amount_to_capture")
        error.saved = True
        raise error
    return amount
