"""Every coverage report in ../shared/fixtures (Cobertura from seven tools, JaCoCo, LCOV,
coverage.py JSON; BOMs, external DTD references, Windows paths) is stored with totals that
agree with the totals the file states about itself, read independently here (defusedxml,
json, the LCOV summary lines) — or is refused with one line saying why."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from defusedxml import ElementTree

from workbench.intake import LocalIntake
from workbench.store import Store

SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures"

if not SHARED.is_dir():
    if os.environ.get("CI"):
        raise RuntimeError(f"CI must have the shared fixtures at {SHARED}")
    pytest.skip(f"{SHARED} is not here (only the project's CI and developers have it)",
                allow_module_level=True)

#: Not coverage reports, though named like one: refused, and why.
REFUSED = {"JaCoCo_Ant.xml": "neither Cobertura"}  # an Ant build file that runs JaCoCo


def coverage_files() -> list[Path]:
    out = []
    for p in sorted(SHARED.rglob("*")):
        name = p.name.lower()
        if p.is_file() and (name == "lcov.info" or "jacoco" in name or "cobertura" in name or
                            (name.startswith("coverage_") and p.suffix in (".xml", ".json"))):
            out.append(p)
    return out


def stated(path: Path) -> tuple[int, int] | None:
    """(lines, covered lines) as the file states them, or None when it does not."""
    data = path.read_bytes()
    if path.suffix == ".json":
        totals = json.loads(data.decode("utf-8-sig"))["totals"]
        return totals["num_statements"], totals["covered_lines"]
    if path.name.endswith(".info"):
        text = data.decode("utf-8-sig")
        return (sum(int(x) for x in re.findall(r"^LF:(\d+)", text, re.M)),
                sum(int(x) for x in re.findall(r"^LH:(\d+)", text, re.M)))
    root = ElementTree.fromstring(data)
    if root.tag == "report":
        line = next(c for c in root.findall("counter") if c.get("type") == "LINE")
        return int(line.get("missed")) + int(line.get("covered")), int(line.get("covered"))
    if root.get("lines-valid"):
        return int(root.get("lines-valid")), int(root.get("lines-covered"))
    return None


def test_the_sweep_finds_every_kind():
    names = [p.name for p in coverage_files()]
    assert len(names) >= 18
    assert {"lcov.info", "JaCoCo0.8.3.xml", "Cobertura_Istanbul.xml", "coverage_1.json"} <= \
        set(names)


@pytest.mark.parametrize("path", coverage_files(), ids=lambda p: str(p.relative_to(SHARED)))
def test_coverage_fixture(tmp_path, path):
    with Store(tmp_path / "f.duckdb") as store:
        result = LocalIntake(store).coverage(path.read_bytes(), str(path), {"project": "fx"})
        if path.name in REFUSED:
            assert not result["ok"] and REFUSED[path.name] in result["error"]
            assert result["error"].startswith(str(path)) and "\n" not in result["error"]
            return
        assert result["ok"], result
        assert result["files"] > 0 and result["covered"] <= result["statements"]
        files = store.sql("SELECT count(*) AS n, sum(statements) AS s FROM coverage_files")
        assert files["n"].item() == result["files"]
        assert files["s"].item() == result["statements"]
        assert not any("\\" in p for p in store.sql("SELECT path FROM coverage_files")["path"])
    claim = stated(path)
    if claim is None:
        return
    if claim != (result["statements"], result["covered"]):
        # A line listed twice (a file over several classes) counts once here: said so.
        assert len(result["warnings"]) == 1 and "more than once" in result["warnings"][0]
        assert f"counts {claim[0]} lines ({claim[1]} covered)" in result["warnings"][0]
    else:
        assert result["warnings"] == []
