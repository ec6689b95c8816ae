"""Named read queries over coverage reports (served by ``/api/query`` like every query)."""

from __future__ import annotations

from typing import Any

from .queries import Rendered, clamped, query

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
    limit = clamped(p, "limit", 200, 10_000)
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
def coverage_file_totals(p: dict[str, Any]) -> Rendered:
    """Each file of one report (``report_id``) with its totals only (the coverage map)."""
    return ("SELECT path, statements, covered, percent FROM coverage_files "
            "WHERE report_id = ? ORDER BY path", [p["report_id"]])


@query
def coverage_file_tests(p: dict[str, Any]) -> Rendered:
    """The tests that ran lines of one file in the project's latest report with per-test
    contexts (or the report of ``commit``, or ``report_id``): ``test_id`` and its line
    ``ranges``. ``path``
    matches the stored path, or either one's trailing path components."""
    if p.get("report_id"):
        sub, args = "?", [p["report_id"]]
    else:
        sub, args = _latest(p, contexts=True)
    path = str(p["path"]).replace("\\", "/").lstrip("./")
    return (f"""
        SELECT test_id, path, ranges FROM coverage_tests WHERE report_id = {sub}
          AND (path = ? OR path LIKE '%/' || ? OR ? LIKE '%/' || path)
        ORDER BY test_id""", [*args, path, path, path])


#: Each scanned folder under its one name (workbench/projects/identity.py): the name a
#: person gave it (``named_by`` 'given'); else the name of runs stored under another name
#: that came from it — pytest ran in the folder or a report inside it was ingested
#: ('root'), the name is the path of its remote, as CI names a project ('remote'), or they
#: ran the commit checked out when it was scanned ('commit') — when exactly one such name
#: points at exactly one folder, that name has no folder of its own and the folder's own
#: name has no runs or coverage; else the folder's name ('folder').
IDENTITY = """
    known AS (SELECT project FROM runs UNION SELECT project FROM coverage_reports),
    free AS (SELECT p.path, p.remote, p.head FROM projects p ANTI JOIN known k
             ON k.project = p.name WHERE NOT coalesce(p.named, false)),
    orphans AS (SELECT DISTINCT r.project, r.source, r.commit_sha FROM runs r
                ANTI JOIN projects p ON p.name = r.project),
    evidence AS (
        SELECT f.path, o.project, 1 AS rank FROM free f JOIN orphans o
          ON o.source = 'pytest ' || f.path OR starts_with(o.source, 'pytest ' || f.path || '/')
             OR starts_with(o.source, f.path || '/')
        UNION ALL
        SELECT f.path, k.project, 2 FROM free f JOIN
          (SELECT project FROM known ANTI JOIN projects p ON p.name = known.project) k
          ON k.project = regexp_replace(regexp_replace(f.remote,
                 '^([a-zA-Z][a-zA-Z0-9+.-]*://[^/]*/|[^@/:]+@[^:/]+:)', ''), '(\\.git)?/*$', '')
        UNION ALL
        SELECT f.path, o.project, 3 FROM free f JOIN orphans o ON o.commit_sha = f.head
    ),
    linked AS (SELECT path, project, rank FROM (
                   SELECT path, project, min(rank) AS rank,
                          count(*) OVER (PARTITION BY path) AS per_path,
                          count(*) OVER (PARTITION BY project) AS per_name
                   FROM evidence GROUP BY path, project)
               WHERE per_path = 1 AND per_name = 1),
    identity AS (
        SELECT p.* REPLACE (coalesce(l.project, p.name) AS name),
               CASE WHEN coalesce(p.named, false) THEN 'given'
                    ELSE ['root', 'remote', 'commit', 'folder'][coalesce(l.rank, 4)]
               END AS named_by
        FROM projects p LEFT JOIN linked l USING (path)
    )"""


@query
def scanned_projects(p: dict[str, Any]) -> Rendered:
    """The projects ``projects scan`` found (or a person linked), each under its one name
    (:data:`IDENTITY`) with ``named_by``: given, root, remote, commit or folder."""
    return f"WITH {IDENTITY} SELECT * FROM identity ORDER BY name, path", []


@query
def project_folder(p: dict[str, Any]) -> Rendered:
    """The scanned folder that goes by ``name`` (a :func:`scanned_projects` row), the
    newest scanned when several do; no row when none does."""
    return (f"WITH {IDENTITY} SELECT * FROM identity WHERE name = ? "
            "ORDER BY scanned_at DESC NULLS LAST, path DESC LIMIT 1", [p["name"]])


