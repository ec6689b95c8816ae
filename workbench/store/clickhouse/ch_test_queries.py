"""The ClickHouse dialect of the named test-result queries.

Each function has the name, parameters and answer of the DuckDB query of the same name
in :mod:`workbench.store.queries` (or :mod:`~workbench.store.coverage_queries` for the
selection's), over the views of :mod:`.results_ddl`; the parity suite compares them.

Where DuckDB aggregates differ: ``median`` is ``quantileExactInclusive(0.5)`` (the same
interpolation); ``list(x ORDER BY t)`` is ``groupArray`` of ``(t, x)`` pairs sorted (a
pair is never NULL, so a NULL outcome keeps its place, as in DuckDB's list); ``count``
is made ``Int64``. One run's results are found by the run's place in the sort key
(project, start), not by scanning every result for its id.

:data:`FEDERATED`: queries of the node's file that read runs or coverage too (the
projects' overview, their identities, the test runs the workbench started) get those
from here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..queries import _page, clamped
from .ch_queries import QUERIES, _Args, filters, one_of, query

Rendered = tuple[str, dict[str, Any]]
__all__ = ["FEDERATED", "QUERIES"]


def _run_where(p: dict[str, Any], a: _Args, alias: str = "ru") -> str:
    cols = tuple((key, f"{alias}.{key}") for key in ("project", "branch", "variant"))
    return filters(p, a, cols, f"{alias}.started_at")


def _of_run(a: _Args, run_id: str) -> str:
    """The results of one run."""
    return one_of("wb_runs", "run_id", "started_at", a(str(run_id)))


def _same(left: str, right: str) -> str:
    """``left IS NOT DISTINCT FROM right``."""
    return f"(({left} = {right}) OR ({left} IS NULL AND {right} IS NULL))"


def _sorted(value: str, by: str, where: str = "", desc: bool = False) -> str:
    """``list(value ORDER BY by)`` (``FILTER (WHERE where)``)."""
    pairs = f"groupArrayIf(({by}, {value}), {where})" if where else f"groupArray(({by}, {value}))"
    sort = "arrayReverseSort" if desc else "arraySort"
    return f"arrayMap(x -> x.2, {sort}(x -> x.1, {pairs}))"


def _median(value: str, where: str = "") -> str:
    if not where:
        return f"quantileExactInclusive(0.5)({value})"
    return (f"if(countIf({value} IS NOT NULL AND {where}) = 0, NULL, "
            f"quantileExactInclusiveIf(0.5)({value}, {where}))")


@query
def projects(p: dict[str, Any]) -> Rendered:
    return "SELECT DISTINCT project FROM runs_v ORDER BY 1", {}


@query
def branches(p: dict[str, Any]) -> Rendered:
    a = _Args()
    where = _run_where({"project": p.get("project")}, a)
    return (f"SELECT DISTINCT branch FROM runs_v ru WHERE {where} AND branch IS NOT NULL "
            "ORDER BY 1", a)


@query
def variants(p: dict[str, Any]) -> Rendered:
    a = _Args()
    where = _run_where({"project": p.get("project")}, a)
    return (f"SELECT DISTINCT variant FROM runs_v ru WHERE {where} AND variant IS NOT NULL "
            "ORDER BY 1", a)


@query
def runs(p: dict[str, Any]) -> Rendered:
    a = _Args()
    return (f"""
        SELECT run_id, project, branch, commit_sha, build, variant, started_at, duration_s,
               status, tests, passed, failed, errors, skipped, attempts, format, source,
               warnings
        FROM runs_v ru WHERE {_run_where(p, a)}
        ORDER BY started_at DESC NULLS LAST, ingested_at DESC {_page(p)}""", a)


@query
def run(p: dict[str, Any]) -> Rendered:
    a = _Args()
    return f"SELECT * FROM runs_v WHERE run_id = {a(str(p['run_id']))}", a


@query
def base_run(p: dict[str, Any]) -> Rendered:
    a = _Args()
    rid = a(str(p["run_id"]))
    return (f"""
        WITH (SELECT (project, branch, variant, started_at) FROM runs_v
              WHERE run_id = {rid} LIMIT 1) AS r
        SELECT run_id FROM runs_v
        WHERE project = r.1 AND {_same('branch', 'r.2')} AND {_same('variant', 'r.3')}
          AND started_at < r.4
        ORDER BY started_at DESC LIMIT 1""", a)


@query
def run_results(p: dict[str, Any]) -> Rendered:
    a = _Args()
    final_only = "AND final" if p.get("final_only") else ""
    return (f"""
        SELECT test_id, suite, classname, name, params, file, attempt, final, outcome,
               duration_s, message, error_type, details, signature
        FROM results_v WHERE {_of_run(a, p['run_id'])} {final_only}
        ORDER BY ifNull(outcome IN ('passed', 'skipped'), 1), test_id, attempt""", a)


@query
def final_outcomes(p: dict[str, Any]) -> Rendered:
    a = _Args()
    return (f"""
        SELECT test_id, anyIf(outcome, final) AS outcome, toInt64(count()) AS attempts,
               anyIf(signature, final) AS signature, anyIf(message, final) AS message
        FROM results_v WHERE {_of_run(a, p['run_id'])}
        GROUP BY test_id ORDER BY test_id""", a)


@query
def failure_clusters(p: dict[str, Any]) -> Rendered:
    a = _Args()
    return (f"""
        SELECT s.signature AS signature, any(s.exception) AS exception,
               any(s.suspect) AS suspect, any(s.normalized) AS normalized,
               toInt64(count()) AS failures, toInt64(uniqExact(r.test_id)) AS tests,
               toInt64(uniqExact(r.run_id)) AS runs, min(ru.started_at) AS first_seen,
               max(ru.started_at) AS last_seen, min(r.message) AS example_message,
               arraySlice(arraySort(groupUniqArray(r.test_id)), 1, 20) AS affected_tests
        FROM results_v r JOIN runs_v ru ON ru.run_id = r.run_id
             JOIN signatures_v s ON s.signature = r.signature
        WHERE {_run_where(p, a)} AND r.signature IS NOT NULL
        GROUP BY s.signature ORDER BY failures DESC, signature {_page(p, 200)}""", a)


@query
def cluster_failures(p: dict[str, Any]) -> Rendered:
    a = _Args()
    where = _run_where(p, a)
    return (f"""
        SELECT ru.started_at AS started_at, ru.run_id AS run_id, ru.branch AS branch,
               ru.commit_sha AS commit_sha, r.test_id AS test_id, r.attempt AS attempt,
               r.outcome AS outcome, r.message AS message, r.details AS details
        FROM results_v r JOIN runs_v ru ON ru.run_id = r.run_id
        WHERE {where} AND r.signature = {a(str(p['signature']))}
        ORDER BY ru.started_at DESC, r.test_id, r.attempt {_page(p, 200)}""", a)


@query
def test_run_stats(p: dict[str, Any]) -> Rendered:
    a = _Args()
    window = int(p.get("window") or 30)
    return (f"""
        WITH per_run AS (
            SELECT r.test_id AS test_id, r.run_id AS run_id, any(ru.commit_sha) AS commit_sha,
                   any(ru.started_at) AS started_at, anyIf(r.outcome, r.final) AS outcome,
                   countIf(r.outcome = 'passed') > 0
                       AND countIf(r.outcome IN ('failed', 'error')) > 0 AS mixed
            FROM results_v r JOIN runs_v ru ON ru.run_id = r.run_id
            WHERE {_run_where(p, a)} AND r.outcome <> 'skipped'
            GROUP BY r.test_id, r.run_id
        ),
        ranked AS (
            SELECT *, row_number() OVER (PARTITION BY test_id ORDER BY started_at DESC) AS rn
            FROM per_run
        ),
        recent AS (
            SELECT *, lagInFrame(outcome) OVER (PARTITION BY test_id ORDER BY started_at
                                               ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
                       AS prev,
                   row_number() OVER (PARTITION BY test_id ORDER BY started_at) AS pos
            FROM ranked WHERE rn <= {window}
        ),
        commits AS (
            SELECT test_id, commit_sha FROM per_run WHERE commit_sha IS NOT NULL
            GROUP BY test_id, commit_sha
            HAVING countIf(outcome = 'passed' OR mixed) > 0
               AND countIf(outcome <> 'passed' OR mixed) > 0
        ),
        commit_ev AS (
            SELECT test_id, toInt64(count()) AS flaky_commits,
                   arraySlice(arraySort(groupArray(commit_sha)), 1, 10) AS commit_evidence
            FROM commits GROUP BY test_id
        )
        SELECT t.test_id AS test_id, toInt64(count()) AS runs,
               toInt64(countIf(outcome = 'passed')) AS passes,
               toInt64(countIf(outcome <> 'passed')) AS fails,
               toInt64(countIf(pos > 1 AND prev IS NOT NULL
                               AND (prev = 'passed') <> (outcome = 'passed'))) AS flips,
               toInt64(countIf(mixed)) AS retry_flaky_runs,
               arraySlice({_sorted('run_id', 'started_at', 'mixed', desc=True)}, 1, 10)
                   AS retry_evidence,
               toInt64(coalesce(any(c.flaky_commits), 0)) AS flaky_commits,
               any(c.commit_evidence) AS commit_evidence,
               {_sorted('outcome', 'started_at')} AS strip,
               {_sorted('run_id', 'started_at')} AS strip_runs,
               max(started_at) AS last_run
        FROM recent t LEFT JOIN commit_ev c ON c.test_id = t.test_id
        GROUP BY t.test_id
        HAVING countIf(outcome <> 'passed' OR mixed) > 0
        ORDER BY t.test_id""", a)


@query
def test_history(p: dict[str, Any]) -> Rendered:
    a = _Args()
    where = _run_where(p, a)
    return (f"""
        SELECT ru.started_at AS started_at, ru.run_id AS run_id, ru.branch AS branch,
               ru.commit_sha AS commit_sha, ru.variant AS variant, r.attempt AS attempt,
               r.final AS final, r.outcome AS outcome, r.duration_s AS duration_s,
               r.message AS message, r.signature AS signature
        FROM results_v r JOIN runs_v ru ON ru.run_id = r.run_id
        WHERE {where} AND r.test_id = {a(str(p['test_id']))}
        ORDER BY ru.started_at DESC, r.run_id, r.attempt {_page(p, 500)}""", a)


@query
def test_durations(p: dict[str, Any]) -> Rendered:
    a = _Args()
    return (f"""
        SELECT r.test_id AS test_id, toInt64(count()) AS runs,
               {_median('r.duration_s')} AS median_s, max(r.duration_s) AS max_s,
               sum(r.duration_s) AS total_s
        FROM results_v r JOIN runs_v ru ON ru.run_id = r.run_id
        WHERE {_run_where(p, a)} AND r.final AND r.duration_s IS NOT NULL
          AND r.outcome <> 'skipped'
        GROUP BY r.test_id ORDER BY median_s DESC, test_id {_page(p, 200)}""", a)


@query
def search_tests(p: dict[str, Any]) -> Rendered:
    a = _Args()
    where = _run_where(p, a)
    return (f"""
        SELECT DISTINCT r.test_id AS test_id
        FROM results_v r JOIN runs_v ru ON ru.run_id = r.run_id
        WHERE {where} AND r.test_id ILIKE {a(f"%{p.get('text', '')}%")}
        ORDER BY 1 LIMIT 50""", a)


@query
def duration_medians(p: dict[str, Any]) -> Rendered:
    a = _Args()
    recent = int(p.get("recent") or 5)
    return (f"""
        WITH d AS (
            SELECT r.test_id AS test_id, r.duration_s AS duration_s,
                   row_number() OVER (PARTITION BY r.test_id ORDER BY ru.started_at DESC) AS rn
            FROM results_v r JOIN runs_v ru ON ru.run_id = r.run_id
            WHERE {_run_where(p, a)} AND r.final AND r.duration_s IS NOT NULL
              AND r.outcome <> 'skipped'
        )
        SELECT test_id, toInt64(count()) AS runs,
               {_median('duration_s', f'rn <= {recent}')} AS recent_median_s,
               {_median('duration_s', f'rn > {recent}')} AS older_median_s,
               toInt64(countIf(rn > {recent})) AS older_runs
        FROM d GROUP BY test_id ORDER BY test_id""", a)


@query
def duration_trend(p: dict[str, Any]) -> Rendered:
    a = _Args()
    where = _run_where(p, a)
    return (f"""
        SELECT ru.started_at AS started_at, r.duration_s AS duration_s,
               r.outcome AS outcome, ru.run_id AS run_id
        FROM results_v r JOIN runs_v ru ON ru.run_id = r.run_id
        WHERE {where} AND r.final AND r.test_id = {a(str(p['test_id']))}
        ORDER BY ru.started_at""", a)


@query
def data_version(p: dict[str, Any]) -> Rendered:
    # (a live run's tests in progress are this node's: its own commits tell of them)
    return ("SELECT toInt64(count()) AS runs, max(ingested_at) AS latest, "
            "toInt64(sum(attempts)) AS attempts, CAST(NULL AS Nullable(DateTime64(6))) "
            "AS running FROM runs_v", {})


@query
def runs_ingested_since(p: dict[str, Any]) -> Rendered:
    a = _Args()
    project, since = a(str(p["project"])), a.time(p["since"])
    return (f"""
        SELECT run_id, toFloat64(ingested_at) AS at FROM runs_v WHERE project = {project}
          AND ingested_at >= (SELECT ifNull(max(ingested_at), toDateTime64(0, 6, 'UTC'))
                              FROM runs_v WHERE project = {project} AND ingested_at < {since})
        ORDER BY ingested_at DESC, run_id LIMIT 200""", a)


@query
def final_failures(p: dict[str, Any]) -> Rendered:
    a = _Args()
    ids = a([str(r) for r in p["run_ids"]], "Array(String)")
    return (f"SELECT run_id, test_id, message FROM results_v WHERE final AND outcome IN "
            f"('failed', 'error') AND run_id IN {ids} ORDER BY run_id, test_id", a)


@query
def last_pass(p: dict[str, Any]) -> Rendered:
    a = _Args()
    return (f"SELECT if(count() = 0, NULL, toFloat64(max(ru.ingested_at))) AS at "
            f"FROM runs_v ru JOIN results_v r ON r.run_id = ru.run_id "
            f"WHERE ru.project = {a(str(p['project']))} AND r.final AND r.outcome = 'passed'",
            a)


# -- the selection's (coverage_queries) -------------------------------------------------
@query
def last_outcomes(p: dict[str, Any]) -> Rendered:
    a = _Args()
    return (f"""
        SELECT r.test_id AS test_id, argMax(r.outcome, (ru.started_at, ru.run_id)) AS outcome,
               argMax(ru.run_id, (ru.started_at, ru.run_id)) AS run_id,
               max(ru.started_at) AS started_at
        FROM results_v r JOIN runs_v ru ON ru.run_id = r.run_id
        WHERE ru.project = {a(str(p['project']))} AND r.final
        GROUP BY r.test_id ORDER BY test_id""", a)


def _recent_runs(p: dict[str, Any], a: _Args, limit: int, columns: str) -> str:
    return (f"SELECT {columns} FROM runs_v WHERE project = {a(str(p['project']))} "
            f"AND status <> 'running' ORDER BY started_at DESC, ingested_at DESC "
            f"LIMIT {limit}")


@query
def selection_stats(p: dict[str, Any]) -> Rendered:
    a = _Args()
    window = clamped(p, "window", 30, 1000)
    recent = _recent_runs(p, a, window, "run_id, coalesce(commit_sha, run_id) AS point, "
                          "started_at, ingested_at")
    return (f"""
        WITH recent AS (
            SELECT run_id, point,
                   toInt64(row_number() OVER (ORDER BY started_at DESC, ingested_at DESC) - 1)
                       AS ago
            FROM ({recent})
        ),
        r AS (
            SELECT x.test_id AS test_id, x.file AS file, x.classname AS classname,
                   x.name AS name, c.ago AS ago, c.point AS point, x.final AS final,
                   x.outcome AS outcome, x.duration_s AS duration_s
            FROM results_v x JOIN recent c ON c.run_id = x.run_id
            WHERE x.outcome <> 'skipped'
        ),
        flaky AS (
            SELECT DISTINCT test_id FROM r
            WHERE test_id IN (SELECT test_id FROM r WHERE outcome IN ('failed', 'error'))
            GROUP BY test_id, point
            HAVING countIf(outcome = 'passed') > 0 AND countIf(outcome IN ('failed', 'error')) > 0
        )
        SELECT test_id, any(file) AS file, any(classname) AS classname, any(name) AS name,
               toInt64(countIf(final)) AS runs,
               toInt64(countIf(final AND outcome IN ('failed', 'error'))) AS fails,
               minIfOrNull(ago, final AND outcome IN ('failed', 'error')) AS since_fail,
               toBool(countIf(ago = 0 AND final AND outcome IN ('failed', 'error')) > 0)
                   AS failed_last,
               avgIfOrNull(duration_s, final) AS duration_s,
               toBool(test_id IN (SELECT test_id FROM flaky)) AS flaky
        FROM r GROUP BY test_id ORDER BY test_id""", a)


@query
def selection_history(p: dict[str, Any]) -> Rendered:
    a = _Args()
    limit = clamped(p, "limit", 500, 5000)
    chosen = _recent_runs(p, a, limit, "run_id, started_at, ingested_at, commit_sha")
    return (f"""
        SELECT c.run_id AS run_id, c.started_at AS started_at, c.commit_sha AS commit_sha,
               res.test_id AS test_id, res.file AS file, res.classname AS classname,
               res.name AS name, res.outcome AS outcome, res.duration_s AS duration_s
        FROM results_v res JOIN ({chosen}) c ON c.run_id = res.run_id
        WHERE res.final AND res.outcome <> 'skipped'
        ORDER BY c.started_at, c.ingested_at, res.test_id""", a)


# -- queries of the file that read runs ----------------------------------------------------
Fetch = tuple[str, dict[str, Any]]
#: For each: ``(params, local) -> {table name: ClickHouse query}``, registered under that
#: name in the cursor the file's query runs in (``local(sql)``: rows of the file).
FEDERATED: dict[str, Callable[[dict[str, Any], Callable], dict[str, Fetch]]] = {}

#: What the projects' identities read of runs and coverage (coverage_queries.IDENTITY).
_ORIGINS = ("SELECT DISTINCT project, source, commit_sha FROM runs_v", {})
_COVERED = ("SELECT DISTINCT project FROM coverage_reports_v", {})
for _name in ("scanned_projects", "project_folder"):
    FEDERATED[_name] = lambda p, local: {"runs": _ORIGINS, "coverage_reports": _COVERED}
FEDERATED["project_overview"] = lambda p, local: {
    "runs": ("SELECT run_id, project, source, commit_sha, status, tests, passed, failed, "
             "errors, started_at FROM runs_v", {}),
    "coverage_reports": ("SELECT project, percent, created_at FROM coverage_reports_v", {})}


def _test_runs(p: dict[str, Any], local) -> dict[str, Fetch]:
    """The runs the workbench's test runs stream into (their build is the test run's id),
    and their final results."""
    ids = [row[0] for row in local("SELECT id FROM test_runs")]
    runs = ("SELECT run_id, project, build, status FROM runs_v "
            "WHERE build IN {ids:Array(String)}", {"ids": ids})
    results = ("SELECT run_id, test_id, final, outcome FROM results_v WHERE final AND "
               "run_id IN (SELECT run_id FROM runs_v WHERE build IN {ids:Array(String)})",
               {"ids": ids})
    return {"runs": runs, "results": results}


FEDERATED["test_runs"] = _test_runs
