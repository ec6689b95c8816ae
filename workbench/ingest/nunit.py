"""NUnit XML: NUnit 3 (``<test-run>``) and NUnit 2 (``<test-results>``)."""

from __future__ import annotations

import re

from .base import Attempt, IngestError, ParsedRun, Parser, header_count, seconds, timestamp
from .xml import local, parse_xml

_ERROR_LABELS = {"error", "cancelled", "invalid"}
_NUNIT2_ERRORS = {"error", "notrunnable"}


def _text(el, path: str) -> str | None:
    node = el.find(path)
    if node is None:
        return None
    text = "".join(node.itertext()).strip()
    return text or None


def _split_fullname(fullname: str) -> tuple[str | None, str]:
    """``Ns.Class.Method(1, "a.b")`` → ``("Ns.Class", "Method(1, \"a.b\")")``."""
    head = fullname.split("(", 1)[0]
    if "." not in head:
        return None, fullname
    cut = head.rfind(".")
    return fullname[:cut], fullname[cut + 1 :]


class NUnitParser(Parser):
    format = "nunit"
    title = "NUnit XML"
    extensions = (".xml",)

    @classmethod
    def sniff(cls, head: bytes, name: str) -> bool:
        return re.search(rb"<test-(run|results|suite)[\s>]", head) is not None

    def parse(self, data: bytes, source: str) -> ParsedRun:
        root = parse_xml(data, source)
        tag = local(root.tag)
        if tag not in ("test-run", "test-results", "test-suite"):
            raise IngestError(f"{source}: not an NUnit report (root element <{tag}>)")
        # A bare <test-suite> is a fragment of either version; NUnit 3 marks runstate.
        v3 = tag == "test-run" or (tag == "test-suite" and root.get("runstate") is not None)
        run = self.new_run(data, source)
        cases = 0
        for case in root.iter("test-case"):
            cases += 1
            outcome = self._nunit3(case) if v3 else self._nunit2(case)
            classname = case.get("classname")
            name = case.get("name") or ""
            if classname is None:
                classname, name = _split_fullname(case.get("fullname") or name)
            message = _text(case, "failure/message") or _text(case, "reason/message")
            duration = seconds(case.get("duration") if v3 else case.get("time"))
            details = _text(case, "failure/stack-trace")
            run.add(name, [Attempt(outcome, duration, message, None, details)],
                    classname=classname)
        if v3:
            run.started_at = timestamp(root.get("start-time"))
            run.duration_s = seconds(root.get("duration"))
            total = root.get("testcasecount") or root.get("total")
            run.header_tests = header_count(total) if total and total.isdigit() else None
            run.check_header(cases)
        elif root.get("date"):
            run.started_at = timestamp(f"{root.get('date')}T{root.get('time', '00:00:00')}")
        return run

    @staticmethod
    def _nunit3(case) -> str:
        result = (case.get("result") or "").lower()
        if result == "failed":
            return "error" if (case.get("label") or "").lower() in _ERROR_LABELS else "failed"
        if result in ("passed", "warning"):
            return "passed"
        return "skipped"  # Skipped, Ignored, Inconclusive

    @staticmethod
    def _nunit2(case) -> str:
        if (case.get("executed") or "true").lower() == "false":
            return "skipped"
        result = (case.get("result") or "").lower()
        if result in _NUNIT2_ERRORS:
            return "error"
        if result in ("failure", "failed") or (case.get("success") or "").lower() == "false":
            return "failed"
        if result in ("ignored", "skipped", "inconclusive"):
            return "skipped"
        return "passed"
