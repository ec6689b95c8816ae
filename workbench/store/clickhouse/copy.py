"""``observatory copy``: move a DuckDB file's data to a ClickHouse store.

Telemetry goes to the Collector exporter's tables, as the exporter would have written it
(attribute values as text, kinds and status codes by name, a span's events and links in
its row); the rest of the file (tests, coverage, projects, the control plane) becomes the
target node's control file. DuckDB reads the file in Arrow batches; each batch lands in a
staging table and ClickHouse turns it into the exporter's columns (JSON to maps, its own
functions), so no row passes through Python. Counts are checked at the end.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.types as pt

from ..sql import literal
from ..upkeep import UpkeepError, _copy_into
from .ch_store import ClickHouseStore

#: Rows per batch read from the file and inserted (memory stays flat at any size).
BATCH = 200_000
#: The file's telemetry tables: in ClickHouse now, emptied in the control file.
TELEMETRY = ("spans", "span_events", "span_links", "logs", "metric_points", "agent_rollup")

_KINDS = ("['SPAN_KIND_UNSPECIFIED', 'SPAN_KIND_INTERNAL', 'SPAN_KIND_SERVER', "
          "'SPAN_KIND_CLIENT', 'SPAN_KIND_PRODUCER', 'SPAN_KIND_CONSUMER']")
_STATUS = "['STATUS_CODE_UNSET', 'STATUS_CODE_OK', 'STATUS_CODE_ERROR']"


def _map(json: str) -> str:
    """A JSON object's members as the exporter's ``Map(String, String)`` (strings as
    they are, anything else as its JSON text: ``7``, ``true``, ``["a","b"]``)."""
    return (f"CAST(mapFromArrays(JSONExtractKeys(ifNull({json}, '{{}}')), arrayMap("
            f"k -> if(JSONType(ifNull({json}, '{{}}'), k) = 'String', "
            f"JSONExtractString(ifNull({json}, '{{}}'), k), "
            f"JSONExtractRaw(ifNull({json}, '{{}}'), k)), JSONExtractKeys(ifNull({json}, "
            f"'{{}}')))) AS Map(LowCardinality(String), String))")


def _ts(ns: str) -> str:
    return f"fromUnixTimestamp64Nano(toInt64(ifNull({ns}, 0)))"


#: Per target table: what DuckDB reads (one row per target row) and how ClickHouse makes
#: the exporter's columns of it.
_SPANS_READ = """
    SELECT s.start_ns, s.end_ns, s.trace_id, s.span_id, s.parent_span_id, s.name, s.kind,
           s.service_name, CAST(s.resource AS VARCHAR) AS resource, s.scope_name,
           s.scope_version, CAST(s.attributes AS VARCHAR) AS attributes,
           s.status_code, s.status_message,
           e.times AS event_times, e.names AS event_names, e.attrs AS event_attrs,
           l.traces AS link_traces, l.spans AS link_spans, l.attrs AS link_attrs
    FROM spans s
    LEFT JOIN (SELECT trace_id, span_id, list(time_ns ORDER BY time_ns) AS times,
                      list(name ORDER BY time_ns) AS names,
                      list(coalesce(CAST(attributes AS VARCHAR), '{}') ORDER BY time_ns) AS attrs
               FROM span_events GROUP BY ALL) e USING (trace_id, span_id)
    LEFT JOIN (SELECT trace_id, span_id, list(coalesce(linked_trace_id, '')) AS traces,
                      list(coalesce(linked_span_id, '')) AS spans,
                      list(coalesce(CAST(attributes AS VARCHAR), '{}')) AS attrs
               FROM span_links GROUP BY ALL) l USING (trace_id, span_id)
