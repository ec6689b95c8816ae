"""The ClickHouse dialect of the named coverage and control-record queries.

Each has the name, parameters and answer of the DuckDB query of the same name in
:mod:`workbench.store.coverage_queries` or :mod:`~workbench.store.control_queries`, over
the views of :mod:`.records_ddl`; ``tests/test_clickhouse_records.py`` compares them. The
control plane's own state (agents, approvals, alerts, tasks…) stays in the node's file
and keeps its DuckDB queries.
"""

from __future__ import annotations

from typing import Any

from ..control_queries import _limit
from ..queries import clamped
from .ch_queries import QUERIES, _Args, one_of, query

Rendered = tuple[str, dict[str, Any]]
__all__ = ["QUERIES"]


def _latest(p: dict[str, Any], a: _Args, contexts: bool = False) -> str:
    """The project's newest report (of ``commit``; with per-test contexts)."""
    where = [f"project = {a(str(p['project']))}"]
    if p.get("commit"):
        where.append(f"commit_sha = {a(str(p['commit']))}")
    if contexts:
        where.append("contexts > 0")
    return (f"(SELECT report_id FROM coverage_reports_v WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC LIMIT 1)")


def _of_report(report: str) -> str:
    """The rows of one report (``report``: a bound id or a subquery)."""
    return one_of("wb_coverage_reports", "report_id", "created_at", report)


_FILE_COLUMNS = ("report_id, path, statements, covered, percent, branches, branches_covered, "
                 "functions, functions_covered, statement_ranges, covered_ranges, "
                 "partial_lines")
_REPORT_COLUMNS = ("report_id, project, commit_sha, branch, format, source, created_at, "
                   "files, statements, covered, percent, branches, branches_covered, "
                   "contexts")


@query
def coverage_reports(p: dict[str, Any]) -> Rendered:
    a = _Args()
    where = f"project = {a(str(p['project']))}" if p.get("project") else "1"
    limit = clamped(p, "limit", 200, 10_000)
    return (f"SELECT {_REPORT_COLUMNS}, warnings FROM coverage_reports_v WHERE {where} "
            f"ORDER BY created_at DESC LIMIT {limit}", a)


@query
def coverage_report(p: dict[str, Any]) -> Rendered:
    a = _Args()
    return f"SELECT * FROM coverage_reports_v WHERE report_id = {a(str(p['report_id']))}", a


@query
def coverage_files(p: dict[str, Any]) -> Rendered:
    a = _Args()
    report = a(str(p["report_id"])) if p.get("report_id") else _latest(p, a)
    return (f"SELECT {_FILE_COLUMNS} FROM coverage_files_v WHERE {_of_report(report)} "
            "ORDER BY path", a)


@query
def coverage_file_totals(p: dict[str, Any]) -> Rendered:
    a = _Args()
    report = a(str(p["report_id"]))
    return (f"SELECT path, statements, covered, percent FROM coverage_files_v "
            f"WHERE {_of_report(report)} ORDER BY path", a)


def _tests_of(p: dict[str, Any], a: _Args) -> str:
    report = a(str(p["report_id"])) if p.get("report_id") else _latest(p, a, contexts=True)
    return f"SELECT test_id, path, ranges FROM coverage_tests_v WHERE {_of_report(report)}"


@query
def coverage_file_tests(p: dict[str, Any]) -> Rendered:
    a = _Args()
    tests = _tests_of(p, a)
    path = a(str(p["path"]).replace("\\", "/").lstrip("./"))
    return (f"{tests} AND (path = {path} OR endsWith(path, concat('/', {path})) "
            f"OR endsWith({path}, concat('/', path))) ORDER BY test_id", a)


@query
def coverage_tests(p: dict[str, Any]) -> Rendered:
    a = _Args()
    return f"{_tests_of(p, a)} ORDER BY path, test_id", a


@query
def coverage_tests_in(p: dict[str, Any]) -> Rendered:
    a = _Args()
    tests = _tests_of({**p, "report_id": None}, a)
    paths = a([str(x) for x in (p.get("paths") or [])], "Array(String)")
    return f"{tests} AND has({paths}, path) ORDER BY path, test_id", a


