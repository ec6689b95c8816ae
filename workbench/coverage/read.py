"""Which tool wrote a coverage file, and reading it."""

from __future__ import annotations

import json
from pathlib import Path

from . import cobertura, coveragepy, jacoco, lcov
from .model import CoverageError, CoverageReport

#: Format name → reader(data, source, roots).
FORMATS = {
    "coveragepy": coveragepy.read_data_file,
    "coveragepy-json": coveragepy.read_json,
    "cobertura": cobertura.read,
    "lcov": lcov.read,
    "jacoco": jacoco.read,
}


def detect(data: bytes, source: str) -> str:
    """The format of ``data`` from its content (the name only breaks no ties)."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"SQLite format 3\x00"):
        return "coveragepy"
    if head.startswith(b"{"):
        try:
            doc = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError) as err:
            raise CoverageError(f"{source}: not valid JSON: {err}") from None
        if isinstance(doc, dict) and isinstance(doc.get("files"), dict) and "meta" in doc:
            return "coveragepy-json"
        raise CoverageError(f"{source}: JSON, but not coverage.py's (no meta and files)")
    if head.startswith(b"<"):
        text = head.decode("utf-8", "replace")
        if "<report" in text or "JACOCO" in text:
            return "jacoco"
        if "<coverage" in text:
            return "cobertura"
        raise CoverageError(f"{source}: XML, but neither Cobertura (<coverage>) nor JaCoCo "
                            "(<report>)")
    if b"SF:" in head or head.startswith((b"TN:", b"SF:")):
        return "lcov"
    raise CoverageError(f"{source}: not a coverage report this workbench reads (coverage.py "
                        "data or JSON, Cobertura, LCOV, JaCoCo)")


def read_coverage(data: bytes, source: str, roots: list[str] | None = None,
                  fmt: str | None = None) -> CoverageReport:
    """Read one coverage report; :class:`CoverageError` (one line) if it cannot be.
    ``roots``: project roots that paths are made relative to (the report's own folder is
    always one)."""
    fmt = fmt or detect(data, source)
    if fmt not in FORMATS:
        raise CoverageError(f"{source}: unknown coverage format {fmt!r} (one of "
                            f"{', '.join(FORMATS)})")
    roots = [*(roots or []), str(Path(source).resolve().parent)] if source else roots or []
    report = FORMATS[fmt](data, source, roots)
    if not report.files:
        raise CoverageError(f"{source}: a {fmt} report with no source files in it")
    return report


def agreement(report: CoverageReport, totals: dict) -> list[str]:
    """Warnings where our totals differ from what the report states about itself: a line
    listed twice (one file over several classes or records) is one line here; anything
    else is a report whose totals do not add up."""
    claimed = report.claimed
    if claimed.get("statements") is None:
        return []
    stated = (claimed["statements"], claimed.get("covered"))
    if stated == (totals["statements"], totals["covered"]):
        return []
    if stated == tuple(report.listed):
        return [f"the report counts {stated[0]} lines ({stated[1]} covered), listing "
                f"{stated[0] - totals['statements']} of them more than once; each line "
                f"counts once here: {totals['covered']}/{totals['statements']}"]
    return [f"the report states {stated[1]}/{stated[0]} lines covered; its lines give "
            f"{totals['covered']}/{totals['statements']}"]
