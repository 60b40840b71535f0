"""Checkout Sessions and the hosted page: a session opened, the customer paying on it (a card
declined, asking for 3D Secure, or authorised), and a session expired.

Life of a payment (manual capture, as the project uses it):

    session open --customer pays--> PaymentIntent created (requires_payment_method)
        card declined       -> stays requires_payment_method, last_payment_error set,
                               session stays open (the customer may try another card)
        card asks for 3DS   -> requires_action, then authorised or back to
                               requires_payment_method
        card authorised     -> PaymentIntent requires_capture, session complete with
                               payment_status "unpaid" (nothing is paid until capture)
    session open --expires_at passes or /expire--> expired (its PaymentIntent, if any,
                                                   is canceled)

What happens to the PaymentIntent afterwards is payment_intents'.
"""

from __future__ import annotations

import copy
import logging

from . import money, resources
from .cards import Card, CardDetails
from .errors import invalid_request
from .ledger import Ledger
from .payment_intents import PaymentIntents
from .resources import JSON, new_id
from .specs import SessionSpec
from .state_types import AUTOMATIC, Checkout, IntentBook, Origin, PaymentOutcome

log = logging.getLogger("simulators.stripe_sandbox")

# Card authorisations not captured within 7 days are released by the issuer.
AUTHORIZATION_VALIDITY = 7 * 24 * 3600
AUTHENTICATION_FAILED = (
    "We are unable to authenticate your payment method. Please choose a different payment "
    "method and try again."
)


class CheckoutSessions(PaymentIntents):
    """The account's Checkout Sessions and the payments made on their hosted pages."""

    # -- Checkout Sessions

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

    # -- the hosted page: the customer pays

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
