"""The Collector's tables in the workbench's shape: views ``spans``, ``logs``,
``span_events`` and ``metric_points`` with the DuckDB store's column names and meanings, so
that the ClickHouse dialect of each named query reads like its DuckDB one.

Views cost nothing to store; the agent columns they show are the materialised ones
(:mod:`.agent_columns`), stored once at insert. Each has ``_ts``, the table's own time
column: a window filters on it, so that ClickHouse prunes days and granules by it (a
filter on a converted column reads every row).
"""

from __future__ import annotations

from ...ingest import genai, otlp
from .agent_columns import PREFIX, _first, _lit
from .otel_ddl import METRIC_TABLES

_AGENT = ("agent_name", "session_id", "prompt_id", "operation", "provider", "model",
          "input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens",
          "reasoning_tokens", "cost_usd", "tool_name", "is_error")
_agent = ", ".join(f"{PREFIX}{c} AS {c}" for c in _AGENT)
_KINDS = "['SPAN_KIND_UNSPECIFIED', 'SPAN_KIND_INTERNAL', 'SPAN_KIND_SERVER', " \
         "'SPAN_KIND_CLIENT', 'SPAN_KIND_PRODUCER', 'SPAN_KIND_CONSUMER']"
_STATUS = "['STATUS_CODE_UNSET', 'STATUS_CODE_OK', 'STATUS_CODE_ERROR']"


def _json(column: str) -> str:
    return f"if(empty({column}), NULL, toJSONString({column}))"


SPANS = f"""
CREATE OR REPLACE VIEW spans AS SELECT
    TraceId AS trace_id, SpanId AS span_id, nullIf(ParentSpanId, '') AS parent_span_id,
    toString(SpanName) AS name, toInt8(greatest(indexOf({_KINDS}, SpanKind) - 1, 0)) AS kind,
    toDateTime64(Timestamp, 6) AS start_time, toUnixTimestamp64Nano(Timestamp) AS start_ns,
    toInt64(start_ns + Duration) AS end_ns, Duration / 1e6 AS duration_ms,
    toInt8(greatest(indexOf({_STATUS}, StatusCode) - 1, 0)) AS status_code,
    nullIf(StatusMessage, '') AS status_message, nullIf(toString(ServiceName), '') AS service_name,
    nullIf(ScopeName, '') AS scope_name, nullIf(ScopeVersion, '') AS scope_version,
    {_json("ResourceAttributes")} AS resource, {_json("SpanAttributes")} AS attributes,
    toInt32(length(Events.Name)) AS events, toInt32(length(Links.TraceId)) AS links, {_agent},
    Timestamp AS _ts, SpanAttributes AS _attributes
FROM otel_traces
"""

SPAN_EVENTS = f"""
CREATE OR REPLACE VIEW span_events AS SELECT
    TraceId AS trace_id, SpanId AS span_id, toDateTime64(e.1, 6) AS time,
    toUnixTimestamp64Nano(e.1) AS time_ns, toString(e.2) AS name, {_json("e.3")} AS attributes
FROM otel_traces ARRAY JOIN arrayZip(Events.Timestamp, Events.Name, Events.Attributes) AS e
"""

LOGS = f"""
CREATE OR REPLACE VIEW logs AS SELECT
    toDateTime64(Timestamp, 6) AS time, toUnixTimestamp64Nano(Timestamp) AS time_ns,
    toInt8(SeverityNumber) AS severity_number, nullIf(toString(SeverityText), '') AS severity_text,
    Body AS body, {PREFIX}event_name AS event_name, nullIf(TraceId, '') AS trace_id,
    nullIf(SpanId, '') AS span_id, nullIf(toString(ServiceName), '') AS service_name,
    nullIf(ScopeName, '') AS scope_name, {_json("ResourceAttributes")} AS resource,
    {_json("LogAttributes")} AS attributes, {PREFIX}duration_ms AS duration_ms,
    {PREFIX}decision AS decision, {_agent}, Timestamp AS _ts
FROM otel_logs
"""


