"""The OTLP receiver in a real served workbench, driven by the OpenTelemetry SDK's exporters."""

from __future__ import annotations

import gzip
import json
import time
import uuid

import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.sdk.resources import Resource

from workbench.client import RemoteStore

from .conftest import Served, free_port

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow

PROTOCOLS = ["protobuf", "json"]


def exporters(protocol: str):
    if protocol == "protobuf":
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.json.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.json.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter, OTLPLogExporter, OTLPMetricExporter


def counts(remote, service):
    return remote.query("telemetry_counts", service=service).iloc[0].to_dict()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_sdk_traces_round_trip(server, remote, protocol):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import Link, Status, StatusCode

    span_exporter = exporters(protocol)[0]
    service = f"sdk-traces-{protocol}-{uuid.uuid4().hex[:6]}"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(
        BatchSpanProcessor(span_exporter(endpoint=server.url + "/v1/traces"))
    )
    tracer = provider.get_tracer("tests", "1.0")
    with tracer.start_as_current_span(
        "root", attributes={"s": "x", "i": 7, "f": 1.5, "b": True, "l": ["a", "b"]}
    ) as root:
        root.add_event("checkpoint", {"step": 1})
        for i in range(99):
            with tracer.start_as_current_span(
                f"child-{i}", links=[Link(root.get_span_context())]
            ) as c:
                if i == 0:
                    c.set_status(Status(StatusCode.ERROR, "boom"))
    provider.shutdown()
    assert counts(remote, service) == {
        "spans": 100,
        "span_events": 1,
        "logs": 0,
        "metric_points": 0,
    }
    spans = remote.query("spans_search", service=service, limit=500)
    root_row = spans[spans.name == "root"].iloc[0]
    assert json.loads(root_row.attributes) == {
        "s": "x",
        "i": 7,
        "f": 1.5,
        "b": True,
        "l": ["a", "b"],
    }
    tree = remote.query("trace_spans", trace_id=root_row.trace_id)
    assert len(tree) == 100 and (tree.parent_span_id == root_row.span_id).sum() == 99
    assert tree[tree.name == "child-0"].status_code.item() == 2


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_sdk_logs_round_trip(server, remote, protocol):
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    log_exporter = exporters(protocol)[1]
    service = f"sdk-logs-{protocol}-{uuid.uuid4().hex[:6]}"
    provider = LoggerProvider(resource=Resource.create({"service.name": service}))
    provider.add_log_record_processor(
        BatchLogRecordProcessor(log_exporter(endpoint=server.url + "/v1/logs"))
    )
    logger = provider.get_logger("tests")
    for i in range(50):
        logger.emit(
            body=f"message {i}",
            severity_number=SeverityNumber.WARN,
            attributes={"i": i, "event.name": "test.event"},
        )
    provider.shutdown()
    assert counts(remote, service)["logs"] == 50
    logs = remote.query("logs_search", service=service, text="message 7")
    assert set(logs.body) == {"message 7"}
    assert json.loads(logs.attributes.iloc[0])["i"] == 7 and logs.severity_number.iloc[0] == 13


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_sdk_metrics_round_trip(server, remote, protocol):
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    metric_exporter = exporters(protocol)[2]
    service = f"sdk-metrics-{protocol}-{uuid.uuid4().hex[:6]}"
    reader = PeriodicExportingMetricReader(
        metric_exporter(endpoint=server.url + "/v1/metrics"), export_interval_millis=60_000
    )
    provider = MeterProvider(
        resource=Resource.create({"service.name": service}), metric_readers=[reader]
    )
    meter = provider.get_meter("tests")
    counter = meter.create_counter("requests", unit="1")
    hist = meter.create_histogram("latency", unit="ms")
    for i in range(10):
        counter.add(1, {"route": "/a" if i % 2 else "/b"})
        hist.record(i * 10, {"route": "/a"})
    provider.shutdown()
    with RemoteStore(server.url) as r:
        n = counts(r, service)["metric_points"]
    assert n == 3  # two counter series and one histogram series


def test_coding_agent_session_is_derived(server, remote):
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

    log_exporter = exporters("protobuf")[1]
    session = f"sess-{uuid.uuid4().hex[:8]}"
    provider = LoggerProvider(resource=Resource.create({"service.name": "claude-code"}))
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(log_exporter(endpoint=server.url + "/v1/logs"))
    )
    logger = provider.get_logger("com.anthropic.claude_code.events")
    common = {"session.id": session, "prompt.id": "p1"}
    logger.emit(
        body="claude_code.user_prompt",
        attributes={**common, "event.name": "user_prompt", "prompt_length": "42"},
    )
    for cost in ("0.01", "0.02"):
        logger.emit(
            body="claude_code.api_request",
            attributes={
                **common,
                "event.name": "api_request",
                "model": "claude-sonnet-4",
                "cost_usd": cost,
                "input_tokens": "100",
                "output_tokens": "20",
                "cache_read_tokens": "500",
                "cache_creation_tokens": "7",
                "duration_ms": "900",
            },
        )
    logger.emit(
        body="claude_code.tool_result",
        attributes={**common, "event.name": "tool_result", "tool_name": "Bash", "success": "false"},
    )
    logger.emit(
        body="claude_code.api_error",
        attributes={
            **common,
            "event.name": "api_error",
            "status_code": "529",
            "error": "overloaded",
        },
    )
    provider.shutdown()
    row = remote.query("agent_sessions", session=session).iloc[0]
    assert row.agent == "claude-code" and row.models == "claude-sonnet-4"
    assert (
        row.input_tokens,
        row.output_tokens,
        row.cache_read_tokens,
        row.cache_creation_tokens,
    ) == (200, 40, 1000, 14)
    assert row.cost_usd == pytest.approx(0.03)
    assert (row.model_calls, row.tool_calls, row.tool_failures, row.api_errors) == (2, 1, 1, 1)