"""
_SPANS_MAKE = f"""
    INSERT INTO otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, TraceState, SpanName,
        SpanKind, ServiceName, ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes,
        Duration, StatusCode, StatusMessage, Events.Timestamp, Events.Name, Events.Attributes,
        Links.TraceId, Links.SpanId, Links.TraceState, Links.Attributes)
    SELECT {_ts('start_ns')}, trace_id, span_id, ifNull(parent_span_id, ''), '',
           ifNull(name, ''), {_KINDS}[ifNull(kind, 0) + 1], ifNull(service_name, ''),
           {_map('resource')}, ifNull(scope_name, ''), ifNull(scope_version, ''),
           {_map('attributes')},
           toUInt64(greatest(ifNull(end_ns, 0) - ifNull(start_ns, 0), 0)),
           {_STATUS}[ifNull(status_code, 0) + 1], ifNull(status_message, ''),
           arrayMap(t -> {_ts('t')}, ifNull(event_times, [])), ifNull(event_names, []),
           arrayMap(j -> {_map('j')}, ifNull(event_attrs, [])),
           ifNull(link_traces, []), ifNull(link_spans, []),
           arrayMap(x -> '', ifNull(link_traces, [])),
           arrayMap(j -> {_map('j')}, ifNull(link_attrs, []))
    FROM staging"""

_LOGS_READ = """
    SELECT time_ns, observed_ns, trace_id, span_id, severity_text, severity_number,
           service_name, body, CAST(resource AS VARCHAR) AS resource, scope_name,
           CAST(attributes AS VARCHAR) AS attributes, event_name
    FROM logs
"""
_LOGS_MAKE = f"""
    INSERT INTO otel_logs (Timestamp, TraceId, SpanId, TraceFlags, SeverityText,
        SeverityNumber, ServiceName, Body, ResourceSchemaUrl, ResourceAttributes,
        ScopeSchemaUrl, ScopeName, ScopeVersion, ScopeAttributes, LogAttributes, EventName)
    SELECT {_ts('if(ifNull(time_ns, 0) = 0, observed_ns, time_ns)')}, ifNull(trace_id, ''),
           ifNull(span_id, ''), 0, ifNull(severity_text, ''),
           toUInt8(ifNull(severity_number, 0)), ifNull(service_name, ''), ifNull(body, ''), '',
           {_map('resource')}, '', ifNull(scope_name, ''), '', map(), {_map('attributes')},
           -- (the event name the record itself carried; one from attributes stays there)
           if(ifNull(event_name, '') != '' AND JSONExtractString(ifNull(attributes, '{{}}'),
              'event.name') = '' AND NOT endsWith(ifNull(body, ''), ifNull(event_name, '')),
              event_name, '')
    FROM staging"""

_POINTS_READ = """
    SELECT name, description, unit, type, temporality, monotonic, time_ns, start_ns, value,
           count, sum, min, max, coalesce(bucket_counts, []) AS bucket_counts,
           coalesce(explicit_bounds, []) AS explicit_bounds,
           coalesce(CAST(detail AS VARCHAR), '{}') AS detail, service_name, scope_name,
           CAST(resource AS VARCHAR) AS resource,
           CAST(attributes AS VARCHAR) AS attributes
    FROM metric_points WHERE type = $1
