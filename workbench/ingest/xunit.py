"""xUnit.net v2 XML (``<assemblies>``/``<assembly>``)."""

from __future__ import annotations

from .base import Attempt, IngestError, ParsedRun, Parser, seconds
from .xml import local, parse_xml

_RESULTS = {"pass": "passed", "fail": "failed", "skip": "skipped", "notrun": "skipped"}


class XUnitParser(Parser):
    format = "xunit"
    title = "xUnit.net XML"
    extensions = (".xml",)

    @classmethod
    def sniff(cls, head: bytes, name: str) -> bool:
        return b"<assemblies" in head or b"<assembly " in head

    def parse(self, data: bytes, source: str) -> ParsedRun:
        root = parse_xml(data, source)
        if local(root.tag) not in ("assemblies", "assembly"):
            raise IngestError(
                f"{source}: not an xUnit.net report (root element <{local(root.tag)}>)"
            )
        run = self.new_run(data, source)
        for test in root.iter("test"):
            classname = test.get("type")
            name = test.get("name") or ""
            if classname and name.startswith(classname + "."):
                name = name[len(classname) + 1 :]
            fail = test.find("failure")
            message = details = error_type = None
            if fail is not None:
                message = (fail.findtext("message") or "").strip() or None
                details = (fail.findtext("stack-trace") or "").strip() or None
                error_type = fail.get("exception-type")
            elif test.find("reason") is not None:
                message = (test.findtext("reason") or "").strip() or None
            outcome = _RESULTS.get((test.get("result") or "").lower(), "skipped")
            duration = seconds(test.get("time"))
            run.add(name, [Attempt(outcome, duration, message, error_type, details)],
                    classname=classname)
        first = root if local(root.tag) == "assembly" else root.find("assembly")
        if first is not None:
            run.duration_s = seconds(first.get("time"))
        return run
