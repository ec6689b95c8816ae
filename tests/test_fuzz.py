"""Property-based fuzzing of every report parser, the live API bodies and the OTLP decoder:
whatever bytes arrive, the answer is a stored result or a clear one-line error naming the
report — never another exception (through the API, a 500).

Inputs are built to get past the first checks: report-shaped XML and JSON whose fields are
mostly right and sometimes any JSON value (a list, null, an object, a 400-digit integer,
NaN, a lone surrogate), and OTLP messages mutated at the byte level from valid ones. What
parses is stored in a real store, with report time zones at both ends of the clock.

Every input that once found a bug stays below as an ``@example``. The test command runs the
derandomised "ci" profile (tests/conftest.py), so these tests never decide CI by chance; the
wide random search is ``HYPOTHESIS_PROFILE=fuzz python3 -m pytest tests/test_fuzz.py``.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from workbench.ingest import IngestError, Parser, otlp
from workbench.ingest.base import OUTCOMES
from workbench.ingest.live import json_object
from workbench.store import Store

# No max_examples here: it comes from the profile (150 in "ci", thousands in "fuzz").
FUZZ = settings(deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def intake(tmp_path_factory):
    """A real store's intake: what parses must also be storable."""
    from workbench.intake import LocalIntake

    with Store(tmp_path_factory.mktemp("fuzz") / "fuzz.duckdb") as store:
        yield LocalIntake(store, ci_env={})


#: Naive report times are read in these zones: the ends of the clock (+14 and -12 hours).
ZONES = st.sampled_from([None, "Etc/GMT-14", "Etc/GMT+12"])


def stored_or_clear_error(intake, doc: bytes, name: str, fmt: str | None, zone: str | None):
    """The property: the report is stored, or refused by one line that names it."""
    try:
        out = intake.report(doc, name, {"project": "fuzz", "report_tz": zone}, fmt)
    except IngestError as err:
        assert "\n" not in str(err) and str(err).startswith(name), err
        return None
    assert out["ok"]
    assert out["tests"] == out["passed"] + out["failed"] + out["errors"] + out["skipped"]
    return out


# -- values --------------------------------------------------------------------------------

text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
xml_text = text.map(lambda s: s.replace("&", "&amp;").replace("<", "&lt;")
                    .replace(">", "&gt;").replace('"', "&quot;"))
HUGE = ["9" * 400, "1e400", "-1e400", "²", "٣", "99999999999999999999999", "2147483648"]
numberish = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(str), xml_text,
                      st.integers(-10**20, 10**20).map(str), st.just(""), st.just("1,5"),
                      st.sampled_from(HUGE))
timestamps = st.one_of(xml_text, st.sampled_from([
    "2026-01-01T10:00:00", "2026-01-01T10:00:00Z", "2026-01-01 10:00:00+02:00",
    "0001-01-01T00:00:00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59",
    "9999-12-31T23:59:59-01:00"]))
# JSON strings may hold lone surrogates ("\ud800" escapes); XML cannot.
lone_surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
json_text = st.one_of(text, st.text(st.one_of(st.characters(codec="utf-8",
                                                            exclude_categories=["Cs"]),
                                              lone_surrogates), min_size=1, max_size=8))
big_ints = st.one_of(st.integers(-10**20, 10**20),
                     st.sampled_from([2**63, -(2**63) - 1, 2**64, 2**128 + 1, 10**400]))
json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), big_ints, st.floats(), json_text),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(text, inner, max_size=4)),
    max_leaves=20)


def field(valid):
    """A field's value: mostly of the right shape, sometimes any JSON value at all."""
    return st.one_of(valid, valid, valid, json_value)


def record(required: dict | None = None, **optional):
    """A JSON object with these keys (each optional), each a :func:`field`."""
    return st.fixed_dictionaries({k: field(v) for k, v in (required or {}).items()},
                                 optional={k: field(v) for k, v in optional.items()})


