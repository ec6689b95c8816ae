"""Every field a parser reads from client input is type-checked before use: a value of the
wrong type or size is an IngestError of one line naming the report (or request), the line
or record, and the field — never a TypeError, OverflowError or UnicodeEncodeError (issue 20,
finding 15)."""

from __future__ import annotations

import json
import time

import pytest

from workbench.ingest import IngestError, ci_env, otlp, parse_bytes
from workbench.ingest.base import header_count, number, text, timestamp
from workbench.ingest.genai import agent_fields
from workbench.ingest.live import json_body, parse_batch, parse_running


def _line(**fields) -> dict:
    return {"$report_type": "TestReport", "nodeid": "t.py::a", "when": "call",
            "outcome": "failed", **fields}


def _log(*records: dict) -> bytes:
    return "\n".join(json.dumps(r) for r in records).encode()


def test_reportlog_nodeid_of_null_in_a_list_is_a_clear_error():
    """The report that failed the README's test command from a clean clone."""
    doc = b'{"$report_type": "TestReport", "nodeid": [null], "when": "call", "outcome": "passed"}'
    with pytest.raises(IngestError) as err:
        parse_bytes(doc, "r.jsonl")
    assert str(err.value) == "r.jsonl:1: nodeid must be a string, not a list"


@pytest.mark.parametrize("fields,message", [
    ({"nodeid": {"a": 1}}, "nodeid must be a string, not an object"),
    ({"nodeid": 5}, "nodeid must be a string, not a number"),
    ({"nodeid": "t.py::\ud800"}, "nodeid is not valid Unicode (a lone surrogate)"),
    ({"when": ["call"]}, "when must be a string, not a list"),
    ({"outcome": True}, "outcome must be a string, not true/false"),
    ({"duration": "0.5"}, "duration must be a number, not a string"),
    ({"duration": 10**400}, "duration must be a number from 0 to 1e+09, not 1.00e+400"),
    ({"duration": float("nan")}, "duration must be a finite number, not nan"),
    ({"start": float("inf")}, "start must be a finite number, not inf"),
    ({"stop": 1e300}, "stop must be a number from 0 to 253402300799, not 1e+300"),
    ({"longrepr": 5}, "longrepr must be a string, a list or an object, not a number"),
    ({"longrepr": {"reprcrash": [1]}}, "longrepr.reprcrash must be an object, not a list"),
    ({"longrepr": {"reprcrash": {"message": 1}}},
     "longrepr.reprcrash.message must be a string, not a number"),
    ({"longrepr": {"reprtraceback": {"reprentries": [{"data": {"lines": [1]}}]}}},
     "longrepr.reprtraceback.reprentries[0].data.lines[0] must be a string, not a number"),
    ({"longrepr": {"reprtraceback": {"reprentries": [
        {"data": {"reprfileloc": {"path": "a.py", "lineno": "x"}}}]}}},
     "longrepr.reprtraceback.reprentries[0].data.reprfileloc.lineno must be a whole "
     "number, not a string"),
])
def test_reportlog_fields_of_the_wrong_type_name_the_line_and_field(fields, message):
    doc = _log({"$report_type": "SessionStart"}, _line(**fields),
               _line(when="teardown", outcome="passed"))
    with pytest.raises(IngestError) as err:
        parse_bytes(doc, "r.jsonl")
    assert str(err.value) == f"r.jsonl:2: {message}"


def test_reportlog_odd_but_typed_values_still_read():
    doc = _log(_line(outcome="skipped", longrepr=[]), _line(when="teardown", outcome="passed",
                                                             duration=None))
    run = parse_bytes(doc, "r.jsonl")
    (attempt,) = run.attempts("t::a")
    assert (attempt.outcome, attempt.message) == ("skipped", None)


@pytest.mark.parametrize("doc,message", [
    (b'{"$report_type": "TestReport", "x": ' + b"1" * 5000 + b"}",
     "r.jsonl:1: not valid JSON: Exceeds the limit (4300 digits)"),
    (b'{"$report_type": "TestReport", "x": ' + b"[" * 100_000 + b"}",
     "r.jsonl:1: not valid JSON: nested too deeply"),
])
def test_reportlog_json_the_decoder_refuses_is_an_ingest_error(doc, message):
    with pytest.raises(IngestError) as err:
        parse_bytes(doc, "r.jsonl")
    assert str(err.value).startswith(message)


def _ctrf(tests=(), **results) -> bytes:
    return json.dumps({"results": {"tool": {"name": "x"}, "tests": list(tests),
                                   **results}}).encode()


def _case(**fields) -> dict:
    return {"name": "a", "status": "passed", **fields}


