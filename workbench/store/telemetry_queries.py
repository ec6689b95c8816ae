"""Named read queries over the telemetry tables (spans, logs, metric points)."""

from __future__ import annotations

from typing import Any

from . import rollup
from .queries import Rendered, _page, filter_clause, query

_COLUMNS = (("service", "service_name"), ("agent", "agent_name"), ("session", "session_id"),
            ("model", "model"))


def _where(p: dict[str, Any], time_col: str) -> Rendered:
    return filter_clause(p, _COLUMNS, time_col)


def _span_where(p: dict[str, Any]) -> Rendered:
    """The standard filters plus span search: name/attribute text, errors only."""
    where, args = _where(p, "start_time")
    if p.get("text"):
        where += " AND (name ILIKE ? OR CAST(attributes AS VARCHAR) ILIKE ?)"
        args += [f"%{p['text']}%"] * 2
    if p.get("errors_only"):
        where += " AND (status_code = 2 OR is_error)"
    return where, args


@query
def telemetry_counts(p: dict[str, Any]) -> Rendered:
    """Stored spans, span events, logs and metric points (optionally of one service)."""
    if p.get("service"):
        return (
            """
            SELECT (SELECT count(*) FROM spans WHERE service_name = $svc) AS spans,
                   (SELECT count(*) FROM span_events e JOIN spans s USING (trace_id, span_id)
                    WHERE s.service_name = $svc) AS span_events,
                   (SELECT count(*) FROM logs WHERE service_name = $svc) AS logs,
                   (SELECT count(*) FROM metric_points WHERE service_name = $svc) AS metric_points
            """.replace("$svc", "?"),
            [p["service"]] * 4,
        )
    return (
        """
        SELECT (SELECT count(*) FROM spans) AS spans,
               (SELECT count(*) FROM span_events) AS span_events,
               (SELECT count(*) FROM logs) AS logs,
               (SELECT count(*) FROM metric_points) AS metric_points
        """,
        [],
    )


@query
def spans_search(p: dict[str, Any]) -> Rendered:
    """Root-level span search: service/agent/session/status/duration/time/name/attribute."""
    where, args = _span_where(p)
    if p.get("min_ms") is not None:
        where += " AND duration_ms >= ?"
        args.append(p["min_ms"])
    if p.get("trace_id"):
        where += " AND trace_id = ?"
        args.append(p["trace_id"])
    return (
        f"""
        SELECT start_time, trace_id, span_id, parent_span_id, service_name, name, duration_ms,
               status_code, agent_name, session_id, operation, model, tool_name,
               input_tokens, output_tokens, cost_usd, attributes
        FROM spans WHERE {where} ORDER BY start_time DESC, span_id {_page(p, 200)}
        """,
        args,
    )


@query
def trace_spans(p: dict[str, Any]) -> Rendered:
    """Every span of one trace in start order (the waterfall)."""
    return (
        """
        SELECT span_id, parent_span_id, name, service_name, kind, start_ns, end_ns,
               duration_ms, status_code, status_message, operation, model, tool_name,
               input_tokens, output_tokens, cost_usd, attributes, events
        FROM spans WHERE trace_id = ? ORDER BY start_ns, span_id
        """,
        [p["trace_id"]],
    )


@query
def logs_search(p: dict[str, Any]) -> Rendered:
    where, args = _where(p, "time")
    if p.get("text"):
        where += " AND (body ILIKE ? OR event_name ILIKE ? OR CAST(attributes AS VARCHAR) ILIKE ?)"
        args += [f"%{p['text']}%"] * 3
    if p.get("min_severity"):
        where += " AND severity_number >= ?"
        args.append(p["min_severity"])
    return (
        f"""
        SELECT time, severity_text, severity_number, service_name, event_name, body,
               session_id, trace_id, span_id, attributes
        FROM logs WHERE {where} ORDER BY time DESC, event_name, body {_page(p, 200)}
        """,
        args,
    )


def _agent_records(p: dict[str, Any], columns: str, present: str = "agent_name") -> Rendered:
    """Log records and spans as one set, filtered alike: ``t`` (the record's time) and
    ``columns`` from both tables, keeping rows where ``present`` is not null.

    Coding agents describe their work in events (logs), SDK agents in spans; every agent
    figure adds the two.
    """
    where_l, args_l = _where(p, "time")
    where_s, args_s = _where(p, "start_time")
    present = f" AND {present} IS NOT NULL"
    return rollup.records(where_l + present, where_s + present, columns), [*args_l, *args_s]


#: The first whole hour at or after a time, and the hour a time falls in (SQL, one
#: parameter per ``?``).
_FIRST_HOUR = ("CASE WHEN date_trunc('hour', CAST(? AS TIMESTAMP)) = CAST(? AS TIMESTAMP) "
               "THEN CAST(? AS TIMESTAMP) "
               "ELSE date_trunc('hour', CAST(? AS TIMESTAMP)) + INTERVAL 1 HOUR END")