"""
_HEAD = ("ResourceAttributes, ResourceSchemaUrl, ScopeName, ScopeVersion, ScopeAttributes, "
         "ScopeDroppedAttrCount, ScopeSchemaUrl, ServiceName, MetricName, MetricDescription, "
         "MetricUnit, Attributes, StartTimeUnix, TimeUnix")
_HEAD_VALUES = (f"{_map('resource')}, '', ifNull(scope_name, ''), '', map(), 0, '', "
                f"ifNull(service_name, ''), name, ifNull(description, ''), ifNull(unit, ''), "
                f"{_map('attributes')}, {_ts('start_ns')}, {_ts('time_ns')}")
_POINTS_MAKE = {
    "gauge": ("otel_metrics_gauge", "Value, Flags", "ifNull(value, 0), 0"),
    "sum": ("otel_metrics_sum", "Value, Flags, AggregationTemporality, IsMonotonic",
            "ifNull(value, 0), 0, ifNull(temporality, 0), ifNull(monotonic, false)"),
    "histogram": ("otel_metrics_histogram",
                  "Count, Sum, BucketCounts, ExplicitBounds, Flags, Min, Max, "
                  "AggregationTemporality",
                  "toUInt64(ifNull(count, 0)), ifNull(sum, 0), "
                  "arrayMap(c -> toUInt64(c), ifNull(bucket_counts, [])), "
                  "ifNull(explicit_bounds, []), 0, ifNull(min, 0), ifNull(max, 0), "
                  "ifNull(temporality, 0)"),
    "exponential_histogram": (
        "otel_metrics_exponential_histogram",
        "Count, Sum, Scale, ZeroCount, PositiveOffset, PositiveBucketCounts, NegativeOffset, "
        "NegativeBucketCounts, Flags, Min, Max, AggregationTemporality",
        "toUInt64(ifNull(count, 0)), ifNull(sum, 0), JSONExtractInt(d, 'scale'), "
        "JSONExtractUInt(d, 'zero_count'), JSONExtractInt(d, 'positive', 'offset'), "
        "JSONExtract(d, 'positive', 'bucket_counts', 'Array(UInt64)'), "
        "JSONExtractInt(d, 'negative', 'offset'), "
        "JSONExtract(d, 'negative', 'bucket_counts', 'Array(UInt64)'), 0, "
        "ifNull(min, 0), ifNull(max, 0), ifNull(temporality, 0)"),
    "summary": ("otel_metrics_summary",
                "Count, Sum, ValueAtQuantiles.Quantile, ValueAtQuantiles.Value, Flags",
                "toUInt64(ifNull(count, 0)), ifNull(sum, 0), "
                "JSONExtract(d, 'quantiles', 'Array(Tuple(quantile Float64, value Float64))')"
                ".quantile, "
                "JSONExtract(d, 'quantiles', 'Array(Tuple(quantile Float64, value Float64))')"
                ".value, 0"),
}


def _plan() -> list[tuple[str, str, list, str]]:
    """``(label, DuckDB read, its parameters, ClickHouse statement)`` per target table."""
    plan = [("spans", _SPANS_READ, [], _SPANS_MAKE), ("logs", _LOGS_READ, [], _LOGS_MAKE)]
    for kind, (table, columns, values) in _POINTS_MAKE.items():
        plan.append((f"metric points ({kind})", _POINTS_READ, [kind],
                     f"INSERT INTO {table} ({_HEAD}, {columns}) "
                     f"SELECT {_HEAD_VALUES}, {values} "
                     f"FROM (SELECT *, ifNull(detail, '{{}}') AS d FROM staging)"))
    return plan


def copy(source: Path, url: str, control: Path,
         progress: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """Copy ``source`` (a DuckDB file no server holds) into the ClickHouse store ``url``,
    with ``control`` as the node's new control file. Returns counts and seconds."""
    if not source.is_file():
        raise UpkeepError(f"{source}: no such database file")
    if control.exists():
        raise UpkeepError(f"{control} exists: the copy makes this node's control file anew "
                          "(move it aside, or name another with --control)")
    started = time.perf_counter()
    con = duckdb.connect(str(source), read_only=True)  # (refused while a server holds it)
    try:
        target = ClickHouseStore(url, control.with_suffix(".copying.duckdb"))
    except BaseException:
        con.close()
        raise
    counts: dict[str, int] = {}
    staging = f"wb_copy_staging_{uuid.uuid4().hex[:12]}"  # (no name of anyone else's)
    made = False
    try:
        held = target.query("telemetry_counts").iloc[0]
        if int(held.spans) or int(held.logs) or int(held.metric_points):
            raise UpkeepError(
                f"{target.url} already holds {int(held.spans):,} spans, {int(held.logs):,} "
                f"log records and {int(held.metric_points):,} metric points: copy into an "
                "empty database")
        # The control file first: if it cannot be made (a full disk, a file of an older
        # workbench), nothing has been written to ClickHouse yet.
        _control_file(source, control)
        made = True
        client = target._ch
        for label, read, params, make in _plan():
            rel = con.sql(read, params=params)
            reader = (rel.to_arrow_reader(BATCH) if hasattr(rel, "to_arrow_reader")
                      else rel.fetch_arrow_reader(BATCH))  # (DuckDB 2 renamed it)
            client.command(f"DROP TABLE IF EXISTS {staging}")
            client.command(_staging_ddl(reader.schema, staging))
            n = 0
            for batch in reader:
                if not batch.num_rows:
                    continue
                client.insert_arrow(staging, pa.Table.from_batches([batch]))
                client.command(make.replace("FROM staging", f"FROM {staging}"))
                client.command(f"TRUNCATE TABLE {staging}")
                n += batch.num_rows
                if progress:
                    progress(label, n)
            counts[label] = n
        _check(con, target, counts)
    except BaseException:
        if made:  # (so that the copy can be run again once its cause is mended)
            control.unlink(missing_ok=True)
        raise
    finally:
        try:
            target._ch.command(f"DROP TABLE IF EXISTS {staging}")
        except Exception:  # noqa: BLE001  (a ClickHouse gone away: the table is its own)
            pass
        target.close()
        con.close()
        control.with_suffix(".copying.duckdb").unlink(missing_ok=True)
    return {"tables": counts, "seconds": round(time.perf_counter() - started, 1),
            "control": str(control)}