# -- JUnit ---------------------------------------------------------------------------------

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
                f'time="{draw(numberish)}" timestamp="{draw(timestamps)}">{inner}</testsuite>')

    root = draw(st.sampled_from(["testsuites", "testsuite", "none"]))
    loose = "".join(case() for _ in range(draw(st.integers(0, 2))))
    body = suite(2)
    if root == "testsuites":
        return f'<testsuites tests="{draw(numberish)}">{loose}{body}</testsuites>'.encode()
    return body.encode() if root == "testsuite" else (loose or "<x/>").encode()


@FUZZ
@given(junit_docs(), ZONES)
# A header count past the store's INTEGER column (OverflowError in the store: a 500).
@example(b'<testsuite tests="99999999999999999999999"><testcase name="a"/></testsuite>', None)
# A time within a day of datetime's limits overflowed when moved to UTC.
@example(b'<testsuite timestamp="0001-01-01T00:00:00+01:00"><testcase name="a"/></testsuite>',
         None)
@example(b'<testsuite timestamp="0001-01-01T00:00:00"><testcase name="a"/></testsuite>',
         "Etc/GMT-14")
def test_junit_shaped_input_is_stored_or_fails_clearly(intake, doc, zone):
    stored_or_clear_error(intake, doc, "fuzz.xml", None, zone)


# -- NUnit, TRX, xUnit.net -----------------------------------------------------------------

trx_durations = st.one_of(xml_text, st.from_regex(
    r"\A(\d{1,400}\.)?\d{1,3}:\d{1,3}:\d{1,3}(\.\d{1,9})?\Z", fullmatch=True))


nunit_results = st.one_of(xml_text, st.sampled_from(["Passed", "Failed", "Skipped"]))


@st.composite
def dotnet_docs(draw) -> tuple[bytes, str]:
    """NUnit 2 and 3, TRX and xUnit.net documents with odd attributes: ``(doc, format)``."""
    kind = draw(st.sampled_from(["nunit3", "nunit2", "trx", "xunit"]))
    n = draw(st.integers(0, 3))

    def a(values=xml_text) -> str:
        return draw(values)

    if kind == "nunit3":
        cases = "".join(
            f'<test-case name="{a()}" fullname="{a()}" result="{a(nunit_results)}" '
            f'label="{a()}" duration="{a(numberish)}"><failure><message>{a()}</message>'
            f"<stack-trace>{a()}</stack-trace></failure></test-case>" for _ in range(n))
        return (f'<test-run testcasecount="{a(numberish)}" start-time="{a(timestamps)}" '
                f'duration="{a(numberish)}">{cases}</test-run>').encode(), "nunit"
    if kind == "nunit2":
        cases = "".join(
            f'<test-case name="{a()}" executed="{a()}" result="{a()}" success="{a()}" '
            f'time="{a(numberish)}"><reason><message>{a()}</message></reason></test-case>'
            for _ in range(n))
        return (f'<test-results date="{a(timestamps)}" time="{a()}">{cases}'
                "</test-results>").encode(), "nunit"
    if kind == "trx":
        units = "".join(f'<UnitTest id="u{i}"><TestMethod className="{a()}"/></UnitTest>'
                        for i in range(n))
        results = "".join(
            f'<UnitTestResult testId="u{i}" testName="{a()}" outcome="{a()}" '
            f'duration="{a(trx_durations)}"><Output><ErrorInfo><Message>{a()}</Message>'
            f"<StackTrace>{a()}</StackTrace></ErrorInfo></Output></UnitTestResult>"
            for i in range(n))
        return (f'<TestRun><Times start="{a(timestamps)}" finish="{a(timestamps)}"/>'
                f'<ResultSummary><Counters total="{a(numberish)}"/></ResultSummary>'
                f"<TestDefinitions>{units}</TestDefinitions><Results>{results}</Results>"
                "</TestRun>").encode(), "trx"
    tests = "".join(
        f'<test name="{a()}" type="{a()}" result="{a()}" time="{a(numberish)}">'
        f'<failure exception-type="{a()}"><message>{a()}</message></failure></test>'
        for _ in range(n))
    return (f'<assemblies><assembly time="{a(numberish)}"><collection>{tests}</collection>'
            "</assembly></assemblies>").encode(), "xunit"


