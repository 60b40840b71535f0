"""The Connect endpoints of /v1: accounts, Account Links, transfers and reversals,
application fees and their refunds, payouts and balance transactions.

Parameters are checked as in `api`: unknown names are refused with `parameter_unknown`,
real Stripe parameters the sandbox does not model are refused by name. Lists paginate as
`listing` does. Payouts belong to a connected account: they are listed and retrieved
with the `Stripe-Account` header, as on Stripe; without it the platform has none.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .api import ApiCall, Handler, _clean, _currency, _email, _url
from .connect import AccountSpec, AccountUpdate, Connect
from .errors import invalid_request, invalid_value, resource_missing, unsupported_param
from .listing import _PAGE_PARAMS, paginate, read_page
from .params import Reader
from .resources import JSON, list_object

_COUNTRY = re.compile(r"^[A-Z]{2}$")
_PROFILE = ["mcc", "name", "product_description", "support_email", "support_phone", "url"]
_ACCOUNT_UNSUPPORTED = [
    "account_token",
    "bank_account",
    "company",
    "documents",
    "external_account",
    "groups",
    "individual",
    "settings",
    "tos_acceptance",
]
_BUSINESS_TYPES = ("company", "government_entity", "individual", "non_profit")


class ConnectApi:
    def __init__(self, connect: Connect) -> None:
        self.connect = connect
        self.account = connect.account

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("POST", "/v1/accounts", self.create_account),
            ("GET", "/v1/accounts", self.list_accounts),
            ("GET", "/v1/accounts/{id}", self.retrieve_account),
            ("POST", "/v1/accounts/{id}", self.update_account),
            ("POST", "/v1/account_links", self.create_link),
            ("POST", "/v1/transfers", self.create_transfer),
            ("GET", "/v1/transfers", self.list_transfers),
            ("GET", "/v1/transfers/{id}", self.retrieve_transfer),
            ("POST", "/v1/transfers/{id}", self.update_transfer),
            ("POST", "/v1/transfers/{id}/reversals", self.create_reversal),
            ("GET", "/v1/transfers/{id}/reversals", self.list_reversals),
            ("GET", "/v1/transfers/{transfer}/reversals/{id}", self.retrieve_reversal),
            ("GET", "/v1/application_fees", self.list_fees),
            ("GET", "/v1/application_fees/{id}", self.retrieve_fee),
            ("POST", "/v1/application_fees/{id}/refunds", self.refund_fee),
            ("GET", "/v1/application_fees/{id}/refunds", self.list_fee_refunds),
            ("GET", "/v1/application_fees/{fee}/refunds/{id}", self.retrieve_fee_refund),
            ("GET", "/v1/payouts", self.list_payouts),
            ("GET", "/v1/payouts/{id}", self.retrieve_payout),
            ("GET", "/v1/balance_transactions", self.list_balance_transactions),
            ("GET", "/v1/balance_transactions/{id}", self.retrieve_balance_transaction),
        ]

    def _list(
        self, call: ApiCall, object_name: str, url: str, keep: Callable[[JSON], bool]
    ) -> JSON:
        page = read_page(call.params)
        items = [
            obj
            for obj in reversed(self.account.objects.values())
            if obj["object"] == object_name and keep(obj)
        ]
        return paginate(self.account, items, page, url=url, object_name=object_name)

    def _platform_only(self, call: ApiCall) -> None:
        if call.stripe_account is not None:
            raise unsupported_param("Stripe-Account")

    # -- accounts -------------------------------------------------------------------------

    def create_account(self, call: ApiCall) -> JSON:
        self._platform_only(call)
        p = call.params
        p.allow(
            [
                "business_profile",
                "business_type",
                "capabilities",
                "controller",
                "country",
                "default_currency",
                "email",
                "expand",
                "metadata",
                "type",
            ],
            _ACCOUNT_UNSUPPORTED,
        )
        account_type, controller = _type_and_controller(p)
        country = p.string("country") or "US"
        if not _COUNTRY.match(country):
            raise invalid_value("country", f"Invalid country: {country}")
        capabilities = [name for name, wanted in _capabilities(p).items() if wanted]
        if account_type == "standard":
            capabilities = list(dict.fromkeys([*capabilities, "card_payments", "transfers"]))
        spec = AccountSpec(
            account_type=account_type,
            controller=controller,
            country=country,
            email=_email(p, "email"),
            business_type=p.string("business_type", choices=_BUSINESS_TYPES),
            business_profile=_profile(p),
            capabilities=tuple(capabilities),
            metadata=_clean(p.metadata()),
            default_currency=(
                _currency(p, "default_currency") if p.has("default_currency") else None
            ),
        )
        return self.connect.create_account(spec, call.origin)

    def list_accounts(self, call: ApiCall) -> JSON:
        self._platform_only(call)
        call.params.allow(_PAGE_PARAMS)
        return self._list(call, "account", "/v1/accounts", lambda obj: True)

    def retrieve_account(self, call: ApiCall) -> JSON:
        call.params.allow(["expand"])
        return self.connect.connected(call.path["id"], "account")

    def update_account(self, call: ApiCall) -> JSON:
        p = call.params
        p.allow(
            ["business_profile", "business_type", "capabilities", "email", "expand", "metadata"],
            [*_ACCOUNT_UNSUPPORTED, "default_currency"],
        )
        update = AccountUpdate(
            email=_email(p, "email"),
            business_type=p.string("business_type", choices=_BUSINESS_TYPES),
            business_profile=_profile(p),
            capabilities=_capabilities(p),
            metadata=p.metadata(),
        )
        return self.connect.update_account(call.path["id"], update, call.origin)

    def create_link(self, call: ApiCall) -> JSON:
        self._platform_only(call)
        p = call.params
        p.allow(
            ["account", "collect", "collection_options", "expand", "refresh_url", "return_url",
             "type"],
        )  # fmt: skip
        account_id = p.string("account", required=True) or ""
        link_type = p.string(
            "type", required=True, choices=("account_onboarding", "account_update")
        )
        refresh_url = _url(p, "refresh_url")
        return_url = _url(p, "return_url")
        if refresh_url is None or return_url is None:
            missing = "refresh_url" if refresh_url is None else "return_url"
            raise invalid_request(
                f"Missing required param: {missing}.", param=missing, code="parameter_missing"
            )
        return self.connect.create_link(account_id, refresh_url, return_url, link_type or "")

    # -- transfers ------------------------------------------------------------------------

    def create_transfer(self, call: ApiCall) -> JSON:
        self._platform_only(call)
        p = call.params
        p.allow(
            ["amount", "currency", "description", "destination", "expand", "metadata",
             "source_transaction", "transfer_group"],
            ["source_type"],
        )  # fmt: skip
        return self.connect.create_transfer(
            amount=p.integer("amount", required=True, minimum=1) or 0,
            currency=_currency(p, "currency"),
            destination=p.string("destination", required=True) or "",
            source_transaction=p.string("source_transaction"),
            transfer_group=p.string("transfer_group"),
            description=p.string("description"),
            metadata=_clean(p.metadata()),
            origin=call.origin,
        )

    def list_transfers(self, call: ApiCall) -> JSON:
        self._platform_only(call)
        p = call.params
        p.allow([*_PAGE_PARAMS, "destination", "transfer_group"])
        destination, group = p.string("destination"), p.string("transfer_group")
        return self._list(
            call,
            "transfer",
            "/v1/transfers",
            lambda obj: (
                destination in (None, obj["destination"]) and group in (None, obj["transfer_group"])
            ),
        )

    def retrieve_transfer(self, call: ApiCall) -> JSON:
        call.params.allow(["expand"])
        return self.account.retrieve("transfer", call.path["id"], "id")

    def update_transfer(self, call: ApiCall) -> JSON:
        p = call.params
        p.allow(["description", "expand", "metadata"])
        return self.connect.update_transfer(
            call.path["id"], p.string("description"), p.metadata(), call.origin
        )

    def create_reversal(self, call: ApiCall) -> JSON:
        p = call.params
        p.allow(["amount", "description", "expand", "metadata", "refund_application_fee"])
        return self.connect.create_reversal(
            call.path["id"],
            p.integer("amount", minimum=1),
            _clean(p.metadata()),
            p.boolean("refund_application_fee"),
            call.origin,
        )

    def list_reversals(self, call: ApiCall) -> JSON:
        call.params.allow(["ending_before", "expand", "limit", "starting_after"])
        transfer = self.account.retrieve("transfer", call.path["id"], "id")
        url = f"/v1/transfers/{transfer['id']}/reversals"
        return self._list(call, "transfer_reversal", url, lambda r: r["transfer"] == transfer["id"])

    def retrieve_reversal(self, call: ApiCall) -> JSON:
        call.params.allow(["expand"])
        reversal = self.account.retrieve("transfer_reversal", call.path["id"], "id")
        if reversal["transfer"] != call.path["transfer"]:
            raise resource_missing("transfer_reversal", call.path["id"], "id")
        return reversal

    # -- application fees -----------------------------------------------------------------

    def list_fees(self, call: ApiCall) -> JSON:
        self._platform_only(call)
        p = call.params
        p.allow([*_PAGE_PARAMS, "charge"])
        charge = p.string("charge")
        return self._list(
            call, "application_fee", "/v1/application_fees", lambda f: charge in (None, f["charge"])
        )

    def retrieve_fee(self, call: ApiCall) -> JSON:
        call.params.allow(["expand"])
        return self.account.retrieve("application_fee", call.path["id"], "id")

    def refund_fee(self, call: ApiCall) -> JSON:
        p = call.params
        p.allow(["amount", "expand", "metadata"])
        return self.connect.refund_fee(
            call.path["id"], p.integer("amount", minimum=1), _clean(p.metadata()), call.origin
        )

    def list_fee_refunds(self, call: ApiCall) -> JSON:
        call.params.allow(["ending_before", "expand", "limit", "starting_after"])
        fee = self.account.retrieve("application_fee", call.path["id"], "id")
        url = f"/v1/application_fees/{fee['id']}/refunds"
        return self._list(call, "fee_refund", url, lambda r: r["fee"] == fee["id"])

    def retrieve_fee_refund(self, call: ApiCall) -> JSON:
        call.params.allow(["expand"])
        refund = self.account.retrieve("fee_refund", call.path["id"], "id")
        if refund["fee"] != call.path["fee"]:
            raise resource_missing("fee_refund", call.path["id"], "id")
        return refund

    # -- payouts and balance transactions -------------------------------------------------

    def list_payouts(self, call: ApiCall) -> JSON:
        p = call.params
        p.allow([*_PAGE_PARAMS, "arrival_date", "destination", "status"])
        if p.has("arrival_date"):
            raise unsupported_param("arrival_date")
        status = p.string("status", choices=("canceled", "failed", "paid", "pending", "in_transit"))
        destination = p.string("destination")
        return self._list(
            call,
            "payout",
            "/v1/payouts",
            lambda po: (
                self.connect.owner(po) == call.stripe_account
                and status in (None, po["status"])
                and destination in (None, po["destination"])
            ),
        )

    def retrieve_payout(self, call: ApiCall) -> JSON:
        call.params.allow(["expand"])
        payout = self.account.retrieve("payout", call.path["id"], "payout")
        if self.connect.owner(payout) != call.stripe_account:
            raise resource_missing("payout", call.path["id"], "payout")
        return payout

    def list_balance_transactions(self, call: ApiCall) -> JSON:
        p = call.params
        p.allow([*_PAGE_PARAMS, "currency", "payout", "source", "type"])
        if p.has("payout"):
            raise unsupported_param("payout")
        if call.stripe_account is not None:
            return list_object([], "/v1/balance_transactions")
        source, kind = p.string("source"), p.string("type")
        currency = p.string("currency")
        return self._list(
            call,
            "balance_transaction",
            "/v1/balance_transactions",
            lambda t: (
                source in (None, t["source"])
                and kind in (None, t["type"])
                and currency in (None, t["currency"])
            ),
        )

    def retrieve_balance_transaction(self, call: ApiCall) -> JSON:
        call.params.allow(["expand"])
        if call.stripe_account is not None:
            raise resource_missing("balance transaction", call.path["id"], "id")
        return self.account.retrieve("balance_transaction", call.path["id"], "id")


def _type_and_controller(p: Reader) -> tuple[str, JSON]:
    """The account's `type` and `controller`, from either parameter."""
    account_type = p.string("type", choices=("custom", "express", "standard"))
    controller = p.hash("controller")
    if account_type is not None and controller is not None:
        raise invalid_request(
            "You may only specify one of these parameters: controller, type.", param="type"
        )
    if controller is None:
        account_type = account_type or "standard"
        if account_type == "standard":
            return "standard", {"type": "account"}
        return account_type, {
            "fees": {"payer": "application"},
            "is_controller": True,
            "losses": {"payments": "application"},
            "requirement_collection": "stripe" if account_type == "express" else "application",
            "stripe_dashboard": {"type": _dashboard_of(account_type)},
            "type": "application",
        }
    controller.allow(["fees", "losses", "requirement_collection", "stripe_dashboard"])
    fees, losses, dashboard = (controller.hash(k) for k in ("fees", "losses", "stripe_dashboard"))
    for part, key, choices in (
        (fees, "payer", ("account", "application")),
        (losses, "payments", ("application", "stripe")),
        (dashboard, "type", ("express", "full", "none")),
    ):
        if part is not None:
            part.allow([key])
            part.string(key, choices=choices)
    payer = fees.string("payer") if fees else None
    loss = losses.string("payments") if losses else None
    board = (dashboard.string("type") if dashboard else None) or "full"
    collection = controller.string("requirement_collection", choices=("application", "stripe"))
    resolved: JSON = {
        "fees": {"payer": payer or ("account" if board == "full" else "application")},
        "is_controller": True,
        "losses": {"payments": loss or ("stripe" if board == "full" else "application")},
        "requirement_collection": collection or "stripe",
        "stripe_dashboard": {"type": board},
        "type": "application",
    }
    # The account type the controller properties amount to, or "none" when they match none.
    kinds = {
        ("full", "account", "stripe", "stripe"): "standard",
        ("express", "application", "application", "stripe"): "express",
        ("none", "application", "application", "application"): "custom",
    }
    key = (
        board,
        resolved["fees"]["payer"],
        resolved["losses"]["payments"],
        resolved["requirement_collection"],
    )
    return kinds.get(key, "none"), resolved


def _dashboard_of(account_type: str) -> str:
    return {"express": "express", "custom": "none"}.get(account_type, "full")


def _capabilities(p: Reader) -> dict[str, bool]:
    capabilities = p.hash("capabilities")
    if capabilities is None:
        return {}
    wanted = {}
    for name in capabilities.data:
        entry = capabilities.hash(name, required=True)
        assert entry is not None
        entry.allow(["requested"])
        wanted[name] = entry.boolean("requested")
    return wanted


def _profile(p: Reader) -> dict[str, str]:
    profile = p.hash("business_profile")
    if profile is None:
        return {}
    profile.allow(_PROFILE, ["annual_revenue", "estimated_worker_count", "support_address",
                             "support_url", "minority_owned_business_designation"])  # fmt: skip
    values = {key: profile.string(key) for key in _PROFILE}
    if values["url"] is not None:
        _url(profile, "url")
    return {key: value for key, value in values.items() if value is not None}
