"""A run against its base: what broke, what is still broken, what was fixed."""

from __future__ import annotations

import pandas as pd

STATUSES = ("new failure", "still failing", "fixed", "new test", "removed test", "not run yet")
_BAD = {"failed", "error"}


def compare_runs(run: pd.DataFrame, base: pd.DataFrame | None,
                 running: bool = False) -> pd.DataFrame:
    """Classify every test that changed between ``base`` and ``run``.

    Both frames have one row per test: ``test_id`` and final ``outcome`` (as the
    ``final_outcomes`` query returns). Without a base every failure counts as new.
    Returns ``test_id, status, outcome, base_outcome`` (plus the run's own columns), only
    for tests whose status is one of :data:`STATUSES`. While the run is ``running``, a
    base test it has not reached yet is not "removed" but "not run yet".
    """
    if base is None:
        base = pd.DataFrame({"test_id": pd.Series(dtype=str), "outcome": pd.Series(dtype=str)})
    merged = run.merge(
        base[["test_id", "outcome"]].rename(columns={"outcome": "base_outcome"}),
        on="test_id",
        how="outer",
        indicator=True,
    )
    now_bad = merged["outcome"].isin(_BAD)
    was_bad = merged["base_outcome"].isin(_BAD)
    status = pd.Series(pd.NA, index=merged.index, dtype=object)
    status[(merged["_merge"] == "right_only")] = "not run yet" if running else "removed test"
    both = merged["_merge"] == "both"
    only_new = merged["_merge"] == "left_only"
    status[both & now_bad & ~was_bad] = "new failure"
    status[both & now_bad & was_bad] = "still failing"
    status[both & ~now_bad & was_bad & (merged["outcome"] == "passed")] = "fixed"
    status[only_new & now_bad] = "new failure"
    status[only_new & ~now_bad] = "new test"
    merged["status"] = status
    out = merged.dropna(subset=["status"]).drop(columns="_merge")
    order = {s: i for i, s in enumerate(STATUSES)}
    return out.sort_values(
        ["status", "test_id"], key=lambda c: c.map(order) if c.name == "status" else c
    ).reset_index(drop=True)


def summarize(changes: pd.DataFrame) -> dict[str, int]:
    """Counts per status, every status present."""
    counts = changes["status"].value_counts() if not changes.empty else {}
    return {s: int(counts.get(s, 0)) for s in STATUSES}