@FUZZ
@given(dotnet_docs(), st.booleans(), ZONES)
# int("²") (isdigit() says yes): a ValueError.
@example((b'<test-run testcasecount="\xc2\xb2"><test-case name="a" result="Passed"/>'
          b"</test-run>", "nunit"), False, None)
# Days of 400 digits: an OverflowError converting them to seconds.
@example((b'<TestRun><Results><UnitTestResult testName="a" outcome="Passed" duration="'
          + b"9" * 400 + b'.00:00:01"/></Results></TestRun>', "trx"), False, None)
# A start with an offset and a finish without: a TypeError subtracting them.
@example((b'<TestRun><Times start="2026-01-01T00:00:00Z" finish="2026-01-01T00:00:05"/>'
          b'<Results><UnitTestResult testName="a" outcome="Passed"/></Results></TestRun>',
          "trx"), False, None)
def test_dotnet_reports_are_stored_or_fail_clearly(intake, doc_fmt, forced, zone):
    doc, fmt = doc_fmt
    stored_or_clear_error(intake, doc, "fuzz.xml", fmt if forced else None, zone)


# -- JSON reports --------------------------------------------------------------------------

statuses = st.sampled_from(["passed", "failed", "skipped", "pending", "other"])
ctrf_attempt = record({"status": statuses}, duration=st.integers(0, 10**6), message=json_text,
                      trace=json_text)
ctrf_test = record({"name": text, "status": statuses}, duration=st.integers(0, 10**6),
                   message=json_text, trace=json_text, suite=st.lists(text, max_size=3),
                   filePath=text, retryAttempts=st.lists(ctrf_attempt, max_size=3),
                   flaky=st.booleans())
ctrf_docs = st.fixed_dictionaries({"results": st.fixed_dictionaries(
    {"tool": st.just({"name": "x"}), "tests": st.lists(field(ctrf_test), max_size=5)},
    optional={"summary": field(record(tests=st.integers(0, 6), start=st.integers(0, 2 * 10**12),
                                      stop=st.integers(0, 2 * 10**12))),
              "environment": field(record(**dict.fromkeys(
                  ["branchName", "commit", "buildNumber", "buildName", "buildUrl", "appName",
                   "repositoryName"], json_text)))})})

fileloc = record(path=json_text, lineno=st.integers(0, 999), message=json_text)
longreprs = st.one_of(
    json_text, st.lists(json_value, max_size=3),
    record(reprcrash=record(message=json_text),
           reprtraceback=record(reprentries=st.lists(
               record(data=record(lines=st.lists(json_text, max_size=3), reprfileloc=fileloc)),
               max_size=2))))
report_lines = st.fixed_dictionaries(
    {"$report_type": st.sampled_from(["TestReport", "TestReport", "SessionStart"])},
    optional={"nodeid": field(st.sampled_from(["t.py::a", "t.py::K::b[1]", "x::y"])),
              "when": field(st.sampled_from(["setup", "call", "teardown"])),
              "outcome": field(st.sampled_from(["passed", "failed", "skipped", "rerun"])),
              "duration": field(st.floats(0, 100)), "start": field(st.floats(0, 2e9)),
              "stop": field(st.floats(0, 2e9)), "longrepr": field(longreprs)})


@st.composite
def json_reports(draw) -> bytes:
    kind = draw(st.sampled_from(["ctrf", "reportlog", "raw"]))
    if kind == "ctrf":
        return json.dumps(draw(ctrf_docs)).encode()
    if kind == "reportlog":
        lines = draw(st.lists(report_lines, max_size=6))
        return ("\n".join(json.dumps(x) for x in lines) + '\n{"$report_type": '
                '"SessionFinish"}').encode()
    return json.dumps(draw(json_value)).encode()


