"""Property-based fuzzing of every report parser and the OTLP decoder: whatever bytes
arrive, the answer is a parsed result or a clear one-line error — never another exception.

Inputs are built to get past the first checks: report-shaped XML and JSON with hostile
values, and OTLP messages mutated at the byte level from valid ones.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.ingest import IngestError, Parser, otlp, parse_bytes

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
xml_text = text.map(lambda s: s.replace("&", "&amp;").replace("<", "&lt;")
                    .replace(">", "&gt;").replace('"', "&quot;"))
numberish = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(str), xml_text,
                      st.integers(-10**20, 10**20).map(str), st.just(""), st.just("1,5"))


@st.composite
def junit_docs(draw) -> bytes:
    """JUnit-shaped documents: nesting, odd attributes, every child kind, odd times."""
    def case():
        child = draw(st.sampled_from(["", "failure", "error", "skipped", "flakyFailure",
                                      "rerunError", "system-out", "properties"]))
        attrs = " ".join(f'{k}="{draw(xml_text if k != "time" else numberish)}"'
                         for k in draw(st.sets(st.sampled_from(
                             ["name", "classname", "file", "time", "status", "result"]))))
        body = (f'<{child} message="{draw(xml_text)}" type="{draw(xml_text)}">'
                f"{draw(xml_text)}</{child}>") if child else ""
        return f"<testcase {attrs}>{body}</testcase>"

    def suite(depth):
        inner = "".join(case() for _ in range(draw(st.integers(0, 4))))
        if depth and draw(st.booleans()):
            inner += suite(depth - 1)
        return (f'<testsuite name="{draw(xml_text)}" tests="{draw(numberish)}" '
                f'time="{draw(numberish)}" timestamp="{draw(xml_text)}">{inner}</testsuite>')

    root = draw(st.sampled_from(["testsuites", "testsuite", "none"]))
    loose = "".join(case() for _ in range(draw(st.integers(0, 2))))
    body = suite(2)
    if root == "testsuites":
        return f'<testsuites tests="{draw(numberish)}">{loose}{body}</testsuites>'.encode()
    return body.encode() if root == "testsuite" else (loose or "<x/>").encode()


@FUZZ
@given(junit_docs())
def test_junit_shaped_input_parses_or_fails_clearly(doc):
    try:
        run = parse_bytes(doc, "fuzz.xml")
    except IngestError as err:
        assert "\n" not in str(err) and str(err).startswith("fuzz.xml")
        return
    counts = run.counts()
    assert counts["tests"] == counts["passed"] + counts["failed"] + counts["errors"] + \
        counts["skipped"]
    run.tables()  # what the store would receive builds too


json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(), text),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(text, inner, max_size=4)),
    max_leaves=20)


@st.composite
def json_reports(draw) -> bytes:
    kind = draw(st.sampled_from(["ctrf", "reportlog", "raw"]))
    if kind == "ctrf":
        tests = draw(st.lists(st.dictionaries(
            st.sampled_from(["name", "status", "duration", "retryAttempts", "message",
                             "trace", "suite", "filePath", "retries", "flaky"]),
            json_value, max_size=8), max_size=5))
        return json.dumps({"results": {"tool": {"name": "x"}, "summary": draw(json_value),
                                       "tests": tests}}).encode()
    if kind == "reportlog":
        lines = draw(st.lists(st.dictionaries(
            st.sampled_from(["$report_type", "nodeid", "when", "outcome", "duration",
                             "longrepr", "start", "stop"]),
            st.one_of(json_value, st.sampled_from(["TestReport", "setup", "call",
                                                   "teardown", "failed", "passed"])),
            max_size=8), max_size=6))
        return ("\n".join(json.dumps(x) for x in lines) + '\n{"$report_type": '
                '"SessionFinish"}').encode()
    return json.dumps(draw(json_value)).encode()


@FUZZ
@given(json_reports(), st.sampled_from([None, "ctrf", "reportlog"]))
def test_json_reports_parse_or_fail_clearly(doc, fmt):
    try:
        run = parse_bytes(doc, "fuzz.json", fmt)
    except IngestError as err:
        assert "\n" not in str(err)
        return
    run.tables()


@FUZZ
@given(st.binary(max_size=2000), st.sampled_from(sorted(Parser.registry)))
def test_any_bytes_with_any_forced_format(data, fmt):
    try:
        parse_bytes(data, "fuzz.bin", fmt).tables()
    except IngestError as err:
        assert "\n" not in str(err)


def _valid_traces() -> bytes:
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts

    req = ts.ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    for i in range(3):
        s = ss.spans.add(name=f"s{i}", trace_id=bytes([1] * 16), span_id=bytes([i + 1] * 8),
                         start_time_unix_nano=10**18, end_time_unix_nano=10**18 + 5)
        s.attributes.add(key="gen_ai.usage.input_tokens").value.string_value = "12"
        s.events.add(name="e", time_unix_nano=10**18)
    return req.SerializeToString()


VALID = {"traces": _valid_traces()}


@FUZZ
@given(st.data())
def test_otlp_mutated_protobuf_decodes_or_fails_clearly(data):
    body = bytearray(VALID["traces"])
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        pos = data.draw(st.integers(0, max(len(body) - 1, 0)))
        if op == "flip" and body:
            body[pos] = data.draw(st.integers(0, 255))
        elif op == "insert":
            body[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and body:
            del body[pos]
        elif op == "truncate":
            del body[pos:]
    try:
        batch = otlp.flatten("traces", otlp.decode("traces", bytes(body), otlp.PROTOBUF))
    except otlp.OTLPError as err:
        assert err.status == 400
        return
    assert batch.accepted + batch.rejected >= 0
    from workbench.store.writes import _IDENTITY  # rows the store can take
    assert set(batch.tables) <= {*_IDENTITY, "span_links"}


@FUZZ
@given(json_value, st.sampled_from(["traces", "metrics", "logs"]))
def test_otlp_json_of_any_shape_decodes_or_fails_clearly(value, signal):
    try:
        otlp.flatten(signal, otlp.decode(signal, json.dumps(value).encode(), otlp.JSON))
    except otlp.OTLPError as err:
        assert err.status in (400, 415)


@pytest.mark.parametrize("signal", ["traces", "metrics", "logs"])
def test_otlp_random_bytes(signal):
    import random

    rng = random.Random(7)
    for _ in range(300):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        try:
            otlp.flatten(signal, otlp.decode(signal, body, otlp.PROTOBUF))
        except otlp.OTLPError:
            pass
