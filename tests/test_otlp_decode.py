"""OTLP decoding, validation and the GenAI / coding-agent mapping, without a server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from workbench.ingest import otlp
from workbench.ingest.genai import agent_fields, event_name

EXAMPLES = (
    Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "opentelemetry-proto" / "examples"
)


def kv(key, **value):
    return KeyValue(key=key, value=AnyValue(**value))


def span_request(*spans):
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(kv("service.name", string_value="svc"))
    ss = rs.scope_spans.add()
    for s in spans:
        ss.spans.append(s)
    return req


def good_span(name="ok", **attrs):
    req = span_request()
    s = req.resource_spans[0].scope_spans[0].spans.add()
    s.trace_id, s.span_id, s.name = bytes(range(1, 17)), bytes(range(1, 9)), name
    s.start_time_unix_nano, s.end_time_unix_nano = (
        1_700_000_000_000_000_000,
        1_700_000_000_500_000_000,
    )
    for k, v in attrs.items():
        s.attributes.append(kv(k, string_value=v) if isinstance(v, str) else kv(k, int_value=v))
    return s


def test_json_hex_ids_string_int64s_and_unknown_fields():
    body = json.dumps(
        {
            "resourceSpans": [
                {
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "traceId": "5B8EFFF798038103D269B633813FC60C",
                                    "spanId": "EEE19B7EC3C1B174",
                                    "name": "x",
                                    "kind": 2,
                                    "startTimeUnixNano": "1544712660000000000",
                                    "endTimeUnixNano": "1544712661000000000",
                                    "someFutureField": {"a": 1},
                                    "attributes": [
                                        {"key": "n", "value": {"intValue": "9007199254740993"}}
                                    ],
                                }
                            ]
                        }
                    ]
                }
            ]
        }
    ).encode()
    batch = otlp.flatten("traces", otlp.decode("traces", body, "application/json"))
    (row,) = batch.tables["spans"]
    assert (
        row["trace_id"] == "5b8efff798038103d269b633813fc60c"
        and row["span_id"] == "eee19b7ec3c1b174"
    )
    assert row["duration_ms"] == 1000.0 and row["kind"] == 2
    assert json.loads(row["attributes"]) == {"n": 9007199254740993}


def test_invalid_spans_are_rejected_the_rest_kept():
    req = span_request(good_span())
    bad = req.resource_spans[0].scope_spans[0].spans.add()
    bad.trace_id, bad.span_id, bad.name = b"\x00" * 16, b"\x01" * 8, "zero trace"
    batch = otlp.flatten("traces", otlp.decode("traces", req.SerializeToString(), otlp.PROTOBUF))
    assert (batch.accepted, batch.rejected) == (1, 1)
    body, ctype = otlp.encode_response("traces", batch, otlp.JSON)
    resp = json.loads(body)
    assert (
        resp["partialSuccess"]["rejectedSpans"] == "1"
        and "zero trace" in resp["partialSuccess"]["errorMessage"]
    )


@pytest.mark.parametrize(
    "body,ctype,status",
    [
        (b"\xff\x00garbage", otlp.PROTOBUF, 400),
        (b"{not json", otlp.JSON, 400),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}', otlp.JSON, 400),
        (b'{"resourceSpans": "nope"}', otlp.JSON, 400),
        (b"\xc3\x28", otlp.JSON, 400),
        (b"{}", "text/plain", 415),
        (b"[" * 100_000 + b"]" * 100_000, otlp.JSON, 400),
    ],
)
def test_undecodable_bodies(body, ctype, status):
    with pytest.raises(otlp.OTLPError) as err:
        otlp.decode("traces", body, ctype)
    assert err.value.status == status and "\n" not in str(err.value)


def test_deeply_nested_attribute_values_are_refused():
    value = AnyValue(string_value="leaf")
    for _ in range(otlp.MAX_DEPTH + 5):
        value = AnyValue(array_value={"values": [value]})
    s = good_span()
    s.attributes.append(KeyValue(key="deep", value=value))
    with pytest.raises(otlp.OTLPError, match="nested deeper"):
        otlp.flatten("traces", span_request(s))


def test_invalid_utf8_in_protobuf_strings_is_refused():
    req = span_request(good_span(name="placeholder"))
    raw = req.SerializeToString().replace(b"placeholder", b"bad\xff\xfename!")
    with pytest.raises(otlp.OTLPError) as err:
        otlp.decode("traces", raw, otlp.PROTOBUF)
    assert err.value.status == 400


def test_claude_code_event_mapping():
    attrs = {
        "event.name": "api_request",
        "session.id": "s-1",
        "prompt.id": "p-1",
        "model": "claude-sonnet-4",
        "input_tokens": "120",
        "output_tokens": "30",
        "cache_read_tokens": "1000",
        "cache_creation_tokens": "5",
        "cost_usd": "0.0123",
        "duration_ms": "850",
    }
    name = event_name(None, attrs, "claude_code.api_request")
    assert name == "claude_code.api_request"
    f = agent_fields(attrs, "claude-code", event=name)
    assert f == {
        "agent_name": "claude-code",
        "session_id": "s-1",
        "prompt_id": "p-1",
        "provider": None,
        "model": "claude-sonnet-4",
        "input_tokens": 120,
        "output_tokens": 30,
        "cache_read_tokens": 1000,
        "cache_creation_tokens": 5,
        "reasoning_tokens": None,
        "cost_usd": 0.0123,
        "tool_name": None,
        "operation": "chat",
        "is_error": False,
    }
    tool = agent_fields(
        {"event.name": "tool_result", "tool_name": "Bash", "success": "false", "session.id": "s-1"},
        "claude-code",
        event="claude_code.tool_result",
    )
    assert (tool["operation"], tool["tool_name"], tool["is_error"]) == (
        "execute_tool",
        "Bash",
        True,
    )


def test_genai_semconv_older_names_and_openinference():
    new = agent_fields(
        {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "planner",
            "gen_ai.conversation.id": "c1",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-5",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.cache_read.input_tokens": 4,
        },
        "app",
    )
    assert (new["agent_name"], new["session_id"], new["provider"], new["cache_read_tokens"]) == (
        "planner",
        "c1",
        "openai",
        4,
    )
    old = agent_fields(
        {
            "gen_ai.system": "anthropic",
            "gen_ai.usage.prompt_tokens": 7,
            "gen_ai.usage.completion_tokens": 3,
        },
        "svc",
    )
    assert (old["provider"], old["input_tokens"], old["output_tokens"], old["agent_name"]) == (
        "anthropic",
        7,
        3,
        "svc",
    )
    oi = agent_fields(
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "m",
            "llm.token_count.prompt": 11,
            "session.id": "s",
        },
        "lg-app",
    )
    assert (oi["operation"], oi["model"], oi["input_tokens"], oi["session_id"]) == (
        "chat",
        "m",
        11,
        "s",
    )
    plain = agent_fields({"http.route": "/x"}, "web")
    assert plain["agent_name"] is None and plain["operation"] is None


@pytest.mark.skipif(
    not EXAMPLES.is_dir() and not os.environ.get("CI"),
    reason="../shared/fixtures is not here (the project's CI has it)",
)
@pytest.mark.parametrize(
    "name,signal,counts",
    [
        ("trace.json", "traces", {"spans": 1}),
        ("logs.json", "logs", {"logs": 1}),
        ("events.json", "logs", {"logs": 1}),
        ("metrics.json", "metrics", {"metric_points": 4}),
    ],
)
def test_opentelemetry_proto_examples(name, signal, counts):
    batch = otlp.flatten(signal, otlp.decode(signal, (EXAMPLES / name).read_bytes(), otlp.JSON))
    assert {k: len(v) for k, v in batch.tables.items() if v} == counts and batch.rejected == 0
    if name == "metrics.json":
        types = {r["name"]: r["type"] for r in batch.tables["metric_points"]}
        assert set(types.values()) == {"sum", "gauge", "histogram", "exponential_histogram"}
        hist = next(r for r in batch.tables["metric_points"] if r["type"] == "histogram")
        assert hist["count"] == 2 and hist["bucket_counts"] and hist["explicit_bounds"]
    if name == "logs.json":
        attrs = json.loads(batch.tables["logs"][0]["attributes"])
        assert attrs["map.attribute"] == {"some.map.key": "some value"}
        assert attrs["array.attribute"] == ["many", "values"]
    if name == "events.json":
        assert batch.tables["logs"][0]["event_name"] == "browser.page_view"


def test_exponential_buckets_go_onto_one_grid():
    from opentelemetry.proto.metrics.v1.metrics_pb2 import ExponentialHistogramDataPoint

    from workbench.analysis.histograms import quantile
    from workbench.ingest.otlp import EXP_BOUNDS, explicit_buckets

    def counts_at(scale, offset, buckets, zero=0, negative=()):
        p = ExponentialHistogramDataPoint(scale=scale, zero_count=zero)
        p.positive.offset = offset
        p.positive.bucket_counts.extend(buckets)
        p.negative.bucket_counts.extend(negative)
        counts, bounds = explicit_buckets(p.scale, p.zero_count, p.positive, p.negative)
        assert bounds is EXP_BOUNDS and len(counts) == len(bounds) + 1
        return counts

    # Scale 0: (2,4] (4,8] (8,16]; the grid (steps of 2^(1/4)) holds them exactly.
    coarse = counts_at(0, 1, [3, 0, 5], zero=2, negative=[1])
    assert sum(coarse) == 11 and coarse[0] == 3  # zero and negative: (-inf, 0]
    assert coarse[EXP_BOUNDS.index(4.0)] == 3 and coarse[EXP_BOUNDS.index(16.0)] == 5
    # Finer scale 3: bucket 8 is (2, 2^(9/8)], bucket 23 is (2^(23/8), 8]: each goes to the
    # grid bucket holding its upper end, so two processes' points add up bucket by bucket.
    fine = counts_at(3, 8, [3] + [0] * 14 + [5])
    assert fine[EXP_BOUNDS.index(2.0 ** 1.25)] == 3 and fine[EXP_BOUNDS.index(8.0)] == 5
    merged = [a + b for a, b in zip(coarse, fine, strict=True)]
    assert 2 < quantile(EXP_BOUNDS, merged, 0.5) <= 16
    # Beyond the grid: the tail bucket, never an error.
    assert counts_at(0, 200, [1])[-1] == 1


def test_token_counts_are_kept_exactly_and_out_of_range_ones_dropped():
    """A whole number is not taken through a float (which rounds past 2^53); one a BIGINT
    cannot hold, or a string that is no number, is no count."""
    exact = 2**60 + 1
    f = agent_fields({"gen_ai.usage.input_tokens": exact, "gen_ai.usage.output_tokens": "12",
                      "gen_ai.usage.cache_read.input_tokens": 2**63,
                      "gen_ai.usage.reasoning.output_tokens": "nan"}, "svc")
    assert (f["input_tokens"], f["output_tokens"], f["cache_read_tokens"],
            f["reasoning_tokens"]) == (exact, 12, None, None)