# -- agents' events and samples, the audit log -------------------------------------------

@query
def agent_events(p: dict[str, Any]) -> Rendered:
    a = _Args()
    return (f"""
        SELECT * FROM (SELECT ts, kind, state, text, data FROM agent_events_v
                       WHERE agent_id = {a(str(p['agent_id']))} ORDER BY ts DESC
                       LIMIT {_limit(p)}) ORDER BY ts""", a)


@query
def agent_samples(p: dict[str, Any]) -> Rendered:
    a = _Args()
    return (f"""
        SELECT * FROM (SELECT ts, cpu_percent, rss_bytes / 1048576.0 AS rss_mb, threads
                       FROM agent_samples_v WHERE agent_id = {a(str(p['agent_id']))}
                       ORDER BY ts DESC LIMIT {_limit(p, 600)}) ORDER BY ts""", a)


@query
def audit_log(p: dict[str, Any]) -> Rendered:
    return f"SELECT * FROM audit_v ORDER BY ts DESC LIMIT {_limit(p)}", {}


def _ids(a: _Args, p: dict[str, Any], key: str = "agent_ids") -> str:
    return a([str(x) for x in p[key]], "Array(String)")


@query
def agent_events_between(p: dict[str, Any]) -> Rendered:
    a = _Args()
    where = [f"agent_id IN {_ids(a, p)}"]
    for key, op in (("since", ">="), ("after", ">"), ("until", "<=")):
        if p.get(key) is not None:
            where.append(f"ts {op} {a.time(p[key])}")
    if p.get("kinds"):
        where.append(f"kind IN {_ids(a, p, 'kinds')}")
    newest = clamped(p, "newest", 1_000_000, 1_000_000)
    return (f"""
        SELECT * FROM (SELECT agent_id, ts, kind, state, text, data FROM agent_events_v
                       WHERE {' AND '.join(where)} ORDER BY ts DESC, kind LIMIT {newest})
        ORDER BY ts, kind""", a)


def _epoch(column: str) -> str:
    return f"toFloat64({column})"


@query
def alert_preview_events(p: dict[str, Any]) -> Rendered:
    a = _Args()
    return (f"""
        SELECT * FROM (SELECT agent_id, {_epoch('ts')} AS t, kind, state, text, data
                       FROM agent_events_v WHERE ts >= {a.time(p['since'])}
                         AND kind IN {_ids(a, p, 'kinds')} AND agent_id IN {_ids(a, p)}
                       ORDER BY ts DESC LIMIT 200000) ORDER BY t, kind""", a)


@query
def alert_preview_samples(p: dict[str, Any]) -> Rendered:
    a = _Args()
    b = a(float(p["bucket_s"]), "Float64")
    return (f"""
        SELECT agent_id, floor({_epoch('ts')} / {b}) * {b} AS t, toInt64(count()) AS n,
               sum(cpu_percent) AS cpu, sum(rss_bytes) / 1048576.0 AS rss_mb
        FROM agent_samples_v WHERE ts >= {a.time(p['since'])} AND agent_id IN {_ids(a, p)}
        GROUP BY agent_id, t ORDER BY agent_id, t""", a)


@query
def alert_preview_quiet(p: dict[str, Any]) -> Rendered:
    a = _Args()
    end, seconds = a(float(p["end"]), "Float64"), a(float(p["seconds"]), "Float64")
    return (f"""
        SELECT agent_id, t, until FROM (
            SELECT agent_id, state, {_epoch('ts')} AS t,
                   leadInFrame(toNullable({_epoch('ts')})) OVER (
                       PARTITION BY agent_id ORDER BY ts
                       ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS until
            FROM agent_events_v WHERE ts >= {a.time(p['since'])} AND agent_id IN {_ids(a, p)})
        WHERE state = 'running' AND ifNull(until, {end}) - t > {seconds}
        ORDER BY t, agent_id""", a)
