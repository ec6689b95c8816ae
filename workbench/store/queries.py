"""Named read queries: the one place that knows the SQL behind every model method.

Each query is a function ``(params) -> (sql, args)``. Filters common to most queries
(project, branch, variant, time window) become bound parameters, never string splicing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Rendered = tuple[str, list[Any]]


class Registry(dict):
    """Named queries of one SQL dialect: ``name -> fn(params) -> (sql, args)``."""

    def query(self, fn: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
        self[fn.__name__] = fn
        return fn

    def render(self, name: str, params: dict[str, Any]) -> Any:
        """Return ``(sql, args)`` for the query called ``name``."""
        try:
            fn = self[name]
        except KeyError:
            raise KeyError(f"no query named {name!r}; known: {', '.join(sorted(self))}") \
                from None
        try:
            return fn(params)
        except KeyError as err:
            raise ValueError(f"query {name!r} needs the parameter {err.args[0]!r}") from None
        except (TypeError, ValueError) as err:
            raise ValueError(f"query {name!r}: bad parameter: {err}") from None


#: DuckDB's: every named query (the telemetry, coverage and control modules add theirs).
QUERIES = Registry()
query = QUERIES.query
render = QUERIES.render


def filter_clause(p: dict[str, Any], columns: tuple[tuple[str, str], ...],
                  time_col: str) -> Rendered:
    """``WHERE`` body and arguments: ``column = ?`` for each ``(param, column)`` that ``p``
    sets, and the ``since``/``until`` window on ``time_col``."""
    clauses, args = ["TRUE"], []
    for key, col in columns:
        if p.get(key):
            clauses.append(f"{col} = ?")
            args.append(p[key])
    if p.get("since") is not None:
        clauses.append(f"{time_col} >= ?")
        args.append(p["since"])
    if p.get("until") is not None:
        clauses.append(f"{time_col} < ?")
        args.append(p["until"])
    return " AND ".join(clauses), args


def _run_where(p: dict[str, Any], alias: str = "ru") -> Rendered:
    """WHERE clause over the runs table for the standard filters."""
    cols = tuple((key, f"{alias}.{key}") for key in ("project", "branch", "variant"))
    return filter_clause(p, cols, f"{alias}.started_at")


def paging(p: dict[str, Any], default: int = 500) -> tuple[int, int]:
    """``(limit, offset)`` from a caller's parameters, checked."""
    return (_whole(p.get("limit"), "limit", default, 1, 100_000),
            _whole(p.get("offset"), "offset", 0, 0, 10**9))


def _page(p: dict[str, Any], default: int = 500) -> str:
    limit, offset = paging(p, default)
    return f"LIMIT {limit} OFFSET {offset}"


def clamped(p: dict[str, Any], key: str, default: int, high: int) -> int:
    """``p[key]`` as a whole number from 1 to ``high`` (``default`` when missing): for
    bounds the workbench itself passes, which are held in range rather than refused."""
    return max(1, min(int(p.get(key) or default), high))