@pytest.mark.parametrize("doc,message", [
    (_ctrf(summary=[0]), "results.summary must be an object, not a list"),
    (_ctrf(environment=[1]), "results.environment must be an object, not a list"),
    (_ctrf(environment={"commit": ["x"]}),
     "results.environment.commit must be a string or a number, not a list"),
    (_ctrf(summary={"start": "today"}), "results.summary.start must be a number, not a string"),
    (_ctrf(summary={"start": 1e300}),
     "results.summary.start must be a number from 0 to 253402300799000, not 1e+300"),
    (_ctrf([_case()], summary={"tests": 10**23}),
     "results.summary.tests must be a number from 0 to 2147483647, not 1.00e+23"),
    (_ctrf([_case(message={})]), "results.tests[0].message must be a string, not an object"),
    (_ctrf([_case(), _case(trace=1)]), "results.tests[1].trace must be a string, not a number"),
    (_ctrf([_case(name="\udc00")]), "results.tests[0].name is not valid Unicode"),
    (_ctrf([_case(duration=10**400)]),
     "results.tests[0].duration must be a number from -9.22e+18 to 9.22e+18, not 1.00e+400"),
    (_ctrf([_case(duration="12")]), "results.tests[0].duration must be a number, not a string"),
    (_ctrf([_case(retryAttempts=1)]), "results.tests[0].retryAttempts must be a list, not a "
     "number"),
    (_ctrf([_case(retryAttempts=[None])]),
     "results.tests[0].retryAttempts[0] must be an object, not null"),
    (_ctrf([_case(suite={"a": 1})]), "results.tests[0].suite must be a string, not an object"),
    (_ctrf([_case(suite=["a", [1]])]),
     "results.tests[0].suite[1] must be a string or a number, not a list"),
    (_ctrf([_case(status=["passed"])]), "results.tests[0].status must be a string, not a list"),
])
def test_ctrf_fields_of_the_wrong_type_name_the_record_and_field(doc, message):
    with pytest.raises(IngestError) as err:
        parse_bytes(doc, "c.json")
    assert str(err.value).startswith(f"c.json: {message}")


def test_ctrf_build_numbers_and_missing_fields_read_as_before():
    run = parse_bytes(_ctrf([_case(duration=-5, message=None, suite=["a", 2])],
                           environment={"buildNumber": 42}, summary={"tests": 1}), "c.json")
    assert run.meta["build"] == "42" and run.header_tests == 1
    (attempt,) = run.attempts("a > 2::a")
    assert attempt.duration_s is None and attempt.message is None


@pytest.mark.parametrize("doc,fmt", [
    (b'<test-run testcasecount="\xc2\xb2"><test-case name="a" result="Passed"/></test-run>',
     "nunit"),
    (b'<TestRun><Results><UnitTestResult testName="a" outcome="Passed" duration="'
     + b"9" * 400 + b'.00:00:01"/></Results></TestRun>', "trx"),
    (b'<TestRun><Times start="2026-01-01T00:00:00Z" finish="2026-01-01T00:00:05"/><Results>'
     b'<UnitTestResult testName="a" outcome="Passed"/></Results></TestRun>', "trx"),
    (b'<testsuite tests="99999999999999999999999" timestamp="0001-01-01T00:00:00+01:00">'
     b'<testcase name="a"/></testsuite>', "junit"),
])
def test_xml_numbers_and_times_out_of_range_read_as_absent(doc, fmt):
    """XML attributes are always strings: a number or time nothing can hold is no number
    (as an unreadable one was before), not a crash in the parser or the store."""
    run = parse_bytes(doc, "r.xml")
    assert run.format == fmt and run.counts()["passed"] == 1
    assert run.header_tests is None and run.duration_s is None
    assert [a.duration_s for a in run.attempts(run.test_ids()[0])] == [None]
    if fmt == "junit":
        assert run.started_at is None  # (within a day of year 1: no time zone can move it)


def test_helpers():
    assert header_count("12") == 12 and header_count("2147483648") is None
    assert header_count("²") is None and header_count("9" * 5000) is None
    assert timestamp("9999-12-31T23:59:59") is None and timestamp("2026-01-01") is not None
    assert text(None, "w", "f") is None and text(7, "w", "f", numbers=True) == "7"
    assert number(None, "w", "f") is None and number(2.5, "w", "f") == 2.5
    with pytest.raises(IngestError, match="^w: f must be a whole number, not a number$"):
        number(2.5, "w", "f", integer=True)
    with pytest.raises(IngestError, match="^w: f must be a number, not true/false$"):
        number(True, "w", "f")
    with pytest.raises(IngestError, match="^w: f must be a string or a number, not a list$"):
        text([], "w", "f", numbers=True)
    with pytest.raises(IngestError, match="^w: f must be a finite number, not nan$"):
        text(float("nan"), "w", "f", numbers=True)


# -- the live pytest run API ---------------------------------------------------------------

