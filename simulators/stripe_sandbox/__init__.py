"""A local, stateful, Stripe-compatible HTTP server for tests and demos.

It speaks the subset of the Stripe API the project uses (Checkout Sessions with a hosted
payment page, PaymentIntents, charges, Refunds, disputes, Events, and their lists), with
Stripe's form encoding, errors, idempotency and signed webhooks, so the real `stripe` SDK
runs against it over real HTTP. With a state file it keeps its account across restarts.
See `StripeSandbox` for the control methods tests use.
"""

from .sandbox import DEFAULT_API_VERSION, StripeSandbox

__all__ = ["DEFAULT_API_VERSION", "StripeSandbox"]
