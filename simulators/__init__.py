"""Simulated devices that talk to the central system over the wire."""
