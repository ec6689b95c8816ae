"""Stored spans as OTLP again: ``ExportTraceServiceRequest`` documents in OTLP/JSON (one
per line, as the Collector's file exporter writes them), to a file or POSTed to any
OTLP/HTTP endpoint (Phoenix, Langfuse, Tempo, a Collector, another workbench), so that
traces leave the workbench in the format they came in.

Spans are read in batches from one snapshot and grouped by resource and scope; events and
links come back with their span. Attributes are typed again from their stored JSON
(integers as ``intValue``, which OTLP/JSON writes as a string).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .kinds import TABLES, Filter, where

if TYPE_CHECKING:
    from .store import Store

#: Spans per request: well under the 4 MiB most receivers take by default.
BATCH = 500

_SELECT = """
    SELECT s.trace_id, s.span_id, s.parent_span_id, s.name, s.kind, s.start_ns, s.end_ns,
           s.status_code, s.status_message, s.scope_name, s.scope_version, s.resource,
           s.attributes,
           (SELECT list({{'t': e.time_ns, 'n': e.name, 'a': e.attributes}} ORDER BY e.time_ns)
              FROM span_events e
             WHERE e.trace_id = s.trace_id AND e.span_id = s.span_id) AS events,
           (SELECT list({{'t': l.linked_trace_id, 's': l.linked_span_id, 'a': l.attributes}})
              FROM span_links l
             WHERE l.trace_id = s.trace_id AND l.span_id = s.span_id) AS links
    FROM spans s WHERE {cond} ORDER BY s.start_ns, s.trace_id, s.span_id
"""


def any_value(v: Any) -> dict[str, Any]:
    """A JSON value as an OTLP/JSON ``AnyValue``."""
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, list):
        return {"arrayValue": {"values": [any_value(x) for x in v]}}
    if isinstance(v, dict):
        return {"kvlistValue": {"values": key_values(v)}}
    if v is None:
        return {}
    return {"stringValue": str(v)}


def key_values(attrs: dict[str, Any] | str | None) -> list[dict[str, Any]]:
    if isinstance(attrs, str):
        attrs = json.loads(attrs)
    return [{"key": k, "value": any_value(v)} for k, v in (attrs or {}).items()]


def _span(r: dict[str, Any]) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": r["trace_id"], "spanId": r["span_id"], "name": r["name"] or "",
        "kind": int(r["kind"] or 0), "startTimeUnixNano": str(r["start_ns"] or 0),
        "endTimeUnixNano": str(r["end_ns"] or 0), "attributes": key_values(r["attributes"]),
        "status": {"code": int(r["status_code"] or 0)},
    }
    if r["parent_span_id"]:
        span["parentSpanId"] = r["parent_span_id"]
    if r["status_message"]:
        span["status"]["message"] = r["status_message"]
    if r["events"]:
        span["events"] = [{"timeUnixNano": str(e["t"] or 0), "name": e["n"] or "",
                           "attributes": key_values(e["a"])} for e in r["events"]]
    if r["links"]:
        span["links"] = [{"traceId": ln["t"] or "", "spanId": ln["s"] or "",
                          "attributes": key_values(ln["a"])} for ln in r["links"]]
    return span


def requests(store: Store, flt: Filter | None = None,
             batch: int = BATCH) -> Iterator[tuple[dict[str, Any], int]]:
    """``(ExportTraceServiceRequest as a dict, spans in it)`` for the spans ``flt`` keeps,
    at most ``batch`` spans each, from one snapshot."""
    cond, args = where(TABLES["spans"], flt or Filter(), alias="s")
    with store.reading() as cur:  # (a compaction's swap waits for it)
        cur.execute("BEGIN TRANSACTION")
        rel = cur.sql(_SELECT.format(cond=cond), params=args)
        # (DuckDB 2 renamed fetch_arrow_reader)
        reader = (rel.to_arrow_reader(batch) if hasattr(rel, "to_arrow_reader")
                  else rel.fetch_arrow_reader(batch))
        for rb in reader:
            groups: dict[tuple, dict[tuple, list]] = {}
            for r in rb.to_pylist():
                scopes = groups.setdefault((r["resource"] or "",), {})
                scopes.setdefault((r["scope_name"], r["scope_version"]), []).append(_span(r))
            doc = {"resourceSpans": [
                {"resource": {"attributes": key_values(res[0] or None)},
                 "scopeSpans": [{"scope": {k: v for k, v in (("name", name),
                                                             ("version", version)) if v},
                                 "spans": spans}
                                for (name, version), spans in scopes.items()]}
                for res, scopes in groups.items()]}
            yield doc, rb.num_rows
        cur.execute("COMMIT")


def write(store: Store, dest: str | Path, flt: Filter | None = None,
          progress: Callable[[int], None] | None = None) -> int:
    """Write the spans as OTLP/JSON lines to ``dest``; the number of spans."""
    total = 0
    with open(dest, "w", encoding="utf-8") as out:
        for doc, n in requests(store, flt):
            out.write(json.dumps(doc, separators=(",", ":")) + "\n")
            total += n
            if progress:
                progress(total)
    return total


def send(store: Store, endpoint: str, flt: Filter | None = None,
         headers: dict[str, str] | None = None,
         progress: Callable[[int], None] | None = None) -> int:
    """POST the spans to an OTLP/HTTP endpoint (its base URL: ``/v1/traces`` is added
    unless the URL ends with it); the number of spans it accepted. Raises RuntimeError
    with the endpoint's answer when it refuses a request (the spans before it were sent)."""
    import httpx

    url = endpoint.rstrip("/")
    if not url.endswith("/v1/traces"):
        url += "/v1/traces"
    total = 0
    with httpx.Client(timeout=60, headers=headers or {}) as client:
        for doc, n in requests(store, flt):
            resp = client.post(url, content=json.dumps(doc, separators=(",", ":")),
                               headers={"Content-Type": "application/json"})
            if resp.status_code // 100 != 2:
                raise RuntimeError(f"{url}: HTTP {resp.status_code} after {total} spans: "
                                   f"{' '.join(resp.text.split())[:200]}")
            rejected = 0
            try:
                rejected = int(resp.json().get("partialSuccess", {}).get("rejectedSpans", 0))
            except (ValueError, AttributeError, TypeError):
                pass
            total += n - rejected
            if progress:
                progress(total)
    return total
