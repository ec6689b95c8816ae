"""pytest-reportlog JSON lines (``pytest --report-log=FILE``)."""

from __future__ import annotations

import json
from collections.abc import Callable
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


def phase_outcome(when: str, outcome: str) -> str | None:
    """Map one pytest phase result onto an attempt outcome (None: phase did not decide)."""
    if outcome == "skipped":
        return "skipped"
    if outcome in ("failed", "rerun", "error"):
        return "failed" if when == "call" else "error"
    return None


class PhaseAssembler:
    """Turns pytest's per-phase reports (setup, call, teardown) into attempts.

    :meth:`feed` returns ``(attempt, final)`` when an attempt completes: at its teardown,
    or at a ``rerun`` call from pytest-rerunfailures (not final; that attempt's own
    teardown, logged afterwards, is skipped).
    """

    def __init__(self) -> None:
        self._pending: dict[str, dict[str, Any]] = {}
        self._after_rerun: set[str] = set()

    def feed(self, nodeid: str, when: str, outcome: str, duration: float | None,
             describe: Callable[[], tuple[str | None, str | None]]
             ) -> tuple[Attempt, bool] | None:
        """Take one phase report; ``describe()`` gives ``(message, details)`` and is called
        only for the phase that decides the attempt's outcome."""
        if when == "setup":
            self._after_rerun.discard(nodeid)
        elif when == "teardown" and nodeid in self._after_rerun:
            self._after_rerun.discard(nodeid)
            return None
        p = self._pending.setdefault(
            nodeid, {"outcome": None, "duration": 0.0, "message": None, "details": None})
        p["duration"] += float(duration or 0)
        decided = phase_outcome(when, outcome)
        if decided and p["outcome"] in (None, "passed"):
            p["outcome"] = decided
            p["message"], p["details"] = describe()
        elif p["outcome"] is None and when == "call":
            p["outcome"] = "passed"
        if when != "teardown" and outcome != "rerun":
            return None
        del self._pending[nodeid]
        if outcome == "rerun":
            self._after_rerun.add(nodeid)
        attempt = Attempt(p["outcome"] or "passed", p["duration"], p["message"], None,
                          p["details"])
        return attempt, outcome != "rerun"


class ReportLogParser(Parser):
    format = "reportlog"
    title = "pytest report-log"
    extensions = (".jsonl", ".json", ".log")

    @classmethod
    def sniff(cls, head: bytes, name: str) -> bool:
        return b'"$report_type"' in head

    def parse(self, data: bytes, source: str) -> ParsedRun:
        run = self.new_run(data, source)
        phases = PhaseAssembler()
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
            start, stop = rec.get("start"), rec.get("stop")
            if isinstance(start, int | float):
                first_start = start if first_start is None else min(first_start, start)
            if isinstance(stop, int | float):
                last_stop = stop if last_stop is None else max(last_stop, stop)
            done = phases.feed(nodeid, when, str(rec.get("outcome")), rec.get("duration"),
                               lambda rec=rec: longrepr_text(rec.get("longrepr")))
            if done:
                classname, file, name = from_nodeid(nodeid)
                run.add(name, [done[0]], classname=classname, file=file, suite=file)
        if first_start is not None:
            run.started_at = datetime.fromtimestamp(first_start, tz=UTC).replace(tzinfo=None)
            if last_stop is not None:
                run.duration_s = max(last_stop - first_start, 0.0)
        if not run.attempt_count:
            raise IngestError(f"{source}: no TestReport records (is this a pytest report log?)")
        return run
