"""Fault injection against real processes: the server killed with SIGKILL at random, Stripe
failing, webhooks delivered ten times over, chargers misbehaving, the database locked,
its disk full.
Every run ends with counts checked against the Stripe sandbox's own ledger.

    python -m bench.faults              # the long run: 200+ paid sessions per scenario
    python -m bench.faults --quick      # the CI-sized run
"""
