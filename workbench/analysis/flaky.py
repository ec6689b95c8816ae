"""Label tests flaky, broken or stable from their recent per-run outcomes."""

from __future__ import annotations

import pandas as pd

LABELS = ("flaky", "statistically flaky", "broken", "failing")


def trailing_failures(strip: list[str]) -> int:
    """How many of the most recent runs in a row did not pass."""
    n = 0
    for outcome in reversed(strip):
        if outcome == "passed":
            break
        n += 1
    return n


def label_tests(
    stats: pd.DataFrame, flip_rate: float = 0.15, broken_after: int = 3
) -> pd.DataFrame:
    """Add ``label``, ``flip_rate`` and ``evidence`` to per-test run statistics.

    ``stats`` has one row per test as the ``test_run_stats`` query returns it (runs, passes,
    fails, flips, retry_flaky_runs, flaky_commits, strip, evidence lists).

    - **flaky**: definitely — one commit (or one run, through a retry) saw it pass and fail.
    - **statistically flaky**: it flips between pass and fail in at least ``flip_rate`` of
      consecutive runs, with no same-commit proof.
    - **broken**: its last ``broken_after`` or more runs all failed (a real regression, not
      flakiness); takes precedence over a statistical label but not over proof of flakiness.
    - **failing**: failed sometimes, but fits none of the above (too few runs to tell).
    """
    df = stats.copy()
    if df.empty:
        for col in ("label", "flip_rate", "evidence", "trailing_failures"):
            df[col] = pd.Series(dtype=object)
        return df
    df["flip_rate"] = df["flips"] / (df["runs"] - 1).clip(lower=1)
    df["trailing_failures"] = df["strip"].map(lambda s: trailing_failures(_as_list(s)))
    proof = (df["retry_flaky_runs"] > 0) | (df["flaky_commits"] > 0)
    broken = df["trailing_failures"] >= broken_after
    stat = (df["flip_rate"] >= flip_rate) & (df["passes"] > 0) & (df["fails"] > 1)
    df["label"] = "failing"
    df.loc[stat, "label"] = "statistically flaky"
    df.loc[broken, "label"] = "broken"
    df.loc[proof, "label"] = "flaky"
    df["evidence"] = [_evidence(r) for r in df.itertuples()]
    order = {label: i for i, label in enumerate(LABELS)}
    return df.sort_values(
        ["label", "flip_rate", "fails"], key=lambda c: c.map(order) if c.name == "label" else -c
    ).reset_index(drop=True)


def _as_list(value: object) -> list:
    """DuckDB lists arrive as numpy arrays, None or NaN."""
    if value is None or isinstance(value, float):
        return []
    return list(value)


def _evidence(r) -> str:
    parts = []
    if r.retry_flaky_runs:
        runs = ", ".join(_as_list(r.retry_evidence)[:3])
        parts.append(f"passed on retry in {r.retry_flaky_runs} run(s): {runs}")
    if r.flaky_commits:
        commits = ", ".join(c[:8] for c in _as_list(r.commit_evidence)[:3])
        parts.append(f"passed and failed on the same commit ({r.flaky_commits}): {commits}")
    if r.label == "broken":
        parts.append(f"failed the last {r.trailing_failures} runs in a row")
    if not parts:
        parts.append(f"{r.flips} flips in {r.runs} runs ({r.fails} failed)")
    return "; ".join(parts)
