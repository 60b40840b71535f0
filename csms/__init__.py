"""OCPP 1.6J central system with embedded Stripe payments."""