def _reportlog(*records: dict) -> bytes:
    return "\n".join(json.dumps(r) for r in records).encode()


def _test_report(**fields) -> dict:
    return {"$report_type": "TestReport", "nodeid": "t.py::a", "when": "call",
            "outcome": "failed", **fields}


_TEARDOWN = _test_report(when="teardown", outcome="passed")


def _ctrf(**results) -> bytes:
    return json.dumps({"results": {"tool": {"name": "x"}, "tests": [], **results}}).encode()


def _ctrf_test(**fields) -> dict:
    return {"name": "a", "status": "passed", **fields}


@FUZZ
@given(json_reports(), st.sampled_from([None, "ctrf", "reportlog"]), ZONES)
# Issue 20, finding 15: a node id that is a list (TypeError: unhashable type: 'list').
@example(b'{"$report_type": "TestReport", "nodeid": [null], "when": "call", '
         b'"outcome": "passed"}', None, None)
# CTRF fields of the wrong JSON type (the first fuzz run): AttributeError, TypeError,
# ArrowTypeError.
@example(_ctrf(summary=[0]), None, None)
@example(_ctrf(environment=[1]), None, None)
@example(_ctrf(tests=[_ctrf_test(message={})]), None, None)
@example(_ctrf(tests=[_ctrf_test(retryAttempts=1)]), None, None)
@example(_ctrf(tests=[_ctrf_test(suite={"a": 1})]), None, None)
# Report-log fields of the wrong type or size (issue 20's sweep): ValueError,
# OverflowError, IndexError, TypeError, UnicodeEncodeError.
@example(_reportlog(_test_report(when="teardown", duration="x")), None, None)
@example(_reportlog(_test_report(when="teardown", duration=10**400)), None, None)
@example(_reportlog(_test_report(when="teardown", start=float("inf"))), None, None)
@example(_reportlog(_test_report(outcome="skipped", longrepr=[]), _TEARDOWN), None, None)
@example(_reportlog(_test_report(longrepr={"reprcrash": [1]}), _TEARDOWN), None, None)
@example(_reportlog(_test_report(longrepr={"reprtraceback": {"reprentries": [
    {"data": {"lines": [1]}}]}}), _TEARDOWN), None, None)
@example(_reportlog(_test_report(nodeid="t.py::\ud800", when="teardown")), None, None)
# Over 4300 digits (ValueError) and nesting past the recursion limit (RecursionError).
@example(b'{"$report_type": "TestReport", "x": ' + b"1" * 5000 + b"}", None, None)
@example(b'{"$report_type": "TestReport", "x": ' + b"[" * 100_000 + b"}", None, None)
# CTRF numbers out of range and a lone surrogate: OverflowError, UnicodeEncodeError.
@example(_ctrf(tests=[_ctrf_test(duration=10**400)]), None, None)
@example(_ctrf(summary={"start": 1e300}), None, None)
@example(_ctrf(summary={"tests": 10**23}, tests=[_ctrf_test()]), None, None)
@example(_ctrf(tests=[_ctrf_test(name="\udc00")]), None, None)
def test_json_reports_are_stored_or_fail_clearly(intake, doc, fmt, zone):
    stored_or_clear_error(intake, doc, "fuzz.json", fmt, zone)


@FUZZ
@given(st.binary(max_size=2000), st.sampled_from(sorted(Parser.registry)))
def test_any_bytes_with_any_forced_format(intake, data, fmt):
    stored_or_clear_error(intake, data, "fuzz.bin", fmt, None)


# -- the live pytest run API ---------------------------------------------------------------

live_attempts = record({"outcome": st.sampled_from(OUTCOMES)},
                       duration_s=st.floats(0, 100), message=json_text,
                       error_type=json_text, details=json_text)
live_tests = record({"name": text.filter(bool),
                     "attempts": st.lists(live_attempts, min_size=1, max_size=3)},
                    classname=json_text, file=json_text, suite=json_text)
