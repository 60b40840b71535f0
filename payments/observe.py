"""What payments reports for monitoring, as a protocol: `payments` never imports `csms`, so
the process's metrics (`csms/metrics.py`) implement this and are handed in.

Called on hot paths: implementations only count, never do I/O.
"""

from __future__ import annotations

from typing import Protocol


class PaymentsObserver(Protocol):
    def stripe_call(self, operation: str, outcome: str, seconds: float) -> None:
        """One Stripe request: `outcome` is "ok", "unavailable" or "rejected"."""

    def webhook(self, event_type: str, applied: str) -> None:
        """One Stripe event received: `applied` as in `WebhookOutcome.applied`."""
