"""Batches of finished tests sent by the pytest plugin (JSON), validated into a ParsedRun."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .base import OUTCOMES, Attempt, IngestError, ParsedRun


def _str(value: Any, what: str, source: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise IngestError(f"{source}: {what} must be a string")


def json_body(body: bytes, source: str) -> Any:
    """A request body as JSON, or :class:`IngestError` naming ``source``."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise IngestError(f"{source}: not valid JSON: {err}") from None


def json_object(body: bytes, source: str) -> dict:
    """A request body that must be a JSON object (an empty body is ``{}``)."""
    value = json_body(body or b"{}", source)
    if not isinstance(value, dict):
        raise IngestError(f"{source}: expected a JSON object")
    return value


def parse_batch(body: bytes | dict, source: str) -> ParsedRun:
    """``{"tests": [{"classname", "name", "file", "attempts": [{"outcome", ...}]}]}``.

    Every field is checked before anything is returned, so a bad batch stores nothing.
    """
    if isinstance(body, bytes | bytearray):
        body = json_body(body, source)
    tests = body.get("tests") if isinstance(body, dict) else None
    if not isinstance(tests, list):
        raise IngestError(f"{source}: expected an object with a 'tests' list")
    run = ParsedRun("pytest-live", source, hashlib.sha256(repr(tests).encode()).hexdigest())
    for i, t in enumerate(tests):
        where = f"tests[{i}]"
        if not isinstance(t, dict) or not isinstance(t.get("name"), str) or not t["name"]:
            raise IngestError(f"{source}: {where} needs a non-empty string 'name'")
        attempts = t.get("attempts")
        if not isinstance(attempts, list) or not attempts:
            raise IngestError(f"{source}: {where} needs a non-empty 'attempts' list")
        parsed = []
        for j, a in enumerate(attempts):
            if not isinstance(a, dict) or a.get("outcome") not in OUTCOMES:
                raise IngestError(
                    f"{source}: {where}.attempts[{j}].outcome must be one of {', '.join(OUTCOMES)}"
                )
            dur = a.get("duration_s")
            if dur is not None and (not isinstance(dur, int | float) or isinstance(dur, bool)
                                    or not 0 <= dur < 1e9):
                raise IngestError(
                    f"{source}: {where}.attempts[{j}].duration_s must be a number of seconds "
                    "from 0 to 1e9")
            parsed.append(
                Attempt(
                    a["outcome"],
                    dur,
                    _str(a.get("message"), "message", source),
                    _str(a.get("error_type"), "error_type", source),
                    _str(a.get("details"), "details", source),
                )
            )
        run.add(
            t["name"],
            parsed,
            classname=_str(t.get("classname"), "classname", source),
            file=_str(t.get("file"), "file", source),
            suite=_str(t.get("suite"), "suite", source),
        )
    return run



def parse_running(body: dict, source: str) -> list[str] | None:
    """The optional ``running`` list of a batch: test ids started and not finished."""
    running = body.get("running") if isinstance(body, dict) else None
    if running is None:
        return None
    if (not isinstance(running, list) or len(running) > 10_000
            or not all(isinstance(t, str) and 0 < len(t) <= 4096 for t in running)):
        raise IngestError(f"{source}: running must be a list of at most 10000 test ids")
    return list(dict.fromkeys(running))