def _whole(value: Any, name: str, default: int, low: int, high: int) -> int:
    """A paging number from a caller (the HTTP API passes client JSON): a whole number in
    range, else ValueError (the API's 400), never a database error."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ValueError(f"{name} must be a whole number, not {value!r:.40}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}")
    return int(value)


@query
def projects(p: dict[str, Any]) -> Rendered:
    return "SELECT DISTINCT project FROM runs ORDER BY 1", []


@query
def branches(p: dict[str, Any]) -> Rendered:
    where, args = _run_where({"project": p.get("project")})
    return (
        f"SELECT DISTINCT branch FROM runs ru WHERE {where} AND branch IS NOT NULL ORDER BY 1",
        args,
    )


@query
def variants(p: dict[str, Any]) -> Rendered:
    where, args = _run_where({"project": p.get("project")})
    return (
        f"SELECT DISTINCT variant FROM runs ru WHERE {where} AND variant IS NOT NULL ORDER BY 1",
        args,
    )


@query
def runs(p: dict[str, Any]) -> Rendered:
    where, args = _run_where(p)
    return (
        f"""
        SELECT run_id, project, branch, commit_sha, build, variant, started_at, duration_s,
               status, tests, passed, failed, errors, skipped, attempts, format, source,
               warnings
        FROM runs ru WHERE {where}
        ORDER BY started_at DESC NULLS LAST, ingested_at DESC {_page(p)}
        """,
        args,
    )


@query
def running_tests(p: dict[str, Any]) -> Rendered:
    """The tests a live run has started and not finished, as its writer last reported."""
    return ("SELECT test_id, seen_at FROM live_running WHERE run_id = ? ORDER BY test_id",
            [p["run_id"]])


@query
def run(p: dict[str, Any]) -> Rendered:
    return "SELECT * FROM runs WHERE run_id = ?", [p["run_id"]]


@query
def base_run(p: dict[str, Any]) -> Rendered:
    """The previous run of the same project, branch and variant."""
    return (
        """
        SELECT b.run_id FROM runs r JOIN runs b
          ON b.project = r.project AND b.branch IS NOT DISTINCT FROM r.branch
         AND b.variant IS NOT DISTINCT FROM r.variant AND b.started_at < r.started_at
        WHERE r.run_id = ? ORDER BY b.started_at DESC LIMIT 1
        """,
        [p["run_id"]],
    )


@query
def run_results(p: dict[str, Any]) -> Rendered:
    """Every attempt of one run, failures first."""
    final_only = "AND final" if p.get("final_only") else ""
    return (
        f"""
        SELECT test_id, suite, classname, name, params, file, attempt, final, outcome,
               duration_s, message, error_type, details, signature
        FROM results WHERE run_id = ? {final_only}
        ORDER BY outcome IN ('passed', 'skipped'), test_id, attempt
        """,
        [p["run_id"]],
    )


@query
def final_outcomes(p: dict[str, Any]) -> Rendered:
    """One row per test of a run: its final outcome and whether a retry changed it."""
    return (
        """
        SELECT test_id, any_value(outcome) FILTER (WHERE final) AS outcome,
               count(*) AS attempts, any_value(signature) FILTER (WHERE final) AS signature,
               any_value(message) FILTER (WHERE final) AS message
        FROM results WHERE run_id = ? GROUP BY test_id ORDER BY test_id
        """,
        [p["run_id"]],
    )


@query
def failure_clusters(p: dict[str, Any]) -> Rendered:
    where, args = _run_where(p)
    return (
        f"""
        SELECT s.signature, s.exception, s.suspect, s.normalized,
               count(*) AS failures, count(DISTINCT r.test_id) AS tests,
               count(DISTINCT r.run_id) AS runs, min(ru.started_at) AS first_seen,
               max(ru.started_at) AS last_seen, min(r.message) AS example_message,
               list(DISTINCT r.test_id ORDER BY r.test_id)[:20] AS affected_tests
        FROM results r JOIN runs ru USING (run_id) JOIN signatures s USING (signature)
        WHERE {where} AND r.signature IS NOT NULL
        GROUP BY ALL ORDER BY failures DESC, signature {_page(p, 200)}
        """,
        args,
    )


@query
def cluster_failures(p: dict[str, Any]) -> Rendered:
    where, args = _run_where(p)
    return (
        f"""
        SELECT ru.started_at, ru.run_id, ru.branch, ru.commit_sha, r.test_id, r.attempt,
               r.outcome, r.message, r.details
        FROM results r JOIN runs ru USING (run_id)
        WHERE {where} AND r.signature = ?
        ORDER BY ru.started_at DESC, r.test_id, r.attempt {_page(p, 200)}
        """,
        [*args, p["signature"]],
    )


@query
def test_run_stats(p: dict[str, Any]) -> Rendered:
    """Per test over its last ``window`` runs: outcomes, flips and flaky evidence."""
    where, args = _run_where(p)
    window = int(p.get("window") or 30)
    return (
        f"""
        WITH per_run AS (
            SELECT r.test_id, r.run_id, any_value(ru.commit_sha) AS commit_sha,
                   any_value(ru.started_at) AS started_at,
                   any_value(r.outcome) FILTER (WHERE r.final) AS outcome,
                   bool_or(r.outcome = 'passed') AND bool_or(r.outcome IN ('failed', 'error'))
                       AS mixed
            FROM results r JOIN runs ru USING (run_id)
            WHERE {where} AND r.outcome <> 'skipped'
            GROUP BY r.test_id, r.run_id
        ),
        ranked AS (
            SELECT *, row_number() OVER (PARTITION BY test_id ORDER BY started_at DESC) AS rn
            FROM per_run
        ),
        recent AS (
            SELECT *, lag(outcome) OVER (PARTITION BY test_id ORDER BY started_at) AS prev
            FROM ranked WHERE rn <= {window}
        ),
        commits AS (
            SELECT test_id, commit_sha FROM per_run WHERE commit_sha IS NOT NULL
            GROUP BY ALL
            HAVING bool_or(outcome = 'passed' OR mixed) AND bool_or(outcome <> 'passed' OR mixed)
        ),
        commit_ev AS (
            SELECT test_id, count(*) AS flaky_commits, list(commit_sha ORDER BY commit_sha)[:10]
                   AS commit_evidence
            FROM commits GROUP BY test_id
        )
        SELECT t.test_id, count(*) AS runs,
               count(*) FILTER (WHERE outcome = 'passed') AS passes,
               count(*) FILTER (WHERE outcome <> 'passed') AS fails,
               count(*) FILTER (
                   WHERE prev IS NOT NULL AND (prev = 'passed') <> (outcome = 'passed')
               ) AS flips,
               count(*) FILTER (WHERE mixed) AS retry_flaky_runs,
               coalesce(list(run_id ORDER BY started_at DESC) FILTER (WHERE mixed)[:10],
                        []) AS retry_evidence,
               coalesce(any_value(c.flaky_commits), 0) AS flaky_commits,
               coalesce(any_value(c.commit_evidence), []) AS commit_evidence,
               list(outcome ORDER BY started_at) AS strip,
               list(run_id ORDER BY started_at) AS strip_runs,
               max(started_at) AS last_run
        FROM recent t LEFT JOIN commit_ev c USING (test_id)
        GROUP BY t.test_id
        HAVING count(*) FILTER (WHERE outcome <> 'passed' OR mixed) > 0
        ORDER BY t.test_id
        """,
        args,
    )


@query
def test_history(p: dict[str, Any]) -> Rendered:
    where, args = _run_where(p)
    return (
        f"""
        SELECT ru.started_at, ru.run_id, ru.branch, ru.commit_sha, ru.variant, r.attempt,
               r.final, r.outcome, r.duration_s, r.message, r.signature
        FROM results r JOIN runs ru USING (run_id)
        WHERE {where} AND r.test_id = ?
        ORDER BY ru.started_at DESC, r.run_id, r.attempt {_page(p, 500)}
        """,
        [*args, p["test_id"]],
    )


@query
def test_durations(p: dict[str, Any]) -> Rendered:
    """Per test: final-attempt durations in run order (for slowest and regressions)."""
    where, args = _run_where(p)
    return (
        f"""
        SELECT r.test_id, count(*) AS runs, median(r.duration_s) AS median_s,
               max(r.duration_s) AS max_s, sum(r.duration_s) AS total_s
        FROM results r JOIN runs ru USING (run_id)
        WHERE {where} AND r.final AND r.duration_s IS NOT NULL AND r.outcome <> 'skipped'
        GROUP BY r.test_id
        ORDER BY median_s DESC, test_id {_page(p, 200)}
        """,
        args,
    )


@query
def search_tests(p: dict[str, Any]) -> Rendered:
    where, args = _run_where(p)
    return (
        f"""
        SELECT DISTINCT r.test_id FROM results r JOIN runs ru USING (run_id)
        WHERE {where} AND r.test_id ILIKE ? ORDER BY 1 LIMIT 50
        """,
        [*args, f"%{p.get('text', '')}%"],
    )


@query
def duration_medians(p: dict[str, Any]) -> Rendered:
    """Per test: median of its last ``recent`` final durations and of the ones before."""
    where, args = _run_where(p)
    recent = int(p.get("recent") or 5)
    return (
        f"""
        WITH d AS (
            SELECT r.test_id, r.duration_s,
                   row_number() OVER (PARTITION BY r.test_id ORDER BY ru.started_at DESC) AS rn
            FROM results r JOIN runs ru USING (run_id)
            WHERE {where} AND r.final AND r.duration_s IS NOT NULL AND r.outcome <> 'skipped'
        )
        SELECT test_id, count(*) AS runs,
               median(duration_s) FILTER (WHERE rn <= {recent}) AS recent_median_s,
               median(duration_s) FILTER (WHERE rn > {recent}) AS older_median_s,
               count(*) FILTER (WHERE rn > {recent}) AS older_runs
        FROM d GROUP BY test_id ORDER BY test_id
        """,
        args,
    )


@query
def duration_trend(p: dict[str, Any]) -> Rendered:
    """Final-attempt durations of one test over time."""
    where, args = _run_where(p)
    return (
        f"""
        SELECT ru.started_at, r.duration_s, r.outcome, ru.run_id
        FROM results r JOIN runs ru USING (run_id)
        WHERE {where} AND r.final AND r.test_id = ? ORDER BY ru.started_at
        """,
        [*args, p["test_id"]],
    )


@query
def runs_ingested_since(p: dict[str, Any]) -> Rendered:
    """The runs of ``project`` stored from the last one stored before ``since`` on, the
    newest 200, newest first: ``run_id`` and ``at`` (seconds since 1970; the alerts)."""
    return ("""
        SELECT run_id, epoch(ingested_at) AS at FROM runs WHERE project = $1
          AND ingested_at >= (SELECT coalesce(max(ingested_at), TIMESTAMP '1970-01-01')
                              FROM runs WHERE project = $1 AND ingested_at < $2)
        ORDER BY ingested_at DESC, run_id LIMIT 200""", [p["project"], p["since"]])


@query
def final_failures(p: dict[str, Any]) -> Rendered:
    """The tests whose final attempt failed in each of ``run_ids``, with their message."""
    return ("SELECT run_id, test_id, message FROM results WHERE final AND outcome IN "
            "('failed', 'error') AND run_id IN (SELECT unnest(?::VARCHAR[])) "
            "ORDER BY run_id, test_id", [list(p["run_ids"])])


@query
def last_pass(p: dict[str, Any]) -> Rendered:
    """When a run of ``project`` with a passing test was last stored (seconds since 1970)."""
    return ("SELECT epoch(max(ru.ingested_at)) AS at FROM runs ru JOIN results r USING "
            "(run_id) WHERE ru.project = ? AND r.final AND r.outcome = 'passed'",
            [p["project"]])


@query
def data_version(p: dict[str, Any]) -> Rendered:
    """A cheap fingerprint that changes whenever runs or live results are written."""
    return (
        "SELECT count(*) AS runs, max(ingested_at) AS latest, sum(attempts) AS attempts, "
        "(SELECT max(seen_at) FROM live_running) AS running FROM runs",
        [],
    )
