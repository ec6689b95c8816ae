"""The agent columns of a span or log record, as ClickHouse expressions.

The DuckDB store derives them in Python at ingest (:func:`workbench.ingest.genai.agent_fields`).
Here they are materialised columns of the Collector's own tables, computed by ClickHouse
when a row is inserted, by whoever inserts it (a stock Collector included), and stored
like any column. The expressions are generated from the same table of attribute names
(:data:`~workbench.ingest.genai.FIELDS`), so the two stores cannot drift apart.

Attribute values in the Collector's tables are strings (``AsString``: ``"12"``,
``"true"``), so the numeric fields parse them as the Python side parses strings.
"""

from __future__ import annotations

from ...ingest import genai

_INTS = {"input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens",
         "reasoning_tokens"}
_KIND = "Nullable(String)"
#: Text with few distinct values (agents, models, operations, tools, providers, event
#: names, decisions): dictionary-encoded, which is what makes grouping 100M rows by them
#: fast. Sessions and prompts are many: plain text.
_FEW = "LowCardinality(Nullable(String))"
_MANY = {"session_id", "prompt_id"}


def _lit(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _first(attrs: str, keys: tuple[str, ...], convert=lambda v: v) -> str:
    """The value of the first of ``keys`` present in the map (converted), else NULL."""
    arms = []
    for key in keys:
        arms += [f"mapContains({attrs}, {_lit(key)})", convert(f"{attrs}[{_lit(key)}]")]
    return f"multiIf({', '.join(arms)}, NULL)"


def _number(value: str) -> str:
    """A finite float parsed from a string, else NULL."""
    return f"if(isFinite(ifNull(toFloat64OrNull({value}), nan)), toFloat64OrNull({value}), NULL)"


def _integer(value: str) -> str:
    """A whole number (truncated, as Python's ``int(float(v))``) an Int64 holds, else NULL."""
    n = _number(value)
    return f"if(abs(ifNull({n}, 1e300)) < 9.2e18, toInt64({n}), NULL)"


def columns(attrs: str, service: str, *, status: str | None, event: str | None
            ) -> list[tuple[str, str, str]]:
    """``(name, type, expression)`` of every agent column, in dependency order: later
    expressions name earlier columns (ClickHouse computes them in order)."""
    out: list[tuple[str, str, str]] = []
    for field, keys in genai.FIELDS.items():
        if field in _INTS:
            out.append((field, "Nullable(Int64)", _first(attrs, keys, _integer)))
        elif field == "cost_usd":
            out.append((field, "Nullable(Float64)", _first(attrs, keys, _number)))
        elif field != "agent_name":
            out.append((field, _KIND if field in _MANY else _FEW, _first(attrs, keys)))
    kinds = genai.OPENINFERENCE_KINDS
    openinference = (
        f"nullIf(transform(upper({attrs}['openinference.span.kind']), "
        f"[{', '.join(map(_lit, kinds))}], [{', '.join(map(_lit, kinds.values()))}], ''), '')")
    arms = [f"if(mapContains({attrs}, 'gen_ai.operation.name'), "
            f"{attrs}['gen_ai.operation.name'], NULL)",
            f"if(mapContains({attrs}, 'openinference.span.kind'), {openinference}, NULL)"]
    if event:
        ops = genai.EVENT_OPERATIONS
        arms.append(f"nullIf(transform(splitByChar('.', ifNull({event}, ''))[-1], "
                    f"[{', '.join(map(_lit, ops))}], [{', '.join(map(_lit, ops.values()))}], "
                    f"''), '')")
    out.append(("operation", _FEW, f"coalesce({', '.join(arms)})"))
    success = (f"lower(multiIf(mapContains({attrs}, 'success'), {attrs}['success'], "
               f"{attrs}['tool.success']))")
    http = _first(attrs, ("status_code", "http.status_code"), _integer)
    failed = [f"{success} = 'false'", f"mapContains({attrs}, 'error.type')",
              "ifNull(operation = 'api_error', false)", f"ifNull({http} >= 400, false)"]
    if status:
        failed.insert(0, f"{status} = 'STATUS_CODE_ERROR'")
    out.append(("is_error", "Bool", " OR ".join(failed)))
    signal = " OR ".join(f"{c} IS NOT NULL" for c in (
        "operation", "model", "session_id", "input_tokens", "output_tokens", "tool_name",
        "cost_usd"))
    named = _first(attrs, genai.FIELDS["agent_name"])
    out.append(("agent_name", _FEW,
                f"coalesce({named}, if({signal}, nullIf({service}, ''), NULL))"))
    return out


def _event(attrs: str, body: str, column: str) -> str:
    """The log record's full event name (:func:`workbench.ingest.genai.event_name`): the
    record's own (``EventName``), else its ``event.name`` attribute; the body when that
    ends with it (``claude_code.api_request`` for ``api_request``)."""
    name = (f"if({column} != '', {column}, if(mapContains({attrs}, 'event.name'), "
            f"{attrs}['event.name'], NULL))")
    return (f"if({name} != '' AND ({body} = {name} OR endsWith({body}, concat('.', {name}))),"
            f" {body}, nullIf({name}, ''))")


#: Prefix of the workbench's columns in the Collector's tables (it owns no other name).
PREFIX = "wb_"


def _prefixed(expr: str, names: list[str]) -> str:
    """Name the earlier materialised columns by their prefixed names."""
    import re

    for name in sorted(names, key=len, reverse=True):
        expr = re.sub(rf"(?<![\w.']){name}(?![\w'])", PREFIX + name, expr)
    return expr


def statements() -> list[str]:
    """``ALTER TABLE … ADD COLUMN IF NOT EXISTS`` for the spans' and logs' agent columns,
    and the logs' event name, decision and duration."""
    out = []
    span_cols = columns("SpanAttributes", "ServiceName", status="StatusCode", event=None)
    log_cols = [("event_name", _FEW, _event("LogAttributes", "Body", "EventName")),
                *columns("LogAttributes", "ServiceName", status=None, event="event_name"),
                ("decision", _FEW, _first("LogAttributes", ("decision", "tool.decision"))),
                ("duration_ms", "Nullable(Float64)",
                 _first("LogAttributes", ("duration_ms",), _number))]
    for table, cols in (("otel_traces", span_cols), ("otel_logs", log_cols)):
        done: list[str] = []
        for name, kind, expr in cols:
            out.append(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {PREFIX}{name} {kind} "
                       f"MATERIALIZED {_prefixed(expr, done)}")
            done.append(name)
    return out
