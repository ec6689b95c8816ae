"""JaCoCo XML (``jacoco:report``, Gradle's ``jacocoTestReport``): ``<package name="org/x">``
holds ``<sourcefile name="X.java">`` with ``<line nr mi ci mb cb>`` (missed/covered
instructions and branches) and ``<counter type=...>`` totals."""

from __future__ import annotations

from .model import CoverageError, CoverageReport, FileCoverage
from .paths import normalize
from .xmlread import number, parse


def read(data: bytes, source: str, roots: list[str]) -> CoverageReport:
    root = parse(data, source)
    if root.tag != "report":
        raise CoverageError(f"{source}: not a JaCoCo report (root <{root.tag}>)")
    report = CoverageReport("jacoco")
    for package in root.iter("package"):
        prefix = (package.get("name") or "").strip("/")
        for sf in package.iter("sourcefile"):
            fc = FileCoverage(normalize(f"{prefix}/{sf.get('name')}" if prefix
                                        else str(sf.get("name")), roots))
            for line in sf.iter("line"):
                lineno = int(number(line.get("nr"), -1))
                if lineno < 0:
                    raise CoverageError(f"{source}: a <line> in {fc.path} without nr")
                mi, ci = number(line.get("mi")), number(line.get("ci"))
                mb, cb = int(number(line.get("mb"))), int(number(line.get("cb")))
                if mi + ci > 0:
                    fc.statements.add(lineno)
                if ci > 0:
                    fc.covered.add(lineno)
                fc.branches += mb + cb
                fc.branches_covered += cb
                if mb and cb:
                    fc.partial.add(lineno)
            for counter in sf.findall("counter"):
                if counter.get("type") == "METHOD":
                    fc.functions = int(number(counter.get("missed")) +
                                       number(counter.get("covered")))
                    fc.functions_covered = int(number(counter.get("covered")))
            report.add(fc)
    for counter in root.findall("counter"):
        if counter.get("type") == "LINE":
            missed, covered = int(number(counter.get("missed"))), int(
                number(counter.get("covered")))
            report.claimed = {"statements": missed + covered, "covered": covered}
    return report
