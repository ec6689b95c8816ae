"""Coverage at risk: lines that only flaky or broken tests run. Such a line counts as
covered, but nothing trustworthy checks it — a red test there is ignored as "just flaky",
and a green one may have passed by chance."""

from __future__ import annotations

import pandas as pd

from ..analysis.culprits import test_key
from ..analysis.flaky import label_tests
from ..store.coverage_writes import expand, pairs, ranges

#: Test labels that are no evidence that the lines they run work.
UNTRUSTED = ("flaky", "statistically flaky", "broken")


def untrusted_tests(store, project: str) -> dict[str, str]:
    """Normalised test id → its label, for the project's flaky and broken tests."""
    labels = label_tests(store.query("test_run_stats", project=project))
    if labels.empty:
        return {}
    bad = labels[labels["label"].isin(UNTRUSTED)]
    return {test_key(t): lab for t, lab in zip(bad["test_id"], bad["label"], strict=True)}


def at_risk(store, project: str, report_id: str | None = None) -> pd.DataFrame:
    """Per file of the latest report with per-test contexts (or ``report_id``): the lines
    run by at least one flaky or broken test and by no other test, and those tests."""
    cols = ["path", "lines", "ranges", "tests"]
    bad = untrusted_tests(store, project)
    if not bad:
        return pd.DataFrame(columns=cols)
    rows = store.query("coverage_tests", project=project, report_id=report_id)
    out = []
    for path, group in rows.groupby("path", sort=True):
        trusted: set[int] = set()
        risky: dict[int, set[str]] = {}
        for test, flat in zip(group["test_id"], group["ranges"], strict=True):
            if test_key(test) in bad:
                for line in expand(flat):
                    risky.setdefault(line, set()).add(test)
            else:
                trusted |= expand(flat)
        lines = set(risky) - trusted
        if lines:
            out.append({"path": path, "lines": len(lines), "ranges": pairs(ranges(lines)),
                        "tests": sorted(set().union(*(risky[n] for n in lines)))})
    df = pd.DataFrame(out, columns=cols)
    return df.sort_values(["lines", "path"], ascending=[False, True], ignore_index=True)
