"""What an API caller asked for, once validated: the input of the state machines."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LineItemSpec:
    name: str
    unit_amount: int
    quantity: int
    currency: str
    description: str | None = None
    product_metadata: dict[str, str] = field(default_factory=dict)
    tax_behavior: str = "unspecified"

    @property
    def amount(self) -> int:
        return self.unit_amount * self.quantity


@dataclass(frozen=True)
class PaymentIntentSpec:
    """`payment_intent_data`: copied onto the PaymentIntent the session creates."""

    # Stripe's default for new PaymentIntents; the project always asks for "manual".
    capture_method: str = "automatic_async"
    metadata: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    receipt_email: str | None = None
    statement_descriptor: str | None = None
    statement_descriptor_suffix: str | None = None
    transfer_group: str | None = None
    # Destination charges (Connect): `transfer_data[destination|amount]`,
    # `application_fee_amount`, `on_behalf_of`.
    transfer_destination: str | None = None
    transfer_amount: int | None = None
    application_fee_amount: int | None = None
    on_behalf_of: str | None = None


@dataclass(frozen=True)
class SessionSpec:
    line_items: tuple[LineItemSpec, ...]
    currency: str
    expires_at: int
    payment_intent: PaymentIntentSpec
    success_url: str | None = None
    cancel_url: str | None = None
    customer_email: str | None = None
    client_reference_id: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    locale: str | None = None
    submit_type: str | None = None
    billing_address_collection: str | None = None
    customer_creation: str = "if_required"
    payment_method_collection: str = "if_required"
    allowed_payment_method_types: tuple[str, ...] | None = None
    excluded_payment_method_types: tuple[str, ...] | None = None

    @property
    def amount_total(self) -> int:
        return sum(item.amount for item in self.line_items)
