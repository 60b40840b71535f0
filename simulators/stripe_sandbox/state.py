"""The account: every object, the transitions between their states, and the events they emit.

All transitions are synchronous and run on the event loop, so each one is atomic with
respect to concurrent API calls, page submissions and clock ticks.

Life of a payment (manual capture, as the project uses it):

    session open --customer pays--> PaymentIntent created (requires_payment_method)
        card declined       -> stays requires_payment_method, last_payment_error set,
                               session stays open (the customer may try another card)
        card asks for 3DS   -> requires_action, then authorised or back to
                               requires_payment_method
        card authorised     -> PaymentIntent requires_capture, session complete with
                               payment_status "unpaid" (nothing is paid until capture)
    requires_capture --capture--> succeeded (a partial capture releases the rest)
                     --cancel / 7 days / elsewhere--> canceled (the hold is released)
    session open --expires_at passes or /expire--> expired (its PaymentIntent, if any,
                                                   is canceled)
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from . import money, resources
from .cards import Card, CardDetails
from .destination import check_capture
from .errors import StripeError, invalid_request, resource_missing, unexpected_state
from .ledger import CanceledBy, Ledger, entry
from .params import merge_metadata
from .records import Records
from .resources import JSON, new_id, new_request_id
from .specs import SessionSpec

log = logging.getLogger("simulators.stripe_sandbox")

# Card authorisations not captured within 7 days are released by the issuer.
AUTHORIZATION_VALIDITY = 7 * 24 * 3600
DISPUTE_RESPONSE_WINDOW = 7 * 24 * 3600
# Fields whose string id `expand[]` may replace by the object.
EXPANDABLE = frozenset(
    {"payment_intent", "latest_charge", "charge", "payment_method", "balance_transaction"}
)
CANCELABLE = (
    "requires_payment_method, requires_capture, requires_confirmation, requires_action, processing"
)
AUTHENTICATION_FAILED = (
    "We are unable to authenticate your payment method. Please choose a different payment "
    "method and try again."
)


class Clock:
    """The sandbox's time: the wall clock plus whatever tests have advanced it by."""

    def __init__(self) -> None:
        self.offset = 0

    def now(self) -> int:
        return int(time.time()) + self.offset


@dataclass(frozen=True)
class Origin:
    """What caused a change; it becomes the `request` of the events it emits.

    Customer actions on the hosted page and automatic changes have no API request.
    """

    request_id: str | None = None
    idempotency_key: str | None = None


AUTOMATIC = Origin()


@dataclass
class Checkout:
    """What a Checkout Session was created from, beyond the session object."""

    spec: SessionSpec
    line_items: list[JSON]


@dataclass
class IntentBook:
    """The bookkeeping of one PaymentIntent beyond the object itself."""

    ledger: Ledger
    authorized_at: int | None = None
    # The card waiting for the customer to pass (or fail) 3D Secure, and its method id.
    pending: tuple[Card, str] | None = None


@dataclass(frozen=True)
class PaymentOutcome:
    status: Literal["authorized", "declined", "requires_action", "closed"]
    message: str | None = None


