"""The counts at the end of a run: the server's reservations, the whole of the sandbox's
ledger and the energy the simulated chargers delivered, held against one another.

`tally()` is pure (facts in, counts out) so that each count can be shown to fire on a
fabricated ledger; `audit_run()` gathers the facts from the processes and calls it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bench.faults.driving import TERMINAL, Api
from simulators.chargepoint import SimulatedCharger

# Register readings are whole Wh: billed and delivered energy may differ by a rounding.
ROUNDING_WH = 2
HELD = "requires_capture"
SETTLED = ("succeeded", "canceled")


@dataclass
class Report:
    scenario: str
    sessions: int = 0
    completed: int = 0  # captured
    released: int = 0  # ended without a charge, hold released (or never placed)
    needs_review: int = 0
    lost: int = 0  # not ended, or the server and Stripe disagree
    double_captures: int = 0  # a PaymentIntent asked to capture more than once
    unreleased_holds: int = 0  # any hold left in the sandbox's ledger at the end
    orphan_holds: int = 0  # ... of which on a PaymentIntent the server never recorded
    unbilled_wh: int = 0  # energy the chargers reported and the server did not bill
    free_charging: int = 0  # transactions that charged with no paid session behind them
    failed_checks: int = 0  # a scenario's own checks (adversarial cases) that failed
    server_crashes: int = 0  # exits we did not cause
    kills: int = 0
    notes: list[str] = field(default_factory=list)
    # Scenario cases: name -> [passed, failed, passed without the order of events happening].
    cases: dict[str, list[int]] = field(default_factory=dict)
    # Transactions a scenario already counted as free charging (charger id, transaction id).
    free_transactions: set[tuple[str, int]] = field(default_factory=set)

    @property
    def clean(self) -> bool:
        return (
            self.lost == 0
            and self.double_captures == 0
            and self.unreleased_holds == 0
            and self.orphan_holds == 0
            and self.unbilled_wh == 0
            and self.free_charging == 0
            and self.failed_checks == 0
            and self.server_crashes == 0
        )

    def line(self) -> str:
        return (
            f"{self.scenario:<16} sessions {self.sessions:>4}  completed {self.completed:>4}  "
            f"released {self.released:>4}  review {self.needs_review:>3}  lost {self.lost}  "
            f"double captures {self.double_captures}  unreleased holds {self.unreleased_holds}  "
            f"orphan holds {self.orphan_holds}  unbilled Wh {self.unbilled_wh}  "
            f"free charging {self.free_charging}  failed checks {self.failed_checks}  "
            f"crashes {self.server_crashes}  kills {self.kills}"
        )

    def case(
        self, name: str, passed: bool, note: str | None = None, *, happened: bool = True
    ) -> None:
        """One scenario case's verdict; a failure is counted and its evidence noted.
        `happened=False`: it passed only because its order of events did not come about."""
        tally = self.cases.setdefault(name, [0, 0, 0])
        tally[0 if passed else 1] += 1
        if passed and not happened:
            tally[2] += 1
        if not passed:
            self.failed_checks += 1
        if note:
            self.notes.append(f"{name}: {note}")


@dataclass(frozen=True)
class Payment:
    """One reservation as the server reports it (GET /api/payments/{id}/details)."""

    reservation_id: str
    state: str
    hold: str
    captured_amount: int
    payment_intent_id: str | None
    charger_id: str
    transaction_id: int | None
    energy_wh: int  # billed: the breakdown's energy once settled, else the energy so far

    @classmethod
    def of(cls, details: dict[str, Any]) -> Payment:
        payment = details["payment"]
        breakdown = payment.get("breakdown") or {}
        return cls(
            reservation_id=payment["reservationId"],
            state=payment["state"],
            hold=payment["hold"],
            captured_amount=payment["capturedAmount"],
            payment_intent_id=details.get("paymentIntentId"),
            charger_id=payment["chargePointId"],
            transaction_id=payment.get("transactionId"),
            energy_wh=breakdown.get("energyWh", payment.get("energyWh") or 0),
        )


@dataclass(frozen=True)
class Delivery:
    """One transaction as a simulated charger saw it."""

    charger_id: str
    transaction_id: int
    delivered_wh: float  # what the EV really took
    reported_wh: int  # the rises of the register readings sent to the CSMS
    stopped: bool  # its StopTransaction was sent (or queued): the charger reported it all
    accepted: bool  # the CSMS answered its StartTransaction with Accepted

    @property
    def charged_wh(self) -> int:
        """Energy that must be billed: delivered, as far as the meter told the CSMS."""
        return round(min(self.delivered_wh, self.reported_wh))


def deliveries(sims: Iterable[SimulatedCharger]) -> list[Delivery]:
    return [
        Delivery(
            charger_id=sim.charge_point_id,
            transaction_id=t.transaction_id,
            delivered_wh=t.delivered_wh,
            reported_wh=t.reported_wh,
            stopped=t.meter_stop_wh is not None,
            accepted=t.id_tag_status == "Accepted",
        )
        for sim in sims
        for t in sim.transactions
        if t.transaction_id > 0
    ]


def tally(
    report: Report,
    payments: list[Payment],
    ledger: dict[str, dict[str, Any]],
    delivered: list[Delivery],
) -> Report:
    """Count what went wrong: per reservation, over the whole ledger, and in energy."""
    report.sessions = len(payments)
    _reservations(report, payments, ledger)
    _whole_ledger(report, payments, ledger)
    _energy(report, payments, delivered)
    return report


def _reservations(
    report: Report, payments: list[Payment], ledger: dict[str, dict[str, Any]]
) -> None:
    for p in payments:
        intent = ledger.get(p.payment_intent_id or "", {})
        if p.state not in TERMINAL or p.hold in ("Capturing", "Releasing"):
            report.lost += 1
            report.notes.append(f"{p.reservation_id}: never ended ({p.state}, hold {p.hold})")
        elif intent and intent.get("amount_captured", 0) != p.captured_amount:
            report.lost += 1
            report.notes.append(
                f"{p.reservation_id}: captured {p.captured_amount} here, "
                f"{intent.get('amount_captured')} at Stripe ({p.payment_intent_id})"
            )
        elif p.state == "Completed" and p.captured_amount > 0:
            report.completed += 1
        elif p.state == "NeedsReview":
            report.needs_review += 1
        else:
            report.released += 1


def _whole_ledger(
    report: Report, payments: list[Payment], ledger: dict[str, dict[str, Any]]
) -> None:
    """Every PaymentIntent at Stripe, whether the server recorded it or not."""
    recorded = {p.payment_intent_id: p for p in payments if p.payment_intent_id}
    for intent_id, entry in sorted(ledger.items()):
        status = entry.get("status")
        reservation_id = (entry.get("metadata") or {}).get("reservation_id")
        owner = recorded.get(intent_id)
        who = owner.reservation_id if owner else f"reservation {reservation_id or '?'}"
        # Refused requests count too (capture_requests), so an attempt to capture twice shows
        # even when Stripe turned the second one down.
        captures = max(entry.get("capture_requests", 0), entry.get("captures", 0))
        if captures > 1:
            report.double_captures += 1
            report.notes.append(f"{who}: {intent_id} asked to capture {captures} times")
        if entry.get("amount_held", 0) > 0 or status == HELD:
            report.unreleased_holds += 1
            if owner is None:
                report.orphan_holds += 1
                report.notes.append(
                    f"{who}: orphan hold {intent_id} ({entry.get('amount_held')} held), "
                    "not recorded by the server"
                )
            else:
                report.notes.append(
                    f"{who}: hold {intent_id} still placed ({owner.state}, hold {owner.hold})"
                )
        elif reservation_id is not None and status not in SETTLED:
            # Ours, not holding money, but neither captured nor cancelled.
            report.lost += 1
            report.notes.append(f"{who}: {intent_id} left {status}, neither captured nor cancelled")
        elif owner is None and status == "succeeded":
            report.lost += 1
            report.notes.append(
                f"{who}: {intent_id} captured {entry.get('amount_captured')} at Stripe, "
                "unknown to the server"
            )


def _energy(report: Report, payments: list[Payment], delivered: list[Delivery]) -> None:
    """Energy each charger reported against the energy billed for its transaction."""
    by_transaction = {(d.charger_id, d.transaction_id): d for d in delivered}
    billed: set[tuple[str, int]] = set()
    for p in payments:
        if p.transaction_id is None:
            continue
        key = (p.charger_id, p.transaction_id)
        billed.add(key)
        d = by_transaction.get(key)
        if d is None or not d.stopped:
            continue  # the charger never reported the whole transaction
        gap = d.charged_wh - p.energy_wh
        if gap > ROUNDING_WH:
            report.unbilled_wh += gap
            report.notes.append(
                f"{p.reservation_id}: transaction {p.transaction_id} delivered "
                f"{d.delivered_wh:.0f} Wh (meter rises {d.reported_wh} Wh), billed "
                f"{p.energy_wh} Wh ({p.state})"
            )
    for d in delivered:
        key = (d.charger_id, d.transaction_id)
        if key in billed or key in report.free_transactions:
            continue
        if not d.accepted or d.charged_wh <= ROUNDING_WH:
            continue
        # The CSMS accepted a transaction that no paid session accounts for.
        report.free_charging += 1
        report.unbilled_wh += d.charged_wh
        report.notes.append(
            f"{d.charger_id}: transaction {d.transaction_id} accepted and charged "
            f"{d.charged_wh} Wh with no paid session"
        )


async def sandbox_ledger(api: Api) -> dict[str, dict[str, Any]]:
    """The sandbox's ledger, each PaymentIntent with its metadata."""
    async with api.http.get(f"{api.processes.stripe}/_sandbox/ledger") as response:
        ledger: dict[str, dict[str, Any]] = (await response.json())["payment_intents"]
    if any("metadata" not in entry for entry in ledger.values()):
        # A ledger without metadata: take it from the PaymentIntents' creation events.
        async with api.http.get(
            f"{api.processes.stripe}/_sandbox/events", params={"type": "payment_intent.created"}
        ) as response:
            events = (await response.json())["events"]
        metadata = {e["data"]["object"]["id"]: e["data"]["object"]["metadata"] for e in events}
        for intent_id, entry in ledger.items():
            entry.setdefault("metadata", metadata.get(intent_id, {}))
    return ledger


async def audit_run(
    api: Api, report: Report, reservation_ids: list[str], sims: Iterable[SimulatedCharger] = ()
) -> Report:
    """Compare every reservation, every PaymentIntent and every transaction."""
    ledger = await sandbox_ledger(api)
    payments = []
    for reservation_id in reservation_ids:
        _, details = await api.call("GET", f"/api/payments/{reservation_id}/details")
        payments.append(Payment.of(details))
    return tally(report, payments, ledger, deliveries(sims))
