"""Units people read: numbers as text a person can take in at a glance.

One formatting layer for every table, card and chart of the views (and the CLI, a
notebook, anything that shows a number to a person): a duration always has its unit
(``17.97 s``, ``1 ms``, ``2 min 5 s``), a fraction is a percentage (``34%``), money is
dollars (``$0.59``), a ratio says "times" (``3.27×``), any other number is rounded
(``89.83``, never ``89.83000000000001``) with thousands separators and never in
scientific notation, and a time is whole fields (``2026-12-05 23:53:43``: a field is
dropped, never cut). Missing values are shown as nothing (``""``).

Charts choose a unit the same way (:func:`duration_unit`, :func:`rate_unit`): by the
magnitude of what they draw, so that ticks read ``250 ms``-scale numbers, not ``2.5e-1``.
"""

from __future__ import annotations

import math
import numbers
from datetime import date, datetime
from decimal import Decimal

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


def _value(x: object) -> float | None:
    """``x`` as a finite float, or None when it is missing (None, NaN, NA, NaT, text)."""
    if x is None or isinstance(x, bool) or not isinstance(x, numbers.Real | Decimal):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _trim(text: str) -> str:
    """``12.50`` → ``12.5``, ``3.00`` → ``3`` (a fixed-point text without its zero tail)."""
    return text.rstrip("0").rstrip(".") if "." in text else text


def _significant(x: float, digits: int = 3) -> str:
    """``x`` (> 0) with ``digits`` significant digits in fixed point: 1 → ``1``,
    12.34 → ``12.3``, 143.2 → ``143``."""
    decimals = max(0, digits - 1 - math.floor(math.log10(x)))
    return _trim(f"{x:,.{decimals}f}")


def duration(seconds: object) -> str:
    """A duration in seconds as a person reads it, always with its unit.

    ``17.97 s``, ``1 ms``, ``12.3 ms``, ``250 µs``, ``2 min 5 s``, ``1 h 3 min``,
    ``2 d 4 h``; ``0 s`` for zero; ``""`` when missing.

    >>> duration(17.9712), duration(0.001), duration(125), duration(None)
    ('17.97 s', '1 ms', '2 min 5 s', '')
    """
    s = _value(seconds)
    if s is None:
        return ""
    if s < 0:
        return "-" + duration(-s)
    if s == 0:
        return "0 s"
    for unit, factor in (("µs", 1e6), ("ms", 1e3)):
        if s * factor < 999.5 and (unit == "ms" or s < 1e-3):
            return f"{_significant(s * factor)} {unit}"
    if round(s, 2) < 60:
        return f"{_trim(f'{s:.2f}')} s"
    whole = round(s)
    for big, size, small, part in (("d", 86400, "h", 3600), ("h", 3600, "min", 60),
                                   ("min", 60, "s", 1)):
        if whole >= size:
            rest = (whole % size) // part
            return f"{whole // size:,} {big}" + (f" {rest} {small}" if rest else "")
    return f"{whole} s"  # not reached: whole >= 60 here


def duration_ms(ms: object) -> str:
    """:func:`duration` of a value in milliseconds (span and trace durations)."""
    v = _value(ms)
    return "" if v is None else duration(v / 1000)


def duration_unit(peak_s: float | None) -> tuple[str, float]:
    """``(unit, factor)`` for a chart of durations whose largest value is ``peak_s``
    seconds: multiply seconds by ``factor`` to draw in ``unit`` (µs, ms, s, min or h),
    so that the ticks are plain numbers (``250``, not ``2.5e-1``)."""
    v = _value(peak_s)
    if v is None or v <= 0:
        return "s", 1.0
    if v < 1e-3:
        return "µs", 1e6
    if v < 1:
        return "ms", 1e3
    if v < 120:
        return "s", 1.0
    if v < 7200:
        return "min", 1 / 60
    return "h", 1 / 3600


def percent(fraction: object) -> str:
    """A fraction (0.34) as a percentage: ``34%``; ``9.3%`` below 10%, ``<0.1%`` for a
    sliver above zero, ``""`` when missing."""
    v = _value(fraction)
    if v is None:
        return ""
    p = v * 100
    if p == 0:
        return "0%"
    if abs(p) >= 9.95:
        return f"{p:,.0f}%"
    if abs(p) >= 0.095:
        return f"{_trim(f'{p:.1f}')}%"
    return "<0.1%" if p > 0 else ">-0.1%"


