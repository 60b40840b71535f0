"""Stripe-shaped objects, field for field.

Each builder returns the JSON object Stripe would return when the object is created,
with every field of Stripe's own example (../shared/stripe-fixtures.json) and the same
types; fields the sandbox does not model hold Stripe's value for an account that does
not use the feature (null, false, [] or {}). The account (`state.py` and the modules of
its resource families) then changes fields as the object moves through its life.
"""

from __future__ import annotations

import secrets
import string
from typing import Any

from .cards import Card
from .specs import LineItemSpec, SessionSpec

JSON = dict[str, Any]

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_request_id() -> str:
    return new_id("req_", 14)


def _address() -> JSON:
    return dict.fromkeys(("city", "country", "line1", "line2", "postal_code", "state"))


def list_object(data: list[JSON], url: str, *, has_more: bool = False) -> JSON:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def checkout_session(spec: SessionSpec, *, session_id: str, created: int, url: str) -> JSON:
    amount = spec.amount_total
    return {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": amount,
        "amount_total": amount,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": spec.billing_address_collection,
        "cancel_url": spec.cancel_url,
        "client_reference_id": spec.client_reference_id,
        "client_secret": None,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": created,
        "currency": spec.currency,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": dict.fromkeys(
            ("after_submit", "shipping_address", "submit", "terms_of_service_acceptance")
        ),
        "customer": None,
        "customer_account": None,
        "customer_creation": spec.customer_creation,
        "customer_details": (
            None if spec.customer_email is None else customer_details(spec.customer_email, None)
        ),
        "customer_email": spec.customer_email,
        "discounts": [],
        "expires_at": spec.expires_at,
        "integration_identifier": None,
        "invoice": None,
        "invoice_creation": {
            "enabled": False,
            "invoice_data": {
                "account_tax_ids": None,
                "custom_fields": None,
                "description": None,
                "footer": None,
                "issuer": None,
                "metadata": {},
                "rendering_options": None,
            },
        },
        "livemode": False,
        "locale": spec.locale,
        "managed_payments": {"enabled": False},
        "metadata": dict(spec.metadata),
        "mode": "payment",
        "origin_context": None,
        # Stripe creates the PaymentIntent when the customer submits the payment form
        # (API versions since 2022-08-01), not with the session.
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": spec.payment_method_collection,
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": {
            "allow_redisplay_filters": ["always"],
            "payment_method_remove": None,
            "payment_method_save": None,
        },
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": spec.submit_type,
        "subscription": None,
        "success_url": spec.success_url,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted_page",
        "url": url,
        "wallet_options": None,
    }


def customer_details(email: str, name: str | None) -> JSON:
    return {
        "address": _address(),
        "business_name": None,
        "email": email,
        "individual_name": None,
        "name": name,
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
    }


def line_item(item: LineItemSpec, *, created: int) -> JSON:
    return {
        "id": new_id("li_"),
        "object": "item",
        "amount_discount": 0,
        "amount_subtotal": item.amount,
        "amount_tax": 0,
        "amount_total": item.amount,
        "currency": item.currency,
        "description": item.name,
        "price": {
            "id": new_id("price_"),
            "object": "price",
            # Prices made from price_data are inactive: they exist for this session only.
            "active": False,
            "billing_scheme": "per_unit",
            "created": created,
            "currency": item.currency,
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": None,
            "metadata": {},
            "nickname": None,
            "product": new_id("prod_", 14),
            "recurring": None,
            "tax_behavior": item.tax_behavior,
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "one_time",
            "unit_amount": item.unit_amount,
            "unit_amount_decimal": str(item.unit_amount),
        },
        "quantity": item.quantity,
    }


