"""CTRF JSON (Common Test Report Format)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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
    seconds,
    text,
    wrong_type,
)

_STATUS = {
    "passed": "passed",
    "failed": "failed",
    "skipped": "skipped",
    "pending": "skipped",
    "other": "error",
}
#: Epoch milliseconds a datetime holds.
_EPOCH_MS = (EPOCH_SECONDS[0] * 1000, EPOCH_SECONDS[1] * 1000)
#: A test count as the store's INTEGER column holds it.
_COUNT = (0, 2**31 - 1)


def _status(value: Any, source: str, field: str) -> str:
    status = text(value, source, field)
    try:
        return _STATUS[str(status).lower()]
    except KeyError:
        raise IngestError(f"{source}: unknown CTRF test status {status!r} ({field})") from None


def _attempt(t: dict, source: str, at: str) -> Attempt:
    """One attempt from a test or one of its ``retryAttempts``."""
    return Attempt(
        _status(t.get("status"), source, f"{at}.status"),
        seconds(number(t.get("duration"), source, f"{at}.duration"), 1e-3),
        text(t.get("message"), source, f"{at}.message"),
        None,
        text(t.get("trace"), source, f"{at}.trace"),
    )


class CTRFParser(Parser):
    format = "ctrf"
    title = "CTRF JSON"
    extensions = (".json",)

    @classmethod
    def sniff(cls, head: bytes, name: str) -> bool:
        return b'"results"' in head and (b'"tool"' in head or b"CTRF" in head)

    def parse(self, data: bytes, source: str) -> ParsedRun:
        doc = load_json(data, source)
        results = doc.get("results") if isinstance(doc, dict) else None
        if not isinstance(results, dict) or not isinstance(results.get("tests"), list):
            raise IngestError(f"{source}: not a CTRF report (no results.tests list)")
        run = self.new_run(data, source)
        # Every field read is type-checked: one of the wrong JSON type is an IngestError
        # naming it (build numbers may be numbers; missing or null fields are absent).
        summary = obj(results.get("summary"), source, "results.summary")
        start = number(summary.get("start"), source, "results.summary.start", bounds=_EPOCH_MS)
        stop = number(summary.get("stop"), source, "results.summary.stop", bounds=_EPOCH_MS)
        if start:
            run.started_at = datetime.fromtimestamp(start / 1000, tz=UTC).replace(tzinfo=None)
        if stop is not None and start is not None:
            run.duration_s = max(stop - start, 0) / 1000
        run.header_tests = number(summary.get("tests"), source, "results.summary.tests",
                                  integer=True, bounds=_COUNT)
        env = obj(results.get("environment"), source, "results.environment")

        def env_text(key: str) -> str | None:
            return text(env.get(key), source, f"results.environment.{key}", numbers=True)

        run.meta.update(
            branch=env_text("branchName"),
            commit=env_text("commit"),
            build=env_text("buildNumber")
            if env.get("buildNumber") is not None
            else env_text("buildName"),
            build_url=env_text("buildUrl"),
            project=env_text("appName") or env_text("repositoryName"),
        )
        for i, t in enumerate(results["tests"]):
            at = f"results.tests[{i}]"
            if not isinstance(t, dict):
                raise wrong_type(source, at, "an object", t)
            final = _attempt(t, source, at)
            attempts = []
            for j, r in enumerate(items(t.get("retryAttempts"), source, f"{at}.retryAttempts")):
                if not isinstance(r, dict):
                    raise wrong_type(source, f"{at}.retryAttempts[{j}]", "an object", r)
                attempts.append(_attempt(r, source, f"{at}.retryAttempts[{j}]"))
            # Some producers list the final attempt among retryAttempts, others don't.
            if not attempts or attempts[-1].outcome != final.outcome:
                attempts.append(final)
            else:
                attempts[-1] = final
            suite = t.get("suite")
            if isinstance(suite, list):  # the describe() path
                suite = " > ".join(text(s, source, f"{at}.suite[{j}]", numbers=True) or ""
                                   for j, s in enumerate(suite))
            else:
                suite = text(suite, source, f"{at}.suite")
            run.add(
                text(t.get("name"), source, f"{at}.name") or "",
                attempts,
                classname=suite,
                file=text(t.get("filePath"), source, f"{at}.filePath"),
                suite=suite,
            )
        # summary.tests counts tests, not attempts
        held = len(run.test_ids())
        if run.header_tests is not None and run.header_tests != held:
            run.warnings.append(
                f"summary says {run.header_tests} tests but the report holds {held}"
            )
        return run
