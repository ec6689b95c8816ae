"""The ClickHouse dialect of the named telemetry queries.

Each function here has the name, parameters and answer (columns, meaning, order) of the
DuckDB query of the same name in :mod:`workbench.store.telemetry_queries`; the parity
suite (``tests/test_clickhouse_parity.py``) runs both over the same data and compares.
They read the workbench-shaped views of :mod:`.views`. Values are bound server-side
(``{name:Type}``), never spliced.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..queries import Registry, _page, paging
from . import rollup

Rendered = tuple[str, dict[str, Any]]
#: ClickHouse's dialect of the named queries it answers (the others: the control file).
QUERIES = Registry()
query = QUERIES.query
render = QUERIES.render


class _Args(dict):
    """Bound values, each added by the placeholder it gets."""

    def __call__(self, value: Any, kind: str = "String") -> str:
        name = f"p{len(self)}"
        self[name] = value
        return f"{{{name}:{kind}}}"

    def time(self, value: Any) -> str:
        """A time as a DateTime64(6) value: to the microsecond, UTC."""
        if hasattr(value, "as_py"):  # (an Arrow scalar)
            value = value.cast("int64").as_py() if "ns" in str(value.type) else value.as_py()
            value = pd.Timestamp(value, unit="ns") if isinstance(value, int) else value
        ts = pd.Timestamp(value).floor("us")
        if ts.tzinfo is not None:
            ts = ts.tz_convert("UTC").tz_localize(None)
        return self(ts.to_pydatetime(), "DateTime64(6)")


_COLUMNS = (("service", "service_name"), ("agent", "agent_name"), ("session", "session_id"),
            ("model", "model"))


def filters(p: dict[str, Any], a: _Args, columns: tuple[tuple[str, str], ...],
            time_col: str) -> str:
    """``column = value`` for each ``(param, column)`` that ``p`` sets, and the
    ``since``/``until`` window on ``time_col`` (the DuckDB ``queries.filter_clause``)."""
    clauses = ["1"]
    for key, col in columns:
        if p.get(key):
            clauses.append(f"{col} = {a(str(p[key]))}")
    if p.get("since") is not None:
        clauses.append(f"{time_col} >= {a.time(p['since'])}")
    if p.get("until") is not None:
        clauses.append(f"{time_col} < {a.time(p['until'])}")
    return " AND ".join(clauses)


def _where(p: dict[str, Any], a: _Args, time_col: str) -> str:
    # (the window on the table's own time column, which the views name _ts: the same rows
    # as on time_col, whose microseconds truncate it, since a bound has no finer digits)
    return filters(p, a, _COLUMNS, "_ts")


def one_of(table: str, key: str, time: str, value: str, alias: str = "") -> str:
    """The rows of one run or report, ``key = value`` (``value``: SQL, a bound value or a
    subquery), found through their sort key's head: the project and ``time`` that
    ``table`` gives that key."""
    dot = f"{alias}." if alias else ""
    return (f"({dot}project, {dot}{time}) IN (SELECT project, {time} FROM {table} "
            f"WHERE {key} = {value}) AND {dot}{key} = {value}")


def _like(a: _Args, text: str) -> str:
    return a(f"%{text}%")


#: Characters of the attributes' JSON text outside its keys and values.
_JSON_PUNCTUATION = set('"\\:,{}[] ') | {chr(c) for c in range(32)}


def _span_where(p: dict[str, Any], a: _Args) -> str:
    where = _where(p, a, "start_time")
    if p.get("text"):
        pattern = _like(a, p["text"])
        if _JSON_PUNCTUATION.isdisjoint(str(p["text"])):
            # A text without the JSON's punctuation is in its text only inside one key or
            # value: those are searched, not the JSON made of every row (2.5x faster).
            attrs = (f"arrayExists(x -> x ILIKE {pattern}, mapValues(_attributes)) OR "
                     f"arrayExists(x -> x ILIKE {pattern}, mapKeys(_attributes))")
        else:
            attrs = f"ifNull(attributes, '') ILIKE {pattern}"
        where += f" AND (name ILIKE {pattern} OR {attrs})"
    if p.get("errors_only"):
        where += " AND (status_code = 2 OR is_error)"
    return where


@query
def telemetry_counts(p: dict[str, Any]) -> Rendered:
    a = _Args()
    if p.get("service"):
        svc = a(str(p["service"]))
        return (f"""
            SELECT toInt64((SELECT count() FROM otel_traces WHERE ServiceName = {svc})) AS spans,
                   toInt64((SELECT sum(length(Events.Name)) FROM otel_traces
                            WHERE ServiceName = {svc})) AS span_events,
                   toInt64((SELECT count() FROM otel_logs WHERE ServiceName = {svc})) AS logs,
                   toInt64((SELECT count() FROM metric_points WHERE service_name = {svc}))
                       AS metric_points""", a)
    return ("""
        SELECT toInt64((SELECT count() FROM otel_traces)) AS spans,
               toInt64((SELECT sum(length(Events.Name)) FROM otel_traces)) AS span_events,
               toInt64((SELECT count() FROM otel_logs)) AS logs,
               toInt64((SELECT count() FROM metric_points)) AS metric_points""", a)


def _newest(p: dict[str, Any], view: str, where, select: str, order: str):
    """The newest rows of ``view`` matching ``where(args)`` (a procedure): the time the
    page's last row has comes first, from the time column alone; then only the rows from
    that time on are read whole. (Sorting every matching row read whole, as the DuckDB
    query does, is seconds at 100M spans.)"""
    page = _page(p, 200)
    want = sum(paging(p, 200))  # (LIMIT n OFFSET m: the newest n + m)

    def run(ask) -> Any:
        a = _Args()
        edge = ask(f"SELECT _ts FROM {view} WHERE {where(a)} ORDER BY _ts DESC "
                   f"LIMIT 1 OFFSET {want - 1}", a)
        a = _Args()
        # (from the start of the edge's microsecond: the page orders by the microsecond)
        since = "" if not edge.num_rows else f" AND _ts >= {a.time(edge.column('_ts')[0])}"
        return ask(f"SELECT {select} FROM {view} WHERE {where(a)}{since} "
                   f"ORDER BY {order} {page}", a)

    return run, {}


@query
def spans_search(p: dict[str, Any]) -> Rendered:
    def where(a: _Args) -> str:
        out = _span_where(p, a)
        if p.get("min_ms") is not None:
            out += f" AND duration_ms >= {a(float(p['min_ms']), 'Float64')}"
        if p.get("trace_id"):
            out += f" AND trace_id = {a(str(p['trace_id']))}"
        return out

    p = _checked(p)
    return _newest(p, "spans", where, """start_time, trace_id, span_id, parent_span_id,
        service_name, name, duration_ms, status_code, agent_name, session_id, operation,
        model, tool_name, input_tokens, output_tokens, cost_usd, attributes""",
                   "start_time DESC, span_id")


@query
def trace_spans(p: dict[str, Any]) -> Rendered:
    a = _Args()
    tid = a(str(p["trace_id"]))
    # The exporter's lookup table says which days the trace lies in: read only those.
    return (f"""
        SELECT span_id, parent_span_id, name, service_name, kind, start_ns, end_ns,
               duration_ms, status_code, status_message, operation, model, tool_name,
               input_tokens, output_tokens, cost_usd, attributes, events
        FROM spans WHERE trace_id = {tid}
          AND start_time >= (SELECT min(Start) FROM otel_traces_trace_id_ts WHERE TraceId = {tid})
          AND start_time <= (SELECT max(End) FROM otel_traces_trace_id_ts WHERE TraceId = {tid})
                            + INTERVAL 1 SECOND
        ORDER BY start_ns, span_id""", a)


@query
def logs_search(p: dict[str, Any]) -> Rendered:
    def where(a: _Args) -> str:
        out = _where(p, a, "time")
        if p.get("text"):
            pattern = _like(a, p["text"])
            out += (f" AND (body ILIKE {pattern} OR ifNull(event_name, '') ILIKE {pattern} "
                    f"OR ifNull(attributes, '') ILIKE {pattern})")
        if p.get("min_severity"):
            out += f" AND severity_number >= {a(int(p['min_severity']), 'Int64')}"
        return out

    p = _checked(p)
    return _newest(p, "logs", where, """time, severity_text, severity_number, service_name,
        event_name, body, session_id, trace_id, span_id, attributes""",
                   "time DESC, event_name, body")


#: A record's columns the agent figures come from.
_RECORD = ("service_name, agent_name, session_id, model, operation, is_error, input_tokens, "
           "output_tokens, cache_read_tokens, cache_creation_tokens, reasoning_tokens, cost_usd")


def _records(p: dict[str, Any], a: _Args, columns: str = _RECORD,
             present: str | None = None, also: str = "") -> str:
    """Log records and spans as one set: ``t`` and ``columns``, filtered alike (and by
    ``also``, on ``_ts``: inside each table, where ClickHouse can prune by it)."""
    extra = (f" AND {present} IS NOT NULL" if present else "") + (f" AND {also}" if also else "")
    return f"""
        SELECT time AS t, {columns} FROM logs WHERE {_where(p, a, 'time')}{extra}
        UNION ALL
        SELECT start_time AS t, {columns} FROM spans WHERE {_where(p, a, 'start_time')}{extra}"""


def _hours(p: dict[str, Any], a: _Args) -> tuple[list[str], str]:
    """``(conditions on a rollup's hour, condition on a record's _ts)``: the whole hours
    inside the window, and the records of the partial hours at its ends ('' if none)."""
    whole, edges = [], []
    if p.get("since") is not None:
        since = a.time(p["since"])
        first = (f"if(toStartOfHour({since}) = {since}, toDateTime64({since}, 6), "
                 f"toDateTime64(toStartOfHour({since}) + INTERVAL 1 HOUR, 6))")
        whole.append(f"bucket >= {first}")
        edges.append(f"_ts < {first}")
    if p.get("until") is not None:
        hour = f"toStartOfHour({a.time(p['until'])})"
        whole.append(f"bucket < {hour}")
        edges.append(f"_ts >= {hour}")
    return whole or ["1"], f"({' OR '.join(edges)})" if edges else ""


def _pieces(p: dict[str, Any], a: _Args, present: str) -> str:
    """The agents' figures in the window as rows of the hourly rollup to add up, where
    ``present`` is not null: the rollup's rows of the whole hours inside the window and
    the records of the partial hours at its ends, rolled up alike (the DuckDB store's
    ``telemetry_queries._pieces``; :mod:`.rollup`)."""
    keys = [f"{col} = {a(str(p[key]))}" for key, col in _COLUMNS if p.get(key)]
    keys.append(f"{present} IS NOT NULL")
    hours, edge = _hours(p, a)
    whole = [*keys, *hours]
    edges = [edge] if edge else []
    sums = ", ".join(f"sum({c}) AS {c}" for c in (
        "input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens",
        "reasoning_tokens", "records", "model_calls", "tool_calls", "tool_failures",
        "api_errors", "errors", "cost_usd"))
    keys_sql = ", ".join(rollup.KEYS)
    # The rollup's rows as they are, not merged by hour first: every query here adds
    # them up by coarser keys (sums, min, max), which merging first only made slower
    # (2.5M rows grouped twice at 100M spans).
    plain = ", ".join(c.split(" AS ")[1] for c in sums.split(", "))
    rolled = (f"SELECT bucket, {keys_sql}, first_t, last_t, {plain} "
              f"FROM {rollup.TABLE} WHERE {' AND '.join(whole)}")
    if not edges:
        return rolled
    names = ("service_name", "agent_name", "session_id", "model", "operation", "is_error",
             "cost_usd", "input_tokens", "output_tokens", "cache_read_tokens",
             "cache_creation_tokens", "reasoning_tokens")
    edge_records = _records(p, a, present=present, also=edges[0])
    raw = rollup.aggregate(f"({edge_records})", "t", {n: n for n in names})
    return f"{rolled}\n        UNION ALL {raw}"


_SESSION_SUMS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens",
                 "cost_usd", "model_calls", "tool_calls", "tool_failures", "api_errors")


@query
def agent_totals(p: dict[str, Any]) -> Rendered:
    a = _Args()
    per_session = ", ".join(f"sum({c}) AS {c}" for c in _SESSION_SUMS)
    sums = ", ".join(f"sum({c}) AS {c}" if c == "cost_usd" else f"toInt64(sum({c})) AS {c}"
                     for c in _SESSION_SUMS)
    return (f"""
        WITH s AS (SELECT min(agent_name) AS agent, {per_session}
                   FROM ({_pieces(p, a, 'session_id')}) GROUP BY session_id)
        SELECT agent, toInt64(count()) AS sessions, {sums} FROM s
        GROUP BY agent ORDER BY agent ASC NULLS LAST""", a)


@query
def agent_sessions(p: dict[str, Any]) -> Rendered:
    a = _Args()
    pieces = _pieces(p, a, "session_id")
    where_m = _where(p, a, "time")
    counts = ", ".join(f"toInt64(sum({c})) AS {c}" for c in (
        "model_calls", "tool_calls", "tool_failures", "api_errors"))
    return (f"""
        WITH counters AS (
            SELECT session_id,
                   toInt64(sumIfOrNull(value, name LIKE '%lines_of_code%')) AS lines_changed,
                   toInt64(sumIfOrNull(value, name LIKE '%commit.count')) AS commits,
                   toInt64(sumIfOrNull(value, name LIKE '%pull_request.count')) AS pull_requests
            FROM metric_points WHERE {where_m} AND session_id IS NOT NULL GROUP BY session_id
        )
        SELECT min(ev.agent_name) AS agent, ev.session_id AS session_id,
               min(ev.first_t) AS started, max(ev.last_t) AS last_seen,
               toInt64(sum(ev.input_tokens)) AS input_tokens,
               toInt64(sum(ev.output_tokens)) AS output_tokens,
               toInt64(sum(ev.cache_read_tokens)) AS cache_read_tokens,
               toInt64(sum(ev.cache_creation_tokens)) AS cache_creation_tokens,
               sum(ev.cost_usd) AS cost_usd,
               nullIf(arrayStringConcat(arraySort(groupUniqArray(ev.model)), ', '), '') AS models,
               {counts.replace('sum(', 'sum(ev.')},
               any(c.lines_changed) AS lines_changed, any(c.commits) AS commits,
               any(c.pull_requests) AS pull_requests
        FROM ({pieces}) AS ev LEFT JOIN counters AS c ON ev.session_id = c.session_id
        GROUP BY ev.session_id ORDER BY last_seen DESC, session_id {_page(p, 500)}""", a)


def _checked(p: dict[str, Any]) -> dict[str, Any]:
    """A procedure's numbers checked before it runs (a bad one is the caller's 400)."""
    p = dict(p)
    if p.get("min_ms") is not None:
        p["min_ms"] = float(p["min_ms"])
    if p.get("min_severity"):
        p["min_severity"] = int(p["min_severity"])
    paging(p)
    return p


@query
def trace_list(p: dict[str, Any]) -> Rendered:
    """The newest traces with a span matching the filters. A procedure of two or three
    statements (:func:`_trace_list`): grouping every span by trace is what a page cannot
    wait for at 100M spans."""
    return _trace_list(_checked(p)), {}


def _trace_sql(p: dict[str, Any], a: _Args, among: str = "", since: str = "") -> str:
    where = _span_where(p, a)
    having = []
    if p.get("min_ms") is not None:
        having.append(f"(max(end_ns) - min(start_ns)) / 1e6 >= {a(float(p['min_ms']), 'Float64')}")
    if since:
        having.append(f"started >= {since}")  # (a trace seen in a later block alone)
    having = f"HAVING {' AND '.join(having)}" if having else ""
    return f"""
        SELECT trace_id, min(start_time) AS started,
               argMin(name, start_ns) AS root, argMin(service_name, start_ns) AS service,
               (max(end_ns) - min(start_ns)) / 1e6 AS duration_ms, toInt64(count()) AS spans,
               toInt64(countIf(status_code = 2 OR is_error)) AS errors,
               min(agent_name) AS agent, min(session_id) AS session_id,
               sum(cost_usd) AS cost_usd
        FROM spans WHERE trace_id IN (SELECT trace_id FROM spans WHERE {where}{among}){among}
        GROUP BY trace_id {having}
        ORDER BY started DESC, trace_id"""


def _trace_list(p: dict[str, Any]):
    """Which traces can be among the page's newest at all comes first, from the
    exporter's trace-id lookup (a trace's first and last second): the newest of those
    that overlap the window. Their spans alone are then grouped, exactly as the DuckDB
    query groups all. When too few of them match in the end (a text or a duration the
    lookup cannot judge), the query runs over every span instead: the same answer,
    later."""
    page = _page(p, 200)
    limit, offset = paging(p, 200)
    want = limit + offset  # (LIMIT n OFFSET m: the newest n + m)

    def run(ask) -> Any:
        a = _Args()
        overlap = ["1"]
        if p.get("since") is not None:
            overlap.append(f"max(End) >= toDateTime({a.time(p['since'])})")
        if p.get("until") is not None:
            overlap.append(f"min(Start) <= toDateTime({a.time(p['until'])})")
        newest = ask(f"""
            SELECT min(Start) AS s FROM otel_traces_trace_id_ts GROUP BY TraceId
            HAVING {' AND '.join(overlap)} ORDER BY s DESC LIMIT {want * 64}""", a)
        starts = newest.column("s").to_pylist()
        complete = len(starts) < want * 64  # (the list holds every overlapping trace)
        # The newest `want` traces first; when too few of them match (errors only, one
        # agent), the newest 4, 16, 64 times as many; all of them when that is all.
        for k in (want, want * 4, want * 16, want * 64):
            k = min(k, len(starts))
            a = _Args()
            if k == 0:  # (no trace overlaps the window: no span can match)
                return ask(_trace_sql(p, a, " AND 0"), a)
            since = a(starts[k - 1], "DateTime")
            # (a trace's rows in the lookup are one per block it arrived in: only a trace
            # whose first block is after the cut has every span after it)
            among = (f" AND trace_id IN (SELECT TraceId FROM otel_traces_trace_id_ts "
                     f"WHERE TraceId IN (SELECT TraceId FROM otel_traces_trace_id_ts "
                     f"WHERE Start >= {since}) GROUP BY TraceId HAVING min(Start) >= {since})"
                     f" AND _ts >= {since}")
            found = ask(_trace_sql(p, a, among, since), a)
            if found.num_rows >= want or (complete and k == len(starts)):
                return found.slice(offset, limit)
            if k == len(starts):
                break
        a = _Args()
        return ask(_trace_sql(p, a) + f" {page}", a)

    return run


@query
def token_usage(p: dict[str, Any]) -> Rendered:
    a = _Args()
    sums = ", ".join(f"toInt64(sum({c})) AS {alias}" for c, alias in (
        ("input_tokens", "input"), ("output_tokens", "output"),
        ("cache_read_tokens", "cache_read"), ("cache_creation_tokens", "cache_creation"),
        ("reasoning_tokens", "reasoning")))
    return (f"""
        SELECT agent_name AS agent, ifNull(model, '(unknown)') AS model, {sums},
               sum(cost_usd) AS cost_usd, toInt64(sum(records)) AS records
        FROM ({_pieces(p, a, 'agent_name')}) GROUP BY agent, model
        ORDER BY cost_usd DESC, agent, model""", a)


def _distinct(column: str, alias: str) -> Rendered:
    return (f"SELECT DISTINCT {column} AS {alias} FROM (SELECT {column} FROM spans "
            f"UNION ALL SELECT {column} FROM logs) WHERE {column} IS NOT NULL ORDER BY 1",
            _Args())


@query
def telemetry_agents(p: dict[str, Any]) -> Rendered:
    # (every record of an agent is in the rollup: its few rows, not every record)
    return (f"SELECT DISTINCT agent_name AS agent FROM {rollup.TABLE} "
            "WHERE agent_name IS NOT NULL ORDER BY 1", _Args())


@query
def telemetry_services(p: dict[str, Any]) -> Rendered:
    return _distinct("service_name", "service")


@query
def telemetry_version(p: dict[str, Any]) -> Rendered:
    return ("SELECT toInt64((SELECT count() FROM otel_traces)) AS spans, "
            "toInt64((SELECT count() FROM otel_logs)) AS logs, "
            "toInt64((SELECT count() FROM metric_points)) AS points", _Args())


@query
def span_count_like(p: dict[str, Any]) -> Rendered:
    a = _Args()
    return f"SELECT toInt64(count()) AS n FROM spans WHERE name LIKE {_like(a, p['text'])}", a


_ACTIVITY = "agent_name, session_id, operation, is_error"


@query
def timeline_sessions(p: dict[str, Any]) -> Rendered:
    a = _Args()
    return (f"""
        SELECT agent_name AS agent, session_id, min(first_t) AS start, max(last_t) AS end,
               toInt64(sum(records)) AS records, toInt64(sum(errors)) AS errors
        FROM ({_pieces(p, a, 'agent_name')}) WHERE session_id IS NOT NULL
        GROUP BY agent, session_id ORDER BY end DESC {_page(p, 5000)}""", a)


#: Where DuckDB's ``time_bucket`` counts intervals of days, hours, minutes and seconds
#: from (ClickHouse's ``toStartOfInterval``: from 1970, the same only for whole hours).
_ORIGIN = "toDateTime64('2000-01-03 00:00:00', 6, 'UTC')"


def _bucket(column: str, seconds: int) -> str:
    return (f"toDateTime64(toStartOfInterval({column}, INTERVAL {seconds} SECOND, {_ORIGIN}), "
            "6)")


def _seconds(p: dict[str, Any]) -> int:
    return max(int(p.get("bucket_s") or 60), 1)


@query
def timeline_buckets(p: dict[str, Any]) -> Rendered:
    a = _Args()
    seconds = _seconds(p)
    kind = rollup.kind("is_error", "operation")
    if seconds % 3600 or p.get("session") or p.get("model"):
        # (slots that split hours, or filters the activity rollup has no key for: every
        # record in the window)
        return (f"""
            SELECT agent_name AS agent, {kind} AS kind, {_bucket('t', seconds)} AS bucket,
                   toInt64(count()) AS records
            FROM ({_records(p, a, _ACTIVITY, present='agent_name')})
            GROUP BY agent, kind, bucket ORDER BY bucket, agent, kind""", a)
    # Whole-hour slots: the whole hours from the activity rollup, the partial hours at the
    # window's ends from the records (as _pieces does for the figures).
    whole, edges = _hours(p, a)
    whole += [f"{col} = {a(str(p[key]))}" for key, col in _COLUMNS[:2] if p.get(key)]
    rolled = (f"SELECT toDateTime64(bucket, 6) AS t, agent_name, kind, records "
              f"FROM {rollup.ACTIVITY} WHERE {' AND '.join(whole)}")
    if edges:
        rolled += (f" UNION ALL SELECT t, agent_name, {kind} AS kind, 1 AS records FROM "
                   f"({_records(p, a, _ACTIVITY, present='agent_name', also=edges)})")
    return (f"""
        SELECT agent_name AS agent, kind, {_bucket('t', seconds)} AS bucket,
               toInt64(sum(records)) AS records
        FROM ({rolled}) GROUP BY agent, kind, bucket ORDER BY bucket, agent, kind""", a)


@query
def metric_names(p: dict[str, Any]) -> Rendered:
    a = _Args()
    return (f"""
        SELECT name, min(type) AS type, min(unit) AS unit, toInt64(count()) AS points,
               arraySort(groupUniqArrayArray(mapKeys(attribute_map))) AS attribute_keys
        FROM metric_points WHERE {_where(p, a, 'time')} GROUP BY name ORDER BY name""", a)


def _metric_points(p: dict[str, Any], a: _Args) -> str:
    key = str(p.get("group_by") or "").replace('"', "")
    grp = "'(all)'" if not key else (
        f"if(mapContains(attribute_map, {a(key)}), attribute_map[{a(key)}], '(none)')")
    window = ("(PARTITION BY attributes, resource, start_ns ORDER BY time "
              "ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)")
    where = _where(p, a, "time")
    name = a(str(p["name"]))
    return f"""
        SELECT time, type, value, count, bucket_counts, explicit_bounds, {grp} AS grp,
               lagInFrame(toNullable(value)) OVER {window} AS prev_value,
               lagInFrame(toNullable(count)) OVER {window} AS prev_count,
               lagInFrame(bucket_counts) OVER {window} AS prev_buckets,
               temporality,
               if(temporality = 2,
                  if(ifNull(value < prev_value, false), value, value - ifNull(prev_value, 0)),
                  value) AS inc,
               if(temporality = 2 AND ifNull(prev_count <= count, false),
                  arrayMap((c, i) -> c - if(i <= length(prev_buckets), prev_buckets[i], 0),
                           bucket_counts, arrayEnumerate(bucket_counts)),
                  bucket_counts) AS inc_buckets
        FROM metric_points WHERE {where} AND name = {name}"""


@query
def metric_series(p: dict[str, Any]) -> Rendered:
    a = _Args()
    seconds = _seconds(p)
    return (f"""
        SELECT {_bucket('time', seconds)} AS bucket,
               grp, sum(inc) AS increase, sum(inc) / {seconds} AS rate_per_s,
               avg(value) AS mean, max(value) AS max_value, toInt64(count()) AS points
        FROM ({_metric_points(p, a)}) GROUP BY bucket, grp ORDER BY bucket, grp""", a)


@query
def metric_histogram(p: dict[str, Any]) -> Rendered:
    a = _Args()
    seconds = _seconds(p)
    return (f"""
        SELECT bucket, grp, any(explicit_bounds) AS bounds,
               arrayMap(x -> x.2, arraySort(groupArray((idx, c)))) AS counts
        FROM (
            SELECT {_bucket('time', seconds)} AS bucket,
                   grp, idx,
                   any(explicit_bounds) AS explicit_bounds, sum(c) AS c
            FROM ({_metric_points(p, a)})
            ARRAY JOIN inc_buckets AS c, arrayEnumerate(inc_buckets) AS idx
            WHERE notEmpty(inc_buckets)
            GROUP BY bucket, grp, idx
        )
        GROUP BY bucket, grp ORDER BY bucket, grp""", a)


def shaped(table) -> pd.DataFrame:
    """An Arrow answer as the DuckDB store's frame: timestamps without a zone, whole
    numbers with NULLs as pandas' nullable integers (else numpy ones)."""
    import pyarrow as pa
    import pyarrow.types as pt

    df = table.to_pandas()
    for field in table.schema:
        col, kind = field.name, field.type
        if (pt.is_string(kind) or pt.is_large_string(kind)) and len(df) and \
                table.column(col).null_count == len(df):
            df[col] = pd.Series([None] * len(df), dtype=object, index=df.index)
            continue  # (all NULL: DuckDB's frame has objects there, not strings)
        if pt.is_timestamp(kind) and kind.tz is not None:
            df[col] = df[col].dt.tz_convert("UTC").dt.tz_localize(None)
        elif pt.is_integer(kind) and table.column(col).null_count:
            df[col] = pd.array(table.column(col).to_pylist(),
                               dtype=pd.api.types.pandas_dtype(kind.to_pandas_dtype()).name
                               .capitalize().replace("Uint", "UInt"))
        elif kind == pa.bool_() and table.column(col).null_count == 0:
            df[col] = df[col].astype(bool)
    return df
