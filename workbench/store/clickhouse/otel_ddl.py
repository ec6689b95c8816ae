"""The tables the OpenTelemetry Collector's ClickHouse exporter writes, in its layout.

Column names, types, order and sort keys follow the exporter's own DDL
(opentelemetry-collector-contrib, ``exporter/clickhouseexporter/internal/sqltemplates``,
default table names): a Collector pointed at the same database with ``create_schema``
on or off writes rows the workbench reads, and the workbench's own OTLP receivers write
the same rows. The statements are ``IF NOT EXISTS``: whichever comes first creates them.

What the workbench adds is only additive (:mod:`.agent_columns`: materialised columns,
which an ``INSERT`` naming the exporter's columns fills by itself).
"""

from __future__ import annotations

_MAP = "Map(LowCardinality(String), String)"
_Z = "CODEC(ZSTD(1))"
_KEEP = "SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1"


def _bloom(column: str, name: str, fpr: str = "0.01") -> str:
    return f"INDEX {name} {column} TYPE bloom_filter({fpr}) GRANULARITY 1"


TRACES = f"""
CREATE TABLE IF NOT EXISTS otel_traces (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String {_Z}, SpanId String {_Z}, ParentSpanId String {_Z},
    TraceState String {_Z},
    SpanName LowCardinality(String) {_Z}, SpanKind LowCardinality(String) {_Z},
    ServiceName LowCardinality(String) {_Z},
    ResourceAttributes {_MAP} {_Z},
    ScopeName String {_Z}, ScopeVersion String {_Z},
    SpanAttributes {_MAP} {_Z},
    Duration UInt64 CODEC(T64, ZSTD(1)),
    StatusCode LowCardinality(String) {_Z}, StatusMessage String {_Z},
    Events Nested (Timestamp DateTime64(9), Name LowCardinality(String),
                   Attributes {_MAP}) {_Z},
    Links Nested (TraceId String, SpanId String, TraceState String,
                  Attributes {_MAP}) {_Z},
    {_bloom("TraceId", "idx_trace_id", "0.001")},
    {_bloom("mapKeys(ResourceAttributes)", "idx_res_attr_key")},
    {_bloom("mapValues(ResourceAttributes)", "idx_res_attr_value")},
    {_bloom("mapKeys(SpanAttributes)", "idx_span_attr_key")},
    {_bloom("mapValues(SpanAttributes)", "idx_span_attr_value")},
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1
) ENGINE = MergeTree
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp))
{_KEEP}
"""

#: The exporter's trace-id lookup: where in time a trace lies, so that opening one trace
#: reads only the days it spans.
TRACE_ID_TS = f"""
CREATE TABLE IF NOT EXISTS otel_traces_trace_id_ts (
    TraceId String {_Z},
    Start SimpleAggregateFunction(min, DateTime) {_Z},
    End SimpleAggregateFunction(max, DateTime) {_Z}
) ENGINE = MergeTree
PARTITION BY toStartOfWeek(Start)
ORDER BY (TraceId)
{_KEEP}
"""

TRACE_ID_TS_MV = """
CREATE MATERIALIZED VIEW IF NOT EXISTS otel_traces_trace_id_ts_mv TO otel_traces_trace_id_ts
AS SELECT TraceId, min(Timestamp) AS Start, max(Timestamp) AS End
FROM otel_traces WHERE TraceId != '' GROUP BY TraceId
"""

LOGS = f"""
CREATE TABLE IF NOT EXISTS otel_logs (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TimestampTime DateTime DEFAULT toDateTime(Timestamp),
    TraceId String {_Z}, SpanId String {_Z}, TraceFlags UInt8,
    SeverityText LowCardinality(String) {_Z}, SeverityNumber UInt8,
    ServiceName LowCardinality(String) {_Z},
    Body String {_Z},
    ResourceSchemaUrl LowCardinality(String) {_Z},
    ResourceAttributes {_MAP} {_Z},
    ScopeSchemaUrl LowCardinality(String) {_Z},
    ScopeName String {_Z}, ScopeVersion LowCardinality(String) {_Z},
    ScopeAttributes {_MAP} {_Z},
    LogAttributes {_MAP} {_Z},
    EventName String {_Z},
    {_bloom("TraceId", "idx_trace_id", "0.001")},
    {_bloom("mapKeys(ResourceAttributes)", "idx_res_attr_key")},
    {_bloom("mapValues(ResourceAttributes)", "idx_res_attr_value")},
    {_bloom("mapKeys(LogAttributes)", "idx_log_attr_key")},
    {_bloom("mapValues(LogAttributes)", "idx_log_attr_value")},
    INDEX idx_body Body TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8
) ENGINE = MergeTree
PARTITION BY toDate(TimestampTime)
PRIMARY KEY (ServiceName, TimestampTime)
ORDER BY (ServiceName, TimestampTime, Timestamp)
{_KEEP}
"""

