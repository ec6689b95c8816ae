"""JUnit XML in its many dialects (Surefire, pytest, jest, Go, PHPUnit, Catch2, ...)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .base import (
    CHUNK_ROWS,
    Attempt,
    IngestError,
    ParsedRun,
    Parser,
    header_count,
    seconds,
    timestamp,
)
from .xml import iter_xml, local, parse_xml

if TYPE_CHECKING:
    from collections.abc import Iterator

    from lxml import etree

_FAIL = {"failure": "failed", "error": "error"}
# Surefire's retry records: flaky* come before a final pass, rerun* after the first failure.
_FLAKY = {"flakyFailure": "failed", "flakyError": "error"}
_RERUN = {"rerunFailure": "failed", "rerunError": "error"}
_SKIP_STATUS = {"skipped", "disabled", "ignored", "notrun", "skip"}


def _text(el: etree._Element) -> str | None:
    text = "".join(el.itertext()).strip("\n")
    return text or None


def _attempt(el: etree._Element, outcome: str, duration: float | None) -> Attempt:
    details = None
    trace = el.find("stackTrace")
    if trace is not None:
        details = _text(trace)
    elif el.text is not None or len(el):
        details = (el.text or "").strip("\n") or None
    return Attempt(outcome, duration, el.get("message"), el.get("type"), details)


def _case_attempts(case: etree._Element, duration: float | None) -> list[Attempt]:
    main: Attempt | None = None
    flaky: list[Attempt] = []
    rerun: list[Attempt] = []
    for child in case:
        tag = local(child.tag)
        if tag in _FAIL and main is None:
            main = _attempt(child, _FAIL[tag], duration)
        elif tag == "skipped" and main is None:
            main = Attempt("skipped", duration, child.get("message"), None, _text(child))
        elif tag in _FLAKY:
            flaky.append(_attempt(child, _FLAKY[tag], seconds(child.get("time"))))
        elif tag in _RERUN:
            rerun.append(_attempt(child, _RERUN[tag], seconds(child.get("time"))))
    if main is None:
        status = (case.get("status") or case.get("result") or "").lower()
        main = Attempt("skipped" if status in _SKIP_STATUS else "passed", duration)
    return [*flaky, main, *rerun]


_UNSET = object()
#: Every element the stream stops at (suites for the root and its attributes, cases).
_TAGS = ("{*}testsuites", "{*}testsuite", "{*}testcase")
#: Reports up to this size are parsed whole (faster: lxml builds a tree at C speed, ~10x
#: the file in memory); bigger ones are read as a stream whose memory does not grow.
STREAM_BYTES = 16 * 1024 * 1024


def _read(data: bytes, source: str) -> tuple[etree._Element, Iterator[etree._Element]]:
    """The document's root and its test cases, from a whole tree or from a stream that
    drops each test case once the caller has read it (the suites stay: their attributes
    are read at the end)."""
    if len(data) <= STREAM_BYTES:
        root = parse_xml(data, source)
        plain = isinstance(root.tag, str) and "}" not in root.tag
        return root, root.iter("testcase" if plain else "{*}testcase")
    events = iter_xml(data, source, _TAGS)
    event, first = next(events)
    root = first if event == "done" else first.getroottree().getroot()

    def cases() -> Iterator[etree._Element]:
        for event, el in events:
            if event == "end" and local(el.tag) == "testcase":
                yield el
                parent = el.getparent()
                el.clear(keep_tail=False)
                if parent is not None:
                    parent.remove(el)

    return root, cases()


_NODE_TESTS = re.compile(rb"<!--\s*tests (\d+)\s*-->")


def _node_summary(data: bytes) -> int | None:
    """The test count Node's reporter writes as a closing comment, or None (not Node)."""
    m = _NODE_TESTS.search(data, max(0, len(data) - 4096))
    return int(m.group(1)) if m else None


def _suite_name(parent: etree._Element | None, node: int | None) -> str | None:
    """The enclosing suite's name; for Node, the path of describe() blocks (``a > b``)."""
    names = []
    while parent is not None and local(parent.tag) == "testsuite":
        names.append(parent.get("name") or "")
        if not node:
            break
        parent = parent.getparent()
    return " > ".join(reversed(names)) or None


