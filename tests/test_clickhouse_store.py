"""ClickHouse as the store (chDB: ClickHouse's own engine in this process): what a stock
OpenTelemetry Collector writes shows up on the pages; the workbench's receiver writes
the same tables, once per request; bad URLs get one line."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import uuid

import pytest

from workbench.intake import LocalIntake
from workbench.store.clickhouse import connect, otel_ddl
from workbench.store.clickhouse.ch_store import ClickHouseStore

from .chdb_folder import chdb_url

T0 = dt.datetime(2026, 11, 30, 9, 0, 0)

#: The exporter's own INSERT column lists (exporter/clickhouseexporter/internal/sqltemplates).
TRACE_COLUMNS = ["Timestamp", "TraceId", "SpanId", "ParentSpanId", "TraceState", "SpanName",
                 "SpanKind", "ServiceName", "ResourceAttributes", "ScopeName", "ScopeVersion",
                 "SpanAttributes", "Duration", "StatusCode", "StatusMessage",
                 "Events.Timestamp", "Events.Name", "Events.Attributes", "Links.TraceId",
                 "Links.SpanId", "Links.TraceState", "Links.Attributes"]
LOG_COLUMNS = ["Timestamp", "TraceId", "SpanId", "TraceFlags", "SeverityText",
               "SeverityNumber", "ServiceName", "Body", "ResourceSchemaUrl",
               "ResourceAttributes", "ScopeSchemaUrl", "ScopeName", "ScopeVersion",
               "ScopeAttributes", "LogAttributes"]
SUM_COLUMNS = ["ResourceAttributes", "ResourceSchemaUrl", "ScopeName", "ScopeVersion",
               "ScopeAttributes", "ScopeDroppedAttrCount", "ScopeSchemaUrl", "ServiceName",
               "MetricName", "MetricDescription", "MetricUnit", "Attributes", "StartTimeUnix",
               "TimeUnix", "Value", "Flags", "Exemplars.FilteredAttributes",
               "Exemplars.TimeUnix", "Exemplars.Value", "Exemplars.SpanId",
               "Exemplars.TraceId", "AggregationTemporality", "IsMonotonic"]


def _collector_rows(session: str, trace: str):
    """What the Collector's exporter inserts for a Claude Code session (its log events and
    token counter) and an SDK agent's trace: attribute values as strings, kinds and
    status codes by their proto names, ids in hex."""
    res = {"service.name": "claude-code", "host.name": "ci-7"}
    logs = []
    for i, (event, attrs) in enumerate([
        ("user_prompt", {"prompt_length": "120"}),
        ("api_request", {"model": "claude-sonnet-4-5", "input_tokens": "1200",
                         "output_tokens": "300", "cache_read_tokens": "5000",
                         "cost_usd": "0.042", "duration_ms": "2100"}),
        ("tool_result", {"tool_name": "Bash", "success": "false", "duration_ms": "40"}),
        ("api_error", {"model": "claude-sonnet-4-5", "status_code": "529",
                       "error": "overloaded"}),
        ("api_request", {"model": "claude-sonnet-4-5", "input_tokens": "800",
                         "output_tokens": "100", "cost_usd": "0.011"}),
    ]):
        logs.append([T0 + dt.timedelta(seconds=10 * i), "", "", 0, "INFO", 9, "claude-code",
                     f"claude_code.{event}", "", res, "", "com.anthropic.claude_code", "2.0",
                     {}, {"event.name": event, "session.id": session, **attrs}])
    sdk = {"service.name": "triage-bot"}
    root, child = "a1" * 8, "b2" * 8
    spans = [
        [T0, trace, root, "", "", "invoke_agent triage", "SPAN_KIND_INTERNAL", "triage-bot",
         sdk, "agents", "1.0", {"gen_ai.operation.name": "invoke_agent",
                                "gen_ai.agent.name": "triage-bot",
                                "gen_ai.conversation.id": "conv-c1"},
         5_000_000_000, "STATUS_CODE_UNSET", "", [T0], ["plan"], [{"step": "1"}], [], [], [],
         []],
        [T0 + dt.timedelta(seconds=1), trace, child, root, "", "chat gpt-5-mini",
         "SPAN_KIND_CLIENT", "triage-bot", sdk, "agents", "1.0",
         {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-5-mini",
          "gen_ai.usage.input_tokens": "700", "gen_ai.usage.output_tokens": "70",
          "gen_ai.conversation.id": "conv-c1"},
         2_000_000_000, "STATUS_CODE_ERROR", "rate limited", [], [], [], [trace], [root], [""],
         [{}]],
    ]
    points = [[res, "", "com.anthropic.claude_code", "2.0", {}, 0, "", "claude-code",
               "claude_code.token.usage", "tokens used", "tokens",
               {"session.id": session, "type": kind, "model": "claude-sonnet-4-5"},
               T0, T0 + dt.timedelta(minutes=m), value, 0, [], [], [], [], [], 1, True]
              for m, (kind, value) in enumerate([("input", 1200.0), ("output", 300.0),
                                                 ("input", 800.0)])]
    return spans, logs, points


def test_rows_a_collector_writes_show_as_sessions_traces_logs_and_metrics(tmp_path):
    url = chdb_url("collector")
    target = connect.parse(url)
    client = connect.client(target)
    # A Collector got there first, with the exporter's older logs table (no EventName).
    client.command(otel_ddl.LOGS.replace("EventName String CODEC(ZSTD(1)),", ""))
    store = ClickHouseStore(url, tmp_path / "control.duckdb")
    try:
        session, trace = "cc-" + uuid.uuid4().hex[:8], uuid.uuid4().hex
        spans, logs, points = _collector_rows(session, trace)
        client.insert("otel_traces", spans, column_names=TRACE_COLUMNS)
        client.insert("otel_logs", logs, column_names=LOG_COLUMNS)
        client.insert("otel_metrics_sum", points, column_names=SUM_COLUMNS)

        sessions = store.query("agent_sessions").set_index("session_id")
        cc = sessions.loc[session]
        assert cc.agent == "claude-code" and cc.models == "claude-sonnet-4-5"
        assert (cc.input_tokens, cc.output_tokens, cc.cache_read_tokens) == (2000, 400, 5000)
        assert cc.cost_usd == pytest.approx(0.053)
        assert (cc.model_calls, cc.tool_calls, cc.tool_failures, cc.api_errors) == (2, 1, 1, 1)
        assert sessions.loc["conv-c1"].agent == "triage-bot"
        assert sessions.loc["conv-c1"].input_tokens == 700

        traces = store.query("trace_list").set_index("trace_id")
        assert traces.loc[trace].root == "invoke_agent triage"
        assert (traces.loc[trace].spans, traces.loc[trace].errors) == (2, 1)
        assert traces.loc[trace].duration_ms == pytest.approx(5000)
        waterfall = store.query("trace_spans", trace_id=trace)
        assert list(waterfall.span_id) == ["a1" * 8, "b2" * 8]
        assert list(waterfall.kind) == [1, 3] and list(waterfall.status_code) == [0, 2]
        assert waterfall.parent_span_id.iloc[1] == "a1" * 8 and waterfall.events.iloc[0] == 1

        found = store.query("logs_search", session=session)
        assert sorted(found.event_name) == sorted(f"claude_code.{e}" for e in (
            "user_prompt", "api_request", "tool_result", "api_error", "api_request"))
        names = store.query("metric_names").set_index("name")
        assert list(names.loc["claude_code.token.usage"].attribute_keys) == [
            "model", "session.id", "type"]
        series = store.query("metric_series", name="claude_code.token.usage", group_by="type")
        assert series.groupby("grp")["increase"].sum().to_dict() == {"input": 800.0 + 1200,
                                                                      "output": 300.0}
        assert store.query("telemetry_agents").agent.tolist() == ["claude-code", "triage-bot"]
    finally:
        store.close()
        client.close()


def _request(service: str):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name",
                                           value=AnyValue(string_value=service)))
    spans = rs.scope_spans.add()
    for i in range(3):
        s = spans.spans.add(name=f"step {i}", trace_id=bytes(range(1, 17)),
                            span_id=bytes([i + 1] * 8), start_time_unix_nano=10**18 + i,
                            end_time_unix_nano=10**18 + 10**6)
        s.attributes.append(KeyValue(key="gen_ai.operation.name",
                                     value=AnyValue(string_value="chat")))
    # One span the DuckDB store refuses (a kind out of range) is refused here alike.
    spans.spans.add(name="bad", trace_id=bytes(range(1, 17)), span_id=b"\x09" * 8, kind=9)
    return req.SerializeToString()


def test_a_request_sent_again_is_stored_once(tmp_path):
    store = ClickHouseStore(chdb_url("resend"), tmp_path / "control.duckdb")
    try:
        intake = LocalIntake(store, ci_env={})
        body = _request("resender")
        for _ in range(3):  # (an exporter retrying after lost replies)
            assert intake.telemetry("traces", body, "application/x-protobuf") == 3
        assert store.query("telemetry_counts", service="resender").spans[0] == 3
        assert intake.telemetry("traces", _request("resender-2"), "application/x-protobuf") == 3
        assert store.query("telemetry_counts").spans[0] == 6
        assert store.health()["clickhouse"]["error"] is None
        assert store.versions["telemetry"] == 4  # (one per request stored, none per settle)
    finally:
        store.close()


@pytest.mark.parametrize("url,reason", [
    ("clickhouse://", "no host"),
    ("chdb://", "name the chDB folder"),
    ("chdb:///tmp/x?database=a-b", "is not a plain name"),
    ("clickhouse://h:8123/x;drop", "is not a plain name"),
    ("clickhouse://me:s3cret@h:8123/my-db", "is not a plain name"),
])
def test_bad_store_urls_are_refused_with_the_reason(url, reason):
    with pytest.raises(ValueError, match=reason) as refused:
        connect.parse(url)
    assert "s3cret" not in str(refused.value)  # (nor in the target's repr:)
    assert "s3cret" not in repr(connect.parse("clickhouse://me:s3cret@h:8123/db"))


def test_serve_refuses_an_unreachable_clickhouse_in_one_line(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "serve", "--port", "1", "--db",
         "clickhouse://default:secret@127.0.0.1:9/observatory"],
        capture_output=True, text=True, timeout=60, env={
            "OBSERVATORY_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "clickhouse://default@127.0.0.1:9/observatory" in lines[0]
    assert "secret" not in out.stderr


@pytest.mark.slow
def test_a_served_workbench_on_chdb_takes_sdk_exports_and_answers_its_api(tmp_path):
    """A real `observatory serve --db chdb:///…`: the OpenTelemetry SDK's own OTLP/HTTP
    exporter sends spans, the API answers from ClickHouse, health names it."""
    import httpx
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from workbench.client import RemoteStore

    from .conftest import Served

    url = f"chdb://{tmp_path / 'ch'}?database=served"
    server = Served(tmp_path / "served", ready_path="/api/health",
                    env={"OBSERVATORY_HOME": str(tmp_path), "OBSERVATORY_NO_DEMO": "1"},
                    argv=[sys.executable, "-m", "workbench.cli", "serve", "--address",
                          "127.0.0.1", "--port", "{port}", "--db", url])
    try:
        provider = TracerProvider(resource=Resource.create({"service.name": "sdk-served"}))
        provider.add_span_processor(SimpleSpanProcessor(
            OTLPSpanExporter(endpoint=server.url + "/v1/traces")))
        tracer = provider.get_tracer("served")
        for turn in range(4):
            with tracer.start_as_current_span("invoke_agent helper", attributes={
                    "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "helper",
                    "gen_ai.conversation.id": f"served-{turn % 2}"}):
                with tracer.start_as_current_span("chat m", attributes={
                        "gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 50,
                        "gen_ai.conversation.id": f"served-{turn % 2}"}):
                    pass
        provider.shutdown()
        health = httpx.get(server.url + "/api/health").json()
        assert health["clickhouse"]["url"].startswith("chdb://")
        assert health["db"].endswith("control.duckdb")
        with RemoteStore(server.url) as remote:
            assert remote.query("telemetry_counts", service="sdk-served").spans[0] == 8
            sessions = remote.query("agent_sessions").set_index("session_id")
            assert sessions.loc["served-0"].input_tokens == 100
            assert sessions.loc["served-1"].agent == "helper"
            assert len(remote.query("trace_list", service="sdk-served")) == 4
            assert remote.query("runs").empty  # (the tests' tables: this node's file)
        assert "Traceback" not in server.log.read_text()
    finally:
        server.stop()


def test_telemetry_stored_before_the_rollup_existed_is_rolled_up_once(tmp_path):
    """A database a Collector filled before the workbench first opened it: the hourly
    rollup is made from what is there (once), and rows arriving later are added by its
    views; the agents' figures equal the records'."""
    from workbench.store.clickhouse import agent_columns

    url = chdb_url("backfill")
    client = connect.client(connect.parse(url))
    for sql in (*otel_ddl.STATEMENTS, *agent_columns.statements()):
        client.command(sql)
    session, trace = "cc-" + uuid.uuid4().hex[:8], uuid.uuid4().hex
    spans, logs, _ = _collector_rows(session, trace)
    client.insert("otel_logs", logs, column_names=LOG_COLUMNS)
    client.insert("otel_traces", spans, column_names=TRACE_COLUMNS)
    try:
        for _opening in range(2):  # (the second opening rolls nothing up again)
            store = ClickHouseStore(url, tmp_path / "control.duckdb")
            cc = store.query("agent_sessions").set_index("session_id").loc[session]
            assert (cc.input_tokens, cc.api_errors) == (2000, 1)
            assert cc.cost_usd == pytest.approx(0.053)
            assert store.query("agent_totals").set_index("agent").loc["triage-bot"].sessions == 1
            store.close()
        store = ClickHouseStore(url, tmp_path / "control.duckdb")
        client.insert("otel_logs", logs[1:2], column_names=LOG_COLUMNS)  # (one more request)
        cc = store.query("agent_sessions").set_index("session_id").loc[session]
        assert cc.input_tokens == 3200 and cc.model_calls == 3
        # (5 + 1 log records and 2 spans, each once: not again at the second opening)
        assert store.ch_sql("SELECT sum(records) AS n FROM wb_agent_hourly").n[0] == 8
        store.close()
    finally:
        client.close()


def test_the_newest_traces_are_exact_when_a_trace_arrived_in_several_blocks(tmp_path):
    """The trace-id lookup holds a row per block a trace arrived in: a trace whose first
    span came in an older block is older, whatever its later spans say."""
    url = chdb_url("blocks")
    store = ClickHouseStore(url, tmp_path / "control.duckdb")
    client = connect.client(connect.parse(url))
    try:
        def span(trace: str, span_id: str, at: dt.datetime) -> list:
            return [at, trace, span_id, "", "", f"op {span_id}", "SPAN_KIND_INTERNAL",
                    "blocks", {}, "", "", {"gen_ai.operation.name": "chat"}, 1000,
                    "STATUS_CODE_UNSET", "", [], [], [], [], [], [], []]

        a, b = "a" * 32, "b" * 32
        client.insert("otel_traces", [span(a, "1" * 16, T0)], column_names=TRACE_COLUMNS)
        client.insert("otel_traces", [span(b, "2" * 16, T0 + dt.timedelta(hours=1))],
                      column_names=TRACE_COLUMNS)
        client.insert("otel_traces", [span(a, "3" * 16, T0 + dt.timedelta(hours=1, seconds=30))],
                      column_names=TRACE_COLUMNS)
        newest = store.query("trace_list", limit=1)
        assert newest.trace_id.tolist() == [b]
        both = store.query("trace_list", limit=2).set_index("trace_id")
        assert list(both.index) == [b, a]
        assert both.loc[a].spans == 2 and both.loc[a].started == T0
        assert both.loc[a].root == "op " + "1" * 16
    finally:
        client.close()
        store.close()


def test_the_schema_version_lives_in_the_database(tmp_path):
    """Migrations run once however many nodes open the database; a node older than the
    database refuses it in one line instead of putting its older views back."""
    from workbench.store import StoreWriteError
    from workbench.store.clickhouse import schema

    url = chdb_url("schema")
    for _ in range(2):
        ClickHouseStore(url, tmp_path / "control.duckdb").close()
    client = connect.client(connect.parse(url))
    try:
        rows = client.query("SELECT version FROM wb_schema ORDER BY version").result_rows
        assert rows == [(v,) for v, _ in schema.MIGRATIONS]  # (each once, in order)
        client.command(f"INSERT INTO wb_schema (version) VALUES ({schema.LATEST + 1})")
        with pytest.raises(StoreWriteError, match="newer workbench .*upgrade this node"):
            ClickHouseStore(url, tmp_path / "control.duckdb")
    finally:
        client.close()
