"""Named read queries over coverage reports (served by ``/api/query`` like every query)."""

from __future__ import annotations

from typing import Any

from .queries import Rendered, query

_LATEST = """(SELECT report_id FROM coverage_reports WHERE project = ?
              AND (? IS NULL OR commit_sha = ?) AND (NOT ? OR contexts > 0)
              ORDER BY created_at DESC LIMIT 1)"""


def _latest(p: dict[str, Any], contexts: bool = False) -> tuple[str, list[Any]]:
    commit = p.get("commit") or None
    return _LATEST, [p["project"], commit, commit, contexts]


@query
def coverage_reports(p: dict[str, Any]) -> Rendered:
    """Coverage reports, newest first (``project`` narrows them)."""
    where, args = ("project = ?", [p["project"]]) if p.get("project") else ("TRUE", [])
    limit = max(1, min(int(p.get("limit") or 200), 10_000))
    return (f"SELECT * EXCLUDE (warnings), warnings FROM coverage_reports WHERE {where} "
            "ORDER BY created_at DESC LIMIT ?", [*args, limit])


@query
def coverage_files(p: dict[str, Any]) -> Rendered:
    """Each file of a report (``report_id``, else the project's latest), with its line
    ranges."""
    if p.get("report_id"):
        return ("SELECT * FROM coverage_files WHERE report_id = ? ORDER BY path",
                [p["report_id"]])
    sub, args = _latest(p)
    return f"SELECT * FROM coverage_files WHERE report_id = {sub} ORDER BY path", args


@query
def coverage_file_tests(p: dict[str, Any]) -> Rendered:
    """The tests that ran lines of one file in the project's latest report with per-test
    contexts (or the report of ``commit``): ``test_id`` and its line ``ranges``. ``path``
    matches the stored path, or either one's trailing path components."""
    sub, args = _latest(p, contexts=True)
    path = str(p["path"]).replace("\\", "/").lstrip("./")
    return (f"""
        SELECT test_id, path, ranges FROM coverage_tests WHERE report_id = {sub}
          AND (path = ? OR path LIKE '%/' || ? OR ? LIKE '%/' || path)
        ORDER BY test_id""", [*args, path, path, path])


@query
def scanned_projects(p: dict[str, Any]) -> Rendered:
    """The projects ``projects scan`` found, by name."""
    return "SELECT * FROM projects ORDER BY name, path", []