#: Every metric table starts with these (resource, scope, metric, point identity).
_METRIC_HEAD = f"""
    ResourceAttributes {_MAP} {_Z}, ResourceSchemaUrl String {_Z},
    ScopeName String {_Z}, ScopeVersion String {_Z}, ScopeAttributes {_MAP} {_Z},
    ScopeDroppedAttrCount UInt32 {_Z}, ScopeSchemaUrl String {_Z},
    ServiceName LowCardinality(String) {_Z},
    MetricName String {_Z}, MetricDescription String {_Z}, MetricUnit String {_Z},
    Attributes {_MAP} {_Z},
    StartTimeUnix DateTime64(9) CODEC(Delta, ZSTD(1)),
    TimeUnix DateTime64(9) CODEC(Delta, ZSTD(1)),"""
_EXEMPLARS = f"""
    Exemplars Nested (FilteredAttributes {_MAP}, TimeUnix DateTime64(9), Value Float64,
                      SpanId String, TraceId String) {_Z},"""
_METRIC_TAIL = f"""
    {_bloom("mapKeys(ResourceAttributes)", "idx_res_attr_key")},
    {_bloom("mapValues(ResourceAttributes)", "idx_res_attr_value")},
    {_bloom("mapKeys(Attributes)", "idx_attr_key")},
    {_bloom("mapValues(Attributes)", "idx_attr_value")}
) ENGINE = MergeTree
PARTITION BY toDate(TimeUnix)
ORDER BY (ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix))
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1
"""

#: Per metric type: the table and the columns after the common head.
_METRICS = {
    "gauge": ("otel_metrics_gauge", f"""
    Value Float64 {_Z}, Flags UInt32 {_Z},{_EXEMPLARS}"""),
    "sum": ("otel_metrics_sum", f"""
    Value Float64 {_Z}, Flags UInt32 {_Z},{_EXEMPLARS}
    AggregationTemporality Int32 {_Z}, IsMonotonic Boolean CODEC(Delta, ZSTD(1)),"""),
    "histogram": ("otel_metrics_histogram", f"""
    Count UInt64 CODEC(Delta, ZSTD(1)), Sum Float64 {_Z},
    BucketCounts Array(UInt64) {_Z}, ExplicitBounds Array(Float64) {_Z},{_EXEMPLARS}
    Flags UInt32 {_Z}, Min Float64 {_Z}, Max Float64 {_Z},
    AggregationTemporality Int32 {_Z},"""),
    "exponential_histogram": ("otel_metrics_exponential_histogram", f"""
    Count UInt64 CODEC(Delta, ZSTD(1)), Sum Float64 {_Z}, Scale Int32 {_Z},
    ZeroCount UInt64 {_Z}, PositiveOffset Int32 {_Z}, PositiveBucketCounts Array(UInt64) {_Z},
    NegativeOffset Int32 {_Z}, NegativeBucketCounts Array(UInt64) {_Z},{_EXEMPLARS}
    Flags UInt32 {_Z}, Min Float64 {_Z}, Max Float64 {_Z},
    AggregationTemporality Int32 {_Z},"""),
    "summary": ("otel_metrics_summary", f"""
    Count UInt64 CODEC(Delta, ZSTD(1)), Sum Float64 {_Z},
    ValueAtQuantiles Nested (Quantile Float64, Value Float64) {_Z},
    Flags UInt32 {_Z},"""),
}

#: metric type -> table name.
METRIC_TABLES = {kind: table for kind, (table, _) in _METRICS.items()}

METRICS = [f"CREATE TABLE IF NOT EXISTS {table} ({_METRIC_HEAD}{body}{_METRIC_TAIL}"
           for table, body in _METRICS.values()]

#: Logs tables made by Collectors before the exporter had the column get it (an INSERT
#: that does not name it stores ``''``).
LOGS_EVENT_NAME = f"ALTER TABLE otel_logs ADD COLUMN IF NOT EXISTS EventName String {_Z}"

#: In order: the tables, then the view that fills the lookup.
STATEMENTS = [TRACES, TRACE_ID_TS, TRACE_ID_TS_MV, LOGS, LOGS_EVENT_NAME, *METRICS]
