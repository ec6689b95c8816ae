"""JUnit XML: dialects, retries, odd units, header mismatches, hostile documents."""

from __future__ import annotations

import time

import pytest

from workbench import ingest
from workbench.ingest.base import seconds

from .conftest import FIXTURES


def attempts(run, test_id):
    return run.attempts(test_id)


def test_repeated_testcases_become_attempts_of_one_test():
    run = ingest.parse_file(FIXTURES / "retries.xml")
    a = attempts(run, "pkg.test_mod::test_retry")
    assert [x.outcome for x in a] == ["failed", "passed"]
    assert a[0].message == "boom 1"


def test_surefire_flaky_and_rerun_elements_are_attempts():
    run = ingest.parse_file(FIXTURES / "retries.xml")
    flaky = attempts(run, "com.acme.FooTest::flakyThenPass")
    assert [x.outcome for x in flaky] == ["failed", "error", "passed"]
    assert "FooTest.java:30" in flaky[0].details
    rerun = attempts(run, "com.acme.FooTest::keepsFailing")
    assert [x.outcome for x in rerun] == ["error", "error"]


def test_counts_are_by_final_outcome_and_retries_count_once():
    run = ingest.parse_file(FIXTURES / "retries.xml")
    assert run.counts() == {"tests": 7, "passed": 4, "failed": 0, "errors": 1, "skipped": 2}
    assert run.attempt_count == 11


def test_header_mismatch_is_reported_not_trusted():
    run = ingest.parse_file(FIXTURES / "retries.xml")
    assert run.header_tests == 9
    assert run.warnings == ["header says 9 tests but the report holds 8 test cases"]


def test_unnamed_testcases_stay_separate_tests():
    run = ingest.parse_file(FIXTURES / "retries.xml")
    unnamed = [t for t in run.test_ids() if t.startswith("<unnamed")]
    assert len(unnamed) == 2


def test_disabled_status_is_skipped_and_placeholder_time_is_unknown():
    run = ingest.parse_file(FIXTURES / "retries.xml")
    (a,) = attempts(run, "pkg.test_mod::test_disabled")
    assert a.outcome == "skipped" and a.duration_s is None


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("0.25", 0.25),
        ("0,5", 0.5),
        ("1.5e-3", 0.0015),
        ("<<computed>>", None),
        ("", None),
        ("-1", None),
        ("nan", None),
        (None, None),
    ],
)
def test_seconds_parsing(raw, expected):
    assert seconds(raw) == expected


def test_run_metadata_from_the_file():
    run = ingest.parse_file(FIXTURES / "retries.xml")
    assert str(run.started_at) == "2026-03-01 10:00:00"
    assert run.meta["hostname"] == "ci-7"


def test_external_entity_is_refused_and_never_read():
    with pytest.raises(ingest.IngestError, match="DTD/DOCTYPE is not accepted") as err:
        ingest.parse_file(FIXTURES / "xxe.xml")
    assert "xxe.xml" in str(err.value)


def test_billion_laughs_is_refused_quickly():
    start = time.monotonic()
    with pytest.raises(ingest.IngestError, match="DTD"):
        ingest.parse_file(FIXTURES / "billion_laughs.xml")
    assert time.monotonic() - start < 5  # (expanded, it would not end at all)


def test_doctype_hidden_after_a_long_comment_is_still_refused_unexpanded():
    padding = b"<!--" + b"x" * 10_000 + b"-->"
    data = (
        b'<?xml version="1.0"?>'
        + padding
        + b'<!DOCTYPE t [<!ENTITY e "EXPANDED">]><testsuite><testcase name="&e;"/></testsuite>'
    )
    with pytest.raises(ingest.IngestError, match="DTD"):
        ingest.parse_bytes(data, "hidden.xml")


@pytest.mark.parametrize(
    "name,message",
    [
        ("truncated.xml", "not well-formed XML"),
        ("not_junit.xml", "not a recognised test report"),
    ],
)
def test_bad_files_get_one_line_errors_naming_the_file(name, message):
    with pytest.raises(ingest.IngestError) as err:
        ingest.parse_file(FIXTURES / name)
    text = str(err.value)
    assert message in text and name in text and "\n" not in text


