"""The agents' figures per hour, kept by ClickHouse itself (table ``wb_agent_hourly``).

The DuckDB store keeps the same rollup with its writer (:mod:`workbench.store.rollup`);
here two materialised views fill it as rows arrive in ``otel_traces`` and ``otel_logs``,
whoever inserts them (a stock Collector included), and an ``AggregatingMergeTree`` adds
rows of the same hour, service, agent, session and model up as it merges. Queries add
the whole hours inside a window from it and the partial hours at the window's ends from
the records (:func:`pieces`), which together are exactly the records in the window: the
answers equal the DuckDB store's, at a fraction of the rows read.
"""

from __future__ import annotations

from .agent_columns import PREFIX

TABLE = "wb_agent_hourly"
KEYS = ("service_name", "agent_name", "session_id", "model")
_INTS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens",
         "reasoning_tokens")
_COUNTS = ("records", "model_calls", "tool_calls", "tool_failures", "api_errors", "errors")

CREATE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    bucket DateTime,
    {', '.join(f'{k} Nullable(String)' for k in KEYS)},
    first_t SimpleAggregateFunction(min, DateTime64(6)),
    last_t SimpleAggregateFunction(max, DateTime64(6)),
    {', '.join(f'{c} SimpleAggregateFunction(sum, Int64)' for c in (*_INTS, *_COUNTS))},
    cost_usd SimpleAggregateFunction(sum, Float64)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, {', '.join(KEYS)})
SETTINGS allow_nullable_key = 1
"""


def aggregate(source: str, time: str, cols: dict[str, str], where: str = "1") -> str:
    """Rows of the rollup from ``source``'s records: ``time`` and the columns ``cols``
    names (field -> expression). Only records of an agent or a session count. (Beside
    the DuckDB rollup's figures, ``errors``: the timeline's per-session error count.)"""
    c = cols
    return f"""
    SELECT toStartOfHour({time}) AS bucket, {', '.join(f'{c[k]} AS {k}' for k in KEYS)},
           min(toDateTime64({time}, 6)) AS first_t, max(toDateTime64({time}, 6)) AS last_t,
           {', '.join(f'toInt64(ifNull(sum({c[k]}), 0)) AS {k}' for k in _INTS)},
           toInt64(count()) AS records,
           toInt64(countIf({c['operation']} = 'chat')) AS model_calls,
           toInt64(countIf({c['operation']} = 'execute_tool')) AS tool_calls,
           toInt64(countIf({c['operation']} = 'execute_tool' AND {c['is_error']}))
               AS tool_failures,
           toInt64(countIf({c['operation']} = 'api_error'
                           OR ({c['operation']} = 'chat' AND {c['is_error']}))) AS api_errors,
           toInt64(countIf({c['is_error']})) AS errors,
           ifNull(sum({c['cost_usd']}), 0) AS cost_usd
    FROM {source}
    WHERE ({c['agent_name']} IS NOT NULL OR {c['session_id']} IS NOT NULL) AND {where}
    GROUP BY bucket, {', '.join(KEYS)}"""


def _columns() -> dict[str, str]:
    names = ("agent_name", "session_id", "model", "operation", "is_error", "cost_usd", *_INTS)
    return {"service_name": "nullIf(toString(ServiceName), '')",
            **{n: PREFIX + n for n in names}}


_SOURCES = ("otel_traces", "otel_logs")


def parts(client) -> dict[str, list[str]]:
    """The exporter's tables' active parts now (before the views exist)."""
    out: dict[str, list[str]] = {s: [] for s in _SOURCES}
    for table, name in client.query(
            "SELECT table, name FROM system.parts WHERE database = currentDatabase() "
            "AND active AND table IN ('otel_traces', 'otel_logs')").result_rows:
        out[table].append(name)
    return out


def create(client, table: str = TABLE, ddl: str = CREATE, make=None) -> None:
    """Make the table and the views that fill it. When the table is new, roll up what
    the tables held before the views existed: the parts listed before making them, so
    that rows arriving meanwhile are counted by the views alone, never twice. (``table``,
    ``ddl``, ``make(source, where)``: another rollup of the same records.)"""
    make = make or (lambda source, where="1": aggregate(source, "Timestamp", _columns(),
                                                         where=where))
    existed = client.command(f"EXISTS TABLE {table}") == 1
    before = None if existed else parts(client)
    client.command(ddl)
    for source in _SOURCES:
        client.command(f"CREATE MATERIALIZED VIEW IF NOT EXISTS {table}_{source} TO {table} "
                       f"AS {make(source)}")
    for source, names in (before or {}).items():
        if names:
            listed = ", ".join("'" + n.replace("'", "") + "'" for n in names)
            client.command(f"INSERT INTO {table} " + make(source, f"_part IN ({listed})"))


# -- the timeline's: records per hour, agent and kind -----------------------------------------
#: The kind of activity a record is, as the timeline draws it (the DuckDB query's CASE).
def kind(is_error: str, operation: str) -> str:
    return (f"multiIf(ifNull({is_error}, false), 'error', {operation} = 'execute_tool', "
            f"'tool call', {operation} = 'user_prompt', 'prompt', "
            f"{operation} IN ('chat', 'invoke_agent'), 'model call', 'other')")


ACTIVITY = "wb_agent_activity_hourly"
ACTIVITY_CREATE = f"""
CREATE TABLE IF NOT EXISTS {ACTIVITY} (
    bucket DateTime, service_name Nullable(String), agent_name Nullable(String),
    kind LowCardinality(String), records SimpleAggregateFunction(sum, Int64)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, service_name, agent_name, kind)
SETTINGS allow_nullable_key = 1
"""


def activity(source: str, where: str = "1") -> str:
    """Rows of the activity rollup from ``source``'s records of an agent."""
    c = _columns()
    return f"""
    SELECT toStartOfHour(Timestamp) AS bucket, {c['service_name']} AS service_name,
           {c['agent_name']} AS agent_name, {kind(c['is_error'], c['operation'])} AS kind,
           toInt64(count()) AS records
    FROM {source} WHERE {c['agent_name']} IS NOT NULL AND {where}
    GROUP BY bucket, service_name, agent_name, kind"""


def create_activity(client) -> None:
    create(client, ACTIVITY, ACTIVITY_CREATE, activity)
