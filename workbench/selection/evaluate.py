"""How good would the selector's order have been? A replay over the project's stored history
(``observatory select --evaluate``, the projects page's Selection tab).

For each past run with failures, the selector is given only what it would have known before
that run — the runs before it (counted as it goes, oldest first), the change from the run
before (``git diff`` of the two commits, when the repository is there), the latest coverage
report with per-test contexts made before the run — and ranks that run's tests. Measured on
each such run, and averaged:

- **APFD** (average percentage of faults detected): 1 − ΣTFᵢ/(n·m) + 1/(2n) for n tests and
  m failing tests found at positions TFᵢ; 1 is every failure first, 0.5 a random order;
- the share of the failing tests caught within the first 10 %, 25 % and 50 % of the tests,
  and of the run time (by the tests' own durations in that run);
- the catch-rate curve: the share caught after each 5 % of the tests.

Baselines on the same runs: random order (the mean of 20 seeded shuffles), slowest-last
(shortest known duration first) and last-failed-first (the tests that failed in the run
before, then the rest).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from ..analysis.culprits import test_key
from . import changes as ch
from .evidence import Evidence
from .select import mark_change, rank

CUTS = (0.10, 0.25, 0.50)
CURVE = [i / 20 for i in range(21)]
Order = Callable[[list[str]], list[str]]


def measure(order: list[str], failing: set[str], durations: dict[str, float]
            ) -> dict[str, Any]:
    """APFD, the share of failures caught within the first cuts of tests and of time, and
    the catch-rate curve, for one run's tests in ``order``."""
    n, m = len(order), len(failing)
    positions = [i + 1 for i, t in enumerate(order) if t in failing]
    total = sum(durations.get(t, 0.0) for t in order) or 1.0
    spent, at_time = 0.0, []
    for t in order:
        spent += durations.get(t, 0.0)
        if t in failing:
            at_time.append(spent / total)
    out = {"apfd": 1 - sum(positions) / (n * m) + 1 / (2 * n)}
    for c in CUTS:
        out[f"tests_{int(c * 100)}"] = sum(p <= c * n for p in positions) / m
        out[f"time_{int(c * 100)}"] = sum(x <= c + 1e-9 for x in at_time) / m
    out["curve"] = [sum(p <= x * n for p in positions) / m for x in CURVE]
    return out


class _Counters:
    """What the selector knows after each run: per test, runs, failures, the index of its
    last failure, durations, and whether it passed and failed on one commit."""

    def __init__(self):
        self.runs: dict[str, int] = {}
        self.fails: dict[str, int] = {}
        self.last_fail: dict[str, int] = {}
        self.duration: dict[str, float] = {}
        self.outcome_on: dict[tuple[str, str], set[str]] = {}
        self.flaky: set[str] = set()
        self.index = 0

    def evidence(self, test: str, failed_before: set[str]) -> Evidence:
        last = self.last_fail.get(test)
        return Evidence(test, runs=self.runs.get(test, 0), fails=self.fails.get(test, 0),
                        since_fail=None if last is None else self.index - 1 - last,
                        flaky=test in self.flaky, duration_s=self.duration.get(test),
                        failed_last=test in failed_before)

    def add(self, run: pd.DataFrame) -> None:
        for test, outcome, dur, sha in zip(run["test_id"], run["outcome"], run["duration_s"],
                                           run["commit_sha"], strict=True):
            self.runs[test] = self.runs.get(test, 0) + 1
            bad = outcome in ("failed", "error")
            if bad:
                self.fails[test] = self.fails.get(test, 0) + 1
                self.last_fail[test] = self.index
            if dur is not None and not pd.isna(dur):
                old = self.duration.get(test)
                self.duration[test] = float(dur) if old is None else 0.7 * old + 0.3 * float(dur)
            if sha:
                seen = self.outcome_on.setdefault((test, sha), set())
                seen.add("fail" if bad else "pass")
                if len(seen) == 2:
                    self.flaky.add(test)
        self.index += 1


def replay(store, project: str, repo: str | Path | None = None, limit: int = 500,
           seeds: int = 20) -> dict[str, Any]:
    """Replay the selector and the baselines over the project's last ``limit`` runs."""
    history = store.query("selection_history", project=project, limit=limit)
    reports = store.query("coverage_reports", project=project, limit=500)
    reports = reports[reports["contexts"] > 0].sort_values("created_at")
    runs = list(history.groupby("run_id", sort=False))
    counters, previous = _Counters(), None
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in (
        "selector", "random", "slowest-last", "last-failed-first")}
    evaluated = changes_read = 0
    for run_id, run in runs:
        failing = set(run.loc[run["outcome"].isin(("failed", "error")), "test_id"])
        if failing and previous is not None and len(run) > 1:
            tests = list(run["test_id"])
            durations = dict(zip(run["test_id"], run["duration_s"].fillna(0.0), strict=True))
            failed_before = set(previous.loc[previous["outcome"].isin(("failed", "error")),
                                             "test_id"])
            evidence = {t: counters.evidence(t, failed_before) for t in tests}
            changes_read += _add_change(store, project, repo, previous, run, reports,
                                        evidence)
            order = [r["test"] for r in rank(list(evidence.values()))]
            results["selector"].append(measure(order, failing, durations))
            rng = random.Random(run_id)
            shuffles = []
            for _ in range(seeds):
                shuffled = tests[:]
                rng.shuffle(shuffled)
                shuffles.append(measure(shuffled, failing, durations))
            results["random"].append(_mean(shuffles))
            known = counters.duration
            results["slowest-last"].append(measure(
                sorted(tests, key=lambda t: (known.get(t, float("inf")), t)), failing,
                durations))
            results["last-failed-first"].append(measure(
                sorted(tests, key=lambda t: (t not in failed_before, t)), failing, durations))
            evaluated += 1
        counters.add(run)
        previous = run
    return {"project": project, "runs": len(runs), "evaluated": evaluated,
            "with_git": changes_read > 0, "changes_read": changes_read, "curve_x": CURVE,
            "orders": {name: _mean(rows) for name, rows in results.items()}}


def _add_change(store, project, repo, previous, run, reports, evidence) -> bool:
    """The change from the run before, and the coverage known before this run; whether
    the change could be read from the repository."""
    if repo is None:
        return False
    a, b = str(previous["commit_sha"].iat[0] or ""), str(run["commit_sha"].iat[0] or "")
    if a == b or not (ch.SHA.match(a) and ch.SHA.match(b)):
        return False
    try:
        changed = ch.changes(repo, a, b)
    except ch.GitError:
        return False
    by_key = {test_key(t): t for t in evidence}
    started = run["started_at"].iat[0]
    before = reports[reports["created_at"] < started] if not pd.isna(started) else reports
    rows = None
    if changed and not before.empty:
        rows = store.query("coverage_tests", report_id=before["report_id"].iat[-1])
        rows = rows[rows["path"].isin(list(changed))]

    def lookup(test: str) -> Evidence | None:  # only the tests this run had are ranked
        stored = by_key.get(test_key(test))
        return evidence[stored] if stored is not None else None

    mark_change(lookup, changed, rows, repo)
    return True


def _mean(rows: list[dict[str, Any]]) -> dict[str, Any]:
    if not rows:
        return {}
    out: dict[str, Any] = {k: sum(r[k] for r in rows) / len(rows)
                           for k in rows[0] if k != "curve"}
    out["curve"] = [sum(r["curve"][i] for r in rows) / len(rows) for i in range(len(CURVE))]
    return out