def percentage(points: object) -> str:
    """A percentage given in points (0 to 100, as coverage tools report it, not a
    fraction) with one decimal: ``68.5%``; ``0%`` and ``100%`` whole, ``""`` when missing.
    One decimal, not :func:`percent`'s whole numbers: a tenth of a point of coverage is
    a change people look for."""
    v = _value(points)
    if v is None:
        return ""
    text = f"{v:,.1f}"
    return f"{text[:-2] if text.endswith('.0') and abs(v) in (0, 100) else text}%"


def points(change: object) -> str:
    """A change of a :func:`percentage`, in percentage points, always signed:
    ``+2.0 pts``, ``-0.4 pts``, ``0 pts``; ``""`` when missing."""
    v = _value(change)
    if v is None:
        return ""
    text = f"{v:+,.1f}"
    return "0 pts" if text in ("+0.0", "-0.0") else f"{text} pts"


def number(x: object) -> str:
    """Any other number, rounded for reading: thousands separators, at most two decimals
    from 1 up (``89.83``), three significant digits below 1 but never more than three
    decimals (``0.0238`` → ``0.024``; ``<0.001`` for less), whole numbers above 1,000,
    and never scientific notation. Integers are shown whole (``1,234,567``)."""
    if isinstance(x, numbers.Integral) and not isinstance(x, bool):
        return f"{int(x):,}"
    v = _value(x)
    if v is None:
        return ""
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 999.5:
        return f"{v:,.0f}"
    if a >= 1:
        return _trim(f"{v:,.2f}")
    if a < 0.0005:
        return "<0.001" if v > 0 else ">-0.001"
    return ("-" if v < 0 else "") + _trim(f"{float(_significant(a, 3)):.3f}")


def money(usd: object) -> str:
    """US dollars: ``$4.06``, ``$0.59``, ``$0.024`` below ten cents, ``<$0.001`` for
    less, ``""`` when missing."""
    v = _value(usd)
    if v is None:
        return ""
    if v == 0:
        return "$0"
    sign, a = ("-" if v < 0 else ""), abs(v)
    if a >= 0.095:
        return f"{sign}${a:,.2f}"
    if a >= 0.0005:
        return f"{sign}${_trim(f'{a:.3f}')}"
    return "<$0.001" if v > 0 else ">-$0.001"


def ratio(x: object) -> str:
    """How many times: ``3.27×`` (``12.5×`` from 10 up), ``""`` when missing."""
    v = _value(x)
    if v is None:
        return ""
    return f"{_trim(f'{v:,.1f}' if abs(v) >= 10 else f'{v:.2f}')}×"


def metric(name: str, value: object) -> str:
    """An alert rule's metric (see ``control.alerts.METRICS``) in its own unit, for alert
    titles and evidence: ``$1.20/h``, ``1,200 tokens/min``, ``89.8%`` CPU, ``412 MB``,
    67% of tool calls failed; any other metric as a :func:`number`."""
    v = _value(value)
    if v is None:
        return ""
    if name == "cost_per_hour":
        return f"{money(v)}/h"
    if name == "tokens_per_minute":
        return f"{number(v)} tokens/min"
    if name == "cpu_percent":
        return percentage(v)
    if name in ("rss_mb", "wal_mb"):
        return f"{number(v)} MB"
    if name == "disk_free_percent":
        return percentage(v)
    if name == "file_bloat":
        return f"{v:.1f}×"
    if name == "tool_failure_rate":
        return percent(v)
    return number(v)


def timestamp(when: object, seconds: bool = True) -> str:
    """A time as ``YYYY-MM-DD HH:MM:SS`` (``seconds=False``: ``YYYY-MM-DD HH:MM``): whole
    fields only — where space is short a field is left out, never cut in the middle.
    ``""`` when missing."""
    if when is None or not isinstance(when, datetime | date):
        return ""
    try:
        if when != when:  # NaT
            return ""
    except TypeError:
        return ""
    if not isinstance(when, datetime):
        return when.strftime("%Y-%m-%d")
    return when.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


#: What each kind of column is shown as (see ``workbench.views.common.COLUMNS``).
FORMATS = {
    "count": number,
    "number": number,
    "duration_s": duration,
    "duration_ms": duration_ms,
    "percent": percent,
    "percentage": percentage,
    "points": points,
    "money": money,
    "ratio": ratio,
}