class Account:
    """One Stripe test-mode account.

    `page_url(session_id)` gives the hosted page's address; `publish(event)` hands every
    new event to webhook delivery. `on_capture` and `on_refund` are Connect's part of a
    capture and a refund (`connect_money`): they run before the events are emitted.
    """

    def __init__(
        self,
        clock: Clock,
        api_version: str,
        page_url: Callable[[str], str],
        publish: Callable[[JSON], None],
    ) -> None:
        self.clock = clock
        self.api_version = api_version
        self.page_url = page_url
        self.publish = publish
        # Every object by id (ids are unique across types), events included. `Records`
        # note what is stored or looked up by id, for the state file: change a record
        # reached by iterating only after looking it up by id (see `records`).
        self.objects: Records[JSON] = Records()
        self.events: list[JSON] = []
        self.checkouts: Records[Checkout] = Records()
        self.books: Records[IntentBook] = Records()
        # Connect's part of a capture and of a refund (see `connect`): set by `Connect`.
        self.on_capture: Callable[[JSON, JSON, Origin], None] = lambda intent, charge, o: None
        self.on_refund: Callable[[JSON, JSON, bool, bool, Origin], None] = (
            lambda charge, refund, reverse, fee, o: None
        )

    # -- reading ----------------------------------------------------------------------

    def retrieve(self, object_name: str, object_id: str, param: str) -> JSON:
        obj = self.objects.get(object_id)
        if obj is None or obj["object"] != object_name:
            raise resource_missing(object_name, object_id, param)
        return obj

    def expand(self, obj: JSON, paths: Iterable[str]) -> JSON:
        """A copy of `obj` with the ids at the dotted `paths` replaced by their objects."""
        paths = list(paths)
        if not paths:
            return obj
        result = copy.deepcopy(obj)
        for path in paths:
            self._expand(result, path.split("."), path)
        return result

    def _expand(self, node: JSON, parts: list[str], path: str) -> None:
        name, rest = parts[0], parts[1:]
        if node.get("object") == "list" and name == "data":
            for item in node["data"]:
                if rest:
                    self._expand(item, rest, path)
            return
        if name == "line_items" and node.get("object") == "checkout.session":
            items = copy.deepcopy(self.checkouts[node["id"]].line_items)
            node[name] = resources.list_object(
                items, f"/v1/checkout/sessions/{node['id']}/line_items"
            )
        elif name in EXPANDABLE and name in node:
            if isinstance(node[name], str):
                target = self.objects.get(node[name])
                if target is None:
                    raise _not_expandable(path)
                node[name] = copy.deepcopy(target)
        elif not (rest and isinstance(node.get(name), dict)):
            # Only ids can be expanded; a path may go through objects already inline.
            raise _not_expandable(path)
        value = node[name]
        if rest and isinstance(value, dict):
            self._expand(value, rest, path)

    def ledger(self) -> dict[str, dict[str, Any]]:
        return {
            intent_id: entry(book.ledger, self.objects.peek(intent_id))
            for intent_id, book in self.books.items()
        }

    # -- Checkout Sessions --------------------------------------------------------------

    def create_session(self, spec: SessionSpec) -> JSON:
        now = self.clock.now()
        session_id = new_id("cs_test_", 58)
        session = resources.checkout_session(
            spec, session_id=session_id, created=now, url=self.page_url(session_id)
        )
        items = [resources.line_item(item, created=now) for item in spec.line_items]
        self.objects[session_id] = session
        self.checkouts[session_id] = Checkout(spec, items)
        log.info(
            "checkout session %s created: %s, expires at %d",
            session_id,
            money.display(spec.amount_total, spec.currency),
            spec.expires_at,
        )
        return session

    def line_items(self, session_id: str) -> list[JSON]:
        return self.checkouts[session_id].line_items

    def expire_session(self, session_id: str, origin: Origin) -> JSON:
        session = self.retrieve("checkout.session", session_id, "session")
        if session["status"] != "open":
            raise invalid_request(
                'Only Checkout Sessions with a status in ["open"] can be expired. This '
                f"Checkout Session has a status of `{session['status']}`.",
                saved=True,
            )
        self._expire(session, origin)
        return session

    def _expire(self, session: JSON, origin: Origin) -> None:
        session["status"] = "expired"
        session["url"] = None
        intent_id = session["payment_intent"]
        if intent_id is not None:
            intent = self.objects[intent_id]
            if intent["status"] in ("requires_payment_method", "requires_action"):
                self._cancel(intent, "abandoned", origin, by="session_expired")
        log.info("checkout session %s expired", session["id"])
        self._emit("checkout.session.expired", session, origin)

    # -- the hosted page: the customer pays ---------------------------------------------

    def attempt_payment(self, session_id: str, typed: CardDetails) -> PaymentOutcome:
        card = typed.kept()
        session = self.objects[session_id]
        if session["status"] != "open":
            return PaymentOutcome("closed")
        intent = self._intent_for(session)
        # A new card replaces any card still waiting for 3D Secure.
        self.books[intent["id"]].pending = None
        method = self._payment_method(card)
        log.info(
            "payment attempt on %s with %s ****%s", intent["id"], card.profile.brand, card.last4
        )
        profile = card.profile
        if profile.result == "authenticate":
            intent.update(
                status="requires_action",
                payment_method=method["id"],
                next_action={
                    "type": "use_stripe_sdk",
                    "use_stripe_sdk": {"type": "three_d_secure_redirect", "source": method["id"]},
                },
            )
            self.books[intent["id"]].pending = (card, method["id"])
            self._emit("payment_intent.requires_action", intent, AUTOMATIC)
            return PaymentOutcome("requires_action")
        if profile.result == "decline":
            self._decline(intent, card, method)
            return PaymentOutcome("declined", profile.message)
        self._authorize(session, intent, card, method["id"], authenticated=False)
        return PaymentOutcome("authorized")

    def authenticate(self, session_id: str, success: bool) -> PaymentOutcome:
        """The customer's answer on the 3D Secure page."""
        session = self.objects[session_id]
        intent_id = session["payment_intent"]
        book = self.books.get(intent_id) if intent_id else None
        if session["status"] != "open" or book is None or book.pending is None:
            return PaymentOutcome("closed")
        intent = self.objects[intent_id]
        card, method_id = book.pending
        book.pending = None
        if success:
            self._authorize(session, intent, card, method_id, authenticated=True)
            return PaymentOutcome("authorized")
        intent.update(
            status="requires_payment_method",
            next_action=None,
            payment_method=None,
            last_payment_error={
                "code": "payment_intent_authentication_failure",
                "doc_url": "https://stripe.com/docs/error-codes/payment-intent-authentication-failure",
                "message": AUTHENTICATION_FAILED,
                "payment_method": copy.deepcopy(self.objects[method_id]),
                "type": "invalid_request_error",
            },
        )
        log.info("3D Secure failed on %s", intent_id)
        self._emit("payment_intent.payment_failed", intent, AUTOMATIC)
        return PaymentOutcome("declined", AUTHENTICATION_FAILED)

    def _intent_for(self, session: JSON) -> JSON:
        if session["payment_intent"] is not None:
            return self.objects[session["payment_intent"]]
        spec = self.checkouts[session["id"]].spec
        intent_id = new_id("pi_3")
        intent = resources.payment_intent(spec, intent_id=intent_id, created=self.clock.now())
        self.objects[intent_id] = intent
        self.books[intent_id] = IntentBook(Ledger(intent_id, spec.currency))
        session["payment_intent"] = intent_id
        self._emit("payment_intent.created", intent, AUTOMATIC)
        return intent

    def _payment_method(self, card: Card) -> JSON:
        method_id = new_id("pm_1")
        method = resources.payment_method(card, method_id=method_id, created=self.clock.now())
        self.objects[method_id] = method
        return method

    def _decline(self, intent: JSON, card: Card, method: JSON) -> None:
        profile = card.profile
        assert profile.code is not None and profile.decline_code is not None
        charge = resources.charge(
            intent,
            card,
            charge_id=new_id("ch_3"),
            created=self.clock.now(),
            method_id=method["id"],
            outcome=resources.outcome_declined(profile.decline_code),
            authenticated=False,
        )
        self.objects[charge["id"]] = charge
        error: JSON = {
            "charge": charge["id"],
            "code": profile.code,
            "decline_code": profile.decline_code,
            "doc_url": "https://stripe.com/docs/error-codes/" + profile.code.replace("_", "-"),
            "message": profile.message,
            "payment_method": copy.deepcopy(method),
            "type": "card_error",
        }
        if profile.code == "incorrect_cvc":
            error["param"] = "cvc"
        # A failed attempt detaches the card: the customer must supply another one.
        intent.update(
            status="requires_payment_method",
            latest_charge=charge["id"],
            payment_method=None,
            next_action=None,
            last_payment_error=error,
        )
        log.info("card ****%s declined (%s) on %s", card.last4, profile.decline_code, intent["id"])
        self._emit("charge.failed", charge, AUTOMATIC)
        self._emit("payment_intent.payment_failed", intent, AUTOMATIC)

    def _authorize(
        self, session: JSON, intent: JSON, card: Card, method_id: str, authenticated: bool
    ) -> None:
        now = self.clock.now()
        amount = intent["amount"]
        charge = resources.charge(
            intent,
            card,
            charge_id=new_id("ch_3"),
            created=now,
            method_id=method_id,
            outcome=resources.outcome_authorized(),
            authenticated=authenticated,
        )
        self.objects[charge["id"]] = charge
        book = self.books[intent["id"]]
        book.authorized_at = now
        book.ledger.amount_authorized = amount
        intent.update(
            latest_charge=charge["id"],
            payment_method=method_id,
            last_payment_error=None,
            next_action=None,
        )
        session.update(
            status="complete",
            url=None,
            customer_details=resources.customer_details(card.email, card.name),
            collected_information={
                "business_name": None,
                "individual_name": None,
                "shipping_details": None,
            },
        )
        if intent["capture_method"] == "manual":
            charge["payment_method_details"]["card"]["capture_before"] = (
                now + AUTHORIZATION_VALIDITY
            )
            intent.update(status="requires_capture", amount_capturable=amount)
            log.info(
                "%s authorised: %s held", intent["id"], money.display(amount, intent["currency"])
            )
            self._emit("charge.succeeded", charge, AUTOMATIC)
            self._emit("payment_intent.amount_capturable_updated", intent, AUTOMATIC)
        else:
            charge.update(
                captured=True, amount_captured=amount, balance_transaction=new_id("txn_3")
            )
            intent.update(status="succeeded", amount_received=amount)
            book.ledger.amount_captured = amount
            book.ledger.captured_by = "automatic"
            session["payment_status"] = "paid"
            self.on_capture(intent, charge, AUTOMATIC)
            log.info("%s paid: %s", intent["id"], money.display(amount, intent["currency"]))
            self._emit("charge.succeeded", charge, AUTOMATIC)
            self._emit("payment_intent.succeeded", intent, AUTOMATIC)
        self._emit("checkout.session.completed", session, AUTOMATIC)

    # -- PaymentIntents -------------------------------------------------------------------

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

    # -- Refunds --------------------------------------------------------------------------

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
        if intent_id is not None:
            intent = self.retrieve("payment_intent", intent_id, "payment_intent")
            if intent["status"] != "succeeded":
                raise invalid_request(
                    "This PaymentIntent does not have a successful charge to refund.",
                    param="payment_intent",
                    saved=True,
                )
            charge = self.objects[intent["latest_charge"]]
        else:
            assert charge_id is not None
            charge = self.retrieve("charge", charge_id, "charge")
            if not charge["captured"]:
                raise invalid_request(
                    f"Charge {charge_id} has not been captured: cancel its PaymentIntent to "
                    "release the authorization.",
                    param="charge",
                    saved=True,
                )
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

    # -- disputes -------------------------------------------------------------------------

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

    # -- time -----------------------------------------------------------------------------

    def sweep(self) -> bool:
        """What Stripe does on its own as time passes: expire sessions and authorisations.
        Whether anything changed."""
        before = len(self.events)
        now = self.clock.now()
        # The scans only read; what they find to change is looked up by id.
        expired = [
            obj["id"]
            for obj in self.objects.values()
            if obj["object"] == "checkout.session"
            and obj["status"] == "open"
            and obj["expires_at"] <= now
        ]
        for session_id in expired:
            self._expire(self.objects[session_id], AUTOMATIC)
        lapsed = [
            intent_id
            for intent_id, book in self.books.items()
            if book.authorized_at is not None
            and book.authorized_at + AUTHORIZATION_VALIDITY <= now
            and self.objects.peek(intent_id)["status"] == "requires_capture"
        ]
        for intent_id in lapsed:
            self._cancel(self.objects[intent_id], "automatic", AUTOMATIC, by="automatic")
        return len(self.events) != before

    # -- events ---------------------------------------------------------------------------

    def _emit(
        self,
        event_type: str,
        obj: JSON,
        origin: Origin,
        *,
        previous_attributes: JSON | None = None,
        account: str | None = None,
    ) -> None:
        """A new event about `obj`; `account` makes it a Connect event of that account."""
        event = resources.event(
            event_type,
            # The event carries the object as it is now, not as it will become.
            copy.deepcopy(obj),
            event_id=new_id("evt_3"),
            created=self.clock.now(),
            api_version=self.api_version,
            request_id=origin.request_id,
            idempotency_key=origin.idempotency_key,
            previous_attributes=previous_attributes,
            account=account,
        )
        self.events.append(event)
        self.objects[event["id"]] = event
        log.debug("event %s %s", event["id"], event_type)
        self.publish(event)

    emit = _emit


def _not_expandable(path: str) -> StripeError:
    return invalid_request(f"This property cannot be expanded ({path}).", param="expand")


def _refund_error(message: str, code: str, *, param: str | None = None) -> StripeError:
    return invalid_request(message, code=code, param=param, saved=True)