@pytest.mark.parametrize("body,message", [
    (b'{"project": ' + str(2**130).encode() + b"}",
     "project must be a number from -9.22e+18 to 9.22e+18, not 1.36e+39"),
    (b'{"duration_s": NaN}', "duration_s must be a finite number, not nan"),
    (b'{"duration_s": 1e400}', "duration_s must be a finite number, not inf"),
    (b'{"project": "\\ud800"}', "project is not valid Unicode (a lone surrogate)"),
    (b'{"\\udc00": 1}', "a key in the body is not valid Unicode (a lone surrogate)"),
    (b'{"tests": [{"name": "t", "attempts": [{"message": "\\ud800x"}]}]}',
     "tests[0].attempts[0].message is not valid Unicode (a lone surrogate)"),
    (b'{"x": ' + b"[" * 100_000 + b"}", "not valid JSON: nested too deeply"),
])
def test_live_bodies_hold_nothing_the_store_cannot(body, message):
    """Each of these was a 500 through ``POST /api/tests/live`` (and its results)."""
    with pytest.raises(IngestError) as err:
        json_body(body, "live run r1")
    assert str(err.value) == f"live run r1: {message}"


def test_live_body_values_that_fit_are_kept():
    body = b'{"a": 9223372036854775807, "b": 1.5e300, "c": "\\ud83d\\ude00", "d": "NaN"}'
    assert json_body(body, "live") == {"a": 2**63 - 1, "b": 1.5e300, "c": "\U0001f600",
                                       "d": "NaN"}


@pytest.mark.parametrize("test,message", [
    ({"name": "t", "classname": ["a"]}, "tests[0].classname must be a string, not a list"),
    ({"name": "t", "attempts": [{"outcome": "passed", "details": 1}]},
     "tests[0].attempts[0].details must be a string, not a number"),
    ({"name": "t", "attempts": [{"outcome": "passed", "message": "\ud800"}]},
     "tests[0].attempts[0].message is not valid Unicode (a lone surrogate)"),
    ({"name": "\udfff"}, "tests[0].name is not valid Unicode (a lone surrogate)"),
])
def test_live_batches_from_the_plugin_are_checked_field_by_field(test, message):
    test = {"attempts": [{"outcome": "passed"}], **test}
    with pytest.raises(IngestError) as err:
        parse_batch({"tests": [test]}, "live run r1")
    assert str(err.value) == f"live run r1: {message}"
    with pytest.raises(IngestError, match="running must be a list"):
        parse_running({"running": ["t.py::\ud800"]}, "live run r1")


# -- OTLP and the CI environment -----------------------------------------------------------

def _span_json(*attrs: tuple[str, dict]) -> bytes:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "name": "s", "traceId": "01" * 16, "spanId": "02" * 8, "startTimeUnixNano": "1000",
        "endTimeUnixNano": "2000",
        "attributes": [{"key": k, "value": v} for k, v in attrs]}]}]}]}).encode()


@pytest.mark.parametrize("value", ["1e999", "nan", "-inf", "1e30"])
def test_otlp_token_counts_that_are_no_bigint_are_absent(value):
    body = _span_json(("gen_ai.usage.input_tokens", {"stringValue": value}),
                      ("status_code", {"stringValue": value}))
    (row,) = otlp.flatten("traces", otlp.decode("traces", body, otlp.JSON)).tables["spans"]
    assert row["input_tokens"] is None and row["is_error"] is False


def test_otlp_text_fields_of_other_kinds_are_text():
    fields = agent_fields({"gen_ai.operation.name": 5, "gen_ai.request.model": ["m"]}, "svc")
    assert fields["operation"] == "5" and fields["model"] == "['m']"


def test_otlp_json_of_over_4300_digits_is_a_400():
    with pytest.raises(otlp.OTLPError) as err:
        otlp.decode("traces", b'{"resourceSpans": ' + b"1" * 5000 + b"}", otlp.JSON)
    assert err.value.status == 400


def test_exponential_histogram_scale_outside_the_specification_is_rejected_at_once():
    """A scale of -2^31 made a 2^31-bit fraction per point: seconds and 256 MB each."""
    doc = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [{
        "name": "m", "exponentialHistogram": {"dataPoints": [
            {"timeUnixNano": "1000", "scale": s, "positive": {"bucketCounts": ["1"]}}
            for s in (-(2**31), 2**31 - 1, 3)]}}]}]}]}
    began = time.monotonic()
    batch = otlp.flatten("metrics", otlp.decode("metrics", json.dumps(doc).encode(), otlp.JSON))
    assert time.monotonic() - began < 1
    assert (batch.accepted, batch.rejected) == (1, 2)
    assert "scale -2147483648 is not one of -10-20" in batch.errors[0]


def test_ci_variables_that_are_not_utf8_are_left_out():
    env = {"GITHUB_ACTIONS": "true", "GITHUB_REF_NAME": "b\udcff", "GITHUB_SHA": "s"}
    assert ci_env.detect(env) == {"ci_provider": "github", "commit": "s"}
    with pytest.raises(IngestError, match="^run metadata: branch is not valid Unicode"):
        ci_env.run_metadata({}, {"branch": "b\udcff"}, {})