class JUnitParser(Parser):
    """``<testsuites>`` or bare ``<testsuite>`` roots, nested suites, retries, odd units."""

    format = "junit"
    title = "JUnit XML"
    extensions = (".xml",)

    @classmethod
    def sniff(cls, head: bytes, name: str) -> bool:
        return b"<testsuite" in head or (name.endswith(".xml") and b"<testcase" in head)

    def parse(self, data: bytes, source: str) -> ParsedRun:
        run = self.new_run(data, source)
        elements = 0
        # The hot loop: appends bound once, identity and time inlined (100k cases/s matter).
        cols = run._cols
        a_tid, a_suite, a_cls, a_name, a_file, a_out, a_dur, a_msg, a_type, a_det = (
            cols[k].append
            for k in (
                "test_id",
                "suite",
                "classname",
                "name",
                "file",
                "outcome",
                "duration_s",
                "message",
                "error_type",
                "details",
            )
        )
        # Node's reporter names every case classname="test" and nests describe() blocks as
        # suites: the suite path is what tells its tests apart.
        node = _node_summary(data)
        suite_names: dict[object, str | None] = {}
        root, cases = _read(data, source)
        tag = local(root.tag)
        if tag not in ("testsuites", "testsuite"):
            raise IngestError(f"{source}: not a JUnit report (root element <{tag}>)")
        loose = False  # test cases directly under <testsuites> (Node)
        # Test cases are read wherever they sit: under <testsuites> directly (Node), in
        # nested suites (PHPUnit, Node describe), or under a bare <testsuite>.
        for case in cases:
            elements += 1
            parent = case.getparent()
            if parent is root and tag == "testsuites":
                loose = True
            suite_name = suite_names.get(parent, _UNSET)
            if suite_name is _UNSET:
                suite_name = _suite_name(parent, node)
                suite_names[parent] = suite_name
            get = case.get
            name = get("name") or run.test_name(None)
            classname = (suite_name if node else None) or get("classname") or get("class")
            if node and classname == "test":
                classname = None
            file = get("file")
            scope = classname or file
            tid = f"{scope}::{name}" if scope else name
            raw = get("time")
            try:
                duration = float(raw) if raw else None
                if duration is not None and not (0 <= duration < float("inf")):
                    duration = None
            except ValueError:
                duration = seconds(raw)
            if not len(case) and get("status") is None and get("result") is None:
                a_tid(tid), a_suite(suite_name), a_cls(classname), a_name(name), a_file(file)
                a_out("passed"), a_dur(duration), a_msg(None), a_type(None), a_det(None)
            else:
                run.add_attempts(tid, suite_name, classname, name, file,
                                 _case_attempts(case, duration))
            if len(cols["test_id"]) >= CHUNK_ROWS:
                run.compact()
        # Outer suites' counts include their children's, so add up the top level only.
        tops = [root] if tag == "testsuite" else list(root.iterchildren("{*}testsuite"))
        header = [header_count(s.get("tests")) for s in tops]
        # Cases directly under <testsuites> (Node) are in no suite's count: only the root's
        # own count, if it has one, can speak for the whole file.
        if tag == "testsuites" and (not header or None in header or loose):
            header = [header_count(root.get("tests"))]
        have_header = bool(header) and None not in header
        header = sum(header) if have_header else None
        run.header_tests = header
        first = root if root.get("timestamp") else root.find("{*}testsuite")
        run.started_at = timestamp(first.get("timestamp")) if first is not None else None
        run.duration_s = seconds(root.get("time"))
        if run.duration_s is None and tag == "testsuites":
            times = [seconds(s.get("time")) for s in root.iterchildren("{*}testsuite")]
            run.duration_s = sum(t for t in times if t is not None) or None
        run.meta["hostname"] = next(
            (s.get("hostname") for s in root.iter("{*}testsuite") if s.get("hostname")), None
        )
        run.check_header(elements)
        run.expected_tests = elements
        # (a streamed run's distinct tests are only counted in the store: not checked)
        if node is not None and run.sink is None and node != len(run.test_ids()):
            raise IngestError(
                f"{source}: Node's summary says {node} tests but {len(run.test_ids())} "
                "distinct tests were read (two tests with the same name in one suite?)"
            )
        return run