live_bodies = record({"tests": st.lists(field(live_tests), max_size=4)},
                     running=st.lists(field(text), max_size=3))
run_meta = record(**dict.fromkeys(["project", "branch", "commit", "build", "build_url",
                                   "variant"], json_text))


@FUZZ
@given(run_meta, live_bodies, st.booleans())
# A >128-bit integer and a lone surrogate were 500s (the store cannot hold either).
@example({"project": 2**130}, {"tests": []}, True)
@example({"project": "\ud800"}, {"tests": []}, True)
@example({}, {"tests": [{"name": "t", "attempts": [{"outcome": "passed",
                                                    "message": "\ud800"}]}]}, True)
@example({}, {"tests": [{"name": "t", "attempts": [{"outcome": "passed",
                                                    "message": "\ud800"}]}]}, False)
@example({}, {"tests": [{"name": "t", "attempts": [{"outcome": "passed",
                                                    "duration_s": float("nan")}]}]}, True)
# Metadata of the wrong type (a list for the project: DuckDB's cast failed). The route's
# schema types each field; the intake takes only what this reader lets through as strings.
@example({"project": [[], False]}, {"tests": []}, True)
def test_live_run_bodies_are_stored_or_fail_clearly(intake, meta, body, sent_as_json):
    try:
        meta = json_object(json.dumps(meta).encode(), "live run")
    except IngestError as err:
        assert "\n" not in str(err) and str(err).startswith("live run"), err
        return
    # (the route's schema types each field: the strings this reader lets through must store)
    run_id = intake.live_start({k: v for k, v in meta.items() if isinstance(v, str)})
    try:
        if sent_as_json:  # a body as the API receives it
            intake.live_append(run_id, json.dumps(body).encode())
        else:  # the pytest plugin's batches, in process
            intake.live_append(run_id, body.get("tests"), body.get("running"))
    except IngestError as err:
        assert "\n" not in str(err) and str(err).startswith(f"live run {run_id}"), err


# -- OTLP ----------------------------------------------------------------------------------

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


def decoded_and_stored_or_clear_error(intake, signal: str, body: bytes, kind: str) -> None:
    """The OTLP property: stored (items out of range rejected alone), or a 400/415."""
    try:
        intake.telemetry(signal, body, kind)
    except otlp.OTLPError as err:
        assert err.status in (400, 415) and "\n" not in str(err)


@FUZZ
@given(st.data())
def test_otlp_mutated_protobuf_decodes_or_fails_clearly(intake, data):
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
    decoded_and_stored_or_clear_error(intake, "traces", bytes(body), otlp.PROTOBUF)


#: OTLP/JSON AnyValues of every kind, for the attributes the decoder reads by name.
any_values = st.one_of(
    st.builds(lambda v: {"stringValue": v}, st.one_of(text, st.sampled_from(
        ["12", "1e999", "nan", "-inf", "1e30", "9" * 30, "true"]))),
    st.builds(lambda v: {"intValue": str(v)}, st.integers(-(2**63), 2**63 - 1)),
    st.builds(lambda v: {"doubleValue": v}, st.one_of(st.floats(allow_nan=False,
                                                                allow_infinity=False),
                                                      st.sampled_from(["NaN", "Infinity"]))),
    st.builds(lambda v: {"boolValue": v}, st.booleans()),
    st.builds(lambda v: {"arrayValue": {"values": [{"stringValue": v}]}}, text),
    st.builds(lambda v: {"kvlistValue": {"values": [{"key": "k", "value": {"intValue": v}}]}},
              st.integers(0, 9).map(str)))
ATTRIBUTE_KEYS = ["service.name", "gen_ai.operation.name", "gen_ai.request.model",
                  "gen_ai.usage.input_tokens", "gen_ai.usage.cost", "session.id",
                  "status_code", "success", "duration_ms", "decision", "event.name",
                  "openinference.span.kind", "type"]
