"""The account: every object, the transitions between their states, and the events they emit.

All transitions are synchronous and run on the event loop, so each one is atomic with
respect to concurrent API calls, page submissions and clock ticks.

`Account` is the whole account, by Stripe resource family: the objects and events
(core), PaymentIntents (payment_intents), Checkout Sessions and the hosted page
(checkout_sessions, where the life of a payment is drawn), refunds and disputes
(refunds); the values they share are state_types'. What time does on its own is here.
Connect (connect, connect_money) and the state file (persistence) work on an Account.
"""

from __future__ import annotations

from .checkout_sessions import AUTHORIZATION_VALIDITY, CheckoutSessions
from .refunds import Refunds
from .state_types import AUTOMATIC


class Account(CheckoutSessions, Refunds):
    """One Stripe test-mode account (see AccountCore for what it is made with)."""

    # -- time

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