_HOUR = "date_trunc('hour', CAST(? AS TIMESTAMP))"


def _pieces(p: dict[str, Any], present: str) -> Rendered:
    """The agents' figures in the filters' window, as rows of ``agent_rollup`` to add up,
    where ``present`` is not null: the stored rows of the whole hours inside the window,
    and the raw records of the partial hours at its ends and of the records not rolled up
    yet, rolled up alike.

    Coding agents describe their work in events (logs), SDK agents in spans; every agent
    figure adds the two (see :mod:`workbench.store.rollup`).
    """
    keys, key_args = filter_clause(
        {k: v for k, v in p.items() if k not in ("since", "until")}, _COLUMNS, "")
    keys += f" AND {present} IS NOT NULL"
    since, until = p.get("since"), p.get("until")
    whole, whole_args = [keys], [*key_args]
    edges, edge_args = [], []  # a raw record counts if it is outside the whole hours
    if since is not None:
        whole.append(f"bucket >= {_FIRST_HOUR}")
        whole_args += [since] * 4
        edges.append(f"t < {_FIRST_HOUR}")
        edge_args += [since] * 4
    if until is not None:
        whole.append(f"bucket < {_HOUR}")
        whole_args.append(until)
        edges.append(f"t >= {_HOUR}")
        edge_args.append(until)
    where_l, args_l = _where(p, "time")
    where_s, args_s = _where(p, "start_time")
    edges.append(f"seq > {rollup.FOLDED}")  # not rolled up yet
    raw = (f"SELECT * FROM ({rollup.records(where_l, where_s)}) "
           f"WHERE {present} IS NOT NULL AND ({' OR '.join(edges)})")
    sql = f"""
        SELECT * EXCLUDE (bucket) FROM agent_rollup WHERE {' AND '.join(whole)}
        UNION ALL BY NAME
        SELECT * EXCLUDE (bucket) FROM ({rollup.aggregate(raw)})
    """
    return sql, [*whole_args, *args_l, *args_s, *edge_args]


def _distinct(column: str, alias: str) -> Rendered:
    """Distinct non-null values of ``column`` across spans and logs."""
    return (
        f"SELECT DISTINCT {column} AS {alias} FROM (SELECT {column} FROM spans UNION ALL "
        f"SELECT {column} FROM logs) WHERE {column} IS NOT NULL ORDER BY 1",
        [],
    )


@query
def agent_sessions(p: dict[str, Any]) -> Rendered:
    """Per agent session: tokens by type, cost, models, tool calls and failures, API errors.

    Logs and spans both describe sessions (Claude Code sends events, SDK agents send
    spans); a session's figures add the two, and the coding agents' own counters
    (lines of code, commits, pull requests) come from their metrics.
    """
    return _sessions(p, _page(p, 500))


_SESSION_SUMS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens",
                 "cost_usd", "model_calls", "tool_calls", "tool_failures", "api_errors")


@query
def agent_totals(p: dict[str, Any]) -> Rendered:
    """Per agent: its sessions and their summed figures (every session in the window).

    A session whose records name two agents (an SDK agent's root span names it, its model
    calls only the service) counts for the first name in order: ``min``, not
    ``any_value``, so that every store and every run answers the same.

    A session counts for its agent (the one its records name) with all its records; only
    the sums are needed, not what ``agent_sessions`` adds (models, time span, the coding
    agents' counters), which made this the dearest query of a live refresh."""
    pieces, args = _pieces(p, "session_id")
    per_session = ", ".join(f"sum({c}) AS {c}" for c in _SESSION_SUMS)
    sums = ", ".join(f"sum({c}){'' if c == 'cost_usd' else '::BIGINT'} AS {c}"
                     for c in _SESSION_SUMS)
    return (
        f"""
        WITH s AS (SELECT min(agent_name) AS agent, {per_session}
                   FROM ({pieces}) GROUP BY session_id)
        SELECT agent, count(*) AS sessions, {sums} FROM s
        GROUP BY agent ORDER BY agent NULLS LAST
        """,
        args,
    )


