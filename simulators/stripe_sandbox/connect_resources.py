"""Stripe Connect objects, field for field: accounts, Account Links, external bank accounts,
transfers and their reversals, application fees and their refunds, payouts, and balance
transactions.

As in `resources`, each builder returns the object as Stripe creates it, with every field
of Stripe's example in ../shared/stripe-fixtures.json and the same types; `connect`
changes fields as the object moves through its life.
"""

from __future__ import annotations

from typing import Any

from .resources import JSON, list_object, new_id

# The requirements of an account that has not been onboarded yet (Stripe's example).
ONBOARDING_REQUIREMENTS = [
    "business_profile.product_description",
    "business_profile.url",
    "external_account",
    "tos_acceptance.date",
    "tos_acceptance.ip",
]
# Default currencies of the countries the sandbox names; others settle in EUR or USD.
_CURRENCIES = {
    "US": "usd", "GB": "gbp", "CH": "chf", "CA": "cad", "AU": "aud", "JP": "jpy",
    "SE": "sek", "NO": "nok", "DK": "dkk", "PL": "pln", "CZ": "czk", "HU": "huf",
    "RO": "ron", "BG": "bgn", "NZ": "nzd", "SG": "sgd", "HK": "hkd", "MX": "mxn",
    "BR": "brl", "IN": "inr",
}  # fmt: skip
_EURO = frozenset(
    ["AT", "BE", "CY", "DE", "EE", "ES", "FI", "FR", "GR", "HR", "IE", "IT", "LT", "LU",
     "LV", "MT", "NL", "PT", "SI", "SK"]
)  # fmt: skip


def default_currency(country: str) -> str:
    if country in _EURO:
        return "eur"
    return _CURRENCIES.get(country, "usd")


def requirements(currently_due: list[str]) -> JSON:
    return {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": list(currently_due),
        "disabled_reason": "requirements.past_due" if currently_due else None,
        "errors": [],
        "eventually_due": list(currently_due),
        "past_due": [],
        "pending_verification": [],
    }


def _address() -> JSON:
    return dict.fromkeys(("city", "country", "line1", "line2", "postal_code", "state"))


def account(
    *,
    account_id: str,
    created: int,
    account_type: str,
    controller: JSON,
    country: str,
    currency: str,
    email: str | None,
    business_type: str | None,
    business_profile: dict[str, Any],
    capabilities: dict[str, str],
    metadata: dict[str, str],
) -> JSON:
    profile: JSON = {
        "annual_revenue": {"amount": None, "currency": None, "fiscal_year_end": None},
        "estimated_worker_count": None,
        "mcc": None,
        "minority_owned_business_designation": None,
        "name": None,
        "product_description": None,
        "support_address": _address(),
        "support_email": None,
        "support_phone": None,
        "support_url": None,
        "url": None,
    } | business_profile
    return {
        "id": account_id,
        "object": "account",
        "business_profile": profile,
        "business_type": business_type,
        "capabilities": capabilities,
        "charges_enabled": False,
        "controller": controller,
        "country": country,
        "created": created,
        "default_currency": currency,
        "details_submitted": False,
        "email": email,
        "external_accounts": list_object([], f"/v1/accounts/{account_id}/external_accounts")
        | {"total_count": 0},
        "future_requirements": requirements([]),
        "metadata": metadata,
        "payouts_enabled": False,
        "requirements": requirements(ONBOARDING_REQUIREMENTS),
        "settings": {
            "bacs_debit_payments": {"display_name": None, "service_user_number": None},
            "branding": dict.fromkeys(("icon", "logo", "primary_color", "secondary_color")),
            "card_issuing": {"tos_acceptance": {"date": None, "ip": None}},
            "card_payments": {
                "decline_on": {"avs_failure": False, "cvc_failure": False},
                "statement_descriptor_prefix": None,
                "statement_descriptor_prefix_kana": None,
                "statement_descriptor_prefix_kanji": None,
            },
            "dashboard": {"display_name": profile["name"], "timezone": "Etc/UTC"},
            "invoices": {"default_account_tax_ids": None, "hosted_payment_method_save": None},
            "payments": dict.fromkeys(
                (
                    "statement_descriptor",
                    "statement_descriptor_kana",
                    "statement_descriptor_kanji",
                    "statement_descriptor_prefix_kana",
                    "statement_descriptor_prefix_kanji",
                )
            ),
            "payouts": {
                "debit_negative_balances": True,
                "schedule": {"delay_days": 2, "interval": "daily"},
                "statement_descriptor": None,
            },
            "sepa_debit_payments": {},
        },
        "tos_acceptance": {"date": None, "ip": None, "user_agent": None},
        "type": account_type,
    }


def account_link(*, created: int, expires_at: int, url: str) -> JSON:
    return {"object": "account_link", "created": created, "expires_at": expires_at, "url": url}


