"""Everything about money: tariffs, the reservation state machine, Stripe, the payment API.

Knows nothing about OCPP frames and never imports `csms`: what it needs from the
chargers it declares as ports (`payments.ports`), which the composition root fills in.
"""
