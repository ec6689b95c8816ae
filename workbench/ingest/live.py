"""Batches of finished tests sent by the pytest plugin (JSON), validated into a ParsedRun."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from .base import (
    FINITE,
    INT64,
    OUTCOMES,
    Attempt,
    IngestError,
    ParsedRun,
    load_json,
    number,
    text,
    valid_unicode,
)

#: What a value the store cannot hold may come from: a lone surrogate's escape or raw
#: UTF-8, a long run of digits, a big exponent, NaN or Infinity. A body without any of them
#: is not walked.
_SUSPECT = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]|\d{19}|[eE][+-]?\d{3}|NaN|Infinity")


def _check_values(value: Any, source: str) -> None:
    """Refuse, naming its field, a string (value or key) with a lone surrogate, an integer
    beyond 64 bits, or a number that is not finite, anywhere in ``value``."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            text(node, source, path or "the body")
        elif isinstance(node, int | float) and not isinstance(node, bool):
            number(node, source, path or "the body",
                   bounds=INT64 if isinstance(node, int) else FINITE)
        elif isinstance(node, dict):
            for k, v in node.items():
                text(k, source, f"a key in {path or 'the body'}")
                stack.append((v, f"{path}.{k}" if path else k))
        elif isinstance(node, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(node))


def json_body(body: bytes, source: str) -> Any:
    """A request body as JSON, or :class:`IngestError` naming ``source``.

    Whatever a field is for, a request holds nothing the store cannot: no integer beyond
    64 bits, no NaN or Infinity, no string with a lone surrogate (each was a 500)."""
    value = load_json(body, source)
    if _SUSPECT.search(body):
        _check_values(value, source)
    return value


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
