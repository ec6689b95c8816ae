"""Cobertura XML (coverage.py ``coverage xml``, Istanbul, coverlet, gcovr, JaCoCo's
converters): classes name their file relative to one of ``<sources>``; ``<line number hits
branch condition-coverage="50% (1/2)">``."""

from __future__ import annotations

import re

from .model import CoverageError, CoverageReport, FileCoverage
from .paths import normalize
from .xmlread import number, parse

_CONDITION = re.compile(r"\((\d+)/(\d+)\)")


def read(data: bytes, source: str, roots: list[str]) -> CoverageReport:
    root = parse(data, source)
    if root.tag != "coverage":
        raise CoverageError(f"{source}: not a Cobertura report (root <{root.tag}>)")
    report = CoverageReport("cobertura")
    sources = [s.text.strip() for s in root.iter("source") if s.text and s.text.strip()]
    for cls in root.iter("class"):
        name = cls.get("filename")
        if not name:
            report.warnings.append(f"class {cls.get('name')!r} has no filename: skipped")
            continue
        fc = FileCoverage(_path(name, sources, roots))
        lines = cls.find("lines")
        # Some writers list lines only under the methods (Swift's) or more of them there
        # (dotnet-coverage); Istanbul lists declaration lines there that it does not count:
        # the longer listing is the one the tool's own total counts.
        own = list(lines.iter("line")) if lines is not None else []
        in_methods = [x for m in cls.iter("method") for x in m.iter("line")]
        counted = in_methods if len(in_methods) > len(own) else own
        fc.listed = (len(counted), sum(number(x.get("hits")) > 0 for x in counted))
        for line in counted:
            try:
                lineno = int(line.get("number"))
            except (TypeError, ValueError):
                raise CoverageError(f"{source}: a <line> in {name} without a line number") \
                    from None
            fc.statements.add(lineno)
            if number(line.get("hits")) > 0:
                fc.covered.add(lineno)
            if line.get("branch") == "true":
                m = _CONDITION.search(line.get("condition-coverage") or "")
                if m:
                    done, total = int(m.group(1)), int(m.group(2))
                    fc.branches += total
                    fc.branches_covered += done
                    if 0 < done < total:
                        fc.partial.add(lineno)
        for method in cls.iter("method"):
            fc.functions += 1
            if any(number(x.get("hits")) > 0 for x in method.iter("line")):
                fc.functions_covered += 1
        report.add(fc)
    if root.get("lines-valid") not in (None, ""):
        report.claimed = {"statements": int(number(root.get("lines-valid"))),
                          "covered": int(number(root.get("lines-covered")))}
    if root.get("line-rate") not in (None, ""):
        report.claimed["rate"] = number(root.get("line-rate"))
    return report


def _path(name: str, sources: list[str], roots: list[str]) -> str:
    """A class's file: as written when relative (it is relative to a source root, as the
    project sees it); else relative to a root or a source that holds it."""
    clean = name.replace("\\", "/")
    if not (clean.startswith("/") or re.match(r"^[A-Za-z]:/", clean)):
        return normalize(clean, [])
    return normalize(clean, [*roots, *sources])