def payment_intent(spec: SessionSpec, *, intent_id: str, created: int) -> JSON:
    pi = spec.payment_intent
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": spec.amount_total,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": pi.application_fee_amount,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": pi.capture_method,
        "client_secret": f"{intent_id}_secret_{new_id('', 25)}",
        "confirmation_method": "automatic",
        "created": created,
        "currency": spec.currency,
        "customer": None,
        "customer_account": None,
        "description": pi.description,
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "managed_payments": {"enabled": False},
        "metadata": dict(pi.metadata),
        "next_action": None,
        "on_behalf_of": pi.on_behalf_of,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {
                "installments": None,
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "payment_method_types": ["card"],
        "processing": None,
        "receipt_email": pi.receipt_email,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": pi.statement_descriptor,
        "statement_descriptor_suffix": pi.statement_descriptor_suffix,
        "status": "requires_payment_method",
        "transfer_data": (
            None
            if pi.transfer_destination is None
            else {"amount": pi.transfer_amount, "destination": pi.transfer_destination}
        ),
        "transfer_group": pi.transfer_group,
    }


def _billing_details(card: Card) -> JSON:
    return {
        "address": _address(),
        "email": card.email,
        "name": card.name,
        "phone": None,
        "tax_id": None,
    }


def payment_method(card: Card, *, method_id: str, created: int) -> JSON:
    return {
        "id": method_id,
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": _billing_details(card),
        "card": {
            "brand": card.profile.brand,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "unchecked",
            },
            "country": card.profile.country,
            "display_brand": card.profile.brand,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "fingerprint": card.fingerprint,
            "funding": card.profile.funding,
            "generated_from": None,
            "last4": card.last4,
            "networks": {"available": [card.profile.brand], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": created,
        "customer": None,
        "customer_account": None,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }


def charge(
    intent: JSON,
    card: Card,
    *,
    charge_id: str,
    created: int,
    method_id: str,
    outcome: JSON,
    authenticated: bool,
) -> JSON:
    """A charge as first created: authorised and not yet captured, or failed."""
    failed = outcome["type"] != "authorized"
    profile = card.profile
    return {
        "id": charge_id,
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": intent["application_fee_amount"],
        "balance_transaction": None,
        "billing_details": _billing_details(card),
        "calculated_statement_descriptor": "STRIPE SANDBOX",
        "captured": False,
        "created": created,
        "currency": intent["currency"],
        "customer": None,
        "description": intent["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": profile.code if failed else None,
        "failure_message": profile.message if failed else None,
        "fraud_details": {},
        "livemode": False,
        "metadata": dict(intent["metadata"]),
        "on_behalf_of": intent["on_behalf_of"],
        "outcome": outcome,
        "paid": not failed,
        "payment_intent": intent["id"],
        "payment_method": method_id,
        "payment_method_details": {
            "card": {
                "amount_authorized": None if failed else intent["amount"],
                "authorization_code": None if failed else f"{secrets.randbelow(10**6):06d}",
                "brand": profile.brand,
                "capture_before": None,
                "checks": {
                    "address_line1_check": None,
                    "address_postal_code_check": None,
                    "cvc_check": "fail" if profile.code == "incorrect_cvc" else "pass",
                },
                "country": profile.country,
                "exp_month": card.exp_month,
                "exp_year": card.exp_year,
                "extended_authorization": {"status": "disabled"},
                "fingerprint": card.fingerprint,
                "funding": profile.funding,
                "incremental_authorization": {"status": "unavailable"},
                "installments": None,
                "last4": card.last4,
                "mandate": None,
                "multicapture": {"status": "unavailable"},
                "network": profile.brand,
                "network_token": {"used": False},
                "network_transaction_id": None if failed else new_id("", 15),
                "overcapture": {
                    "maximum_amount_capturable": intent["amount"],
                    "status": "unavailable",
                },
                "regulated_status": "unregulated",
                "three_d_secure": (
                    {
                        "authentication_flow": "challenge",
                        "electronic_commerce_indicator": "05",
                        "exemption_indicator": None,
                        "result": "authenticated",
                        "result_reason": None,
                        "transaction_id": new_id("", 32),
                        "version": "2.2.0",
                    }
                    if authenticated
                    else None
                ),
                "transaction_link_id": None,
                "wallet": None,
            },
            "type": "card",
        },
        "receipt_email": intent["receipt_email"],
        "receipt_number": None,
        "receipt_url": f"https://pay.stripe.com/receipts/payment/{new_id('', 40)}",
        "refunded": False,
        "refunds": list_object([], f"/v1/charges/{charge_id}/refunds") | {"total_count": 0},
        "review": None,
        "shipping": None,
        "source": None,
        "source_transfer": None,
        "statement_descriptor": intent["statement_descriptor"],
        "statement_descriptor_suffix": intent["statement_descriptor_suffix"],
        "status": "failed" if failed else "succeeded",
        "transfer_data": None if intent["transfer_data"] is None else dict(intent["transfer_data"]),
        "transfer_group": intent["transfer_group"],
    }


def outcome_authorized() -> JSON:
    return {
        "advice_code": None,
        "network_advice_code": None,
        "network_decline_code": None,
        "network_status": "approved_by_network",
        "reason": None,
        "risk_level": "normal",
        "risk_score": 32,
        "seller_message": "Payment complete.",
        "type": "authorized",
    }


def outcome_declined(decline_code: str) -> JSON:
    seller_message = (
        "The bank did not return any further details with this decline."
        if decline_code == "generic_decline"
        else f"The bank returned the decline code `{decline_code}`."
    )
    return {
        "advice_code": "try_again_later" if decline_code == "processing_error" else None,
        "network_advice_code": None,
        "network_decline_code": None,
        "network_status": "declined_by_network",
        "reason": decline_code,
        "risk_level": "normal",
        "risk_score": 32,
        "seller_message": seller_message,
        "type": "issuer_declined",
    }


def refund(
    charge_obj: JSON,
    *,
    refund_id: str,
    created: int,
    amount: int,
    reason: str | None,
    metadata: dict[str, str],
) -> JSON:
    return {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": new_id("txn_"),
        "charge": charge_obj["id"],
        "created": created,
        "currency": charge_obj["currency"],
        "customer": None,
        "customer_account": None,
        "destination_details": {
            "card": {
                "reference": None,
                "reference_status": "pending",
                "reference_type": "acquirer_reference_number",
                "type": "refund",
            },
            "type": "card",
        },
        "metadata": metadata,
        "payment_intent": charge_obj["payment_intent"],
        "payment_method": charge_obj["payment_method"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }


_EVIDENCE_FIELDS = [
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
]


def dispute(
    charge_obj: JSON, *, dispute_id: str, created: int, amount: int, reason: str, due_by: int
) -> JSON:
    card = charge_obj["payment_method_details"]["card"]
    return {
        "id": dispute_id,
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": charge_obj["id"],
        "created": created,
        "currency": charge_obj["currency"],
        "enhanced_eligibility_types": [],
        "evidence": dict.fromkeys(_EVIDENCE_FIELDS) | {"enhanced_evidence": {}},
        "evidence_details": {
            "due_by": due_by,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": charge_obj["payment_intent"],
        "payment_method_details": {
            "card": {
                "brand": card["brand"],
                "case_type": "chargeback",
                "network": card["network"],
                "network_reason_code": "10.4" if reason == "fraudulent" else "13.1",
            },
            "type": "card",
        },
        "reason": reason,
        "status": "needs_response",
    }


def event(
    event_type: str,
    snapshot: JSON,
    *,
    event_id: str,
    created: int,
    api_version: str,
    request_id: str | None,
    idempotency_key: str | None,
    previous_attributes: JSON | None = None,
    account: str | None = None,
) -> JSON:
    """`account`: the connected account a Connect event comes from (None: the platform's)."""
    data: JSON = {"object": snapshot}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    head: JSON = {"id": event_id, "object": "event"}
    if account is not None:
        head["account"] = account
    return head | {
        "api_version": api_version,
        "created": created,
        "data": data,
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": event_type,
    }
