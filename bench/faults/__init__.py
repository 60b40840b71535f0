"""Fault injection against real processes: the server killed with SIGKILL at random, Stripe
failing, webhooks delivered ten times over, chargers misbehaving, the database locked,
its disk full; drivers, chargers and Stripe producing the awkward orders of events
real ones produce (adversarial); and nodes of a cluster behind HAProxy killed with
SIGKILL mid-session (node-kill).
Every run ends with counts checked against the whole of the Stripe sandbox's ledger and
against the energy the simulated chargers delivered.

    python -m bench.faults              # the long run: 200+ paid sessions per scenario
    python -m bench.faults --quick      # the CI-sized run
"""