def post(url, body, ctype="application/x-protobuf", **headers):
    return httpx.post(url, content=body, headers={"Content-Type": ctype, **headers}, timeout=30)


def status_message(resp) -> str:
    if resp.headers["Content-Type"].startswith("application/json"):
        return resp.json()["message"]
    return status_pb2.Status.FromString(resp.content).message


@pytest.mark.parametrize(
    "body,headers,status,message",
    [
        (b"\x0a\xff\xff\xff\xff\x0f", {}, 400, "undecodable protobuf"),
        (b"{}", {"Content-Type": "text/plain"}, 415, "unsupported Content-Type"),
        (gzip.compress(b"x" * 1000, mtime=0)[:-9], {"Content-Encoding": "gzip"}, 400, "truncated gzip"),
        (b'{"resourceSpans": [{"x": "\xff"}]}', {"Content-Type": "application/json"}, 400, "UTF-8"),
        (b"{" * 50_000, {"Content-Type": "application/json"}, 400, "invalid JSON"),
    ],
)
def test_hostile_requests_store_nothing(server, remote, body, headers, status, message):
    before = remote.query("telemetry_counts").iloc[0].to_dict()
    ctype = headers.pop("Content-Type", "application/x-protobuf")
    resp = post(server.url + "/v1/traces", body, ctype, **headers)
    assert resp.status_code == status and message in status_message(resp)
    assert remote.query("telemetry_counts").iloc[0].to_dict() == before
    assert httpx.get(server.url + "/api/health").json()["ok"]


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """A second server: small body limit, tokens required, OTLP also on its own port."""
    otlp_port = free_port()
    db = tmp_path_factory.mktemp("limited") / "limited.duckdb"
    s = Served(
        db,
        env={
            "OBSERVATORY_OTLP_MAX_BYTES": "200000",
            "OBSERVATORY_TOKENS": "tok",
            "OBSERVATORY_NO_DEMO": "1",
        },
        extra_args=("--otlp-port", str(otlp_port)),
    )
    s.otlp_url = f"http://127.0.0.1:{otlp_port}"
    yield s
    s.stop()


def test_gzip_bomb_and_oversized_bodies_get_413(limited):
    auth = {"Authorization": "Bearer tok"}
    bomb = gzip.compress(b"\x00" * 150_000_000)  # 150 MB of zeros in ~146 KB (< the limit)
    start = time.monotonic()
    resp = post(limited.url + "/v1/traces", bomb, **{"Content-Encoding": "gzip"}, **auth)
    assert resp.status_code == 413 and "inflates to over" in status_message(resp)
    assert time.monotonic() - start < 5
    resp = post(limited.url + "/v1/traces", b"\x00" * 300_000, **auth)
    assert resp.status_code == 413


def test_standard_port_listener_and_tokens(limited):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    assert post(limited.otlp_url + "/v1/traces", b"").status_code == 401
    provider = TracerProvider(resource=Resource.create({"service.name": "port-4318"}))
    provider.add_span_processor(
        SimpleSpanProcessor(
            OTLPSpanExporter(
                endpoint=limited.otlp_url + "/v1/traces", headers={"Authorization": "Bearer tok"}
            )
        )
    )
    with provider.get_tracer("t").start_as_current_span("hello"):
        pass
    provider.shutdown()
    with RemoteStore(limited.url, token="tok") as r:
        assert counts(r, "port-4318")["spans"] == 1


def test_empty_request_is_accepted(server):
    resp = post(server.url + "/v1/logs", b"{}", "application/json")
    assert resp.status_code == 200 and resp.json() == {}


def test_exponential_histograms_from_short_lived_agents_have_percentiles(server, remote):
    """Two agent processes each record a few tool durations and exit, with the SDK's
    base-2 exponential aggregation: the Metrics tab's percentiles are there (they came
    back empty, "No points", when only explicit buckets were read)."""
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import Histogram, MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.metrics.view import (
        ExponentialBucketHistogramAggregation,
        View,
    )

    from workbench.models.telemetry import AgentTelemetry

    service = f"short-lived-{uuid.uuid4().hex[:6]}"
    for values in ((12, 40, 300), (15, 45, 250, 5000)):  # two runs of the agent
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=server.url + "/v1/metrics"),
            export_interval_millis=60_000)
        provider = MeterProvider(
            resource=Resource.create({"service.name": service}), metric_readers=[reader],
            views=[View(instrument_type=Histogram,
                        aggregation=ExponentialBucketHistogramAggregation())])
        hist = provider.get_meter("agent").create_histogram(f"{service}.tool_ms", unit="ms")
        for v in values:
            hist.record(v, {"tool": "Bash"})
        provider.shutdown()  # a short-lived process: one export, at exit
    model = AgentTelemetry(store=remote)
    names = model.metric_names().set_index("name")
    assert names.at[f"{service}.tool_ms", "type"] == "exponential_histogram"
    df = model.metric(f"{service}.tool_ms")
    assert not df.empty
    # Runs of 12 40 300 and 15 45 250 5000 ms (one time bucket or two): every bucket's
    # median lies among the middle values, and the slow call shows in the tail.
    assert df["p50"].between(12, 300).all(), df
    assert 250 <= df["p99"].max() <= 6000
