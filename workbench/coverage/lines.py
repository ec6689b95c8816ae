"""One file of a coverage report, line by line: its source (the project's working tree, or
``git show COMMIT:path`` when the report names its commit), whether each line ran, and which
tests ran it with their last outcome."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..analysis.culprits import test_key
from ..git import GitError, git
from ..store.coverage_writes import contains, expand

_SHA = re.compile(r"^[0-9a-fA-F]{4,64}$")
#: Lines read from a source file at most (a generated file can be huge).
MAX_LINES = 20_000


def project_repo(store, project: str) -> Path | None:
    """The folder a scan found for ``project`` (by name), if it is still there."""
    rows = store.query("scanned_projects")
    rows = rows[rows["name"] == project]
    for path in rows["path"]:
        if Path(path).is_dir():
            return Path(path)
    return None


def source(store, project: str, path: str, commit: str | None = None
           ) -> tuple[list[str] | None, str]:
    """``(lines, where they came from)``, or ``(None, why there are none)``."""
    repo = project_repo(store, project)
    if repo is None:
        return None, (f"source not shown: no scanned folder for project {project!r} "
                      "(observatory projects scan)")
    if commit and _SHA.match(commit) and (repo / ".git").exists():
        try:
            text = git(repo, "show", f"{commit}:{path}")
            return text.splitlines()[:MAX_LINES], f"git show {commit[:12]}:{path}"
        except GitError:
            pass  # not in that commit (or not a commit here): the working tree's copy
    file = (repo / path).resolve()
    if not file.is_relative_to(repo.resolve()) or not file.is_file():
        return None, f"source not shown: {path} is not in {repo}"
    with file.open(encoding="utf-8", errors="replace") as fh:
        text = [line.rstrip("\n") for _, line in zip(range(MAX_LINES), fh, strict=False)]
    note = " (the report's commit is not in the repository)" if commit else ""
    return text, f"working tree: {file}{note}"


def file_lines(file_row, tests: pd.DataFrame, code: list[str] | None) -> pd.DataFrame:
    """One row per line: ``status`` (hit, miss, partial, or "" when not a statement), how
    many tests ran it, and its code. ``file_row`` is the file's ``coverage_files`` row;
    ``tests`` its ``coverage_file_tests`` rows."""
    statements = expand(file_row["statement_ranges"])
    covered = expand(file_row["covered_ranges"])
    partial = set(file_row["partial_lines"] if file_row["partial_lines"] is not None else [])
    counts: dict[int, int] = {}
    for flat in tests["ranges"]:
        for n in expand(flat):
            counts[n] = counts.get(n, 0) + 1
    last = max([len(code or []), *statements, 0])
    rows = []
    for n in range(1, last + 1):
        status = ("partial" if n in partial else "hit" if n in covered else "miss") \
            if n in statements else ""
        rows.append((n, status, counts.get(n, 0),
                     code[n - 1] if code and n <= len(code) else ""))
    return pd.DataFrame(rows, columns=["line", "status", "tests", "code"])


def line_tests(tests: pd.DataFrame, outcomes: pd.DataFrame, line: int) -> pd.DataFrame:
    """The tests (of a file's ``coverage_file_tests`` rows) that ran ``line``, with each
    one's last outcome in the project's runs."""
    ran = sorted({t for t, r in zip(tests["test_id"], tests["ranges"], strict=True)
                  if contains(r, line)})
    last = {test_key(t): (o, r) for t, o, r in zip(outcomes["test_id"], outcomes["outcome"],
                                                    outcomes["run_id"], strict=True)}
    return pd.DataFrame([(t, *last.get(test_key(t), ("never run", None))) for t in ran],
                        columns=["test", "last_outcome", "run_id"])
