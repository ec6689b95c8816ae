"""A decoded OTLP request as rows of the Collector's ClickHouse tables.

What the exporter writes, the same way: ids as lower-case hex, attribute values as strings
(``AsString``: ``"12"``, ``"true"``, base64 for bytes, JSON for lists and maps), kinds and
status codes by their protobuf names, the service from ``service.name``. Items the
DuckDB store refuses (:mod:`workbench.ingest.otlp`'s range checks) are refused here alike,
each alone, so an exporter's ``partial_success`` reads the same on either store.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from opentelemetry.proto.trace.v1 import trace_pb2

from ...ingest import otlp
from .otel_ddl import METRIC_TABLES

_KINDS = trace_pb2.Span.SpanKind
_STATUS = trace_pb2.Status.StatusCode


def double_text(f: float) -> str:
    """A double as the Collector writes it (pdata's ``AsString``: JSON's number text, as
    ES6 prints it): ``0`` for 0.0, ``1.5``, ``1e-7``, ``1e+21``."""
    if math.isnan(f) or math.isinf(f):
        word = "NaN" if math.isnan(f) else ("+Inf" if f > 0 else "-Inf")
        return f"json: unsupported value: {word}"
    a = abs(f)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        mantissa, exp = repr(f).split("e")
        return f"{mantissa}e{exp[0]}{int(exp[1:])}"
    return np.format_float_positional(f, unique=True, trim="-")


def _string(v) -> str:
    which = v.WhichOneof("value")
    if which == "string_value":
        return v.string_value
    if which == "bool_value":
        return "true" if v.bool_value else "false"
    if which == "int_value":
        return str(v.int_value)
    if which == "double_value":
        return double_text(v.double_value)
    if which is None:
        return ""
    value = otlp._value(v)
    # (Go's json.Marshal, which the exporter uses for lists and maps, sorts a map's keys)
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"),
                                                          sort_keys=True)


def _map(kvs) -> dict[str, str]:
    return {kv.key: _string(kv.value) for kv in kvs}




def _hex(raw: bytes) -> str:
    return raw.hex() if raw and any(raw) else ""


class Rows:
    """Columns per table for one request, plus the request's accept/reject tally."""

    def __init__(self, signal: str):
        self.batch = otlp.Batch(signal)
        self.tables: dict[str, dict[str, list]] = {}

    def add(self, table: str, row: dict[str, Any]) -> None:
        cols = self.tables.setdefault(table, {k: [] for k in row})
        for k, v in row.items():
            cols[k].append(v)


def rows(signal: str, msg) -> Rows:
    out = Rows(signal)
    {"traces": _traces, "logs": _logs, "metrics": _metrics}[signal](msg, out)
    return out


def _resource(res) -> tuple[dict[str, str], str]:
    attrs = _map(res.attributes)
    return attrs, attrs.get("service.name", "")


def _traces(msg, out: Rows) -> None:
    for rs in msg.resource_spans:
        resource, service = _resource(rs.resource)
        for ss in rs.scope_spans:
            for s in ss.spans:
                problem = otlp._span_problem(s)
                if problem:
                    out.batch.reject(problem)
                    continue
                start, end = s.start_time_unix_nano, s.end_time_unix_nano
                out.add("otel_traces", {
                    "Timestamp": start, "TraceId": s.trace_id.hex(), "SpanId": s.span_id.hex(),
                    "ParentSpanId": _hex(s.parent_span_id), "TraceState": s.trace_state,
                    "SpanName": s.name, "SpanKind": _KINDS.Name(s.kind),
                    "ServiceName": service, "ResourceAttributes": resource,
                    "ScopeName": ss.scope.name, "ScopeVersion": ss.scope.version,
                    "SpanAttributes": _map(s.attributes),
                    "Duration": end - start if end >= start else 0,
                    "StatusCode": _STATUS.Name(s.status.code),
                    "StatusMessage": s.status.message,
                    "Events.Timestamp": [e.time_unix_nano for e in s.events],
                    "Events.Name": [e.name for e in s.events],
                    "Events.Attributes": [_map(e.attributes) for e in s.events],
                    "Links.TraceId": [_hex(k.trace_id) for k in s.links],
                    "Links.SpanId": [_hex(k.span_id) for k in s.links],
                    "Links.TraceState": [k.trace_state for k in s.links],
                    "Links.Attributes": [_map(k.attributes) for k in s.links],
                })
                out.batch.accepted += 1


