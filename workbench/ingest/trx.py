"""Visual Studio / ``dotnet test`` TRX (MSTest, xUnit and NUnit adapters)."""

from __future__ import annotations

import math
import re

from .base import Attempt, IngestError, ParsedRun, Parser, header_count, timestamp
from .xml import local, parse_xml

_OUTCOMES = {
    "passed": "passed",
    "passedbutrunaborted": "passed",
    "warning": "passed",
    "failed": "failed",
    "error": "error",
    "timeout": "error",
    "aborted": "error",
}
_DURATION = re.compile(r"^(?:(\d+)\.)?(\d+):(\d+):(\d+(?:\.\d+)?)$")


def trx_seconds(value: str | None) -> float | None:
    """``[d.]hh:mm:ss.fffffff`` → seconds."""
    m = _DURATION.match(value or "")
    if not m:
        return None
    days, h, mins, s = m.groups()
    try:  # (hundreds of digits overflow a float, thousands an int)
        out = int(days or 0) * 86400 + int(h) * 3600 + int(mins) * 60 + float(s)
    except (OverflowError, ValueError):
        return None
    return out if math.isfinite(out) else None


class TRXParser(Parser):
    format = "trx"
    title = "TRX"
    extensions = (".trx",)

    @classmethod
    def sniff(cls, head: bytes, name: str) -> bool:
        return b"<TestRun" in head

    def parse(self, data: bytes, source: str) -> ParsedRun:
        root = parse_xml(data, source)
        if local(root.tag) != "TestRun":
            raise IngestError(f"{source}: not a TRX report (root element <{local(root.tag)}>)")
        ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        classes = {}
        for unit in root.iter(f"{ns}UnitTest"):
            method = unit.find(f"{ns}TestMethod")
            if method is not None and method.get("className"):
                classes[unit.get("id")] = method.get("className").split(",", 1)[0].strip()
        run = self.new_run(data, source)
        results = [
            r for r in root.iter(f"{ns}UnitTestResult") if r.find(f"{ns}InnerResults") is None
        ]  # data-driven: keep the rows
        for res in results:
            outcome = _OUTCOMES.get((res.get("outcome") or "").lower(), "skipped")
            classname = classes.get(res.get("testId"))
            name = res.get("testName")
            info = res.find(f"{ns}Output/{ns}ErrorInfo")
            message = details = None
            if info is not None:
                message = (info.findtext(f"{ns}Message") or "").strip() or None
                details = (info.findtext(f"{ns}StackTrace") or "").strip() or None
            if outcome == "skipped" and message is None:
                msgs = res.findall(f"{ns}Output/{ns}TextMessages/{ns}Message")
                message = (msgs[0].text or "").strip() or None if msgs else None
            duration = trx_seconds(res.get("duration"))
            run.add(name, [Attempt(outcome, duration, message, None, details)],
                    classname=classname)
        times = root.find(f"{ns}Times")
        if times is not None:
            start, finish = timestamp(times.get("start")), timestamp(times.get("finish"))
            run.started_at = start
            # (one with an offset and one without cannot be compared: no duration)
            if start and finish and (start.tzinfo is None) == (finish.tzinfo is None):
                run.duration_s = max((finish - start).total_seconds(), 0.0)
        counters = root.find(f"{ns}ResultSummary/{ns}Counters")
        if counters is not None and (counters.get("total") or "").isdigit():
            run.header_tests = header_count(counters.get("total"))
            run.check_header(len(results))
        return run
