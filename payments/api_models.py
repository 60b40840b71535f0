"""The payment API's request and response models, from which its OpenAPI part is generated."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from httpapi.errors import ErrorBody
from httpapi.models import ApiModel


class NewPayment(ApiModel):
    charge_point_id: str = Field(min_length=1, max_length=48)
    connector_id: int = Field(default=1, ge=1)
    email: str | None = Field(default=None, max_length=254)


class ConfirmPayment(ApiModel):
    checkout_session_id: str = Field(min_length=1)


class PaymentStarted(ApiModel):
    status: Literal["Redirect", "Accepted"]
    reservation_id: str
    token: str = Field(description="The driver's session page is /session/{token}")
    checkout_url: str | None = None
    currency: str | None = None
    max_amount: int | None = Field(default=None, description="The hold, in minor units")
    max_energy_wh: int | None = None


class PaymentRefusal(ApiModel):
    """Why a payment request was refused (the shape payment front-ends already rely on)."""

    model_config = ConfigDict(extra="allow")
    status: str = Field(
        description="Invalid, ChargerOffline, ConnectorBusy, PaymentsUnavailable, "
        "NotCancellable, NotStoppable or NotFound"
    )
    field: str | None = None
    message: str | None = None
    reason: str | None = None
    state: str | None = None
    error: ErrorBody = Field(
        description="The same refusal in the shape of the rest of /api: code (the status in"
        " snake case, e.g. charger_offline), message, field"
    )


class PaymentBand(ApiModel):
    part: int = Field(description="0: outside every band of the tariff; i + 1: its bands[i]")
    energy_wh: int
    price_per_kwh: int
    amount: int


class PaymentBreakdown(ApiModel):
    energy_wh: int
    energy: int
    session_fee: int
    time_minutes: int
    time_fee: int
    idle_minutes: int
    idle_fee: int
    total: int
    bands: list[PaymentBand] = Field(
        default=[], description="The energy by band of a tariff with prices by time of day"
    )


class OwnerShareView(ApiModel):
    """The site owner's share of a payment (payments.reservation_transfers)."""

    owner_id: str
    split: dict[str, int] = Field(description="The split rule snapshot at the session's start")
    owner_share: int = Field(description="Of captured less refunded, minor units")
    operator_share: int = Field(description="owner_share + operator_share = captured - refunded")
    transfer_status: str | None = Field(
        description="accrued, transferring, transferred, refused or nothing; null: not captured"
    )
    transfer_id: str | None
    transferred_amount: int
    reversed_amount: int
    transfer_failure: str | None


class PaymentView(ApiModel):
    reservation_id: str
    state: str
    stage: str
    charge_point_id: str
    connector_id: int
    currency: str
    hold_amount: int
    hold: str
    max_energy_wh: int | None
    energy_wh: int
    power_w: int
    meter_warning: str | None = Field(
        default=None,
        description="Set when the meter was not taken at its word (its register restarted, "
        "or a reading gained more than the connector can deliver and was bounded)",
    )
    cost_so_far: int
    captured_amount: int
    released_amount: int
    breakdown: PaymentBreakdown | None
    transaction_id: int | None
    checkout_url: str | None
    failure_reason: str | None
    created_at: str | None
    authorised_at: str | None
    started_at: str | None
    stopped_at: str | None
    unplugged_at: str | None
    refunded_amount: int = 0
    owner_share: OwnerShareView | None = Field(
        default=None, description="The site owner's share; null: the session has no owner"
    )


class WebhookReceipt(ApiModel):
    received: bool
    applied: str