def _logs(msg, out: Rows) -> None:
    for rl in msg.resource_logs:
        resource, service = _resource(rl.resource)
        for sl in rl.scope_logs:
            for r in sl.log_records:
                problem = otlp._log_problem(r)
                if problem:
                    out.batch.reject(problem)
                    continue
                out.add("otel_logs", {
                    "Timestamp": r.time_unix_nano or r.observed_time_unix_nano,
                    "TraceId": _hex(r.trace_id), "SpanId": _hex(r.span_id),
                    "TraceFlags": r.flags & 0xFF, "SeverityText": r.severity_text,
                    "SeverityNumber": r.severity_number, "ServiceName": service,
                    "Body": _string(r.body) if r.HasField("body") else "",
                    "ResourceSchemaUrl": rl.schema_url, "ResourceAttributes": resource,
                    "ScopeSchemaUrl": sl.schema_url, "ScopeName": sl.scope.name,
                    "ScopeVersion": sl.scope.version,
                    "ScopeAttributes": _map(sl.scope.attributes),
                    "LogAttributes": _map(r.attributes),
                    "EventName": getattr(r, "event_name", ""),
                })
                out.batch.accepted += 1


def _exemplars(p) -> dict[str, list]:
    ex = p.exemplars
    return {"Exemplars.FilteredAttributes": [_map(e.filtered_attributes) for e in ex],
            "Exemplars.TimeUnix": [e.time_unix_nano for e in ex],
            "Exemplars.Value": [e.as_double if e.WhichOneof("value") == "as_double"
                                else float(e.as_int) for e in ex],
            "Exemplars.SpanId": [_hex(e.span_id) for e in ex],
            "Exemplars.TraceId": [_hex(e.trace_id) for e in ex]}


def _metrics(msg, out: Rows) -> None:
    for rm in msg.resource_metrics:
        resource, service = _resource(rm.resource)
        for sm in rm.scope_metrics:
            scope = {"ResourceAttributes": resource, "ResourceSchemaUrl": rm.schema_url,
                     "ScopeName": sm.scope.name, "ScopeVersion": sm.scope.version,
                     "ScopeAttributes": _map(sm.scope.attributes),
                     "ScopeDroppedAttrCount": sm.scope.dropped_attributes_count,
                     "ScopeSchemaUrl": sm.schema_url, "ServiceName": service}
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                if kind is None:
                    out.batch.reject(f"metric {m.name!r} has no data")
                    continue
                data = getattr(m, kind)
                temporality = getattr(data, "aggregation_temporality", 0)
                for p in data.data_points:
                    problem = otlp._point_problem(m.name, kind, p, temporality)
                    if problem:
                        out.batch.reject(problem)
                        continue
                    row = {**scope, "MetricName": m.name, "MetricDescription": m.description,
                           "MetricUnit": m.unit, "Attributes": _map(p.attributes),
                           "StartTimeUnix": p.start_time_unix_nano,
                           "TimeUnix": p.time_unix_nano}
                    row.update(_point(kind, p, data, temporality))
                    out.add(METRIC_TABLES[kind], row)
                    out.batch.accepted += 1


def _point(kind: str, p, data, temporality: int) -> dict[str, Any]:
    if kind in ("gauge", "sum"):
        which = p.WhichOneof("value")
        row = {"Value": float(p.as_int) if which == "as_int" else p.as_double,
               "Flags": p.flags, **_exemplars(p)}
        if kind == "sum":
            row.update({"AggregationTemporality": temporality,
                        "IsMonotonic": data.is_monotonic})
        return row
    if kind == "histogram":
        return {"Count": p.count, "Sum": p.sum, "BucketCounts": list(p.bucket_counts),
                "ExplicitBounds": list(p.explicit_bounds), **_exemplars(p),
                "Flags": p.flags, "Min": p.min, "Max": p.max,
                "AggregationTemporality": temporality}
    if kind == "exponential_histogram":
        return {"Count": p.count, "Sum": p.sum, "Scale": p.scale, "ZeroCount": p.zero_count,
                "PositiveOffset": p.positive.offset,
                "PositiveBucketCounts": list(p.positive.bucket_counts),
                "NegativeOffset": p.negative.offset,
                "NegativeBucketCounts": list(p.negative.bucket_counts), **_exemplars(p),
                "Flags": p.flags, "Min": p.min, "Max": p.max,
                "AggregationTemporality": temporality}
    return {"Count": p.count, "Sum": p.sum,
            "ValueAtQuantiles.Quantile": [q.quantile for q in p.quantile_values],
            "ValueAtQuantiles.Value": [q.value for q in p.quantile_values], "Flags": p.flags}