def bank_account(*, account_id: str, holder: str | None, country: str, currency: str) -> JSON:
    """The external account onboarding adds (Stripe's test bank account, ending 6789)."""
    return {
        "id": new_id("ba_1"),
        "object": "bank_account",
        "account": account_id,
        "account_holder_name": holder,
        "account_holder_type": "company",
        "account_type": None,
        "available_payout_methods": ["standard"],
        "bank_name": "STRIPE TEST BANK",
        "country": country,
        "currency": currency,
        "default_for_currency": True,
        "fingerprint": new_id("", 16),
        "last4": "6789",
        "metadata": {},
        "routing_number": "110000000",
        "status": "new",
    }


def transfer(
    *,
    transfer_id: str,
    created: int,
    amount: int,
    currency: str,
    destination: str,
    source_transaction: str | None,
    transfer_group: str | None,
    description: str | None,
    metadata: dict[str, str],
) -> JSON:
    return {
        "id": transfer_id,
        "object": "transfer",
        "amount": amount,
        "amount_reversed": 0,
        "balance_transaction": new_id("txn_1"),
        "created": created,
        "currency": currency,
        "description": description,
        "destination": destination,
        "destination_payment": new_id("py_", 14),
        "livemode": False,
        "metadata": metadata,
        "reversals": list_object([], f"/v1/transfers/{transfer_id}/reversals") | {"total_count": 0},
        "reversed": False,
        "source_transaction": source_transaction,
        "source_type": "card",
        "transfer_group": transfer_group,
    }


def transfer_reversal(
    transfer_obj: JSON, *, created: int, amount: int, metadata: dict[str, str], refund: str | None
) -> JSON:
    return {
        "id": new_id("trr_1"),
        "object": "transfer_reversal",
        "amount": amount,
        "balance_transaction": new_id("txn_1"),
        "created": created,
        "currency": transfer_obj["currency"],
        "destination_payment_refund": new_id("pyr_1"),
        "metadata": metadata,
        "source_refund": refund,
        "transfer": transfer_obj["id"],
    }


def application_fee(
    charge: JSON, *, fee_id: str, created: int, amount: int, account_id: str
) -> JSON:
    return {
        "id": fee_id,
        "object": "application_fee",
        "account": account_id,
        "amount": amount,
        "amount_refunded": 0,
        # The platform's own Connect application.
        "application": "ca_sandboxplatform",
        "balance_transaction": new_id("txn_1"),
        "charge": charge["id"],
        "created": created,
        "currency": charge["currency"],
        "fee_source": {"charge": charge["id"], "type": "charge"},
        "livemode": False,
        "originating_transaction": None,
        "refunded": False,
        "refunds": list_object([], f"/v1/application_fees/{fee_id}/refunds") | {"total_count": 0},
    }


def fee_refund(fee: JSON, *, created: int, amount: int, metadata: dict[str, str]) -> JSON:
    return {
        "id": new_id("fr_1"),
        "object": "fee_refund",
        "amount": amount,
        "balance_transaction": new_id("txn_1"),
        "created": created,
        "currency": fee["currency"],
        "fee": fee["id"],
        "metadata": metadata,
    }


def payout(
    *, created: int, amount: int, currency: str, destination: str, arrival_date: int
) -> JSON:
    return {
        "id": new_id("po_1"),
        "object": "payout",
        "amount": amount,
        "application_fee": None,
        "application_fee_amount": None,
        "arrival_date": arrival_date,
        "automatic": True,
        "balance_transaction": new_id("txn_1"),
        "created": created,
        "currency": currency,
        "description": "STRIPE PAYOUT",
        "destination": destination,
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "livemode": False,
        "metadata": {},
        "method": "standard",
        "original_payout": None,
        "payout_method": None,
        "reconciliation_status": "not_applicable",
        "reversed_by": None,
        "source_type": "card",
        "statement_descriptor": None,
        "status": "pending",
        "trace_id": {"status": "pending", "value": None},
        "type": "bank_account",
    }


def balance_transaction(
    *,
    txn_id: str,
    created: int,
    amount: int,
    fee: int,
    currency: str,
    source: str,
    kind: str,
    description: str | None,
    available_on: int,
) -> JSON:
    fee_details = (
        [
            {
                "amount": fee,
                "application": None,
                "currency": currency,
                "description": "Stripe processing fees",
                "type": "stripe_fee",
            }
        ]
        if fee
        else []
    )
    return {
        "id": txn_id,
        "object": "balance_transaction",
        "amount": amount,
        "available_on": available_on,
        "balance_type": "payments",
        "created": created,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": fee_details,
        "net": amount - fee,
        "reporting_category": kind,
        "source": source,
        "status": "pending",
        "type": kind,
    }
