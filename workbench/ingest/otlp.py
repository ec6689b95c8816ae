"""OTLP export requests (traces, metrics, logs) → column batches for the store.

Decoding uses the opentelemetry-proto message classes. OTLP/JSON differs from protobuf's
canonical JSON in one way that matters: trace and span ids are hex, not base64; they are
converted before parsing. Items that cannot be stored (a span without a valid trace id,
say) are counted as rejected, for the response's ``partial_success``; the rest is kept.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from .genai import agent_fields, event_name, metric_fields

if TYPE_CHECKING:
    from collections.abc import Iterator

MAX_DEPTH = 32  # attribute values nested deeper than this are refused
PROTOBUF = "application/x-protobuf"
JSON = "application/json"

SIGNALS = {
    "traces": (trace_service_pb2.ExportTraceServiceRequest,
               trace_service_pb2.ExportTraceServiceResponse, "rejected_spans"),
    "metrics": (metrics_service_pb2.ExportMetricsServiceRequest,
                metrics_service_pb2.ExportMetricsServiceResponse, "rejected_data_points"),
    "logs": (logs_service_pb2.ExportLogsServiceRequest,
             logs_service_pb2.ExportLogsServiceResponse, "rejected_log_records"),
}
_HEX_KEYS = {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}


class OTLPError(ValueError):
    """A request that cannot be accepted: ``status`` and a one-line reason."""

    def __init__(self, status: int, message: str):
        super().__init__(" ".join(message.split()))
        self.status = status


@dataclass
class Batch:
    """Rows per table decoded from one request, and what was rejected."""

    signal: str
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    accepted: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, reason: str) -> None:
        self.rejected += 1
        if len(self.errors) < 5:
            self.errors.append(reason)

    def rows(self, table: str) -> list[dict[str, Any]]:
        return self.tables.setdefault(table, [])


# -- decoding ------------------------------------------------------------------------------

def _hex_to_b64(node: Any, depth: int = 0) -> Any:
    if depth > 64:
        raise OTLPError(400, "JSON nested too deeply")
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in _HEX_KEYS and isinstance(v, str):
                try:
                    out[k] = base64.b64encode(bytes.fromhex(v)).decode()
                except ValueError:
                    raise OTLPError(400, f"{k} is not hex: {v[:40]!r}") from None
            else:
                out[k] = _hex_to_b64(v, depth + 1)
        return out
    if isinstance(node, list):
        return [_hex_to_b64(v, depth + 1) for v in node]
    return node


def decode(signal: str, body: bytes, content_type: str | None):
    """Parse an export request body; raise :class:`OTLPError` (400/415) when impossible."""
    request_cls = SIGNALS[signal][0]
    kind = (content_type or "").split(";")[0].strip().lower()
    msg = request_cls()
    if kind == PROTOBUF:
        try:
            msg.ParseFromString(body)
        except (DecodeError, RecursionError, ValueError) as err:
            raise OTLPError(400, f"undecodable protobuf {request_cls.__name__}: {err}") from None
        return msg
    if kind == JSON:
        try:
            doc = json.loads(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise OTLPError(400, "JSON body is not valid UTF-8") from None
        except (ValueError, RecursionError) as err:  # (and the 4300-digit int limit)
            raise OTLPError(400, f"invalid JSON: {err}") from None
        if not isinstance(doc, dict):
            raise OTLPError(400, f"expected a JSON object ({request_cls.__name__})")
        try:
            json_format.ParseDict(_hex_to_b64(doc), msg, ignore_unknown_fields=True)
        except (json_format.ParseError, RecursionError, ValueError, TypeError) as err:
            raise OTLPError(400, f"invalid OTLP/JSON {request_cls.__name__}: {err}") from None
        return msg
    raise OTLPError(415, f"unsupported Content-Type {content_type!r} "
                         f"(use {PROTOBUF} or {JSON})")


def is_protobuf(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == PROTOBUF


def encode_response(signal: str, batch: Batch | None,
                    content_type: str | None) -> tuple[bytes, str]:
    """The Export*ServiceResponse in the request's content type."""
    resp = SIGNALS[signal][1]()
    if batch is not None and batch.rejected:
        setattr(resp.partial_success, SIGNALS[signal][2], batch.rejected)
        resp.partial_success.error_message = "; ".join(batch.errors)
    if (content_type or "").split(";")[0].strip().lower() == JSON:
        return json_format.MessageToJson(resp, indent=None).encode(), JSON
    return resp.SerializeToString(), PROTOBUF


