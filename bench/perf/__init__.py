"""Side-by-side benchmark: a websockets echo server, a bare `ocpp` central system and this
project's server, under the same load generator on the same machine.

    python -m bench.perf            # the full run, a few minutes
    python -m bench.perf --quick    # a smoke run of a few seconds
"""
