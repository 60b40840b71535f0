"""Stripe Connect on the sandbox's platform account: connected accounts and their
onboarding, transfers and reversals, destination charges with application fees, payouts.

Every object lives in `Account.objects` with the payment objects (so the state file keeps
it) and every event goes through `Account.emit`. Rules, as Stripe documents them:

- A connected account is created with its requirements due: `charges_enabled`,
  `payouts_enabled` and `details_submitted` false, its requested capabilities
  `inactive`. Completing onboarding (the hosted page, or the control endpoint) submits
  the details, adds a test bank account, activates the requested capabilities and emits
  `account.updated`, a Connect event (its `account` is the connected account).
- An Account Link is single-use and expires `LINK_LIFETIME` seconds after creation:
  opened twice, opened after `expires_at`, or posted after its form was submitted, it
  sends the browser to `refresh_url`.
- A transfer goes only to an account whose `transfers` capability is active. With
  `source_transaction` it cannot exceed what the charge still has: captured, less
  refunds, less the other transfers from it net of their reversals. A reversal cannot
  exceed what is left on the transfer; each emits `transfer.reversed` (partial ones
  too); updating a transfer's metadata or description emits `transfer.updated`.
- A destination charge (`transfer_data[destination]`) makes, at capture, a transfer of
  the captured amount (or `transfer_data[amount]`) to the destination, linked to the
  charge, and, with `application_fee_amount` (capped at the amount captured), an
  application fee. A refund with `reverse_transfer` reverses the transfer in proportion
  to the refund (what is left of it on the last refund), with `refund_application_fee`
  refunds the fee in the same proportion.
- A payout belongs to the connected account whose bank account it goes to; it is seen
  with the `Stripe-Account` header only, and its events are Connect events.
- A captured charge has a balance transaction with Stripe's fee for its currency
  (`STRIPE_FEES`), so the fee of each payment can be read.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from . import connect_resources as res
from . import money
from .errors import StripeError, invalid_request, resource_missing
from .params import merge_metadata
from .resources import JSON, new_id
from .specs import PaymentIntentSpec
from .state import AUTOMATIC, Account, Origin

log = logging.getLogger("simulators.stripe_sandbox")

LINK_LIFETIME = 300
PAYOUT_ARRIVAL = 2 * 24 * 3600
# Stripe's standard card pricing: (percent in basis points, fixed in minor units).
STRIPE_FEES = {"eur": (150, 25), "gbp": (150, 20), "chf": (290, 30)}
DEFAULT_FEE = (290, 30)
PAYOUT_FAILURES = {
    "account_closed": "The bank account has been closed.",
    "could_not_process": "The bank could not process this payout.",
    "insufficient_funds": "Your Stripe account has insufficient funds to cover the payout.",
    "no_account": "The bank account details on file are probably incorrect. No bank account "
    "could be located with those details.",
}
NO_TRANSFERS = (
    "Your destination account needs to have at least one of the following capabilities "
    "enabled: transfers, crypto_transfers, legacy_payments"
)


@dataclass(frozen=True)
class AccountSpec:
    account_type: str
    controller: JSON
    country: str
    email: str | None = None
    business_type: str | None = None
    business_profile: dict[str, Any] = field(default_factory=dict)
    capabilities: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    default_currency: str | None = None


@dataclass(frozen=True)
class AccountUpdate:
    email: str | None = None
    business_type: str | None = None
    business_profile: dict[str, Any] = field(default_factory=dict)
    capabilities: dict[str, bool] = field(default_factory=dict)
    metadata: dict[str, str] | None = None


def check_destination_charge(account: Account, spec: PaymentIntentSpec, total: int) -> None:
    """`payment_intent_data` of a Checkout Session making a destination charge."""
    param = "payment_intent_data"
    if spec.on_behalf_of is not None:
        obj = account.objects.get(spec.on_behalf_of)
        if obj is None or obj["object"] != "account":
            raise resource_missing("account", spec.on_behalf_of, f"{param}[on_behalf_of]")
    if spec.transfer_destination is None:
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


def proportion(part: int, of: int, whole: int) -> int:
    """`of` * `part` / `whole`, rounded half up (Stripe's proportional refunds)."""
    return (2 * of * part + whole) // (2 * whole) if whole else 0


class Connect:
    """Connect on `account`; `site_url()` gives the address its hosted pages are at."""

    def __init__(self, account: Account, site_url: Callable[[], str]) -> None:
        self.account = account
        self.objects = account.objects
        self.clock = account.clock
        self.site_url = site_url
        account.on_capture = self.on_capture
        account.on_refund = self.on_refund

    def _emit(self, event_type: str, obj: JSON, origin: Origin, **kwargs: Any) -> None:
        self.account.emit(event_type, obj, origin, **kwargs)

    # -- accounts -------------------------------------------------------------------------

    def connected(self, account_id: str, param: str = "account") -> JSON:
        return self.account.retrieve("account", account_id, param)

    def create_account(self, spec: AccountSpec, origin: Origin) -> JSON:
        account_id = new_id("acct_1", 15)
        obj = res.account(
            account_id=account_id,
            created=self.clock.now(),
            account_type=spec.account_type,
            controller=spec.controller,
            country=spec.country,
            currency=spec.default_currency or res.default_currency(spec.country),
            email=spec.email,
            business_type=spec.business_type,
            business_profile=spec.business_profile,
            capabilities=dict.fromkeys(spec.capabilities, "inactive"),
            metadata=spec.metadata,
        )
        self.objects[account_id] = obj
        log.info("connected account %s created (%s)", account_id, spec.account_type)
        return obj

    def update_account(self, account_id: str, update: AccountUpdate, origin: Origin) -> JSON:
        obj = self.connected(account_id, "account")
        before = copy.deepcopy(obj)
        if update.email is not None:
            obj["email"] = update.email
        if update.business_type is not None:
            obj["business_type"] = update.business_type
        obj["business_profile"].update(update.business_profile)
        active = obj["details_submitted"]
        for name, requested in update.capabilities.items():
            if requested:
                obj["capabilities"].setdefault(name, "active" if active else "inactive")
            else:
                obj["capabilities"].pop(name, None)
        obj["metadata"] = merge_metadata(obj["metadata"], update.metadata)
        self._account_updated(obj, before, origin)
        return obj

    def _account_updated(self, obj: JSON, before: JSON, origin: Origin) -> None:
        previous = {key: value for key, value in before.items() if obj[key] != value}
        if previous:
            self._emit(
                "account.updated", obj, origin, previous_attributes=previous, account=obj["id"]
            )

    def complete_onboarding(self, account_id: str, origin: Origin = AUTOMATIC) -> JSON:
        """The owner submits every detail: the account can take charges and get payouts."""
        obj = self.connected(account_id, "account")
        if obj["details_submitted"] and obj["charges_enabled"]:
            return obj
        before = copy.deepcopy(obj)
        now = self.clock.now()
        external = obj["external_accounts"]
        if not external["data"]:
            bank = res.bank_account(
                account_id=account_id,
                holder=obj["business_profile"]["name"],
                country=obj["country"],
                currency=obj["default_currency"],
            )
            self.objects[bank["id"]] = bank
            external["data"].append(bank)
            external["total_count"] = 1
        obj.update(
            details_submitted=True,
            charges_enabled=True,
            payouts_enabled=True,
            requirements=res.requirements([]),
            capabilities=dict.fromkeys(obj["capabilities"], "active"),
            tos_acceptance={"date": now, "ip": "127.0.0.1", "user_agent": None},
        )
        log.info("connected account %s onboarded", account_id)
        self._account_updated(obj, before, origin)
        return obj

    # -- Account Links --------------------------------------------------------------------

    def create_link(
        self, account_id: str, refresh_url: str, return_url: str, link_type: str
    ) -> JSON:
        self.connected(account_id, "account")
        token = new_id("", 32)
        now = self.clock.now()
        url = f"{self.site_url()}/connect/onboarding/{token}"
        link = res.account_link(created=now, expires_at=now + LINK_LIFETIME, url=url)
        # What the hosted page needs, kept under the token (never served by the API).
        self.objects[token] = link | {
            "id": token,
            "object": "sandbox.account_link",
            "account": account_id,
            "refresh_url": refresh_url,
            "return_url": return_url,
            "type": link_type,
            "state": "new",
        }
        return link

    def link(self, token: str) -> JSON | None:
        record = self.objects.get(token)
        if record is None or record["object"] != "sandbox.account_link":
            return None
        return record

    def open_link(self, token: str) -> JSON | None:
        """The link's record if its form may be shown (once), else None."""
        record = self.link(token)
        if record is None or record["state"] != "new":
            return None
        if record["expires_at"] <= self.clock.now():
            return None
        record["state"] = "opened"
        return record

    def submit_link(self, token: str, complete: bool) -> JSON | None:
        """The form is submitted: the account completed when `complete`; the link's record,
        or None when the link can no longer be used."""
        record = self.link(token)
        if record is None or record["state"] == "used":
            return None
        if record["state"] == "new" and record["expires_at"] <= self.clock.now():
            return None
        record["state"] = "used"
        if complete:
            self.complete_onboarding(record["account"])
        return record

    # -- transfers ------------------------------------------------------------------------

    def _destination(self, account_id: str, param: str) -> JSON:
        obj = self.objects.get(account_id)
        if obj is None or obj["object"] != "account":
            raise resource_missing("destination", account_id, param)
        if obj["capabilities"].get("transfers") != "active":
            raise invalid_request(
                NO_TRANSFERS, param=param, code="insufficient_capabilities_for_transfer",
                saved=True,
            )  # fmt: skip
        return obj

    def transferable(self, charge: JSON) -> int:
        """What a charge still has for transfers with it as `source_transaction`."""
        refunded = sum(refund["amount"] for refund in charge["refunds"]["data"])
        transferred = sum(
            obj["amount"] - obj["amount_reversed"]
            for obj in self.objects.values()
            if obj["object"] == "transfer" and obj["source_transaction"] == charge["id"]
        )
        return charge["amount_captured"] - refunded - transferred

    def create_transfer(
        self,
        *,
        amount: int,
        currency: str,
        destination: str,
        source_transaction: str | None,
        transfer_group: str | None,
        description: str | None,
        metadata: dict[str, str],
        origin: Origin,
    ) -> JSON:
        self._destination(destination, "destination")
        money.check_step(amount, currency, "amount")
        if source_transaction is not None:
            charge = self.account.retrieve("charge", source_transaction, "source_transaction")
            if charge["currency"] != currency:
                raise invalid_request(
                    f"The currency of source_transaction's balance transaction "
                    f"({charge['currency']}) must be the same as the transfer currency "
                    f"({currency}).",
                    param="currency",
                    saved=True,
                )
            available = self.transferable(charge)
            if amount > available:
                raise invalid_request(
                    f"Insufficient funds on the source transaction {source_transaction}: the "
                    f"transfer is for {money.display(amount, currency)}, and the charge has "
                    f"{money.display(max(available, 0), currency)} left to transfer.",
                    param="amount",
                    code="balance_insufficient",
                    saved=True,
                )
        return self._transfer(
            amount, currency, destination, source_transaction, transfer_group,
            description, metadata, origin,
        )  # fmt: skip

    def _transfer(
        self,
        amount: int,
        currency: str,
        destination: str,
        source_transaction: str | None,
        transfer_group: str | None,
        description: str | None,
        metadata: dict[str, str],
        origin: Origin,
    ) -> JSON:
        transfer = res.transfer(
            transfer_id=new_id("tr_1"),
            created=self.clock.now(),
            amount=amount,
            currency=currency,
            destination=destination,
            source_transaction=source_transaction,
            transfer_group=transfer_group,
            description=description,
            metadata=metadata,
        )
        self.objects[transfer["id"]] = transfer
        log.info(
            "transfer %s: %s to %s", transfer["id"], money.display(amount, currency), destination
        )
        self._emit("transfer.created", transfer, origin)
        return transfer

    def update_transfer(
        self,
        transfer_id: str,
        description: str | None,
        metadata: dict[str, str] | None,
        origin: Origin,
    ) -> JSON:
        transfer = self.account.retrieve("transfer", transfer_id, "id")
        before = {"description": transfer["description"], "metadata": dict(transfer["metadata"])}
        if description is not None:
            transfer["description"] = description
        transfer["metadata"] = merge_metadata(transfer["metadata"], metadata)
        previous = {key: value for key, value in before.items() if transfer[key] != value}
        if previous:
            self._emit("transfer.updated", transfer, origin, previous_attributes=previous)
        return transfer

    def create_reversal(
        self,
        transfer_id: str,
        amount: int | None,
        metadata: dict[str, str],
        refund_application_fee: bool,
        origin: Origin,
    ) -> JSON:
        transfer = self.account.retrieve("transfer", transfer_id, "id")
        left = transfer["amount"] - transfer["amount_reversed"]
        currency = transfer["currency"]
        if left <= 0:
            raise invalid_request(
                f"Transfer {transfer_id} has already been fully reversed.",
                code="transfer_already_reversed", saved=True,
            )  # fmt: skip
        amount = left if amount is None else amount
        if amount > left:
            raise invalid_request(
                f"Transfer reversal amount ({money.display(amount, currency)}) is greater than "
                f"the amount left on the transfer ({money.display(left, currency)}).",
                param="amount",
                code="amount_too_large",
                saved=True,
            )
        reversal = self._reverse(transfer, amount, metadata, None, origin)
        if refund_application_fee:
            fee = self._fee_of(transfer)
            if fee is not None:
                left = fee["amount"] - fee["amount_refunded"]
                share = proportion(amount, fee["amount"], transfer["amount"])
                share = left if transfer["reversed"] else min(share, left)
                if share > 0:
                    self._refund_fee(fee, share, {}, origin)
        return reversal

    def _reverse(
        self,
        transfer: JSON,
        amount: int,
        metadata: dict[str, str],
        refund_id: str | None,
        origin: Origin,
    ) -> JSON:
        reversal = res.transfer_reversal(
            transfer, created=self.clock.now(), amount=amount, metadata=metadata, refund=refund_id
        )
        self.objects[reversal["id"]] = reversal
        previous = {
            "amount_reversed": transfer["amount_reversed"],
            "reversed": transfer["reversed"],
        }
        reversals = transfer["reversals"]
        reversals["data"].insert(0, reversal)
        reversals["total_count"] += 1
        transfer["amount_reversed"] += amount
        transfer["reversed"] = transfer["amount_reversed"] >= transfer["amount"]
        log.info(
            "transfer %s reversed by %s",
            transfer["id"],
            money.display(amount, transfer["currency"]),
        )
        self._emit("transfer.reversed", transfer, origin, previous_attributes=previous)
        return reversal

    # -- destination charges --------------------------------------------------------------

    def on_capture(self, intent: JSON, charge: JSON, origin: Origin) -> None:
        """A charge is captured: its balance transaction, and for a destination charge the
        transfer and the application fee."""
        self._charge_balance(charge)
        data = intent["transfer_data"]
        if data is None:
            return
        captured, currency = charge["amount_captured"], charge["currency"]
        amount = captured if data.get("amount") is None else min(data["amount"], captured)
        group = intent["transfer_group"] or f"group_{intent['id']}"
        charge["transfer_group"] = charge["transfer_group"] or group
        transfer = self._transfer(
            amount, currency, data["destination"], charge["id"], group, None, {}, origin
        )
        charge["transfer"] = transfer["id"]
        fee_amount = intent["application_fee_amount"]
        if fee_amount:
            fee_amount = min(fee_amount, captured)
            fee = res.application_fee(
                charge,
                fee_id=new_id("fee_1"),
                created=self.clock.now(),
                amount=fee_amount,
                account_id=data["destination"],
            )
            self.objects[fee["id"]] = fee
            charge.update(application_fee=fee["id"], application_fee_amount=fee_amount)
            self._emit("application_fee.created", fee, origin)

    def _charge_balance(self, charge: JSON) -> None:
        amount, currency = charge["amount_captured"], charge["currency"]
        percent, fixed = STRIPE_FEES.get(currency, DEFAULT_FEE)
        fee = min(amount, proportion(percent, amount, 10_000) + fixed)
        now = self.clock.now()
        txn = res.balance_transaction(
            txn_id=charge["balance_transaction"],
            created=now,
            amount=amount,
            fee=fee,
            currency=currency,
            source=charge["id"],
            kind="charge",
            description=charge["description"],
            available_on=now + PAYOUT_ARRIVAL,
        )
        self.objects[txn["id"]] = txn

    def _fee_of(self, transfer: JSON) -> JSON | None:
        charge_id = transfer["source_transaction"]
        charge = self.objects.get(charge_id) if charge_id else None
        if charge is None or charge.get("transfer") != transfer["id"]:
            return None
        fee_id = charge.get("application_fee")
        return None if fee_id is None else self.objects[fee_id]

    def on_refund(
        self,
        charge: JSON,
        refund: JSON,
        reverse_transfer: bool,
        refund_application_fee: bool,
        origin: Origin,
    ) -> None:
        """A refund of a destination charge: the transfer and the fee in proportion."""
        refunded = sum(r["amount"] for r in charge["refunds"]["data"]) + refund["amount"]
        last = refunded >= charge["amount_captured"]
        captured = charge["amount_captured"]
        transfer_id = charge.get("transfer")
        if reverse_transfer and transfer_id is not None:
            transfer = self.objects[transfer_id]
            left = transfer["amount"] - transfer["amount_reversed"]
            share = left if last else proportion(refund["amount"], transfer["amount"], captured)
            if min(share, left) > 0:
                reversal = self._reverse(transfer, min(share, left), {}, refund["id"], origin)
                refund["transfer_reversal"] = reversal["id"]
        fee_id = charge.get("application_fee")
        if refund_application_fee and fee_id is not None:
            fee = self.objects[fee_id]
            left = fee["amount"] - fee["amount_refunded"]
            share = left if last else proportion(refund["amount"], fee["amount"], captured)
            if min(share, left) > 0:
                self._refund_fee(fee, min(share, left), {}, origin)

    # -- application fees -----------------------------------------------------------------

    def refund_fee(
        self, fee_id: str, amount: int | None, metadata: dict[str, str], origin: Origin
    ) -> JSON:
        fee = self.account.retrieve("application_fee", fee_id, "id")
        left = fee["amount"] - fee["amount_refunded"]
        currency = fee["currency"]
        if left <= 0:
            raise invalid_request(
                f"Application fee {fee_id} has already been refunded.",
                code="charge_already_refunded", saved=True,
            )  # fmt: skip
        amount = left if amount is None else amount
        if amount > left:
            raise invalid_request(
                f"Refund amount ({money.display(amount, currency)}) is greater than the "
                f"unrefunded amount on the application fee ({money.display(left, currency)})",
                param="amount",
                code="amount_too_large",
                saved=True,
            )
        return self._refund_fee(fee, amount, metadata, origin)

    def _refund_fee(self, fee: JSON, amount: int, metadata: dict[str, str], origin: Origin) -> JSON:
        refund = res.fee_refund(fee, created=self.clock.now(), amount=amount, metadata=metadata)
        self.objects[refund["id"]] = refund
        previous = {"amount_refunded": fee["amount_refunded"], "refunded": fee["refunded"]}
        fee["refunds"]["data"].insert(0, refund)
        fee["refunds"]["total_count"] += 1
        fee["amount_refunded"] += amount
        fee["refunded"] = fee["amount_refunded"] >= fee["amount"]
        self._emit("application_fee.refunded", fee, origin, previous_attributes=previous)
        return refund

    # -- payouts --------------------------------------------------------------------------

    def owner(self, obj: JSON) -> str | None:
        """The connected account an object belongs to (None: the platform)."""
        if obj["object"] == "payout":
            bank = self.objects.peek(obj["destination"])
            return bank["account"]
        return None

    def create_payout(
        self,
        account_id: str,
        amount: int,
        currency: str | None,
        outcome: Literal["paid", "failed", "pending"],
        failure_code: str = "account_closed",
    ) -> JSON:
        """A payout of a connected account to its bank account, then paid or failed."""
        obj = self.connected(account_id, "account")
        if not obj["payouts_enabled"] or not obj["external_accounts"]["data"]:
            raise invalid_request(
                f"Payouts are not enabled for account {account_id}: complete its onboarding.",
                param="account",
            )
        if failure_code not in PAYOUT_FAILURES:
            raise invalid_request(
                f"Invalid failure_code: must be one of {', '.join(PAYOUT_FAILURES)}",
                param="failure_code",
            )
        now = self.clock.now()
        payout = res.payout(
            created=now,
            amount=amount,
            currency=currency or obj["default_currency"],
            destination=obj["external_accounts"]["data"][0]["id"],
            arrival_date=now + PAYOUT_ARRIVAL,
        )
        self.objects[payout["id"]] = payout
        self._emit("payout.created", payout, AUTOMATIC, account=account_id)
        if outcome != "pending":
            self.settle_payout(payout["id"], outcome, failure_code)
        return payout

    def settle_payout(
        self, payout_id: str, outcome: Literal["paid", "failed"], failure_code: str
    ) -> JSON:
        payout = self.objects.get(payout_id)
        if payout is None or payout["object"] != "payout":
            raise resource_missing("payout", payout_id, "id")
        if payout["status"] not in ("pending", "in_transit"):
            raise _payout_settled(payout)
        if outcome == "paid":
            payout.update(
                status="paid",
                reconciliation_status="completed",
                trace_id={"status": "supported", "value": new_id("", 12)},
            )
        else:
            payout.update(
                status="failed",
                failure_code=failure_code,
                failure_message=PAYOUT_FAILURES[failure_code],
                failure_balance_transaction=new_id("txn_1"),
                trace_id={"status": "unsupported", "value": None},
            )
        log.info("payout %s %s", payout_id, outcome)
        owner = self.owner(payout)
        self._emit(f"payout.{outcome}", payout, AUTOMATIC, account=owner)
        return payout


def _payout_settled(payout: JSON) -> StripeError:
    return invalid_request(
        f"Payout {payout['id']} is already {payout['status']}.", param="id", saved=True
    )