def test_wrong_root_with_forced_format():
    with pytest.raises(ingest.IngestError, match=r"not a JUnit report \(root element <coverage>\)"):
        ingest.parse_file(FIXTURES / "not_junit.xml", fmt="junit")


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.xml").write_bytes(b"  \n")
    with pytest.raises(ingest.IngestError, match="empty file"):
        ingest.parse_file(tmp_path / "empty.xml")
    with pytest.raises(ingest.IngestError, match="cannot read"):
        ingest.parse_file(tmp_path / "missing.xml")


def test_expand_files_dirs_and_globs(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.xml").write_text("<testsuite/>")
    (tmp_path / "a" / "notes.txt").write_text("x")
    (tmp_path / "two.json").write_text("{}")
    found = ingest.expand(
        [str(tmp_path / "a"), str(tmp_path / "*.json"), str(tmp_path / "a" / "one.xml")]
    )
    assert [p.name for p in found] == ["one.xml", "two.json"]


STREAM_SAMPLES = {
    "nested suites": b'<testsuites tests="3"><testsuite name="a" tests="3" timestamp="2026-01-01T'
                     b'00:00:00"><testsuite name="b" tests="2"><testcase classname="c" name="x"/>'
                     b'<testcase classname="c" name="y"><failure message="m">trace</failure>'
                     b'</testcase></testsuite><testcase classname="c" name="z"><skipped/>'
                     b'</testcase></testsuite></testsuites>',
    "namespaced": b'<j:testsuite xmlns:j="urn:x" name="n" tests="1"><j:testcase name="t">'
                  b'<j:error type="E">boom</j:error></j:testcase></j:testsuite>',
    "node": b'<testsuites><testsuite name="d"><testcase name="same" classname="test"/>'
            b'</testsuite><testsuite name="e"><testcase name="same" classname="test"/>'
            b'</testsuite><testcase name="top" classname="test"/></testsuites>\n'
            b'<!-- tests 3 -->',
    "retries": b'<testsuite tests="2"><testcase classname="c" name="r"><failure/></testcase>'
               b'<testcase classname="c" name="r"/></testsuite>',
    "not junit": b"<html><testcase name='a'/></html>",
    "broken": b'<testsuite><testcase name="a">',
}


@pytest.mark.parametrize("name", list(STREAM_SAMPLES))
def test_streamed_and_whole_reads_agree(name, monkeypatch):
    from workbench.ingest import IngestError, junit, parse_bytes

    def read():
        try:
            run = parse_bytes(STREAM_SAMPLES[name], name, "junit")
        except IngestError as err:
            return str(err).split(" line")[0]
        return run.columns(), run.counts(), run.warnings, run.started_at

    whole = read()
    monkeypatch.setattr(junit, "STREAM_BYTES", 0)
    assert read() == whole


def test_a_big_report_is_read_in_bounded_chunks(monkeypatch):
    """Past CHUNK_ROWS attempts the run packs them into Arrow chunks; the rows, final
    flags and attempt numbers are those of a run read in one piece."""
    import sys
    from pathlib import Path

    from workbench.ingest import base, junit, parse_bytes

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from gen import junit as generate

    data = generate(3000, seed=5).replace(b"test_case_7<", b"test_case_7<")
    data = data.replace(b"</testsuite>", data[data.index(b"<testcase"):data.index(
        b"<testcase", data.index(b"<testcase") + 1)] + b"</testsuite>")  # a retried test
    whole = parse_bytes(data, "big.xml")
    monkeypatch.setattr(base, "CHUNK_ROWS", 500)
    monkeypatch.setattr(junit, "CHUNK_ROWS", 500)
    monkeypatch.setattr(junit, "STREAM_BYTES", 0)
    chunked = parse_bytes(data, "big.xml")
    assert len(chunked._chunks) >= 5
    assert chunked.columns() == whole.columns()
    assert chunked.counts() == whole.counts() and chunked.counts()["tests"] == 3000
    assert chunked.attempts(whole.test_ids()[0]) == whole.attempts(whole.test_ids()[0])
