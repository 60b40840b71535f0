"""Fault injection against real processes: the server killed with SIGKILL at random, Stripe
failing, webhooks delivered ten times over, chargers misbehaving, the database locked,
its disk full; and drivers, chargers and Stripe producing the awkward orders of events
real ones produce (adversarial).
Every run ends with counts checked against the whole of the Stripe sandbox's ledger and
against the energy the simulated chargers delivered.

    python -m bench.faults              # the long run: 200+ paid sessions per scenario
    python -m bench.faults --quick      # the CI-sized run
"""
