"""Patch coverage: of the lines a change added or modified, which are statements, and
whether the tests ran them — the number a reviewer wants for a diff."""

from __future__ import annotations

from typing import Any

from ..git import changed_lines
from ..store.coverage_writes import expand, pairs, ranges


def patch_coverage(store, project: str, repo: str, base: str, head: str | None = None,
                   commit: str | None = None) -> dict[str, Any]:
    """Changed lines of ``base..head`` (or the working tree) against the project's latest
    coverage report (or the report of ``commit``): per file, the changed statements, those
    covered and those not; and the total."""
    changed = changed_lines(repo, base, head)
    files = store.query("coverage_files", project=project, commit=commit)
    if files.empty:
        raise KeyError(f"no coverage report for project {project!r}"
                       + (f" at commit {commit}" if commit else ""))
    by_path = {row.path: row for row in files.itertuples(index=False)}
    out, total, hit = [], 0, 0
    for path, lines in sorted(changed.items()):
        row = by_path.get(path)
        if row is None:  # not measured: not code the report covers (docs, tests, config)
            continue
        statements = expand(list(row.statement_ranges)) & lines
        covered = expand(list(row.covered_ranges)) & statements
        if not statements:
            continue
        total, hit = total + len(statements), hit + len(covered)
        out.append({"path": path, "statements": len(statements), "covered": len(covered),
                    "missing": pairs(ranges(statements - covered)),
                    "percent": round(100.0 * len(covered) / len(statements), 2)})
    return {"project": project, "base": base, "head": head or "working tree",
            "report": files["report_id"].iloc[0], "statements": total, "covered": hit,
            "percent": round(100.0 * hit / total, 2) if total else None, "files": out}