def _sessions(p: dict[str, Any], page: str) -> Rendered:
    pieces, args = _pieces(p, "session_id")
    where_m, args_m = _where(p, "time")
    counts = ", ".join(f"sum({c})::BIGINT AS {c}" for c in (
        "model_calls", "tool_calls", "tool_failures", "api_errors"))
    return (
        f"""
        WITH ev AS ({pieces}),
        counters AS (
            SELECT session_id,
                   sum(value) FILTER (WHERE name LIKE '%lines_of_code%')::BIGINT AS lines_changed,
                   sum(value) FILTER (WHERE name LIKE '%commit.count')::BIGINT AS commits,
                   sum(value) FILTER (WHERE name LIKE '%pull_request.count')::BIGINT
                       AS pull_requests
            FROM metric_points WHERE {where_m} AND session_id IS NOT NULL GROUP BY 1
        )
        SELECT min(agent_name) AS agent, session_id, min(first_t) AS started,
               max(last_t) AS last_seen,
               sum(input_tokens)::BIGINT AS input_tokens,
               sum(output_tokens)::BIGINT AS output_tokens,
               sum(cache_read_tokens)::BIGINT AS cache_read_tokens,
               sum(cache_creation_tokens)::BIGINT AS cache_creation_tokens,
               sum(cost_usd) AS cost_usd,
               string_agg(DISTINCT model, ', ' ORDER BY model) AS models, {counts},
               any_value(c.lines_changed) AS lines_changed, any_value(c.commits) AS commits,
               any_value(c.pull_requests) AS pull_requests
        FROM ev LEFT JOIN counters c USING (session_id)
        GROUP BY session_id ORDER BY last_seen DESC, session_id {page}
        """,
        [*args, *args_m],
    )


@query
def trace_list(p: dict[str, Any]) -> Rendered:
    """One row per trace matching the filters: its root, duration, size and errors."""
    where, args = _span_where(p)
    having = ""
    if p.get("min_ms") is not None:
        having = "HAVING (max(end_ns) - min(start_ns)) / 1e6 >= ?"
        args.append(p["min_ms"])
    return (
        f"""
        WITH hits AS (SELECT DISTINCT trace_id FROM spans WHERE {where})
        SELECT s.trace_id, min(s.start_time) AS started,
               arg_min(s.name, s.start_ns) AS root, arg_min(s.service_name, s.start_ns) AS service,
               (max(s.end_ns) - min(s.start_ns)) / 1e6 AS duration_ms, count(*) AS spans,
               count(*) FILTER (WHERE s.status_code = 2 OR s.is_error) AS errors,
               min(s.agent_name) AS agent, min(s.session_id) AS session_id,
               sum(s.cost_usd) AS cost_usd
        FROM spans s JOIN hits USING (trace_id)
        GROUP BY s.trace_id {having}
        ORDER BY started DESC, trace_id {_page(p, 200)}
        """,
        args,
    )


@query
def token_usage(p: dict[str, Any]) -> Rendered:
    """Tokens by type and cost per agent and model, from events and spans."""
    pieces, args = _pieces(p, "agent_name")
    sums = ", ".join(f"sum({c})::BIGINT AS {alias}" for c, alias in (
        ("input_tokens", "input"), ("output_tokens", "output"), ("cache_read_tokens",
        "cache_read"), ("cache_creation_tokens", "cache_creation"),
        ("reasoning_tokens", "reasoning")))
    return (
        f"""
        SELECT agent_name AS agent, coalesce(model, '(unknown)') AS model, {sums},
               sum(cost_usd) AS cost_usd, sum(records)::BIGINT AS records
        FROM ({pieces}) GROUP BY ALL ORDER BY cost_usd DESC, agent, model
        """,
        args,
    )


@query
def telemetry_agents(p: dict[str, Any]) -> Rendered:
    """Distinct agents seen in spans and logs (every record of an agent is rolled up, or
    waits to be: the rollup's few rows are read instead of every record)."""
    return (
        f"""
        SELECT DISTINCT agent_name AS agent FROM (
            SELECT agent_name FROM agent_rollup
            UNION ALL SELECT agent_name FROM spans WHERE seq > {rollup.FOLDED}
            UNION ALL SELECT agent_name FROM logs WHERE seq > {rollup.FOLDED}
        ) WHERE agent_name IS NOT NULL ORDER BY 1
        """,
        [],
    )


@query
def telemetry_version(p: dict[str, Any]) -> Rendered:
    """Cheap change detector for live dashboards."""
    return (
        "SELECT (SELECT count(*) FROM spans) AS spans, (SELECT count(*) FROM logs) AS logs, "
        "(SELECT count(*) FROM metric_points) AS points",
        [],
    )


@query
def span_count_like(p: dict[str, Any]) -> Rendered:
    """How many spans have ``text`` in their name (benchmarks count their marker)."""
    return "SELECT count(*) AS n FROM spans WHERE name LIKE ?", [f"%{p['text']}%"]


@query
def timeline_sessions(p: dict[str, Any]) -> Rendered:
    """One segment per session (first to last record), the most recent first."""
    sql, args = _agent_records(p, "agent_name, session_id, operation, is_error")
    return (
        f"""
        WITH a AS ({sql})
        SELECT agent_name AS agent, session_id, min(t) AS start, max(t) AS "end",
               count(*) AS records, count(*) FILTER (WHERE is_error) AS errors
        FROM a WHERE session_id IS NOT NULL GROUP BY ALL
        ORDER BY "end" DESC {_page(p, 5000)}
        """,
        args,
    )