@query
def coverage_report(p: dict[str, Any]) -> Rendered:
    """One report by ``report_id``."""
    return "SELECT * FROM coverage_reports WHERE report_id = ?", [p["report_id"]]


@query
def coverage_tests(p: dict[str, Any]) -> Rendered:
    """Every test's line ranges in one report (``report_id``), or in the project's latest
    report with per-test contexts."""
    if p.get("report_id"):
        sub, args = "?", [p["report_id"]]
    else:
        sub, args = _latest(p, contexts=True)
    return (f"SELECT test_id, path, ranges FROM coverage_tests WHERE report_id = {sub} "
            "ORDER BY path, test_id", args)


@query
def last_outcomes(p: dict[str, Any]) -> Rendered:
    """Each test's final outcome in the newest run of ``project`` that ran it."""
    return ("""
        SELECT test_id, arg_max(outcome, (ru.started_at, run_id)) AS outcome,
               arg_max(run_id, (ru.started_at, run_id)) AS run_id,
               max(ru.started_at) AS started_at
        FROM results r JOIN runs ru USING (run_id)
        WHERE ru.project = ? AND r.final
        GROUP BY test_id ORDER BY test_id""", [p["project"]])


@query
def project_overview(p: dict[str, Any]) -> Rendered:
    """One row per project any source knows (scans, runs, coverage, agents): where it is,
    its last run, its latest two coverage reports and its agents."""
    return (f"""
        WITH {IDENTITY},
        names AS (
            SELECT name AS project FROM identity UNION SELECT project FROM runs
            UNION SELECT project FROM coverage_reports
            UNION SELECT project FROM agents WHERE project IS NOT NULL AND project <> ''
        ),
        last_run AS (
            SELECT project, arg_max(run_id, started_at) AS run_id,
                   arg_max(status, started_at) AS last_status,
                   arg_max(tests, started_at) AS tests, arg_max(passed, started_at) AS passed,
                   arg_max(failed + errors, started_at) AS failed,
                   arg_max(commit_sha, started_at) AS run_commit,
                   max(started_at) AS last_run_at, count(*) AS runs
            FROM runs GROUP BY project
        ),
        cov AS (
            SELECT project, list(percent ORDER BY created_at DESC)[:2] AS last_two,
                   count(*) AS reports
            FROM coverage_reports GROUP BY project
        ),
        ag AS (
            SELECT project, count(*) AS agents,
                   count(*) FILTER (WHERE state IN ('starting', 'running', 'waiting-for-approval'))
                       AS agents_active,
                   sum(cost_usd) AS agent_cost_usd
            FROM agents GROUP BY project
        ),
        scanned AS (SELECT name, arg_max(path, scanned_at) AS path, arg_max(kind, scanned_at)
                           AS kind, arg_max(branch, scanned_at) AS branch,
                           arg_max(manifests, scanned_at) AS manifests,
                           arg_max(mcp_servers, scanned_at) AS mcp_servers,
                           arg_max(named_by, scanned_at) AS named_by,
                           arg_max(remote, scanned_at) AS remote,
                           arg_max(python, scanned_at) AS python
                    FROM identity GROUP BY name)
        SELECT n.project, s.path, s.kind, s.branch, s.manifests, s.mcp_servers,
               s.named_by, s.remote, s.python,
               r.run_id, r.last_status, r.tests, r.passed, r.failed, r.run_commit,
               r.last_run_at, coalesce(r.runs, 0) AS runs,
               c.last_two[1] AS coverage, c.last_two[2] AS coverage_before,
               coalesce(c.reports, 0) AS coverage_reports,
               coalesce(a.agents, 0) AS agents, coalesce(a.agents_active, 0) AS agents_active,
               coalesce(a.agent_cost_usd, 0) AS agent_cost_usd
        FROM names n LEFT JOIN last_run r USING (project) LEFT JOIN cov c USING (project)
             LEFT JOIN ag a USING (project) LEFT JOIN scanned s ON s.name = n.project
        ORDER BY n.project""", [])


@query
def mcp_approval(p: dict[str, Any]) -> Rendered:
    """The approval of one MCP server declaration (``project`` folder, ``server`` name,
    ``fingerprint``), if an operator gave it."""
    return ("SELECT * FROM mcp_approvals WHERE project_path = ? AND server = ? "
            "AND fingerprint = ?", [p["project"], p["server"], p["fingerprint"]])


