"""Input formats → :class:`ParsedRun`. One module per format; no database access here."""

from __future__ import annotations

import glob
import re
import os
from pathlib import Path

from . import ctrf, junit, nunit, reportlog, trx, xunit  # noqa: F401  (registers the parsers)
from .base import Attempt, IngestError, ParsedRun, Parser

REPORT_SUFFIXES = (".xml", ".json", ".jsonl", ".trx", ".log")
#: Files larger than this are refused rather than read into memory.
MAX_BYTES = int(os.environ.get("OBSERVATORY_MAX_REPORT_BYTES", 512 * 1024 * 1024))


def detect(data: bytes, name: str) -> type[Parser]:
    """Pick the parser for a report by sniffing its first 64 KiB."""
    head = data[:65536]  # past long comment or whitespace preambles
    for parser in Parser.registry.values():
        if parser.sniff(head, name.lower()):
            return parser
    raise IngestError(
        f"{name}: not a recognised test report (JUnit, NUnit, xUnit.net or TRX XML, "
        "CTRF JSON, pytest reportlog)"
    )


def parse_bytes(data: bytes, source: str, fmt: str | None = None) -> ParsedRun:
    """Parse one report held in memory; ``fmt`` forces a format key."""
    if not data.strip():
        raise IngestError(f"{source}: empty file")
    if fmt:
        try:
            parser = Parser.registry[fmt]
        except KeyError:
            known = ", ".join(sorted(Parser.registry))
            raise IngestError(f"{source}: unknown format {fmt!r} (known: {known})") from None
    else:
        parser = detect(data, source)
    run = parser().parse(data, source)
    _check_complete(run, data, source)
    return run


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


def parse_file(path: str | Path, fmt: str | None = None) -> ParsedRun:
    """Read and parse one report file."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise IngestError(f"{path}: {size} bytes is over the {MAX_BYTES}-byte limit")
        data = path.read_bytes()
    except OSError as err:
        raise IngestError(f"{path}: cannot read: {err.strerror or err}") from None
    return parse_bytes(data, str(path), fmt)


def expand(paths: list[str]) -> list[Path]:
    """Files, directories (searched recursively for report files) and globs → files.

    A path that matches nothing is returned as is so that reading it reports the error.
    """
    out: list[Path] = []
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
                        if f.is_file() and f.suffix.lower() in REPORT_SUFFIXES
                    )
                )
            else:
                out.append(p)
    seen: set[Path] = set()
    return [p for p in out if not (p in seen or seen.add(p))]


__all__ = ["Attempt", "IngestError", "ParsedRun", "Parser", "expand", "parse_bytes", "parse_file"]