# -- values --------------------------------------------------------------------------------

_SCALARS = frozenset({"string_value", "int_value", "double_value", "bool_value"})


def _value(v, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise OTLPError(400, f"attribute value nested deeper than {MAX_DEPTH} levels")
    which = v.WhichOneof("value")
    if which in _SCALARS:
        return getattr(v, which)
    if which == "array_value":
        return [_value(x, depth + 1) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value, depth + 1) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return None


def attributes(kvs) -> dict[str, Any]:
    """OTLP KeyValue list → dict (nested arrays and maps kept)."""
    out = {}
    for kv in kvs:  # (scalars inline: a call per attribute was a tenth of flattening)
        v = kv.value
        which = v.WhichOneof("value")
        out[kv.key] = getattr(v, which) if which in _SCALARS else _value(v)
    return out


#: One encoder for every row: ``json.dumps`` with options builds a new one per call.
_JSON = json.JSONEncoder(separators=(",", ":"), default=str).encode


def _dumps(d: dict[str, Any]) -> str | None:
    return _JSON(d) if d else None


_EPOCH = datetime(1970, 1, 1)


def _time(ns: int) -> datetime | None:
    """The microsecond a nanosecond time falls in, exactly (``fromtimestamp(ns / 1e9)``
    rounded through a float: half the times came out a microsecond late, and a ClickHouse
    store, which truncates, disagreed with this one)."""
    return _EPOCH + timedelta(microseconds=ns // 1000) if ns else None


_ZEROS = {8: bytes(8), 16: bytes(16)}


def _id(raw: bytes, size: int) -> str | None:
    if len(raw) != size or raw == _ZEROS[size]:
        return None
    return raw.hex()


# -- range checks --------------------------------------------------------------------------
# Protobuf enums are open and uint64 fields go to 2^64-1; the store's columns do not. An
# item outside these ranges is rejected alone (partial_success), never the whole request.
_MAX_NS = 2**63 - 1  # nanoseconds after 1970 that a timestamp column can hold (year 2262)
_MAX_COUNT = 2**63 - 1
_SCALES = (-10, 20)  # an exponential histogram's scale, as the OTLP specification bounds it


def _span_problem(s) -> str | None:
    if _id(s.trace_id, 16) is None or _id(s.span_id, 8) is None:
        return f"span {s.name!r}: trace_id must be 16 bytes and span_id 8, not all zero"
    if not 0 <= s.kind <= 5:
        return f"span {s.name!r}: kind {s.kind} is not one of 0-5"
    if not 0 <= s.status.code <= 2:
        return f"span {s.name!r}: status code {s.status.code} is not one of 0-2"
    if max(s.start_time_unix_nano, s.end_time_unix_nano) > _MAX_NS:
        return f"span {s.name!r}: timestamp beyond the year 2262"
    if s.events and any(e.time_unix_nano > _MAX_NS for e in s.events):
        return f"span {s.name!r}: event timestamp beyond the year 2262"
    return None


def _log_problem(r) -> str | None:
    if (r.trace_id and _id(r.trace_id, 16) is None) or (r.span_id and _id(r.span_id, 8) is None):
        return "log record: trace_id must be 16 bytes and span_id 8"
    if not 0 <= r.severity_number <= 24:
        return f"log record: severity {r.severity_number} is not one of 0-24"
    if max(r.time_unix_nano, r.observed_time_unix_nano) > _MAX_NS:
        return "log record: timestamp beyond the year 2262"
    return None


def _point_problem(name: str, kind: str, p, temporality: int) -> str | None:
    if not 0 <= temporality <= 2:
        return f"metric {name!r}: temporality {temporality} is not one of 0-2"
    if max(p.time_unix_nano, p.start_time_unix_nano) > _MAX_NS:
        return f"metric {name!r}: timestamp beyond the year 2262"
    if kind == "exponential_histogram" and not _SCALES[0] <= p.scale <= _SCALES[1]:
        # (the grid's step is 2^-scale: a scale of -2^31 took seconds and 256 MB a point)
        return f"metric {name!r}: scale {p.scale} is not one of {_SCALES[0]}-{_SCALES[1]}"
    counts = [getattr(p, "count", 0), getattr(p, "zero_count", 0)]
    if kind == "histogram":
        counts += list(p.bucket_counts)
    elif kind == "exponential_histogram":
        counts += [*p.positive.bucket_counts, *p.negative.bucket_counts]
    if max(counts, default=0) > _MAX_COUNT:
        return f"metric {name!r}: a count above 2^63-1"
    return None


# -- flattening ----------------------------------------------------------------------------

def flatten(signal: str, msg) -> Batch:
    """Turn a decoded request into table rows."""
    batch = Batch(signal)
    {"traces": _traces, "logs": _logs, "metrics": _metrics}[signal](msg, batch)
    return batch


def flatten_group(requests: list[tuple[str, bytes]]
                  ) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """The rows of several protobuf requests the OTLP inbox stored, to be written as one
    transaction, and what could not be read (a request that no longer decodes: it was
    decoded once, so not expected). A link repeated by a request sent again within the
    group is kept once."""
    problems = []
    tables: dict[str, list] = {}
    spans: set[tuple] = set()  # (trace, span) of the spans of the requests before
    counted = 0  # rows of tables["spans"] already in ``spans``
    for signal, body in requests:
        try:
            batch = flatten(signal, decode(signal, body, PROTOBUF))
        except OTLPError as err:  # (it was decoded once already: not expected)
            problems.append(f"a stored {signal} request no longer decodes ({err})")
            continue
        links = batch.tables.get("span_links")
        if links and tables.get("spans"):
            # A request sent again: its spans' links are there already. (The set is
            # made only for a request with links: made for every request, it was a
            # tenth of the inbox's work.)
            before = tables["spans"]
            spans.update((r["trace_id"], r["span_id"]) for r in before[counted:])
            counted = len(before)
            batch.tables["span_links"] = [
                link for link in links if (link["trace_id"], link["span_id"]) not in spans]
        for table, rows in batch.tables.items():
            tables.setdefault(table, []).extend(rows)
    return tables, problems


def check(signal: str, msg) -> Batch:
    """What :func:`flatten` would accept and reject, and why, without building any row: the
    answer of a request acknowledged before its rows are written (store/otlp_inbox.py).
    Several times cheaper than flattening: no attribute is read."""
    batch = Batch(signal)
    for problem in _PROBLEMS[signal](msg):
        if problem:
            batch.reject(problem)
        else:
            batch.accepted += 1
    return batch


def _span_problems(msg) -> Iterator[str | None]:
    for rs in msg.resource_spans:
        for ss in rs.scope_spans:
            yield from map(_span_problem, ss.spans)


def _log_problems(msg) -> Iterator[str | None]:
    for rl in msg.resource_logs:
        for sl in rl.scope_logs:
            yield from map(_log_problem, sl.log_records)


def _metric_problems(msg) -> Iterator[str | None]:
    for rm in msg.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                if kind is None:
                    yield f"metric {m.name!r} has no data"
                    continue
                data = getattr(m, kind)
                temporality = getattr(data, "aggregation_temporality", 0)
                for p in data.data_points:
                    yield _point_problem(m.name, kind, p, temporality)


_PROBLEMS = {"traces": _span_problems, "logs": _log_problems, "metrics": _metric_problems}


def _resource(res) -> tuple[dict[str, Any], str | None, str | None]:
    attrs = attributes(res.attributes)
    # (a service.name that is a number or a list, beside a string one in the same request,
    # made a column of two types: a 500)
    return attrs, _str(attrs.get("service.name")), _dumps(attrs)


def _traces(msg, batch: Batch) -> None:
    spans, events, links = batch.rows("spans"), batch.rows("span_events"), batch.rows("span_links")
    for rs in msg.resource_spans:
        _, service, resource_json = _resource(rs.resource)
        for ss in rs.scope_spans:
            scope_name, scope_version = ss.scope.name or None, ss.scope.version or None
            for s in ss.spans:
                # (the one test of a span, as check() makes it: an inline copy here
                # missed its timestamp ranges)
                problem = _span_problem(s)
                if problem:
                    batch.reject(problem)
                    continue
                # (each field read once: a read of a protobuf field makes a new object)
                kind, status = s.kind, s.status
                code = status.code
                trace_id, span_id = s.trace_id.hex(), s.span_id.hex()
                parent = s.parent_span_id
                parent = _id(parent, 8) if parent else None
                attrs = attributes(s.attributes)
                start, end = s.start_time_unix_nano, s.end_time_unix_nano
                span_events, span_links = s.events, s.links
                row = {
                    "trace_id": trace_id, "span_id": span_id, "parent_span_id": parent,
                    "name": s.name, "kind": kind, "start_time": _time(start),
                    "start_ns": start, "end_ns": end,
                    "duration_ms": (end - start) / 1e6 if end >= start else None,
                    "status_code": code, "status_message": status.message or None,
                    "service_name": service, "scope_name": scope_name,
                    "scope_version": scope_version, "resource": resource_json,
                    "attributes": _dumps(attrs), "events": len(span_events),
                    "links": len(span_links),
                }
                row.update(agent_fields(attrs, service, span_status=code))
                spans.append(row)
                for e in span_events:
                    events.append({"trace_id": trace_id, "span_id": span_id,
                                   "time": _time(e.time_unix_nano), "time_ns": e.time_unix_nano,
                                   "name": e.name, "attributes": _dumps(attributes(e.attributes))})
                for link in span_links:
                    links.append({"trace_id": trace_id, "span_id": span_id,
                                  "linked_trace_id": _id(link.trace_id, 16),
                                  "linked_span_id": _id(link.span_id, 8),
                                  "attributes": _dumps(attributes(link.attributes))})
                batch.accepted += 1


def _logs(msg, batch: Batch) -> None:
    rows = batch.rows("logs")
    for rl in msg.resource_logs:
        _, service, resource_json = _resource(rl.resource)
        for sl in rl.scope_logs:
            scope_name = sl.scope.name or None
            for r in sl.log_records:
                problem = _log_problem(r)
                if problem:
                    batch.reject(problem)
                    continue
                attrs = attributes(r.attributes)
                body = _value(r.body) if r.HasField("body") else None
                name = event_name(getattr(r, "event_name", "") or None, attrs, body)
                ns = r.time_unix_nano or r.observed_time_unix_nano
                row = {
                    "time": _time(ns), "time_ns": ns, "observed_ns": r.observed_time_unix_nano,
                    "severity_number": r.severity_number, "severity_text": r.severity_text or None,
                    "body": body if isinstance(body, str) or body is None else json.dumps(body),
                    "event_name": name, "trace_id": _id(r.trace_id, 16),
                    "span_id": _id(r.span_id, 8), "service_name": service,
                    "scope_name": scope_name, "resource": resource_json,
                    "attributes": _dumps(attrs),
                    "duration_ms": _float(attrs.get("duration_ms")),
                    "decision": _str(attrs.get("decision", attrs.get("tool.decision"))),
                }
                row.update(agent_fields(attrs, service, event=name))
                rows.append(row)
                batch.accepted += 1


def _float(v: Any) -> float | None:
    try:
        out = float(v) if v is not None and not isinstance(v, bool) else None
    except (TypeError, ValueError, OverflowError):
        return None
    return out if out is None or math.isfinite(out) else None


def _str(v: Any) -> str | None:
    return None if v is None else str(v)


def _metrics(msg, batch: Batch) -> None:
    rows = batch.rows("metric_points")
    for rm in msg.resource_metrics:
        _, service, resource_json = _resource(rm.resource)
        for sm in rm.scope_metrics:
            scope_name = sm.scope.name or None
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                if kind is None:
                    batch.reject(f"metric {m.name!r} has no data")
                    continue
                data = getattr(m, kind)
                base = {"name": m.name, "description": m.description or None,
                        "unit": m.unit or None, "type": kind, "service_name": service,
                        "scope_name": scope_name, "resource": resource_json,
                        "temporality": getattr(data, "aggregation_temporality", 0),
                        "monotonic": getattr(data, "is_monotonic", None)}
                for p in data.data_points:
                    problem = _point_problem(m.name, kind, p, base["temporality"])
                    if problem:
                        batch.reject(problem)
                        continue
                    attrs = attributes(p.attributes)
                    row = {**base, "time": _time(p.time_unix_nano), "time_ns": p.time_unix_nano,
                           "start_ns": p.start_time_unix_nano, "attributes": _dumps(attrs)}
                    row.update(_point(kind, p))
                    row.update(metric_fields(m.name, attrs, service))
                    rows.append(row)
                    batch.accepted += 1


#: The one set of bounds every exponential histogram is stored with: 0, then 2^(e/4) for
#: e in -40..160 (0.001 to 10^12, steps of 19%). Points of one metric from several
#: processes come with their own scales and offsets; on one grid their counts add up
#: bucket by bucket, as explicit histograms' do.
_EXP_LOW, _EXP_HIGH, _EXP_SCALE = -40, 160, 2
EXP_BOUNDS = [0.0] + [2.0 ** (e / 2**_EXP_SCALE) for e in range(_EXP_LOW, _EXP_HIGH + 1)]


def explicit_buckets(scale: int, zero_count: int, positive, negative
                     ) -> tuple[list[int], list[float]]:
    """An exponential histogram's counts on :data:`EXP_BOUNDS` ``(counts, bounds)``, so
    that percentiles and charts read both kinds of histogram alike (exponential ones were
    stored with no bucket counts, and a chart of one said "No points").

    Source bucket ``j`` covers ``(2**(j / 2**scale), 2**((j+1) / 2**scale)]``; it goes to
    the grid bucket holding its upper end — exactly for scales ≥ 2, rounded up for coarser
    ones. Zero and negative values count in the first bucket, ``(-inf, 0]``.
    """
    counts = [0] * (len(EXP_BOUNDS) + 1)
    counts[0] = zero_count + sum(negative.bucket_counts)
    step = Fraction(2**_EXP_SCALE) / Fraction(2) ** scale  # grid steps per source step
    for k, n in enumerate(positive.bucket_counts):
        if n:
            e = math.ceil((positive.offset + k + 1) * step)  # upper end 2^(e / 4)
            counts[min(max(e, _EXP_LOW), _EXP_HIGH + 1) - _EXP_LOW + 1] += n
    return counts, EXP_BOUNDS


def _point(kind: str, p) -> dict[str, Any]:
    if kind in ("gauge", "sum"):
        which = p.WhichOneof("value")
        value = p.as_int if which == "as_int" else p.as_double if which == "as_double" else None
        return {"value": value}
    if kind == "histogram":
        return {"count": p.count, "sum": p.sum if p.HasField("sum") else None,
                "min": p.min if p.HasField("min") else None,
                "max": p.max if p.HasField("max") else None,
                "bucket_counts": list(p.bucket_counts), "explicit_bounds": list(p.explicit_bounds)}
    if kind == "exponential_histogram":
        detail = {"scale": p.scale, "zero_count": p.zero_count,
                  "positive": {"offset": p.positive.offset,
                               "bucket_counts": list(p.positive.bucket_counts)},
                  "negative": {"offset": p.negative.offset,
                               "bucket_counts": list(p.negative.bucket_counts)}}
        counts, bounds = explicit_buckets(p.scale, p.zero_count, p.positive, p.negative)
        return {"count": p.count, "sum": p.sum if p.HasField("sum") else None,
                "min": p.min if p.HasField("min") else None,
                "max": p.max if p.HasField("max") else None, "detail": json.dumps(detail),
                "bucket_counts": counts, "explicit_bounds": bounds}
    # summary
    quantiles = [{"quantile": q.quantile, "value": q.value} for q in p.quantile_values]
    return {"count": p.count, "sum": p.sum, "detail": json.dumps({"quantiles": quantiles})}
