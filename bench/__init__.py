"""Benchmarks and fault-injection runs (by hand; small versions run in the test suite)."""