@query
def timeline_buckets(p: dict[str, Any]) -> Rendered:
    """Activity per agent, kind and time bucket: what the timeline draws at any scale."""
    sql, args = _agent_records(p, "agent_name, session_id, operation, is_error")
    seconds = max(int(p.get("bucket_s") or 60), 1)
    return (
        f"""
        WITH a AS ({sql})
        SELECT agent_name AS agent,
               CASE WHEN is_error THEN 'error'
                    WHEN operation = 'execute_tool' THEN 'tool call'
                    WHEN operation = 'user_prompt' THEN 'prompt'
                    WHEN operation IN ('chat', 'invoke_agent') THEN 'model call'
                    ELSE 'other' END AS kind,
               time_bucket(INTERVAL {seconds} SECOND, t) AS bucket, count(*) AS records
        FROM a GROUP BY ALL ORDER BY bucket, agent, kind
        """,
        args,
    )


@query
def metric_names(p: dict[str, Any]) -> Rendered:
    where, args = _where(p, "time")
    return (
        f"""
        SELECT name, min(type) AS type, min(unit) AS unit, count(*) AS points,
               list_sort(list_distinct(flatten(list(json_keys(attributes))))) AS attribute_keys
        FROM metric_points WHERE {where} GROUP BY name ORDER BY name
        """,
        args,
    )


def _metric_points(p: dict[str, Any]) -> Rendered:
    """Points of one metric with a group label and, for cumulative data, increments."""
    where, args = _where(p, "time")
    key = str(p.get("group_by") or "").replace('"', "")
    grp, grp_args = ("'(all)'", []) if not key else (
        "coalesce(json_extract_string(attributes, ?), '(none)')", ['$."' + key + '"'])
    return (
        f"""
        SELECT time, type, value, count, bucket_counts, explicit_bounds,
               {grp} AS grp,
               CASE WHEN temporality = 2 THEN
                   CASE WHEN value < lag(value) OVER w THEN value  -- a reset starts from 0
                        ELSE value - coalesce(lag(value) OVER w, 0) END
                    ELSE value END AS inc,
               CASE WHEN temporality = 2 AND lag(count) OVER w <= count THEN
                   list_transform(list_zip(bucket_counts, lag(bucket_counts) OVER w),
                                  lambda x: x[1] - coalesce(x[2], 0))
                    ELSE bucket_counts END AS inc_buckets
        FROM metric_points
        WHERE {where} AND name = ?
        WINDOW w AS (PARTITION BY CAST(attributes AS VARCHAR), resource, start_ns ORDER BY time)
        """,
        [*grp_args, *args, p["name"]],
    )


@query
def metric_series(p: dict[str, Any]) -> Rendered:
    """Per time bucket and group: increase and rate (counters), mean and max (gauges)."""
    sql, args = _metric_points(p)
    seconds = max(int(p.get("bucket_s") or 60), 1)
    return (
        f"""
        WITH m AS ({sql})
        SELECT time_bucket(INTERVAL {seconds} SECOND, time) AS bucket, grp,
               sum(inc) AS increase, sum(inc) / {seconds} AS rate_per_s,
               avg(value) AS mean, max(value) AS max_value, count(*) AS points
        FROM m GROUP BY ALL ORDER BY bucket, grp
        """,
        args,
    )


@query
def metric_histogram(p: dict[str, Any]) -> Rendered:
    """Histogram bucket counts summed per time bucket and group (for percentiles)."""
    sql, args = _metric_points(p)
    seconds = max(int(p.get("bucket_s") or 60), 1)
    return (
        f"""
        WITH m AS ({sql}),
        u AS (
            SELECT time_bucket(INTERVAL {seconds} SECOND, time) AS bucket, grp, explicit_bounds,
                   generate_subscripts(inc_buckets, 1) AS idx, unnest(inc_buckets) AS c
            FROM m WHERE inc_buckets IS NOT NULL
        )
        SELECT bucket, grp, any_value(explicit_bounds) AS bounds,
               list(c ORDER BY idx) AS counts
        FROM (SELECT bucket, grp, idx, any_value(explicit_bounds) AS explicit_bounds,
                     sum(c) AS c FROM u GROUP BY ALL)
        GROUP BY bucket, grp ORDER BY bucket, grp
        """,
        args,
    )


@query
def telemetry_services(p: dict[str, Any]) -> Rendered:
    """Distinct services (resource ``service.name``) in spans and logs."""
    return _distinct("service_name", "service")