otlp_attributes = st.lists(st.builds(lambda k, v: {"key": k, "value": v},
                                     st.sampled_from(ATTRIBUTE_KEYS), any_values), max_size=4)


@st.composite
def otlp_json(draw) -> tuple[str, dict]:
    """OTLP/JSON requests of two resources whose attributes are of any AnyValue kind."""
    signal = draw(st.sampled_from(["traces", "logs", "metrics"]))

    def resource(i: int) -> dict:
        res = {"attributes": draw(otlp_attributes)}
        attrs = draw(otlp_attributes)
        if signal == "traces":
            return {"resource": res, "scopeSpans": [{"spans": [{
                "name": "s", "traceId": "01" * 16, "spanId": f"{i + 1:016x}",
                "startTimeUnixNano": "1000", "endTimeUnixNano": "2000",
                "attributes": attrs}]}]}
        if signal == "logs":
            return {"resource": res, "scopeLogs": [{"logRecords": [{
                "timeUnixNano": "1000", "body": draw(any_values), "attributes": attrs}]}]}
        point = {"timeUnixNano": "1000", "attributes": attrs,
                 "scale": draw(st.one_of(st.integers(-10, 20), st.sampled_from(
                     [-(2**31), 2**31 - 1]))),
                 "positive": {"offset": draw(st.integers(-(2**31), 2**31 - 1)),
                              "bucketCounts": ["1", "2"]}}
        return {"resource": res, "scopeMetrics": [{"metrics": [{
            "name": f"gen_ai.m{i}", "exponentialHistogram": {"dataPoints": [point]}}]}]}

    key = {"traces": "resourceSpans", "logs": "resourceLogs", "metrics": "resourceMetrics"}
    return signal, {key[signal]: [resource(0), resource(1)]}


def _spans(*attribute_lists) -> tuple[str, dict]:
    return "traces", {"resourceSpans": [{"resource": {"attributes": res}, "scopeSpans": [{
        "spans": [{"name": "s", "traceId": "01" * 16, "spanId": f"{i + 1:016x}",
                   "startTimeUnixNano": "1000", "endTimeUnixNano": "2000",
                   "attributes": attrs}]}]} for i, (res, attrs) in enumerate(attribute_lists)]}


def _kv(key: str, value: dict) -> list[dict]:
    return [{"key": key, "value": value}]


@FUZZ
@given(otlp_json())
# Token counts "1e999" and "nan" (OverflowError, ValueError converting them to int).
@example(_spans(([], _kv("gen_ai.usage.input_tokens", {"stringValue": "1e999"}))))
@example(_spans(([], _kv("status_code", {"stringValue": "nan"}))))
# A number past BIGINT.
@example(_spans(([], _kv("gen_ai.usage.input_tokens", {"stringValue": "1e30"}))))
# A service.name that is a number beside a string one: a column of two types (ArrowTypeError).
@example(_spans((_kv("service.name", {"stringValue": "a"}),
                 _kv("gen_ai.request.model", {"stringValue": "m"})),
                (_kv("service.name", {"intValue": "5"}),
                 _kv("gen_ai.request.model", {"stringValue": "m"}))))
@example(_spans(([], _kv("gen_ai.operation.name", {"stringValue": "chat"})),
                ([], _kv("gen_ai.operation.name", {"intValue": "5"}))))
# An exponential histogram's scale of -2^31: seconds and 256 MB a point.
@example(("metrics", {"resourceMetrics": [{"scopeMetrics": [{"metrics": [{
    "name": "m", "exponentialHistogram": {"dataPoints": [{
        "timeUnixNano": "1000", "scale": -(2**31), "positive": {"bucketCounts": ["1"]}}]}}]}]}]}))
def test_otlp_json_requests_are_stored_or_fail_clearly(intake, signal_doc):
    signal, doc = signal_doc
    decoded_and_stored_or_clear_error(intake, signal, json.dumps(doc).encode(), otlp.JSON)


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
