"""Stripe calls that move an owner's share: Transfers to connected accounts and their
reversals, through the payments gateway's SDK client, error mapping and metrics.

Separate charges and transfers: the transfer's `source_transaction` is the captured charge
(so it waits for those funds, and can never exceed them), its `transfer_group` the
reservation id (so reconciliation lists a payment's movements by it).

Every write carries the effect's deterministic idempotency key, and keeps it in the
object's metadata (`transfer_key`, `reversal_key`): Stripe forgets idempotency keys after 24
hours, so when an earlier attempt may have reached Stripe (`look_first`), the movements
already made are looked through first and the one found is the answer, never a second one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from payments.stripe_gateway import StripeGateway


@dataclass(frozen=True)
class StripeTransfer:
    id: str
    amount: int
    amount_reversed: int
    destination: str
    currency: str
    key: str | None  # our idempotency key, from its metadata
    group: str | None  # its transfer_group: the reservation id
    reversals: tuple[tuple[str, int, str | None], ...]  # (id, amount, our key)

    @classmethod
    def of(cls, obj: dict[str, Any]) -> StripeTransfer:
        reversals = ((obj.get("reversals") or {}).get("data")) or []
        return cls(
            id=str(obj["id"]),
            amount=int(obj.get("amount") or 0),
            amount_reversed=int(obj.get("amount_reversed") or 0),
            destination=str(obj.get("destination") or ""),
            currency=str(obj.get("currency") or ""),
            key=(obj.get("metadata") or {}).get("transfer_key"),
            group=obj.get("transfer_group"),
            reversals=tuple(
                (
                    str(r["id"]),
                    int(r.get("amount") or 0),
                    (r.get("metadata") or {}).get("reversal_key"),
                )
                for r in reversals
            ),
        )


class TransferGateway:
    def __init__(self, gateway: StripeGateway) -> None:
        self._gateway = gateway
        self._client = gateway._client  # the one SDK client, its HTTP pool and its retries
        self._call = gateway._call  # the one error mapping and its metrics

    async def transfer(
        self,
        *,
        payment_intent_id: str,
        destination: str,
        amount: int,
        currency: str,
        group: str,
        key: str,
        look_first: bool,
    ) -> str:
        """Transfer `amount` of the PaymentIntent's charge to `destination`; Stripe's tr_ id."""
        if look_first:
            for found in await self.transfers_of(group):
                if found.key == key:
                    return found.id
        intent = await self._call(
            "payment_intent.retrieve",
            self._client.v1.payment_intents.retrieve_async(payment_intent_id),
        )
        charge = intent.latest_charge
        charge_id = charge if isinstance(charge, str) or charge is None else charge.id
        params: dict[str, Any] = {
            "amount": amount,
            "currency": currency,
            "destination": destination,
            "transfer_group": group,
            "metadata": {"reservation_id": group, "transfer_key": key},
        }
        if charge_id:
            params["source_transaction"] = charge_id
        created = await self._call(
            "transfer.create",
            self._client.v1.transfers.create_async(
                params,  # type: ignore[arg-type]
                {"idempotency_key": key},
            ),
        )
        return str(created.id)

    async def reverse(self, transfer_id: str, amount: int, key: str, *, look_first: bool) -> str:
        """Take `amount` back from the transfer; Stripe's trr_ id."""
        if look_first:
            for reversal in await self._gateway._list_all(
                "transfer_reversal.list",
                lambda params: self._client.v1.transfers.reversals.list_async(transfer_id, params),
                {},
            ):
                if (reversal.get("metadata") or {}).get("reversal_key") == key:
                    return str(reversal["id"])
        created = await self._call(
            "transfer_reversal.create",
            self._client.v1.transfers.reversals.create_async(
                transfer_id,
                {"amount": amount, "metadata": {"reversal_key": key}},
                {"idempotency_key": key},
            ),
        )
        return str(created.id)

    async def transfers_since(self, since: int) -> list[StripeTransfer]:
        """Every transfer created at or after `since` (Unix seconds), all pages."""
        found = await self._gateway._list_all(
            "transfer.list", self._client.v1.transfers.list_async, {"created": {"gte": since}}
        )
        return [StripeTransfer.of(obj) for obj in found]

    async def transfers_of(self, group: str) -> list[StripeTransfer]:
        """Every transfer of a transfer group (a reservation), with its reversals."""
        found = await self._gateway._list_all(
            "transfer.list", self._client.v1.transfers.list_async, {"transfer_group": group}
        )
        return [StripeTransfer.of(obj) for obj in found]
