"""The Connect parameters of a payment, checked as Stripe checks them: a destination charge
(`transfer_data[destination]`, `transfer_data[amount]`, `application_fee_amount`,
`on_behalf_of`) when a Checkout Session is created and when its PaymentIntent is captured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import money
from .errors import invalid_request, resource_missing
from .params import Reader
from .resources import JSON
from .specs import PaymentIntentSpec

if TYPE_CHECKING:
    from .state import Account

NO_TRANSFERS = (
    "Your destination account needs to have at least one of the following capabilities "
    "enabled: transfers, crypto_transfers, legacy_payments"
)


def check_destination_charge(account: Account, spec: PaymentIntentSpec, total: int) -> None:
    """`payment_intent_data` of a Checkout Session making a destination charge."""
    param = "payment_intent_data"
    if spec.transfer_destination is None:
        _check_on_behalf_of(account, spec)
        return
    destination = account.objects.get(spec.transfer_destination)
    if destination is None or destination["object"] != "account":
        raise resource_missing(
            "destination", spec.transfer_destination, f"{param}[transfer_data][destination]"
        )
    if destination["capabilities"].get("transfers") != "active":
        raise invalid_request(
            NO_TRANSFERS,
            param=f"{param}[transfer_data][destination]",
            code="insufficient_capabilities_for_transfer",
        )
    _check_on_behalf_of(account, spec)
    fee, amount = spec.application_fee_amount, spec.transfer_amount
    if fee is not None and amount is not None:
        raise invalid_request(
            "You cannot set both application_fee_amount and transfer_data[amount].",
            param=f"{param}[application_fee_amount]",
        )
    if fee is not None and fee > total:
        raise invalid_request(
            f"The application fee ({fee}) must be less than or equal to the total amount "
            f"({total}).",
            param=f"{param}[application_fee_amount]",
        )
    if amount is not None and amount > total:
        raise invalid_request(
            f"transfer_data[amount] ({amount}) must be less than or equal to the total amount "
            f"({total}).",
            param=f"{param}[transfer_data][amount]",
        )


def _check_on_behalf_of(account: Account, spec: PaymentIntentSpec) -> None:
    if spec.on_behalf_of is not None:
        obj = account.objects.get(spec.on_behalf_of)
        if obj is None or obj["object"] != "account":
            raise resource_missing(
                "account", spec.on_behalf_of, "payment_intent_data[on_behalf_of]"
            )


def check_capture(
    intent: JSON, amount: int, application_fee_amount: int | None, transfer_amount: int | None
) -> None:
    """The Connect parameters of a capture, checked as Stripe checks them."""
    if application_fee_amount is None and transfer_amount is None:
        return
    if intent["transfer_data"] is None:
        param = "application_fee_amount" if transfer_amount is None else "transfer_data[amount]"
        raise invalid_request(
            f"Can only apply {param} when the PaymentIntent is attempting a direct payment "
            "(using an OAuth key or Stripe-Account header) or destination payment (using "
            "`transfer_data[destination]`).",
            param=param,
        )
    fee = application_fee_amount
    if fee is None:
        fee = intent["application_fee_amount"]
    transfer = transfer_amount
    if transfer is None:
        transfer = intent["transfer_data"].get("amount")
    if fee is not None and transfer is not None:
        raise invalid_request(
            "You cannot set both application_fee_amount and transfer_data[amount].",
            param="transfer_data[amount]" if transfer_amount else "application_fee_amount",
        )
    if transfer is not None and transfer > amount:
        raise invalid_request(
            f"transfer_data[amount] ({transfer}) must be less than or equal to the amount "
            f"captured ({amount}).",
            param="transfer_data[amount]",
        )


def destination_fields(p: Reader) -> dict[str, Any]:
    """`transfer_data`, `application_fee_amount` and `on_behalf_of` of a destination charge."""
    fields: dict[str, Any] = {
        "application_fee_amount": p.integer(
            "application_fee_amount", minimum=0, maximum=money.MAXIMUM_AMOUNT
        ),
        "on_behalf_of": p.string("on_behalf_of"),
    }
    data = p.hash("transfer_data")
    if data is not None:
        data.allow(["destination", "amount"])
        fields["transfer_destination"] = data.string("destination", required=True)
        fields["transfer_amount"] = data.integer("amount", minimum=1)
    elif fields["application_fee_amount"] is not None:
        raise invalid_request(
            "Can only apply an application_fee_amount when the PaymentIntent is attempting a "
            "direct payment (using an OAuth key or Stripe-Account header) or destination "
            "payment (using `transfer_data[destination]`).",
            param=p.name("application_fee_amount"),
        )
    return fields