@query
def selection_stats(p: dict[str, Any]) -> Rendered:
    """Per test over the project's last ``window`` runs (default 30): how often it ran and
    failed, how many runs ago it last failed (0: the latest run), its mean duration, and
    whether it passed and failed on one commit or in one run (proof of flakiness)."""
    window = clamped(p, "window", 30, 1000)
    return (f"""
        WITH recent AS (
            SELECT run_id, coalesce(commit_sha, run_id) AS point,
                   row_number() OVER (ORDER BY started_at DESC, ingested_at DESC) - 1 AS ago
            FROM runs WHERE project = ? AND status <> 'running'
            QUALIFY ago < {window}
        ),
        r AS (
            SELECT test_id, file, classname, name, ago, point, final, outcome, duration_s
            FROM results JOIN recent USING (run_id) WHERE outcome <> 'skipped'
        ),
        flaky AS (  -- (only tests that failed at all can be: a cheap filter first)
            SELECT DISTINCT test_id FROM r
            WHERE test_id IN (SELECT test_id FROM r WHERE outcome IN ('failed', 'error'))
            GROUP BY test_id, point
            HAVING bool_or(outcome = 'passed') AND bool_or(outcome IN ('failed', 'error'))
        )
        SELECT test_id, any_value(file) AS file, any_value(classname) AS classname,
               any_value(name) AS name,
               count(*) FILTER (WHERE final) AS runs,
               count(*) FILTER (WHERE final AND outcome IN ('failed', 'error')) AS fails,
               min(ago) FILTER (WHERE final AND outcome IN ('failed', 'error')) AS since_fail,
               bool_or(ago = 0 AND final AND outcome IN ('failed', 'error')) AS failed_last,
               avg(duration_s) FILTER (WHERE final) AS duration_s,
               test_id IN (SELECT test_id FROM flaky) AS flaky
        FROM r GROUP BY test_id ORDER BY test_id""", [p["project"]])


@query
def selection_history(p: dict[str, Any]) -> Rendered:
    """Every final result of the project's last ``limit`` finished runs (default 500),
    oldest run first: what a replay of the selector walks through."""
    limit = clamped(p, "limit", 500, 5000)
    return (f"""
        WITH chosen AS (
            SELECT run_id, started_at, ingested_at, commit_sha FROM runs
            WHERE project = ? AND status <> 'running'
            ORDER BY started_at DESC, ingested_at DESC LIMIT {limit}
        )
        SELECT c.run_id, c.started_at, c.commit_sha, res.test_id, res.file, res.classname,
               res.name, res.outcome, res.duration_s
        FROM results res JOIN chosen c USING (run_id)
        WHERE res.final AND res.outcome <> 'skipped'
        ORDER BY c.started_at, c.ingested_at, res.test_id""", [p["project"]])


@query
def coverage_tests_in(p: dict[str, Any]) -> Rendered:
    """The tests' line ranges in the files ``paths`` (a list) of the project's latest report
    with per-test contexts: what a change to those files touches."""
    sub, args = _latest(p, contexts=True)
    paths = [str(x) for x in (p.get("paths") or [])]
    return (f"SELECT test_id, path, ranges FROM coverage_tests WHERE report_id = {sub} "
            "AND list_contains(?, path) ORDER BY path, test_id", [*args, paths])


@query
def test_runs(p: dict[str, Any]) -> Rendered:
    """Test runs started from the workbench, newest first (``project`` narrows them, ``id``
    picks one), each with its stored run (``run_id``, ``run_status``: the run its results
    stream into, once it started) and how many results that has so far."""
    where, args = ["TRUE"], []
    for key in ("project", "id"):
        if p.get(key):
            where.append(f"t.{key} = ?")
            args.append(p[key])
    where = " AND ".join(where)
    limit = clamped(p, "limit", 100, 1000)
    return (f"""
        SELECT t.* EXCLUDE (run_id), ru.run_id, ru.status AS run_status,
               (SELECT count(DISTINCT test_id) FROM results r WHERE r.run_id = ru.run_id
                AND r.final) AS results,
               (SELECT count(DISTINCT test_id) FROM results r WHERE r.run_id = ru.run_id
                AND r.final AND r.outcome IN ('failed', 'error')) AS failures
        FROM test_runs t LEFT JOIN runs ru ON ru.project = t.project AND ru.build = t.id
        WHERE {where} ORDER BY t.created_at DESC LIMIT ?""", [*args, limit])
