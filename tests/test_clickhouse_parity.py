"""The same telemetry on DuckDB and on ClickHouse (chDB: ClickHouse's engine in this
process) answers every named telemetry query the pages, API and MCP tools ask alike.

The data is the demo's agents plus what the OpenTelemetry SDK itself produces (spans with
typed attributes, logs, counters, gauges and histograms, encoded by the SDK's own OTLP
encoders), plus the OTLP project's example requests when ``../shared`` is present; each
reaches both stores through the receiver's own path. The one difference allowed is the
Collector's: its tables keep attribute values as strings (``7``→``"7"``), so attribute
JSON is compared with values as text, as the exporter writes them (``0.0`` as ``0``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.demo_telemetry import load_demo_telemetry
from workbench.ingest import otlp
from workbench.intake import LocalIntake
from workbench.store import Store, telemetry_queries
from workbench.store.clickhouse import ch_queries
from workbench.store.clickhouse.ch_store import ClickHouseStore
from workbench.store.clickhouse.otel_rows import double_text
from workbench.store.queries import QUERIES

from .chdb_folder import chdb_url

END = dt.datetime(2026, 12, 1, 12, 0, 0)
EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "opentelemetry-proto" \
    / "examples"


def _sdk_requests() -> list[tuple[str, bytes, str]]:
    """OTLP requests as the SDK builds them: its tracer, logger and meter, its encoders."""
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Link, Status, StatusCode

    resource = Resource.create({"service.name": "sdk-agent", "deployment": "ci"})
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    tracer = tracer_provider.get_tracer("parity", "1.0")
    for turn in range(6):
        with tracer.start_as_current_span("invoke_agent planner", attributes={
                "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner",
                "gen_ai.conversation.id": f"sdk-{turn % 3}", "flag": True,
                "tags": ["a", "b"], "weight": 0.25}) as root:
            root.add_event("plan", {"step": turn})
            for call in range(3):
                with tracer.start_as_current_span(f"chat model-{call % 2}", attributes={
                        "gen_ai.operation.name": "chat", "gen_ai.request.model": f"m{call % 2}",
                        "gen_ai.usage.input_tokens": 100 * (call + 1) + turn,
                        "gen_ai.usage.output_tokens": 10 * call, "gen_ai.usage.cost": 0.01 * call,
                        "gen_ai.conversation.id": f"sdk-{turn % 3}"},
                        links=[Link(root.get_span_context())]) as span:
                    if call == 2 and turn % 2:
                        span.set_status(Status(StatusCode.ERROR, "rate limited"))
            with tracer.start_as_current_span("execute_tool grep", attributes={
                    "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "grep",
                    "success": turn % 3 != 0, "gen_ai.conversation.id": f"sdk-{turn % 3}",
                    "file.path": f"src/pkg/m{turn}.py"}):
                pass
    logs = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    from opentelemetry._logs import LogRecord, SeverityNumber

    logger = logger_provider.get_logger("parity", "1.0")
    for i in range(12):
        logger.emit(LogRecord(
            timestamp=int((END - dt.timedelta(hours=i)).timestamp() * 1e9),
            body=f"tool result {i}", severity_number=SeverityNumber.WARN,
            severity_text="WARN", event_name="sdk.tool_result" if i % 2 else None,
            attributes={"session.id": f"sdk-{i % 3}", "tool_name": "grep",
                        "duration_ms": i * 3.5, "success": i % 4 != 0}))
    reader = InMemoryMetricReader()
    meter = MeterProvider(resource=resource, metric_readers=[reader]).get_meter("parity")
    tokens = meter.create_counter("gen_ai.client.token.usage.total")
    latency = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
    for i in range(20):
        tokens.add(10 + i, {"gen_ai.token.type": "input" if i % 2 else "output",
                            "gen_ai.request.model": f"m{i % 2}"})
        latency.record(0.05 * (i + 1), {"gen_ai.request.model": f"m{i % 2}"})
    meter.create_up_down_counter("queue.depth").add(5, {"queue": "q1"})
    return [("traces", encode_spans(spans.get_finished_spans()).SerializeToString(),
             otlp.PROTOBUF),
            ("logs", encode_logs(logs.get_finished_logs()).SerializeToString(), otlp.PROTOBUF),
            ("metrics", encode_metrics(reader.get_metrics_data()).SerializeToString(),
             otlp.PROTOBUF)]


def _example_requests() -> list[tuple[str, bytes, str]]:
    if not EXAMPLES.is_dir():
        return []  # (a user's checkout has no ../shared; CI's does)
    signals = {"trace.json": "traces", "logs.json": "logs", "metrics.json": "metrics",
               "events.json": "logs"}
    return [(signal, (EXAMPLES / name).read_bytes(), otlp.JSON)
            for name, signal in signals.items() if (EXAMPLES / name).is_file()]


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ch-parity")
    duck = Store(folder / "duck.duckdb")
    ch = ClickHouseStore(chdb_url("parity"), folder / "control.duckdb")
    requests = [*_sdk_requests(), *_example_requests()]
    for store in (duck, ch):
        assert load_demo_telemetry(store, END) > 1000
        intake = LocalIntake(store, ci_env={})
        for signal, body, kind in requests:
            intake.telemetry(signal, body, kind)
        store.settle()
    yield duck, ch
    ch.close()
    duck.close()


def _norm(v):
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, np.ndarray | list | tuple):
        return tuple(_norm(x) for x in v)
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return round(v, 6)
    if isinstance(v, str) and v[:1] == "{":
        try:
            return json.dumps(_as_text(json.loads(v)), sort_keys=True)
        except ValueError:
            return v
    return v


def _as_text(d):
    """Attribute values as the Collector's tables hold them."""
    if isinstance(d, dict):
        return {k: _as_text(x) for k, x in d.items()}
    if isinstance(d, bool):
        return "true" if d else "false"
    if isinstance(d, float):
        return double_text(d)
    if isinstance(d, int):
        return str(d)
    if isinstance(d, list):
        return json.dumps(d, separators=(",", ":"))
    return d


