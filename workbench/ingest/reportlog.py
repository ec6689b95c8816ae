"""pytest-reportlog JSON lines (``pytest --report-log=FILE``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..analysis.identity import from_nodeid
from .base import (
    EPOCH_SECONDS,
    Attempt,
    IngestError,
    ParsedRun,
    Parser,
    items,
    load_json,
    number,
    obj,
    text,
    wrong_type,
)

#: A phase's duration in seconds, as the live API takes it.
DURATION = (0, 1e9)


def longrepr_text(longrepr: Any, where: str = "report",
                  field: str = "longrepr") -> tuple[str | None, str | None]:
    """``(message, details)`` from a serialised pytest longrepr (str, list or dict); a part
    of the wrong type is an IngestError naming ``where`` and the part."""
    if longrepr is None:
        return None, None
    if isinstance(longrepr, str):
        longrepr = text(longrepr, where, field)
        return longrepr.strip().splitlines()[-1] if longrepr.strip() else None, longrepr
    if isinstance(longrepr, list):  # skip reports: [path, lineno, reason]
        reason = text(longrepr[-1], where, f"{field}[-1]", numbers=True) if longrepr else None
        return (None if reason is None else reason.removeprefix("Skipped: ")), None
    if not isinstance(longrepr, dict):
        raise wrong_type(where, field, "a string, a list or an object", longrepr)
    crash = obj(longrepr.get("reprcrash"), where, f"{field}.reprcrash")
    tb = obj(longrepr.get("reprtraceback"), where, f"{field}.reprtraceback")
    lines: list[str] = []
    for i, entry in enumerate(items(tb.get("reprentries"), where,
                                    f"{field}.reprtraceback.reprentries")):
        at = f"{field}.reprtraceback.reprentries[{i}]"
        data = obj(obj(entry, where, at).get("data"), where, f"{at}.data")
        lines.extend(text(line, where, f"{at}.data.lines[{j}]") or ""
                     for j, line in enumerate(items(data.get("lines"), where,
                                                    f"{at}.data.lines")))
        loc = obj(data.get("reprfileloc"), where, f"{at}.data.reprfileloc")
        if loc:
            path = text(loc.get("path"), where, f"{at}.data.reprfileloc.path")
            lineno = number(loc.get("lineno"), where, f"{at}.data.reprfileloc.lineno",
                            integer=True)
            message = text(loc.get("message"), where, f"{at}.data.reprfileloc.message")
            lines.append(f"{path}:{lineno}: {message}")
    message = text(crash.get("message"), where, f"{field}.reprcrash.message")
    return message, "\n".join(lines) or None


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
            where = f"{source}:{lineno}"
            rec = load_json(line, where)
            if not isinstance(rec, dict) or rec.get("$report_type") != "TestReport":
                continue
            # Every field is checked before use: a line of the wrong shape is one clear
            # error naming the line and the field ("nodeid": [null] was a TypeError).
            nodeid = text(rec.get("nodeid"), where, "nodeid")
            when = text(rec.get("when"), where, "when")
            if not nodeid or when not in ("setup", "call", "teardown"):
                raise IngestError(f"{where}: TestReport without nodeid/when")
            outcome = text(rec.get("outcome"), where, "outcome")
            duration = number(rec.get("duration"), where, "duration", bounds=DURATION)
            start = number(rec.get("start"), where, "start", bounds=EPOCH_SECONDS)
            stop = number(rec.get("stop"), where, "stop", bounds=EPOCH_SECONDS)
            if start is not None:
                first_start = start if first_start is None else min(first_start, start)
            if stop is not None:
                last_stop = stop if last_stop is None else max(last_stop, stop)
            done = phases.feed(nodeid, when, str(outcome), duration,
                               lambda rec=rec, where=where: longrepr_text(rec.get("longrepr"),
                                                                          where))
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
