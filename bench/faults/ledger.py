"""The counts at the end of a run: the server's reservations against the sandbox's ledger."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.faults.driving import TERMINAL, Api


@dataclass
class Report:
    scenario: str
    sessions: int = 0
    completed: int = 0  # captured
    released: int = 0  # ended without a charge, hold released (or never placed)
    needs_review: int = 0
    lost: int = 0  # not ended, or the server and Stripe disagree
    double_captures: int = 0
    unreleased_holds: int = 0
    server_crashes: int = 0  # exits we did not cause
    kills: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return (
            self.lost == 0
            and self.double_captures == 0
            and self.unreleased_holds == 0
            and self.server_crashes == 0
        )

    def line(self) -> str:
        return (
            f"{self.scenario:<16} sessions {self.sessions:>4}  completed {self.completed:>4}  "
            f"released {self.released:>4}  review {self.needs_review:>3}  lost {self.lost}  "
            f"double captures {self.double_captures}  unreleased holds {self.unreleased_holds}  "
            f"crashes {self.server_crashes}  kills {self.kills}"
        )


async def audit_run(api: Api, report: Report, reservation_ids: list[str]) -> Report:
    """Compare every reservation with what Stripe (the sandbox) did."""
    async with api.http.get(f"{api.processes.stripe}/_sandbox/ledger") as response:
        ledger = (await response.json())["payment_intents"]
    report.sessions = len(reservation_ids)
    for reservation_id in reservation_ids:
        _, details = await api.call("GET", f"/api/payments/{reservation_id}/details")
        payment = details["payment"]
        intent = ledger.get(details["paymentIntentId"] or "", {})
        if intent.get("capture_requests", 0) > 1:
            report.double_captures += 1
        if intent.get("status") == "requires_capture":
            report.unreleased_holds += 1
            report.notes.append(f"{reservation_id}: hold still placed ({payment['state']})")
        if payment["state"] not in TERMINAL or payment["hold"] in ("Capturing", "Releasing"):
            report.lost += 1
            report.notes.append(f"{reservation_id}: never ended ({payment['state']})")
        elif intent and intent.get("amount_captured", 0) != payment["capturedAmount"]:
            report.lost += 1
            report.notes.append(
                f"{reservation_id}: captured {payment['capturedAmount']} here, "
                f"{intent.get('amount_captured')} at Stripe"
            )
        elif payment["state"] == "Completed" and payment["capturedAmount"] > 0:
            report.completed += 1
        elif payment["state"] == "NeedsReview":
            report.needs_review += 1
        else:
            report.released += 1
    return report
