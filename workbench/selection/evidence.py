"""What the selector knows about one test for one change, and how that becomes an estimated
probability of failing and a score (that probability per second of run time).

The probability combines independent pieces of evidence as a noisy-or — each one alone can
make a test likely to fail, and together they only add up:

- **coverage**: the test ran lines the change touches (more lines, more likely), or at
  least a file it touches;
- **history**: how often it failed lately, and how recently;
- **co-change**: its past failures came with changes to the files this change touches;
- **flakiness**: a test proven flaky fails without a cause, so its history and co-change
  count for a quarter of what they would (a known-flaky failure is not evidence).

The weights make running a changed line the strongest single piece of evidence (0.5 and
up), a test failing half of its runs about as strong, and one old failure or co-change with
a file that changes in every commit much weaker.

Tests that are new or changed by the change, and tests that failed in the last run, are
not scored against the others: they always come first.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Probability that any test fails with no evidence at all.
PRIOR = 0.005
#: Seconds assumed for a test never timed (the score divides by its duration).
UNTIMED_S = 0.5
#: Shorter tests count as this long: below it a test's time is mostly per-test overhead,
#: and dividing by microseconds would rank by timing noise.
MIN_S = 0.05
FLAKY_DISCOUNT = 0.25


@dataclass(slots=True)
class Evidence:
    test: str
    changed_lines_run: int = 0
    touches_changed_file: bool = False
    runs: int = 0
    fails: int = 0
    since_fail: int | None = None  # runs since its last failure (0: the last run)
    co_change: float = 0.0  # share of its past failures whose change shared a file with this
    co_files: tuple[str, ...] = ()
    flaky: bool = False
    duration_s: float | None = None
    new_or_changed: bool = False
    failed_last: bool = False


def probability(e: Evidence) -> tuple[float, list[str]]:
    """The estimated probability that the test fails on this change, and why."""
    reasons: list[str] = []
    parts = [PRIOR]
    if e.changed_lines_run:
        parts.append(0.5 + 0.04 * min(e.changed_lines_run, 10))
        reasons.append(f"ran {e.changed_lines_run} of the changed lines")
    elif e.touches_changed_file:
        parts.append(0.05)
        reasons.append("ran other lines of a changed file")
    history = 0.0
    if e.fails:
        rate = e.fails / max(e.runs, 1)
        recency = 0.5 ** (e.since_fail or 0)
        history = min(0.9, 0.6 * rate + 0.2 * recency)
        ago = ("in the latest" if not e.since_fail else
               f"{e.since_fail} run{'s' if e.since_fail > 1 else ''} ago")
        reasons.append(f"failed {e.fails} of its last {e.runs} runs, last {ago}")
    co = 0.2 * e.co_change
    if e.co_change:
        reasons.append(f"{e.co_change:.0%} of its past failures came with changes to "
                       + ", ".join(e.co_files[:3]))
    if e.flaky and (history or co):
        history, co = history * FLAKY_DISCOUNT, co * FLAKY_DISCOUNT
        reasons.append("known flaky: its failures count for less")
    parts += [history, co]
    miss = 1.0
    for p in parts:
        miss *= 1.0 - p
    return 1.0 - miss, reasons


def per_second(p: float, duration_s: float | None) -> float:
    """A probability per second of the test's run (never timed: :data:`UNTIMED_S`; at
    least :data:`MIN_S`)."""
    seconds = duration_s if duration_s and duration_s > 0 else UNTIMED_S
    return p / max(seconds, MIN_S)


def score(e: Evidence) -> tuple[float, float, list[str]]:
    """``(score, probability, reasons)``: the probability per second of the test's run."""
    p, reasons = probability(e)
    return per_second(p, e.duration_s), p, reasons


def first(e: Evidence) -> list[str]:
    """Why the test goes before every scored one (empty: it does not)."""
    why = []
    if e.new_or_changed:
        why.append("new or changed by this change")
    if e.failed_last:
        why.append("failed in the last run")
    return why
