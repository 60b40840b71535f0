"""Stripe's test card numbers and the checks the hosted page makes on what was typed.

Only the numbers listed here are accepted, each with the outcome Stripe documents for it
(https://docs.stripe.com/testing). Card numbers never leave this module whole: the
account keeps a `Card` (brand, last four digits, fingerprint), never the number or CVC.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

Result = Literal["authorize", "decline", "authenticate"]


@dataclass(frozen=True)
class CardProfile:
    """How the issuer answers for one test card."""

    brand: str
    funding: str
    result: Result
    code: str | None = None
    decline_code: str | None = None
    message: str | None = None
    country: str = "US"


_DECLINED = "Your card was declined."

CARDS: dict[str, CardProfile] = {
    "4242424242424242": CardProfile("visa", "credit", "authorize"),
    "4000056655665556": CardProfile("visa", "debit", "authorize"),
    "5555555555554444": CardProfile("mastercard", "credit", "authorize"),
    "378282246310005": CardProfile("amex", "credit", "authorize"),
    "4000000000000002": CardProfile(
        "visa", "credit", "decline", "card_declined", "generic_decline", _DECLINED
    ),
    "4000000000009995": CardProfile(
        "visa", "credit", "decline", "card_declined", "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    "4000000000009987": CardProfile(
        "visa", "credit", "decline", "card_declined", "lost_card", _DECLINED
    ),
    "4000000000009979": CardProfile(
        "visa", "credit", "decline", "card_declined", "stolen_card", _DECLINED
    ),
    "4000000000000069": CardProfile(
        "visa", "credit", "decline", "expired_card", "expired_card", "Your card has expired."
    ),
    "4000000000000127": CardProfile(
        "visa", "credit", "decline", "incorrect_cvc", "incorrect_cvc",
        "Your card's security code is incorrect.",
    ),
    "4000000000000119": CardProfile(
        "visa", "credit", "decline", "processing_error", "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
    "4000002500003155": CardProfile("visa", "credit", "authenticate"),
    "4000000000003220": CardProfile("visa", "credit", "authenticate"),
}  # fmt: skip


@dataclass(frozen=True, repr=False)
class CardDetails:
    """What the customer typed on the hosted page, checked."""

    number: str
    exp_month: int
    exp_year: int
    cvc: str
    name: str
    email: str
    profile: CardProfile

    @property
    def last4(self) -> str:
        return self.number[-4:]

    @property
    def fingerprint(self) -> str:
        # Stable per card number, like Stripe's, without revealing the number.
        return hashlib.sha256(self.number.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"CardDetails({self.profile.brand} ****{self.last4})"

    def kept(self) -> Card:
        """What the account keeps of the card: no number, no security code."""
        return Card(
            last4=self.last4,
            fingerprint=self.fingerprint,
            exp_month=self.exp_month,
            exp_year=self.exp_year,
            name=self.name,
            email=self.email,
            profile=self.profile,
        )


@dataclass(frozen=True)
class Card:
    """A card as the account holds it once typed: safe to keep in objects and on disk."""

    last4: str
    fingerprint: str
    exp_month: int
    exp_year: int
    name: str
    email: str
    profile: CardProfile


class CardInputError(ValueError):
    """What the page shows next to the form; `field` is the input's name."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_EXPIRY = re.compile(r"^\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*$")


def normalize(number: str) -> str:
    return re.sub(r"[\s-]", "", number)


def read_card(form: Mapping[str, str], now: int) -> CardDetails:
    """Check the hosted page's fields, with the messages Stripe's page shows."""
    email = form.get("email", "").strip()
    if not email:
        raise CardInputError("Your email address is incomplete.", "email")
    if not _EMAIL.match(email):
        raise CardInputError("Your email address is invalid.", "email")

    number = normalize(form.get("cardNumber", ""))
    if not number:
        raise CardInputError("Your card number is incomplete.", "cardNumber")
    profile = CARDS.get(number)
    if profile is None:
        raise CardInputError("Your card number is invalid.", "cardNumber")

    expiry = _EXPIRY.match(form.get("cardExpiry", ""))
    if expiry is None or not 1 <= int(expiry.group(1)) <= 12:
        raise CardInputError("Your card's expiration date is incomplete.", "cardExpiry")
    month, year = int(expiry.group(1)), int(expiry.group(2))
    if year < 100:
        year += 2000
    today = datetime.fromtimestamp(now, UTC)
    if year < today.year:
        raise CardInputError("Your card's expiration year is in the past.", "cardExpiry")
    if (year, month) < (today.year, today.month):
        raise CardInputError("Your card's expiration date is in the past.", "cardExpiry")

    cvc = form.get("cardCvc", "").strip()
    if not cvc.isdigit() or len(cvc) != (4 if profile.brand == "amex" else 3):
        raise CardInputError("Your card's security code is incomplete.", "cardCvc")

    name = form.get("billingName", "").strip()
    if not name:
        raise CardInputError("Your cardholder name is incomplete.", "billingName")

    return CardDetails(number, month, year, cvc, name, email, profile)
