"""Input formats → :class:`ParsedRun`. One module per format; no database access here."""

from __future__ import annotations

import glob
import mmap
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import config, plugins
from . import ctrf, junit, nunit, reportlog, trx, xunit  # noqa: F401  (registers the parsers)
from .base import Attempt, IngestError, ParsedRun, Parser

#: Third-party parsers register by naming their module in this entry-point group; importing
#: it defines a :class:`Parser` subclass, which registers itself (workbench/plugins.py loads
#: it; one that fails is reported and skipped).
ENTRY_POINT_GROUP = "happy_observatory.parsers"
plugins.load(ENTRY_POINT_GROUP)


def formats() -> list[str]:
    """Format keys, for ``--format`` (the registry is the only list of formats)."""
    return sorted(Parser.registry)


def suffixes() -> tuple[str, ...]:
    """File suffixes searched for in directories: every parser's extensions."""
    return tuple(sorted({e for p in Parser.registry.values() for e in p.extensions}))


def _titles() -> str:
    return ", ".join(p.title or p.format for p in Parser.registry.values())


def detect(data: bytes, name: str) -> type[Parser]:
    """Pick the parser for a report by sniffing its first 64 KiB."""
    head = data[:65536]  # past long comment or whitespace preambles
    for parser in Parser.registry.values():
        if parser.sniff(head, name.lower()):
            return parser
    raise IngestError(f"{name}: not a recognised test report (known: {_titles()})")


def _parser(data: bytes, source: str, fmt: str | None) -> type[Parser]:
    if _BLANK.match(data):  # (works on a mapped file without copying it)
        raise IngestError(f"{source}: empty file")
    if fmt:
        try:
            return Parser.registry[fmt]
        except KeyError:
            known = ", ".join(sorted(Parser.registry))
            raise IngestError(f"{source}: unknown format {fmt!r} (known: {known})") from None
    return detect(data, source)


def parse_bytes(data: bytes, source: str, fmt: str | None = None,
                sink: Callable[[Any], None] | None = None) -> ParsedRun:
    """Parse one report held in memory; ``fmt`` forces a format key. With ``sink`` the run
    is streamed: each chunk of results goes to ``sink`` as it is read (see
    :func:`streams`), and the rows not yet handed on are the caller's to flush
    (``run.compact()``)."""
    parser = _parser(data, source, fmt)()
    if parser.format != "junit":  # only the JUnit reader takes a mapped file as it is
        data = as_bytes(data)
    parser.sink = sink
    run = parser.parse(data, source)
    _check_complete(run, data, source)
    return run


def streams(data: bytes, source: str, fmt: str | None = None) -> bool:
    """Whether a report is big enough, and of a format that can, to be stored as it is
    read (JUnit over ``junit.STREAM_BYTES``) rather than parsed whole first."""
    try:
        return len(data) > junit.STREAM_BYTES and _parser(data, source, fmt).format == "junit"
    except IngestError:
        return False


_BLANK = re.compile(rb"\s*\Z")
_CASE_ELEMENT = re.compile(rb"<(?:[\w.-]+:)?(?:testcase|test-case|UnitTestResult)[\s/>]")


def _check_complete(run: ParsedRun, data: bytes, source: str) -> None:
    """Never store fewer tests than a report holds: that would be wrong data with "ok"."""
    # Every test element yields at least one attempt (repeats of one test merge into it).
    if run.expected_tests is not None and run.attempt_count < run.expected_tests:
        raise IngestError(
            f"{source}: holds {run.expected_tests} test cases but only "
            f"{run.attempt_count} were read"
        )
    if not run.attempt_count and _CASE_ELEMENT.search(data):
        raise IngestError(
            f"{source}: holds test case elements but none could be read as {run.format}"
        )


def read_report(path: str | Path) -> bytes:
    """A report file's bytes; files over ``OBSERVATORY_MAX_REPORT_BYTES`` are refused.

    A big file (over ``junit.STREAM_BYTES``) is mapped rather than read: a JUnit report is
    then parsed as a stream that gives the file's pages back behind it, so memory does not
    grow with the file (other formats take :func:`as_bytes` of it)."""
    path = Path(path)
    limit = config.get("OBSERVATORY_MAX_REPORT_BYTES")
    try:
        size = path.stat().st_size
        if size > limit:
            raise IngestError(f"{path}: {size} bytes is over the {limit}-byte limit")
        if size > junit.STREAM_BYTES:
            with path.open("rb") as f:
                return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)  # type: ignore
        return path.read_bytes()
    except OSError as err:
        raise IngestError(f"{path}: cannot read: {err.strerror or err}") from None


def as_bytes(data: Any) -> bytes:
    """Report bytes held in memory (a mapped file is read whole, for the parsers that need
    all of it at once and for uploads)."""
    return data if isinstance(data, bytes) else bytes(data)


def parse_file(path: str | Path, fmt: str | None = None) -> ParsedRun:
    """Read and parse one report file."""
    return parse_bytes(read_report(path), str(path), fmt)


def expand(paths: list[str]) -> list[Path]:
    """Files, directories (searched recursively for report files) and globs → files.

    A path that matches nothing is returned as is so that reading it reports the error.
    """
    out: list[Path] = []
    wanted = suffixes()
    for raw in paths:
        matches = sorted(glob.glob(raw, recursive=True)) if glob.has_magic(raw) else [raw]
        if not matches:
            out.append(Path(raw))
        for m in matches:
            p = Path(m)
            if p.is_dir():
                out.extend(
                    sorted(
                        f
                        for f in p.rglob("*")
                        if f.is_file() and f.suffix.lower() in wanted
                    )
                )
            else:
                out.append(p)
    seen: set[Path] = set()
    return [p for p in out if not (p in seen or seen.add(p))]


__all__ = [
    "Attempt", "IngestError", "ParsedRun", "Parser", "expand", "formats", "parse_bytes",
    "parse_file", "read_report", "as_bytes", "streams", "suffixes",
]
