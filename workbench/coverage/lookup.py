"""Questions about stored coverage: which tests ran a line."""

from __future__ import annotations

from ..store.coverage_writes import contains


def covering_tests(store, project: str, path: str, line: int,
                   commit: str | None = None) -> list[str]:
    """The tests that ran ``path:line`` in the project's latest report with per-test
    contexts (or the report of ``commit``), as their ids (pytest node ids for pytest)."""
    rows = store.query("coverage_file_tests", project=project, path=path, commit=commit)
    if rows.empty:
        return []
    exact = rows[rows["path"] == path.replace("\\", "/").lstrip("./")]
    rows = exact if not exact.empty else rows  # (a suffix match only when nothing is exact)
    return sorted({t for t, r in zip(rows["test_id"], rows["ranges"], strict=True)
                   if contains(r, line)})
