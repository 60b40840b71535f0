"""Connect's money: transfers and reversals, destination charges with application fees and
their refunds, payouts of connected accounts, balance transactions of charges.

Rules, as Stripe documents them:

- A transfer goes only to an account whose `transfers` capability is active. With
  `source_transaction` it cannot exceed what the charge still has: captured, less
  refunds, less the other transfers from it net of their reversals; without it, it is
  not checked against the platform's balance (not modelled). A reversal cannot
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
  (`STRIPE_FEES`), so the fee of each payment can be read (`expand[]=balance_transaction`
  on the charge, or `/v1/balance_transactions`); a refund has one too (its amount
  negative, no fee: Stripe keeps its fee on a refunded payment).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from . import connect_resources as res
from . import money
from .destination import NO_TRANSFERS
from .errors import StripeError, invalid_request, resource_missing
from .params import merge_metadata
from .records import Records
from .resources import JSON, new_id
from .state import Account
from .state_types import AUTOMATIC, Clock, Origin

log = logging.getLogger("simulators.stripe_sandbox")

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


def proportion(part: int, of: int, whole: int) -> int:
    """`of` * `part` / `whole`, rounded half up (Stripe's proportional refunds)."""
    return (2 * of * part + whole) // (2 * whole) if whole else 0


class Money:
    """Transfers, fees and payouts on `account` (a part of `connect.Connect`)."""

    account: Account
    objects: Records[JSON]
    clock: Clock

    def _emit(self, event_type: str, obj: JSON, origin: Origin, **kwargs: Any) -> None:
        self.account.emit(event_type, obj, origin, **kwargs)

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
        """A refund's balance transaction; of a destination charge, the transfer and the fee
        taken back in proportion."""
        now = self.clock.now()
        txn = res.balance_transaction(
            txn_id=refund["balance_transaction"],
            created=now,
            amount=-refund["amount"],
            fee=0,
            currency=refund["currency"],
            source=refund["id"],
            kind="refund",
            description="REFUND FOR CHARGE",
            available_on=now,
        )
        self.objects[txn["id"]] = txn
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
