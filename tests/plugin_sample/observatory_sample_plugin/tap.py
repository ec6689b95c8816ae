"""TAP (Test Anything Protocol) reports, as ``node --test --test-reporter=tap`` writes
them: a report format the workbench does not ship, added from outside."""

from __future__ import annotations

import re

from workbench.ingest.base import Attempt, IngestError, ParsedRun, Parser

_RESULT = re.compile(r"^(?P<indent> *)(?P<not>not )?ok \d+(?: - (?P<name>.*?))?"
                     r"(?: # (?P<directive>SKIP|TODO)\b.*)?$")
_DURATION = re.compile(r"^\s+duration_ms: ([\d.]+)")
_ERROR = re.compile(r"^\s+error: (?:'(?P<one>.*)'|(?P<block>\|-?))\s*$")


class TapParser(Parser):
    format = "tap"
    title = "TAP"
    extensions = (".tap",)

    @classmethod
    def sniff(cls, head: bytes, name: str) -> bool:
        return head.lstrip().startswith(b"TAP version") or name.endswith(".tap")

    def parse(self, data: bytes, source: str) -> ParsedRun:
        try:
            lines = data.decode("utf-8").splitlines()
        except UnicodeDecodeError:
            raise IngestError(f"{source}: TAP must be UTF-8") from None
        if not lines or not lines[0].startswith("TAP version"):
            raise IngestError(f"{source}: not a TAP report (no 'TAP version' line)")
        run = self.new_run(data, source)
        pending: dict[int, list[list]] = {}  # results by indent, waiting for their parent
        for i, line in enumerate(lines):
            m = _RESULT.match(line)
            if not m:
                continue
            indent, name = len(m["indent"]), m["name"] or f"test {i}"
            outcome = ("skipped" if m["directive"] else
                       "failed" if m["not"] else "passed")
            duration, message = None, None
            for follow in lines[i + 1:i + 40]:
                if _RESULT.match(follow) or follow.strip() == "...":
                    break
                if d := _DURATION.match(follow):
                    duration = float(d.group(1)) / 1000
                if e := _ERROR.match(follow):
                    message = e["one"] or "error"
            children = pending.pop(indent + 4, [])
            if children:  # a suite: its name goes to its tests
                for child in children:
                    child[1] = name + (" > " + child[1] if child[1] else "")
                pending.setdefault(indent, []).extend(children)
            else:
                pending.setdefault(indent, []).append(
                    [name, "", Attempt(outcome, duration, message, None, None)])
        for name, suite, attempt in pending.get(0, []):
            run.add(name, [attempt], classname=suite or None)
        return run