def _exponential() -> tuple[str, str]:
    """An exponential histogram's counts on the one grid every histogram is read on
    (:func:`workbench.ingest.otlp.explicit_buckets`, the same arithmetic): source bucket
    ``k`` goes to the grid bucket holding its upper end; zero and negatives to the first."""
    low, high, scale = otlp._EXP_LOW, otlp._EXP_HIGH, otlp._EXP_SCALE
    size = len(otlp.EXP_BOUNDS) + 1
    grid = (f"least(greatest(toInt64(ceil((PositiveOffset + k) * pow(2, {scale} - Scale))), "
            f"{low}), {high + 1}) - ({low}) + 1")
    counts = (f"arrayMap(i -> toInt64(if(i = 0, ZeroCount + arraySum(NegativeBucketCounts), 0)"
              f" + arraySum(arrayMap((n, k) -> if({grid} = i, n, 0), PositiveBucketCounts, "
              f"arrayEnumerate(PositiveBucketCounts)))), range({size}))")
    bounds = "[" + ", ".join(repr(b) for b in otlp.EXP_BOUNDS) + "]"
    return counts, f"CAST({bounds} AS Array(Float64))"


def _metric_select(kind: str) -> str:
    table = METRIC_TABLES[kind]
    value = "Value" if kind in ("gauge", "sum") else "CAST(NULL AS Nullable(Float64))"
    count = "NULL" if kind in ("gauge", "sum") else "toInt64(Count)"
    total = "NULL" if kind in ("gauge", "sum") else "Sum"
    low_high = ("Min", "Max") if kind in ("histogram", "exponential_histogram") else ("NULL",
                                                                                      "NULL")
    buckets = ("CAST(BucketCounts AS Array(Int64))", "ExplicitBounds") if kind == "histogram" \
        else _exponential() if kind == "exponential_histogram" \
        else ("CAST([] AS Array(Int64))", "CAST([] AS Array(Float64))")
    temporality = "toInt8(AggregationTemporality)" if kind in (
        "sum", "histogram", "exponential_histogram") else "toInt8(0)"
    monotonic = "IsMonotonic" if kind == "sum" else "CAST(NULL AS Nullable(Bool))"
    agent = (f"if(startsWith(MetricName, {_lit(genai.AGENT_PREFIXES[0])})"
             + "".join(f" OR startsWith(MetricName, {_lit(p)})" for p in genai.AGENT_PREFIXES[1:])
             + ", nullIf(toString(ServiceName), ''), NULL)")
    return f"""
    SELECT MetricName AS name, nullIf(MetricDescription, '') AS description,
           nullIf(MetricUnit, '') AS unit, {_lit(kind)} AS type, {temporality} AS temporality,
           {monotonic} AS monotonic, toDateTime64(TimeUnix, 6) AS time,
           toUnixTimestamp64Nano(TimeUnix) AS time_ns,
           toUnixTimestamp64Nano(StartTimeUnix) AS start_ns, {value} AS value,
           {count} AS count, {total} AS sum, {low_high[0]} AS min, {low_high[1]} AS max,
           {buckets[0]} AS bucket_counts, {buckets[1]} AS explicit_bounds,
           nullIf(toString(ServiceName), '') AS service_name, nullIf(ScopeName, '') AS scope_name,
           {_json("ResourceAttributes")} AS resource, {_json("Attributes")} AS attributes,
           {agent} AS agent_name,
           {_first("Attributes", ("session.id", "gen_ai.conversation.id"))} AS session_id,
           {_first("Attributes", ("model", "gen_ai.request.model", "gen_ai.response.model"))}
               AS model,
           {_first("Attributes", ("type", "gen_ai.token.type"))} AS kind,
           Attributes AS attribute_map, TimeUnix AS _ts
    FROM {table}"""


METRIC_POINTS = ("CREATE OR REPLACE VIEW metric_points AS"
                 + "\nUNION ALL".join(_metric_select(k) for k in METRIC_TABLES))

STATEMENTS = [SPANS, SPAN_EVENTS, LOGS, METRIC_POINTS]