def _rows(df: pd.DataFrame) -> list[tuple]:
    return [tuple(_norm(v) for v in row) for row in df.itertuples(index=False)]


def _cases(duck: Store) -> list[tuple[str, dict]]:
    """Every ClickHouse query with parameter sets that return rows and exercise each
    filter: agent, service, session, model, a window, text, errors, paging, metrics by
    each attribute key and bucket size."""
    spans = duck.query("spans_search", limit=1000)
    trace = spans.trace_id.iloc[0]
    sdk_trace = spans[spans.service_name == "sdk-agent"].trace_id.iloc[0]
    session = spans.session_id.dropna().iloc[0]
    window = {"since": END - dt.timedelta(days=3), "until": END - dt.timedelta(hours=30)}
    filters = [{}, {"agent": "claude-code"}, {"agent": "planner"}, {"service": "codex"},
               {"session": session}, {"model": "m1"}, window, {"agent": "codex", **window},
               {"text": "grep"}, {"text": "a"}, {"text": "src/pkg/m3"}, {"errors_only": True},
               {"min_ms": 5000},
               {"limit": 7, "offset": 3},
               # (short pages: trace_list's way through the trace-id lookup)
               {"limit": 5}, {"errors_only": True, "limit": 2, "offset": 1},
               {"text": "chat", "limit": 3}, {**window, "limit": 4},
               {"min_ms": 5000, "limit": 2}, {"agent": "planner", "limit": 1}]
    cases = []
    for name in sorted(_telemetry_dialects()):
        if name in ("metric_series", "metric_histogram"):
            continue
        for f in filters:
            params = dict(f)
            if name == "trace_spans":
                params = {"trace_id": trace}
            elif name == "span_count_like":
                params = {"text": f.get("text", "chat")}
            cases.append((name, params))
    cases.append(("trace_spans", {"trace_id": sdk_trace}))
    cases += [("timeline_buckets", {"bucket_s": 1512}),
              ("timeline_buckets", {**window, "bucket_s": 5040}),
              # (whole hours: the activity rollup's way, with the window's partial hours)
              ("timeline_buckets", {"bucket_s": 3600}),
              ("timeline_buckets", {**window, "bucket_s": 7200}),
              ("timeline_buckets", {"agent": "claude-code", **window, "bucket_s": 7200}),
              ("timeline_buckets", {"service": "codex", "bucket_s": 21600}),
              ("timeline_buckets", {"session": session, "bucket_s": 3600}),
              ("timeline_buckets", {"since": END - dt.timedelta(days=2, minutes=17),
                                    "until": END - dt.timedelta(hours=5, minutes=41),
                                    "bucket_s": 3600})]
    metrics = duck.query("metric_names")
    for m in metrics.itertuples():
        for group_by in ["", *(list(m.attribute_keys) if m.attribute_keys is not None else [])]:
            for bucket_s in (60, 1512, 3600):  # (1512: a 7-day window's, not whole hours)
                for name in ("metric_series", "metric_histogram"):
                    cases.append((name, {"name": m.name, "group_by": group_by,
                                         "bucket_s": bucket_s}))
    return cases


