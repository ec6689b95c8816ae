"""CTRF JSON (Common Test Report Format)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from .base import Attempt, IngestError, ParsedRun, Parser, seconds

_STATUS = {
    "passed": "passed",
    "failed": "failed",
    "skipped": "skipped",
    "pending": "skipped",
    "other": "error",
}


def _status(value: object, source: str) -> str:
    try:
        return _STATUS[str(value).lower()]
    except KeyError:
        raise IngestError(f"{source}: unknown CTRF test status {value!r}") from None


def _ms_time(value: object) -> datetime | None:
    if isinstance(value, int | float) and value > 0:
        return datetime.fromtimestamp(value / 1000, tz=UTC).replace(tzinfo=None)
    return None


def _obj(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    """A string field: strings as they are, other JSON values as their JSON text."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


class CTRFParser(Parser):
    format = "ctrf"
    title = "CTRF JSON"
    extensions = (".json",)

    @classmethod
    def sniff(cls, head: bytes, name: str) -> bool:
        return b'"results"' in head and (b'"tool"' in head or b"CTRF" in head)

    def parse(self, data: bytes, source: str) -> ParsedRun:
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise IngestError(f"{source}: not valid JSON: {err}") from None
        results = doc.get("results") if isinstance(doc, dict) else None
        if not isinstance(results, dict) or not isinstance(results.get("tests"), list):
            raise IngestError(f"{source}: not a CTRF report (no results.tests list)")
        run = self.new_run(data, source)
        # A field of the wrong JSON type is read as missing (or as its text), never as a
        # crash: CTRF is produced by many hand-written reporters.
        summary = _obj(results.get("summary"))
        run.started_at = _ms_time(summary.get("start"))
        stop = summary.get("stop")
        if isinstance(stop, int | float) and isinstance(summary.get("start"), int | float):
            run.duration_s = max(stop - summary["start"], 0) / 1000
        if isinstance(summary.get("tests"), int) and not isinstance(summary["tests"], bool):
            run.header_tests = summary["tests"]
        env = _obj(results.get("environment"))
        run.meta.update(
            branch=_text(env.get("branchName")),
            commit=_text(env.get("commit")),
            build=_text(env["buildNumber"])
            if env.get("buildNumber") is not None
            else _text(env.get("buildName")),
            build_url=_text(env.get("buildUrl")),
            project=_text(env.get("appName") or env.get("repositoryName")),
        )
        for i, t in enumerate(results["tests"]):
            if not isinstance(t, dict):
                raise IngestError(f"{source}: results.tests[{i}] is not an object")
            final = Attempt(
                _status(t.get("status"), source),
                seconds(t.get("duration"), 1e-3),
                _text(t.get("message")),
                None,
                _text(t.get("trace")),
            )
            attempts = []
            retries = t.get("retryAttempts")
            for r in retries if isinstance(retries, list) else []:
                r = _obj(r)
                attempts.append(
                    Attempt(
                        _status(r.get("status"), source),
                        seconds(r.get("duration"), 1e-3),
                        _text(r.get("message")),
                        None,
                        _text(r.get("trace")),
                    )
                )
            # Some producers list the final attempt among retryAttempts, others don't.
            if not attempts or attempts[-1].outcome != final.outcome:
                attempts.append(final)
            else:
                attempts[-1] = final
            suite = t.get("suite")
            suite = " > ".join(map(str, suite)) if isinstance(suite, list) else _text(suite)
            run.add(
                _text(t.get("name")) or "",
                attempts,
                classname=suite,
                file=_text(t.get("filePath")),
                suite=suite,
            )
        # summary.tests counts tests, not attempts
        held = len(run.test_ids())
        if run.header_tests is not None and run.header_tests != held:
            run.warnings.append(
                f"summary says {run.header_tests} tests but the report holds {held}"
            )
        return run
