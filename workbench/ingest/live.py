"""Batches of finished tests sent by the pytest plugin (JSON), validated into a ParsedRun."""

from __future__ import annotations

import hashlib

from .base import (
    OUTCOMES,
    Attempt,
    IngestError,
    ParsedRun,
    checked_json,
    text,
    valid_unicode,
)

#: A request body as JSON, every value checked (base.checked_json).
json_body = checked_json


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
            at = f"{where}.attempts[{j}]"
            if not isinstance(a, dict) or a.get("outcome") not in OUTCOMES:
                raise IngestError(f"{source}: {at}.outcome must be one of {', '.join(OUTCOMES)}")
            dur = a.get("duration_s")
            if dur is not None and (not isinstance(dur, int | float) or isinstance(dur, bool)
                                    or not 0 <= dur < 1e9):
                raise IngestError(
                    f"{source}: {at}.duration_s must be a number of seconds from 0 to 1e9")
            parsed.append(
                Attempt(
                    a["outcome"],
                    dur,
                    text(a.get("message"), source, f"{at}.message"),
                    text(a.get("error_type"), source, f"{at}.error_type"),
                    text(a.get("details"), source, f"{at}.details"),
                )
            )
        run.add(
            text(t["name"], source, f"{where}.name"),
            parsed,
            classname=text(t.get("classname"), source, f"{where}.classname"),
            file=text(t.get("file"), source, f"{where}.file"),
            suite=text(t.get("suite"), source, f"{where}.suite"),
        )
    return run


def parse_running(body: dict, source: str) -> list[str] | None:
    """The optional ``running`` list of a batch: test ids started and not finished."""
    running = body.get("running") if isinstance(body, dict) else None
    if running is None:
        return None
    if (not isinstance(running, list) or len(running) > 10_000
            or not all(isinstance(t, str) and 0 < len(t) <= 4096 and valid_unicode(t)
                       for t in running)):
        raise IngestError(f"{source}: running must be a list of at most 10000 test ids")
    return list(dict.fromkeys(running))