def _telemetry_dialects() -> set[str]:
    """The ClickHouse dialects of telemetry queries (test results' are compared in
    test_clickhouse_results)."""
    return {name for name, fn in ch_queries.QUERIES.items()
            if fn.__module__ == ch_queries.__name__}


def test_every_telemetry_query_has_a_clickhouse_dialect():
    duckdb_names = {name for name, fn in QUERIES.items()
                    if fn.__module__ == telemetry_queries.__name__}
    assert duckdb_names == _telemetry_dialects()


def differences(duck: Store, ch: ClickHouseStore, cases: list[tuple[str, dict]],
                drop: tuple[str, ...] = (), theirs=lambda params: params
                ) -> tuple[list[str], int]:
    """Each case asked of both stores (of ClickHouse with ``theirs(params)``), the
    columns ``drop`` names left out: what differs, in values or types, and how many
    answers were empty."""
    different, empty = [], 0
    for name, params in cases:
        a, b = duck.query(name, **params), ch.query(name, **theirs(params))
        a, b = (x.drop(columns=list(drop), errors="ignore") for x in (a, b))
        assert list(a.columns) == list(b.columns), name
        dtypes = [(c, str(x), str(y)) for c, x, y in zip(a.columns, a.dtypes, b.dtypes,
                                                          strict=True) if x != y]
        if dtypes and len(a) and len(b):
            different.append(f"{name} {params}: dtypes {dtypes}")
        if _rows(a) != _rows(b):
            pairs = [(x, y) for x, y in zip(_rows(a), _rows(b), strict=False) if x != y][:1]
            cols = [(c, u, v) for x, y in pairs
                    for c, u, v in zip(a.columns, x, y, strict=True) if u != v]
            different.append(f"{name} {params}: {len(a)} rows vs {len(b)}; {cols}")
        empty += a.empty
    return different, empty


def test_telemetry_queries_answer_alike(both):
    duck, ch = both
    cases = _cases(duck)
    assert len(cases) > 200
    different, empty = differences(duck, ch, cases)
    assert not different, f"{len(different)} differ:\n" + "\n".join(different[:10])
    assert empty < len(cases) / 3  # (the cases find data: a comparison of nothing proves little)


def test_observatory_copy_keeps_every_answer(both, tmp_path, capsys):
    """`observatory copy --from FILE --to URL`: the file's telemetry answers every query
    alike from ClickHouse, its runs and the rest are the node's control file, and a second
    copy into the same database is refused. (In this process: chDB's folder is one per
    process, and this one's is open.)"""
    from workbench.cli import main
    from workbench.demo import load_demo
    from workbench.store.upkeep import backup

    duck, _ = both
    duck.settle()
    source = backup(duck, tmp_path / "backups").path  # (a consistent copy of the open file)
    with Store(source) as s:  # (and some runs, so that the control file has something)
        load_demo(s)
        runs = len(s.query("runs"))
    url = chdb_url("copied")
    control = tmp_path / "control.duckdb"
    argv = ["copy", "--from", str(source), "--to", url, "--control", str(control)]
    assert main(argv) == 0
    said = capsys.readouterr()
    assert "copied" in said.out and str(control) in said.out and not said.err
    copied = ClickHouseStore(url, control)
    try:
        with Store(source) as original:
            for name, params in _cases(original):
                a, b = original.query(name, **params), copied.query(name, **params)
                assert _rows(a) == _rows(b), (name, params, _rows(a)[:2], _rows(b)[:2])
        assert len(copied.query("runs")) == runs
        assert copied.sql("SELECT count(*) AS n FROM spans").n[0] == 0  # (ClickHouse has them)
    finally:
        copied.close()
    control.rename(tmp_path / "aside.duckdb")
    assert main(argv) != 0
    said = capsys.readouterr()
    assert said.err.count("\n") == 1 and "already holds" in said.err
    assert not control.exists()
