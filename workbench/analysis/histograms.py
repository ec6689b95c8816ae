"""Percentiles from OTLP explicit-bucket histograms."""

from __future__ import annotations

from collections.abc import Sequence


def quantile(bounds: Sequence[float], counts: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile, interpolating linearly inside the bucket that holds it.

    ``counts`` has ``len(bounds) + 1`` entries: bucket ``i`` covers
    ``(bounds[i-1], bounds[i]]``; the first is open below (taken to start at 0 or at the
    first bound if that is negative) and the last is open above (its lower bound is
    returned, as Prometheus does).
    """
    total = float(sum(counts))
    if total <= 0 or len(counts) != len(bounds) + 1:
        return None
    rank = q * total
    seen = 0.0
    for i, c in enumerate(counts):
        if c <= 0:
            continue
        if seen + c >= rank:
            if i == len(bounds):
                return float(bounds[-1]) if bounds else None
            upper = float(bounds[i])
            lower = float(bounds[i - 1]) if i > 0 else min(0.0, upper)
            return lower + (upper - lower) * (rank - seen) / c
        seen += c
    return float(bounds[-1]) if bounds else None
