"""Every JUnit/CTRF report in ../shared/fixtures ingests with matching counts, or is refused.

Counts are checked against an independent reading of each file (the stdlib parser through
defusedxml for XML, plain json for CTRF), not against our own parser.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from workbench import ingest
from workbench.store import Store
from workbench.store.writes import insert_run

SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
pytestmark = pytest.mark.fixtures

if not SHARED.is_dir():
    if os.environ.get("CI"):
        raise RuntimeError(f"CI must have the shared fixtures at {SHARED}")
    pytest.skip(
        f"{SHARED} is not here (only the project's CI and developers have it)",
        allow_module_level=True,
    )

# Reports in these formats are not JUnit/CTRF: the sweep expects them to be refused.
REFUSED = {  # hostile or broken on purpose (SOURCES.md): must be refused with a clear reason
    "NUnit-sec1752-file.xml": "DTD",  # external entity to a local file
    "NUnit-sec1752-https.xml": "DTD",  # external entity over the network
    "NUnit-issue17521.xml": "not well-formed",  # NUL bytes
    "NUnit-issue47367.xml": "not well-formed",  # a broken attribute
    "corrupt-xml.xml": "not well-formed",
    "TEST-test.CorruptTest.xml": "cdata not finished",
    "non-junit.xml": "not a recognised test report",
    "expected.xml": "not well-formed",  # <<computed>> placeholders in attributes
    "expectedRetries.xml": "not well-formed",
}


def junit_files():
    out = []
    for p in sorted(SHARED.rglob("*")):
        if not p.is_file() or p.suffix not in (".xml", ".golden"):
            continue
        head = p.read_bytes()[:4096]
        if (b"<testsuite" in head and b"<test-run" not in head) or p.name in REFUSED:
            out.append(p)
    return out


# (format, element counted as one attempt) for the other XML formats.
OTHER_XML = {"nunit": "test-case", "trx": "UnitTestResult", "xunit": "test"}


def other_xml_files():
    out = []
    for p in sorted(SHARED.rglob("*")):
        if not p.is_file() or p.suffix not in (".xml", ".trx") or p.name in REFUSED:
            continue
        head = p.read_bytes()[:4096]
        if b"<testsuite" in head:
            continue
        if b"<test-run" in head or b"<test-results" in head or b"<test-suite" in head:
            out.append(("nunit", p))
        elif b"<TestRun" in head:
            out.append(("trx", p))
        elif b"<assemblies" in head or b"<assembly " in head:
            out.append(("xunit", p))
    return out


@pytest.mark.parametrize(
    "fmt,path",
    other_xml_files(),
    ids=lambda v: str(v.relative_to(SHARED)) if isinstance(v, Path) else v,
)
def test_other_xml_fixture(fmt, path):
    from defusedxml import ElementTree

    root = ElementTree.fromstring(path.read_bytes(), forbid_dtd=True)
    tag = OTHER_XML[fmt]
    elements = [
        e
        for e in root.iter()
        if e.tag.rsplit("}", 1)[-1] == tag and not any(c.tag.endswith("InnerResults") for c in e)
    ]
    run = ingest.parse_file(path)
    c = run.counts()
    assert run.format == fmt
    assert run.attempt_count == len(elements)
    assert c["passed"] + c["failed"] + c["errors"] + c["skipped"] == c["tests"] <= len(elements)


def ctrf_files():
    return sorted(p for p in (SHARED / "ctrf" / "examples").glob("*.json"))


def expected_junit(path: Path):
    """Attempts and distinct tests per an independent stdlib reading."""
    from defusedxml import ElementTree

    root = ElementTree.fromstring(path.read_bytes(), forbid_dtd=True)
    keys: Counter = Counter()
    attempts = 0
    unnamed = 0
    for suite in root.iter("testsuite"):
        for case in suite.findall("testcase"):
            name = case.get("name")
            if not name:
                unnamed += 1
                name = f"<unnamed {unnamed}>"
            keys[(case.get("classname") or case.get("class") or case.get("file"), name)] += 1
            attempts += 1 + sum(
                1
                for c in case
                if c.tag in ("flakyFailure", "flakyError", "rerunFailure", "rerunError")
            )
    return attempts, len(keys)


@pytest.mark.parametrize("path", junit_files(), ids=lambda p: str(p.relative_to(SHARED)))
def test_junit_fixture(path, tmp_path):
    if path.name in REFUSED:
        with pytest.raises(ingest.IngestError) as err:
            ingest.parse_file(path)
        assert REFUSED[path.name] in str(err.value) and path.name in str(err.value)
        assert "\n" not in str(err.value)
        return
    run = ingest.parse_file(path)
    attempts, tests = expected_junit(path)
    c = run.counts()
    assert (run.attempt_count, c["tests"]) == (attempts, tests)
    assert c["passed"] + c["failed"] + c["errors"] + c["skipped"] == c["tests"]
    with Store(tmp_path / "s.duckdb") as store:
        run_id, _ = insert_run(store, run, {"project": "sweep"})
        stored = store.query("run", run_id=run_id).iloc[0]
        n = store.sql("SELECT count(*) AS n FROM results WHERE run_id = ?", [run_id])["n"].item()
    assert (stored.tests, stored.failed, stored.errors, n) == (
        tests,
        c["failed"],
        c["errors"],
        attempts,
    )


@pytest.mark.parametrize("path", ctrf_files(), ids=lambda p: p.name)
def test_ctrf_fixture(path):
    doc = json.loads(path.read_bytes())
    if "results" not in doc:  # the JSON schema itself
        with pytest.raises(ingest.IngestError, match="not a recognised test report|not a CTRF"):
            ingest.parse_file(path)
        return
    run = ingest.parse_file(path)
    statuses = Counter(t["status"] for t in doc["results"]["tests"])
    c = run.counts()
    assert c["tests"] == len(doc["results"]["tests"])
    assert c["failed"] == statuses["failed"] and c["passed"] == statuses["passed"]
    assert c["skipped"] == statuses["skipped"] + statuses["pending"]


def test_sweep_covers_the_producers():
    names = {p.relative_to(SHARED).parts[0] for p in junit_files()}
    assert {
        "go-junit-report",
        "gotestsum",
        "action-junit-report",
        "test-reporter",
        "publish-unit-test-result-action",
        "xunit-plugin",
        "pytest-coverage-comment",
    } <= names
    assert len(junit_files()) >= 100
    assert {fmt for fmt, _ in other_xml_files()} == {"nunit", "trx", "xunit"}
    assert len(other_xml_files()) >= 40


@pytest.mark.parametrize("path", junit_files(), ids=lambda p: str(p.relative_to(SHARED)))
def test_a_junit_fixture_reads_the_same_streamed_as_whole(path, monkeypatch):
    """Big reports are read as a stream: every fixture, forced down that path, gives the
    same rows, counts and warnings — or the same refusal — as the whole-tree read."""
    from workbench.ingest import junit

    def read():
        try:
            run = ingest.parse_file(path, "junit")
        except ingest.IngestError as err:
            return str(err).split(":", 1)[1].split("line")[0]
        return run.columns(), run.counts(), run.warnings, run.header_tests, run.started_at

    whole = read()
    monkeypatch.setattr(junit, "STREAM_BYTES", 0)
    assert read() == whole
