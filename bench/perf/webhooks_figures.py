"""Arithmetic shared by the webhook measurements: latency percentiles and target verdicts."""

from __future__ import annotations

import math
from typing import Any


def percentile_ms(ordered: list[float], percent: float) -> float | None:
    """Nearest-rank percentile of sorted seconds, in milliseconds."""
    if not ordered:
        return None
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1] * 1e3


def latency_ms(seconds: list[float]) -> dict[str, Any]:
    ordered = sorted(seconds)
    return {
        "count": len(ordered),
        "p50_ms": percentile_ms(ordered, 50),
        "p90_ms": percentile_ms(ordered, 90),
        "p99_ms": percentile_ms(ordered, 99),
        "max_ms": ordered[-1] * 1e3 if ordered else None,
    }


def verdict(value: float | None, limit: float, at_least: bool) -> dict[str, Any]:
    """Whether `value` meets a target of `limit` (a floor with `at_least`, else a ceiling that
    must not be reached), in the words of bench/perf/report.py."""
    if value is None:
        return {"met": None, "verdict": "NOT MEASURED (no figure)"}
    met = value >= limit if at_least else value < limit
    share = value / limit
    if met:
        gap = share - 1 if at_least else 1 - share
        words = f"met, {gap:.0%} {'above' if at_least else 'below'} the limit"
    else:
        words = f"NOT MET, {share:.2f}x the limit"
    return {"met": met, "verdict": words}