def _staging_ddl(schema: pa.Schema, name: str) -> str:
    """A Memory table for the batches of one read (Arrow's types as ClickHouse's)."""
    def scalar(t: pa.DataType) -> str:
        if pt.is_boolean(t):
            return "Bool"
        if pt.is_integer(t):
            return "Int64"
        if pt.is_floating(t):
            return "Float64"
        return "String"

    def kind(t: pa.DataType) -> str:
        if pt.is_list(t) or pt.is_large_list(t):
            return f"Array({scalar(t.value_type)})"
        return f"Nullable({scalar(t)})"

    cols = ", ".join(f"`{f.name}` {kind(f.type)}" for f in schema)
    return f"CREATE TABLE {name} ({cols}) ENGINE = Memory"



def _check(con: duckdb.DuckDBPyConnection, target: ClickHouseStore,
           counts: dict[str, int]) -> None:
    """Every row arrived: the file's counts against the tables'."""
    want = con.execute("SELECT (SELECT count(*) FROM spans), (SELECT count(*) FROM logs), "
                       "(SELECT count(*) FROM metric_points)").fetchone()
    got = target.query("telemetry_counts").iloc[0]
    if (int(got.spans), int(got.logs), int(got.metric_points)) != tuple(want):
        raise UpkeepError(f"{target.url}: {int(got.spans)} spans, {int(got.logs)} logs, "
                          f"{int(got.metric_points)} metric points arrived of {want[0]}, "
                          f"{want[1]}, {want[2]}")


def _control_file(source: Path, control: Path) -> None:
    """The file's other data as this node's control file: a copy through DuckDB with the
    telemetry tables emptied (ClickHouse holds them now)."""
    partial = control.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    con = duckdb.connect()  # (the source attached read-only: the copy changes nothing there)
    try:
        con.execute(f"ATTACH {literal(str(source))} AS src (READ_ONLY)")
        con.execute("USE src")
        _copy_into(con, partial)
        con.execute(f"ATTACH {literal(str(partial))} AS dst")
        for table in TELEMETRY:
            con.execute(f"DELETE FROM dst.{table}")
        con.execute("DETACH dst")
    finally:
        con.close()
    partial.rename(control)
