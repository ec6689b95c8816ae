"""pytest-reportlog JSON lines (``pytest --report-log=FILE``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ..analysis.identity import from_nodeid
from .base import Attempt, IngestError, ParsedRun, Parser


def longrepr_text(longrepr: Any) -> tuple[str | None, str | None]:
    """``(message, details)`` from a serialised pytest longrepr (str, tuple or dict)."""
    if longrepr is None:
        return None, None
    if isinstance(longrepr, str):
        return longrepr.strip().splitlines()[-1] if longrepr.strip() else None, longrepr
    if isinstance(longrepr, list):  # skip reports: [path, lineno, reason]
        return str(longrepr[-1]).removeprefix("Skipped: "), None
    if not isinstance(longrepr, dict):
        return str(longrepr), None
    crash = longrepr.get("reprcrash") or {}
    lines: list[str] = []
    for entry in (longrepr.get("reprtraceback") or {}).get("reprentries") or []:
        data = entry.get("data") or {}
        lines.extend(data.get("lines") or [])
        loc = data.get("reprfileloc") or {}
        if loc:
            lines.append(f"{loc.get('path')}:{loc.get('lineno')}: {loc.get('message')}")
    return crash.get("message"), "\n".join(lines) or None


class _Pending:
    __slots__ = ("duration", "outcome", "message", "details", "after_rerun")

    def __init__(self) -> None:
        self.duration = 0.0
        self.outcome: str | None = None
        self.message: str | None = None
        self.details: str | None = None
        # pytest-rerunfailures logs the rerun attempt's own teardown after its "rerun" call
        self.after_rerun = False


def phase_outcome(when: str, outcome: str) -> str | None:
    """Map one pytest phase result onto an attempt outcome (None: phase did not decide)."""
    if outcome == "skipped":
        return "skipped"
    if outcome in ("failed", "rerun", "error"):
        return "failed" if when == "call" else "error"
    return None


class ReportLogParser(Parser):
    format = "reportlog"
    extensions = (".jsonl", ".json", ".log")

    @classmethod
    def sniff(cls, head: bytes, name: str) -> bool:
        return b'"$report_type"' in head

    def parse(self, data: bytes, source: str) -> ParsedRun:
        run = self.new_run(data, source)
        pending: dict[str, _Pending] = {}
        first_start = last_stop = None
        for lineno, line in enumerate(data.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError) as err:
                raise IngestError(f"{source}:{lineno}: not valid JSON: {err}") from None
            if not isinstance(rec, dict) or rec.get("$report_type") != "TestReport":
                continue
            nodeid, when = rec.get("nodeid"), rec.get("when")
            if not nodeid or when not in ("setup", "call", "teardown"):
                raise IngestError(f"{source}:{lineno}: TestReport without nodeid/when")
            p = pending.setdefault(nodeid, _Pending())
            if when == "setup":
                p.after_rerun = False
            elif when == "teardown" and p.after_rerun:
                p.after_rerun = False
                continue
            p.duration += float(rec.get("duration") or 0)
            start, stop = rec.get("start"), rec.get("stop")
            if isinstance(start, int | float):
                first_start = start if first_start is None else min(first_start, start)
            if isinstance(stop, int | float):
                last_stop = stop if last_stop is None else max(last_stop, stop)
            decided = phase_outcome(when, str(rec.get("outcome")))
            if decided and p.outcome in (None, "passed"):
                p.outcome = decided
                p.message, p.details = longrepr_text(rec.get("longrepr"))
            elif p.outcome is None and when == "call":
                p.outcome = "passed"
            if when == "teardown" or rec.get("outcome") == "rerun":
                classname, file, name = from_nodeid(nodeid)
                outcome = p.outcome or "passed"
                run.add(
                    name,
                    [Attempt(outcome, p.duration, p.message, None, p.details)],
                    classname=classname,
                    file=file,
                    suite=file,
                )
                pending[nodeid] = _Pending()
                pending[nodeid].after_rerun = rec.get("outcome") == "rerun"
                if not pending[nodeid].after_rerun:
                    del pending[nodeid]
        if first_start is not None:
            run.started_at = datetime.fromtimestamp(first_start, tz=UTC).replace(tzinfo=None)
            if last_stop is not None:
                run.duration_s = max(last_stop - first_start, 0.0)
        if not run.attempt_count:
            raise IngestError(f"{source}: no TestReport records (is this a pytest report log?)")
        return run
