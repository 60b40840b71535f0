"""The /v1 endpoints: read and check the parameters, then run the transition on the account.

Parameters are checked as Stripe checks them: unknown names are refused with
`parameter_unknown` (the SDK 16 create params have `allowed_payment_method_types`, so
the removed `payment_method_types` is refused too), and real Stripe parameters that the
sandbox does not model are refused by name rather than silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

from . import money
from .destination import check_destination_charge, destination_fields
from .errors import invalid_request, invalid_value, resource_missing, unsupported_param
from .listing import Listings
from .params import Reader
from .resources import JSON
from .specs import LineItemSpec, PaymentIntentSpec, SessionSpec
from .state import Account
from .state_types import Origin

SESSION_MIN_LIFETIME = 30 * 60
SESSION_MAX_LIFETIME = 24 * 3600

_SESSION_SUPPORTED = [
    "allowed_payment_method_types",
    "billing_address_collection",
    "cancel_url",
    "client_reference_id",
    "currency",
    "customer_creation",
    "customer_email",
    "excluded_payment_method_types",
    "expand",
    "expires_at",
    "line_items",
    "locale",
    "metadata",
    "mode",
    "payment_intent_data",
    "payment_method_collection",
    "submit_type",
    "success_url",
    "ui_mode",
]
# The languages Checkout is shown in (Stripe's `locale` parameter).
CHECKOUT_LOCALES = (
    "auto", "bg", "cs", "da", "de", "el", "en", "en-GB", "es", "es-419", "et", "fi", "fil",
    "fr", "fr-CA", "hr", "hu", "id", "it", "ja", "ko", "lt", "lv", "ms", "mt", "nb", "nl",
    "pl", "pt", "pt-BR", "ro", "ru", "sk", "sl", "sv", "th", "tr", "vi", "zh", "zh-HK",
    "zh-TW",
)  # fmt: skip
_SESSION_UNSUPPORTED = [
    "adaptive_pricing",
    "after_expiration",
    "allow_promotion_codes",
    "automatic_tax",
    "branding_settings",
    "consent_collection",
    "custom_fields",
    "custom_text",
    "customer",
    "customer_account",
    "customer_update",
    "discounts",
    "integration_identifier",
    "invoice_creation",
    "managed_payments",
    "name_collection",
    "optional_items",
    "origin_context",
    "payment_method_configuration",
    "payment_method_data",
    "payment_method_options",
    "permissions",
    "phone_number_collection",
    "redirect_on_completion",
    "return_url",
    "saved_payment_method_options",
    "setup_intent_data",
    "shipping_address_collection",
    "shipping_options",
    "subscription_data",
    "tax_id_collection",
    "wallet_options",
]
_INTENT_DATA_SUPPORTED = [
    "application_fee_amount",
    "capture_method",
    "description",
    "metadata",
    "on_behalf_of",
    "receipt_email",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "transfer_data",
    "transfer_group",
]
_INTENT_DATA_UNSUPPORTED = [
    "setup_future_usage",
    "shipping",
]
_CAPTURE_UNSUPPORTED = [
    "amount_details",
    "hooks",
    "payment_details",
    "statement_descriptor",
    "statement_descriptor_suffix",
]
_REFUND_UNSUPPORTED = [
    "currency",
    "customer",
    "instructions_email",
    "origin",
]

_CURRENCY = re.compile(r"^[a-z]{3}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class ApiCall:
    params: Reader
    origin: Origin
    path: dict[str, str]
    # The `Stripe-Account` header: the connected account the request acts for.
    stripe_account: str | None = None


Handler = Callable[[ApiCall], JSON]


class Api:
    def __init__(
        self, account: Account, extra_routes: list[tuple[str, str, Handler]] | None = None
    ) -> None:
        self.account = account
        # Routes of other modules (Connect's), served by the same pipeline.
        self.extra_routes = extra_routes or []

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("POST", "/v1/checkout/sessions", self.create_session),
            ("GET", "/v1/checkout/sessions/{id}", self.retrieve_session),
            ("POST", "/v1/checkout/sessions/{id}/expire", self.expire_session),
            ("GET", "/v1/payment_intents/{id}", self.retrieve_payment_intent),
            ("POST", "/v1/payment_intents/{id}/capture", self.capture),
            ("POST", "/v1/payment_intents/{id}/cancel", self.cancel),
            ("GET", "/v1/charges/{id}", self.retrieve_charge),
            ("POST", "/v1/refunds", self.create_refund),
            ("GET", "/v1/refunds/{id}", self.retrieve_refund),
            ("POST", "/v1/refunds/{id}", self.update_refund),
            ("GET", "/v1/disputes/{id}", self.retrieve_dispute),
            ("GET", "/v1/events/{id}", self.retrieve_event),
            *Listings(self.account).routes(),
            *self.extra_routes,
        ]

    # -- Checkout Sessions --------------------------------------------------------------

    def create_session(self, call: ApiCall) -> JSON:
        return self.account.create_session(self._session_spec(call.params))

    def _session_spec(self, p: Reader) -> SessionSpec:
        p.allow(_SESSION_SUPPORTED, _SESSION_UNSUPPORTED)
        mode = p.string("mode", required=True, choices=("payment", "setup", "subscription"))
        if mode != "payment":
            raise unsupported_param(f"mode={mode}")
        ui_mode = p.string("ui_mode", choices=("elements", "embedded_page", "form", "hosted_page"))
        if ui_mode not in (None, "hosted_page"):
            raise unsupported_param(f"ui_mode={ui_mode}")
        _payment_method_types(p)

        items = p.hashes("line_items", required=True) or []
        if not items:
            raise invalid_request("Missing required param: line_items.", param="line_items")
        line_items = tuple(_line_item(item) for item in items)
        currency = _currency(p, "currency") if p.has("currency") else line_items[0].currency
        for index, item in enumerate(line_items):
            if item.currency != currency:
                raise invalid_request(
                    "All line items must use the same currency as the Checkout Session "
                    f"({currency}).",
                    param=f"line_items[{index}][price_data][currency]",
                )
        total = sum(item.amount for item in line_items)
        minimum = money.minimum_charge(currency)
        if total < minimum:
            raise invalid_request(
                "The Checkout Session's total amount due must add up to at least "
                f"{money.in_message(minimum, currency)}",
                param="line_items",
            )
        if total > money.MAXIMUM_AMOUNT:
            raise invalid_request(
                "The Checkout Session's total amount due must be no more than "
                f"{money.in_message(money.MAXIMUM_AMOUNT, currency)}",
                param="line_items",
            )

        now = self.account.clock.now()
        expires_at = p.integer("expires_at")
        if expires_at is None:
            expires_at = now + SESSION_MAX_LIFETIME
        elif expires_at < now + SESSION_MIN_LIFETIME:
            raise invalid_value(
                "expires_at",
                "The `expires_at` timestamp must be at least 30 minutes from Checkout Session "
                "creation.",
                code="parameter_invalid_integer",
            )
        elif expires_at > now + SESSION_MAX_LIFETIME:
            raise invalid_value(
                "expires_at",
                "The `expires_at` timestamp must be less than 24 hours from Checkout Session "
                "creation.",
                code="parameter_invalid_integer",
            )

        allowed = p.strings("allowed_payment_method_types")
        excluded = p.strings("excluded_payment_method_types")
        intent_spec = _intent_spec(p.hash("payment_intent_data"))
        check_destination_charge(self.account, intent_spec, total)
        return SessionSpec(
            line_items=line_items,
            currency=currency,
            expires_at=expires_at,
            payment_intent=intent_spec,
            success_url=_url(p, "success_url"),
            cancel_url=_url(p, "cancel_url"),
            customer_email=_email(p, "customer_email"),
            client_reference_id=p.string("client_reference_id", max_length=200),
            metadata=_clean(p.metadata()),
            locale=p.string("locale", choices=CHECKOUT_LOCALES),
            submit_type=p.string("submit_type", choices=("auto", "book", "donate", "pay")),
            billing_address_collection=p.string(
                "billing_address_collection", choices=("auto", "required")
            ),
            customer_creation=p.string("customer_creation", choices=("always", "if_required"))
            or "if_required",
            payment_method_collection=p.string(
                "payment_method_collection", choices=("always", "if_required")
            )
            or "if_required",
            allowed_payment_method_types=None if allowed is None else tuple(allowed),
            excluded_payment_method_types=None if excluded is None else tuple(excluded),
        )

    def retrieve_session(self, call: ApiCall) -> JSON:
        call.params.allow(["expand"])
        return self.account.retrieve("checkout.session", call.path["id"], "session")

    def expire_session(self, call: ApiCall) -> JSON:
        call.params.allow(["expand"])
        return self.account.expire_session(call.path["id"], call.origin)

    # -- PaymentIntents and charges -----------------------------------------------------

    def retrieve_payment_intent(self, call: ApiCall) -> JSON:
        call.params.allow(["expand", "client_secret"])
        return self.account.retrieve("payment_intent", call.path["id"], "intent")

    def capture(self, call: ApiCall) -> JSON:
        p = call.params
        p.allow(
            [
                "amount_to_capture",
                "application_fee_amount",
                "metadata",
                "expand",
                "final_capture",
                "transfer_data",
            ],
            _CAPTURE_UNSUPPORTED,
        )
        if p.string("final_capture", choices=("true", "false")) == "false":
            raise unsupported_param("final_capture")
        transfer_data = p.hash("transfer_data")
        if transfer_data is not None:
            transfer_data.allow(["amount"])
        return self.account.capture(
            call.path["id"],
            p.integer("amount_to_capture", minimum=0),
            p.metadata(),
            call.origin,
            application_fee_amount=p.integer("application_fee_amount", minimum=0),
            transfer_amount=None
            if transfer_data is None
            else transfer_data.integer("amount", minimum=0),
        )

    def cancel(self, call: ApiCall) -> JSON:
        p = call.params
        p.allow(["cancellation_reason", "expand"])
        reason = p.string(
            "cancellation_reason",
            choices=("abandoned", "duplicate", "fraudulent", "requested_by_customer"),
        )
        return self.account.cancel(call.path["id"], reason, call.origin)

    def retrieve_charge(self, call: ApiCall) -> JSON:
        call.params.allow(["expand"])
        return self.account.retrieve("charge", call.path["id"], "charge")

    # -- Refunds --------------------------------------------------------------------------

    def create_refund(self, call: ApiCall) -> JSON:
        p = call.params
        p.allow(
            [
                "payment_intent",
                "charge",
                "amount",
                "reason",
                "metadata",
                "expand",
                "refund_application_fee",
                "reverse_transfer",
            ],
            _REFUND_UNSUPPORTED,
        )
        intent_id, charge_id = p.string("payment_intent"), p.string("charge")
        if intent_id is None and charge_id is None:
            raise invalid_request(
                "One of `charge` or `payment_intent` is required.",
                param="payment_intent",
                code="parameter_missing",
            )
        if intent_id is not None and charge_id is not None:
            raise invalid_request(
                "You may only specify one of these parameters: charge, payment_intent.",
                param="charge",
            )
        return self.account.create_refund(
            intent_id=intent_id,
            charge_id=charge_id,
            amount=p.integer("amount", minimum=1),
            reason=p.string("reason", choices=("duplicate", "fraudulent", "requested_by_customer")),
            metadata=_clean(p.metadata()),
            origin=call.origin,
            reverse_transfer=p.boolean("reverse_transfer"),
            refund_application_fee=p.boolean("refund_application_fee"),
        )

    def retrieve_refund(self, call: ApiCall) -> JSON:
        call.params.allow(["expand"])
        return self.account.retrieve("refund", call.path["id"], "refund")

    def update_refund(self, call: ApiCall) -> JSON:
        call.params.allow(["metadata", "expand"])
        return self.account.update_refund(call.path["id"], call.params.metadata(), call.origin)

    def retrieve_dispute(self, call: ApiCall) -> JSON:
        call.params.allow(["expand"])
        return self.account.retrieve("dispute", call.path["id"], "dispute")

    # -- Events ---------------------------------------------------------------------------

    def retrieve_event(self, call: ApiCall) -> JSON:
        call.params.allow(["expand"])
        event = self.account.retrieve("event", call.path["id"], "id")
        # A connected account's events are read with its `Stripe-Account` header.
        if event.get("account") != call.stripe_account:
            raise resource_missing("event", call.path["id"], "id")
        return event


def _payment_method_types(p: Reader) -> None:
    # The sandbox takes cards only; a session that cannot accept cards is not modelled.
    allowed = p.strings("allowed_payment_method_types")
    if allowed is not None and "card" not in allowed:
        raise unsupported_param("allowed_payment_method_types (without card)")
    excluded = p.strings("excluded_payment_method_types")
    if excluded is not None and "card" in excluded:
        raise unsupported_param("excluded_payment_method_types (with card)")


def _line_item(p: Reader) -> LineItemSpec:
    p.allow(["price", "price_data", "quantity"], ["adjustable_quantity", "metadata", "tax_rates"])
    price = p.string("price")
    if price is not None:
        # Prices are not modelled: every price is unknown, as on a fresh account.
        raise resource_missing("price", price, p.name("price"))
    data = p.hash("price_data", required=True)
    assert data is not None
    data.allow(
        ["currency", "product_data", "unit_amount", "unit_amount_decimal", "tax_behavior"],
        ["product", "recurring"],
    )
    unit_amount = data.integer("unit_amount", minimum=0, maximum=money.MAXIMUM_AMOUNT)
    amount_param = data.name("unit_amount")
    if unit_amount is None:
        unit_amount = _decimal_amount(data)
        amount_param = data.name("unit_amount_decimal")
    currency = _currency(data, "currency")
    money.check_step(unit_amount, currency, amount_param)
    product = data.hash("product_data", required=True)
    assert product is not None
    product.allow(
        ["name", "description", "metadata", "images", "unit_label", "tax_code"], ["tax_details"]
    )
    return LineItemSpec(
        name=product.string("name", required=True) or "",
        description=product.string("description"),
        product_metadata=_clean(product.metadata()),
        unit_amount=unit_amount,
        quantity=p.integer("quantity", required=True, minimum=1, maximum=999_999) or 0,
        currency=currency,
        tax_behavior=data.string("tax_behavior", choices=("exclusive", "inclusive", "unspecified"))
        or "unspecified",
    )


def _decimal_amount(data: Reader) -> int:
    text = data.string("unit_amount_decimal")
    if text is None:
        raise invalid_request(
            f"Missing required param: {data.name('unit_amount')}.",
            param=data.name("unit_amount"),
            code="parameter_missing",
        )
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise invalid_value(data.name("unit_amount_decimal"), f"Invalid decimal: {text}") from None
    if value != value.to_integral_value() or not 0 <= value <= money.MAXIMUM_AMOUNT:
        # Sub-cent prices need rounding rules the sandbox does not model.
        raise unsupported_param(f"{data.name('unit_amount_decimal')}={text}")
    return int(value)


def _intent_spec(p: Reader | None) -> PaymentIntentSpec:
    if p is None:
        return PaymentIntentSpec()
    p.allow(_INTENT_DATA_SUPPORTED, _INTENT_DATA_UNSUPPORTED)
    return PaymentIntentSpec(
        capture_method=p.string(
            "capture_method", choices=("automatic", "automatic_async", "manual")
        )
        or "automatic_async",
        metadata=_clean(p.metadata()),
        description=p.string("description"),
        receipt_email=_email(p, "receipt_email"),
        statement_descriptor=p.string("statement_descriptor", max_length=22),
        statement_descriptor_suffix=p.string("statement_descriptor_suffix", max_length=22),
        transfer_group=p.string("transfer_group"),
        **destination_fields(p),
    )


def _currency(p: Reader, key: str) -> str:
    value = (p.string(key, required=True) or "").lower()
    if not _CURRENCY.match(value):
        raise invalid_value(p.name(key), f"Invalid currency: {value}.")
    return value


def _url(p: Reader, key: str) -> str | None:
    value = p.string(key, max_length=5000)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid_value(p.name(key), "Not a valid URL", code="url_invalid")
    return value


def _email(p: Reader, key: str) -> str | None:
    value = p.string(key, max_length=800)
    if value is not None and not _EMAIL.match(value):
        raise invalid_value(p.name(key), f"Invalid email address: {value}", code="email_invalid")
    return value


def _clean(metadata: dict[str, str] | None) -> dict[str, str]:
    """On create, an empty metadata value means the key is not set."""
    return {k: v for k, v in (metadata or {}).items() if v != ""}
