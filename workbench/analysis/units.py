"""Units people read: a rate per second, minute, hour or day, chosen by magnitude."""

from __future__ import annotations

import math

RATE_UNITS = (("second", 1), ("minute", 60), ("hour", 3600), ("day", 86400))


def rate_unit(peak_per_s: float | None) -> tuple[str, int]:
    """``(unit, seconds)``: the shortest unit in which the peak rate is at least 1.

    ``6e-4`` commits per second reads as ``2.2`` per hour; a rate of 3 per second stays
    per second. No data, or rates too small even per day, are shown per day.
    """
    if peak_per_s is None or not math.isfinite(peak_per_s) or peak_per_s <= 0:
        return RATE_UNITS[-1]
    for unit, seconds in RATE_UNITS:
        if peak_per_s * seconds >= 1:
            return unit, seconds
    return RATE_UNITS[-1]
