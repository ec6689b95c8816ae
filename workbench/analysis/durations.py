"""Test durations: regressions where the recent median is clearly above the older one."""

from __future__ import annotations

import pandas as pd


def regressions(
    medians: pd.DataFrame, min_ratio: float = 1.5, min_delta_s: float = 0.05, min_older: int = 5
) -> pd.DataFrame:
    """Tests whose recent runs are clearly slower than their older runs.

    ``medians`` has ``test_id, recent_median_s, older_median_s, older_runs`` (the
    ``duration_medians`` query). A regression needs the recent median at least
    ``min_ratio`` × the older one and ``min_delta_s`` seconds more, with ``min_older``
    older runs to compare against, so that noise in fast tests is not reported.
    """
    df = medians.dropna(subset=["recent_median_s", "older_median_s"])
    df = df[df["older_runs"] >= min_older]
    slower = (df["recent_median_s"] >= df["older_median_s"] * min_ratio) & (
        df["recent_median_s"] - df["older_median_s"] >= min_delta_s
    )
    out = df[slower].copy()
    out["ratio"] = out["recent_median_s"] / out["older_median_s"].where(out["older_median_s"] > 0)
    return out.sort_values("ratio", ascending=False, ignore_index=True)
