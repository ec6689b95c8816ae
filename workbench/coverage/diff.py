"""What changed between coverage reports: a project's coverage over commits, and the files
and lines one report lost against another."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..store.coverage_writes import expand, pairs, ranges


def trend(store, project: str, limit: int = 200) -> pd.DataFrame:
    """The project's reports oldest first: when, which commit, percent and totals."""
    reports = store.query("coverage_reports", project=project, limit=limit)
    cols = ["report_id", "created_at", "commit_sha", "branch", "format", "files",
            "statements", "covered", "percent", "contexts"]
    return reports[cols].iloc[::-1].reset_index(drop=True)


def _report(store, report_id: str) -> pd.Series:
    row = store.query("coverage_report", report_id=report_id)
    if row.empty:
        raise KeyError(f"no coverage report {report_id!r}")
    return row.iloc[0]


def diff_reports(store, base_id: str, head_id: str) -> dict[str, Any]:
    """``head`` against ``base``: totals of both, and per file that changed its percent,
    added or lost statements, or left uncovered a line ``base`` covered — the file's
    percent in both and the lines newly uncovered (statements in both, covered in base
    only). Files only in one report are listed as ``added`` / ``removed``."""
    base, head = _report(store, base_id), _report(store, head_id)
    old = {r.path: r for r in store.query("coverage_files", report_id=base_id).itertuples()}
    new = {r.path: r for r in store.query("coverage_files", report_id=head_id).itertuples()}
    files = []
    for path in sorted(old.keys() | new.keys()):
        a, b = old.get(path), new.get(path)
        row = {"path": path, "change": "changed", "base_percent": None, "head_percent": None,
               "base_statements": 0, "head_statements": 0, "newly_uncovered": [],
               "newly_uncovered_lines": 0}
        if a is not None:
            row.update(base_percent=_num(a.percent), base_statements=int(a.statements))
        if b is not None:
            row.update(head_percent=_num(b.percent), head_statements=int(b.statements))
        if a is None or b is None:
            row["change"] = "added" if a is None else "removed"
            files.append(row)
            continue
        lost = (expand(a.covered_ranges) & expand(b.statement_ranges)) - expand(b.covered_ranges)
        if not lost and row["base_percent"] == row["head_percent"] \
                and row["base_statements"] == row["head_statements"]:
            continue
        row["newly_uncovered"] = pairs(ranges(lost))
        row["newly_uncovered_lines"] = len(lost)
        files.append(row)
    files.sort(key=lambda r: (-r["newly_uncovered_lines"], _delta(r), r["path"]))
    return {"base": _totals(base), "head": _totals(head),
            "delta": None if base.percent is None or head.percent is None
            else round(float(head.percent) - float(base.percent), 2),
            "newly_uncovered_lines": sum(r["newly_uncovered_lines"] for r in files),
            "files": files}


def _num(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _delta(row: dict[str, Any]) -> float:
    a, b = row["base_percent"], row["head_percent"]
    return (b - a) if a is not None and b is not None else 0.0


def _totals(report: pd.Series) -> dict[str, Any]:
    return {"report_id": report["report_id"], "commit": report["commit_sha"],
            "created_at": str(report["created_at"]), "percent": _num(report["percent"]),
            "statements": int(report["statements"]), "covered": int(report["covered"])}
