"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def timed(fn: Callable[[], object], repeat: int = 5) -> float:
    """Median wall seconds of ``fn`` over ``repeat`` runs, after one warm-up run."""
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def machine() -> str:
    """The line every benchmark starts with: the date and what it ran on."""
    import os
    import platform

    return (f"# {time.strftime('%Y-%m-%d')} · machine: {platform.machine()}, "
            f"{os.cpu_count()} cores, Python {platform.python_version()}")
