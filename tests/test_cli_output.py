"""Every listing of the command line shows a missing value one way: ``-`` in a text table,
``null`` in JSON — never ``NaN``, ``NaT``, ``None`` or ``nan`` (issue 21, item 4).

Real ``observatory`` subprocesses over the demo dataset (its checkout-service repository and
coverage with per-test contexts) plus a project whose runs name no branch, commit, build or
variant and whose tests have no duration; read from the file, then through a served
workbench (Arrow over HTTP, where a missing text arrives as NaN), and that workbench's
agents (one that failed), tasks (one no agent took), alerts and approvals."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from workbench.store import Store

from .conftest import Served
from .test_cli import observatory

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow

#: What a missing value must never be shown as.
BAD = re.compile(r"\b(NaN|NaT|None|nan)\b")
PASSING = """<testsuite name="bare" tests="3">
  <testcase classname="bare.t" name="test_timed" time="0.25"/>
  <testcase classname="bare.t" name="test_untimed"/>
  <testcase classname="bare.t" name="test_breaks"/>
</testsuite>"""
FAILING = PASSING.replace('name="test_breaks"/>',
                          'name="test_breaks"><failure message="boom">trace</failure>'
                          "</testcase>")


def shown(r: subprocess.CompletedProcess, code: int = 0) -> str:
    """The command's whole output, checked: its exit status, and no NaN/NaT/None/nan."""
    out = r.stdout + r.stderr
    assert r.returncode == code, out
    assert not BAD.search(out), f"{r.args[3:]} printed {BAD.search(out).group()}:\n{out}"
    return r.stdout


def no_strings_like_missing(value) -> None:
    if isinstance(value, dict):
        for v in value.values():
            no_strings_like_missing(v)
    elif isinstance(value, list):
        for v in value:
            no_strings_like_missing(v)
    else:
        assert value not in ("NaN", "NaT", "None", "nan"), value


def parsed(text: str, lines: bool = False):
    """JSON as a strict reader takes it: NaN or Infinity is an error, not a number."""
    def refuse(constant):
        raise AssertionError(f"{constant} in JSON")

    docs = [json.loads(line, parse_constant=refuse) for line in text.splitlines()
            if line.strip()] if lines else [json.loads(text, parse_constant=refuse)]
    for doc in docs:
        no_strings_like_missing(doc)
    return docs if lines else docs[0]


@pytest.fixture(scope="module")
def bare_db(demo_path, tmp_path_factory):
    """The demo dataset, and project ``bare``: two runs with nothing but their results
    (no branch, commit, build or variant; two of three tests without a duration), the
    second with a failure."""
    db = tmp_path_factory.mktemp("cli-output") / "o.duckdb"
    shutil.copy(demo_path, db)
    for name, text in (("pass.xml", PASSING), ("fail.xml", FAILING)):
        report = db.parent / name
        report.write_text(text)
        # (from a folder outside any git repository: nothing to take a branch from)
        r = observatory("ingest", "tests", str(report), "--project", "bare", "--db", str(db),
                        "--json", cwd=db.parent)
        doc = parsed(shown(r))
        assert doc["ok"] and doc["tests"] == 3
    with Store(db, read_only=True) as s:
        row = s.sql("SELECT path, ranges FROM coverage_tests WHERE report_id = (SELECT "
                    "report_id FROM coverage_reports WHERE project = 'checkout-service' "
                    "ORDER BY created_at DESC LIMIT 1) LIMIT 1").iloc[0]
        assert s.sql("SELECT count(*) AS n FROM runs WHERE project = 'bare' AND branch IS "
                     "NULL AND commit_sha IS NULL").n.iat[0] == 2
    return {"db": db, "covered": f"{row['path']}:{int(row['ranges'][0])}",
            "uncovered": f"{row['path']}:99999",
            "repo": demo_path.parent / "demo-projects" / "checkout-service"}


def listings(where: list[str], data: dict) -> None:
    """Every reading command, text and JSON, from ``where`` (``--db F`` or ``--url U``)."""
    covered, uncovered = data["covered"], data["uncovered"]
    text = shown(observatory("runs", "list", "--limit", "400", *where))
    bare = [line for line in text.splitlines() if " bare " in line]
    assert len(bare) == 2 and all(re.search(r" bare +- +complete", line) for line in bare)
    runs = parsed(shown(observatory("runs", "list", "--limit", "400", "--json", *where)),
                  lines=True)
    mine = [r for r in runs if r["project"] == "bare"]
    assert [r["branch"] for r in mine] == [None, None] and mine[0]["tests"] == 3
    # select: a header, the failed test marked * and explained, missing times as -
    table = shown(observatory("select", "--project", "bare", *where)).splitlines()
    assert table[0].split() == ["rank", "score", "P(fail)", "time", "test", "(reasons)"]
    assert table[1].split()[0] == "1*" and "bare.t::test_breaks" in table[1]
    assert table[-1].startswith("* always first:")
    untimed = next(line for line in table if "test_untimed" in line)
    assert untimed.split()[3] == "-"
    ranking = parsed(shown(observatory("select", "--project", "bare", "--format", "json",
                                       *where)))
    assert {r["test"]: r["duration_s"] for r in ranking}["bare.t::test_untimed"] is None
    shown(observatory("select", "--project", "bare", "--format", "pytest", *where))
    evaluation = shown(observatory("select", "--project", "bare", "--evaluate", *where))
    assert "APFD" in evaluation and "%" in evaluation
    assert parsed(shown(observatory("select", "--project", "bare", "--evaluate", "--format",
                                    "json", *where)))["evaluated"] == 1
    demo = ["--project", "checkout-service", *where]
    assert shown(observatory("coverage", "who", covered, *demo)).strip()
    assert parsed(shown(observatory("coverage", "who", covered, "--json", *demo)))
    assert shown(observatory("coverage", "who", uncovered, *demo)) == ""  # (said on stderr)
    assert parsed(shown(observatory("coverage", "who", uncovered, "--json", *demo))) == []
    demo += ["--repo", str(data["repo"])]
    patch = shown(observatory("coverage", "patch", "--base", "HEAD~1", *demo))
    assert re.search(r"patch coverage HEAD~1\.\.working tree: \d+/\d+ \(", patch), patch
    doc = parsed(shown(observatory("coverage", "patch", "--base", "HEAD~1", "--json", *demo)))
    assert doc["head"] == "working tree"


def test_listings_from_the_file_show_missing_values_as_dashes(bare_db):
    listings(["--db", str(bare_db["db"])], bare_db)


def test_listings_through_a_server_and_its_agents_tasks_and_alerts(bare_db):
    served = Served(bare_db["db"], extra_args=("--no-demo",))
    try:
        url = ["--url", served.url]
        listings(url, bare_db)
        failing = parsed(shown(observatory(
            "agents", "add", "fails", "--command", f"{sys.executable} -c 'raise SystemExit(3)'",
            "--start", "--json", *url)))
        task = parsed(shown(observatory("tasks", "add", "--command", "true", "--label",
                                        "nobody-has-it", "--json", *url)))
        assert task["agent_id"] is None
        for _ in range(100):  # its exit makes it an error, which the shipped rule alerts on
            alerts = parsed(shown(observatory("alerts", "list", "--json", *url)))
            if any(a["agent_id"] == failing["id"] for a in alerts):
                break
        else:
            raise AssertionError("no alert for the agent that failed")
        assert any(a["acked_by"] is None for a in alerts)  # missing: null, not "None"
        agents = shown(observatory("agents", "list", *url))
        assert re.search(rf"{failing['id']}  error +process +fails", agents), agents
        parsed(shown(observatory("agents", "list", "--json", *url)))
        tasks = shown(observatory("tasks", "list", *url))
        assert re.search(rf"{task['id']}  queued +p0 +true$", tasks, re.M), tasks
        parsed(shown(observatory("tasks", "list", "--json", *url)))
        assert "critical" in shown(observatory("alerts", "list", *url))
        shown(observatory("agents", "approvals", *url))
        parsed(shown(observatory("agents", "approvals", "--json", *url)))
        cancelled = shown(observatory("tasks", "cancel", task["id"], *url))
        assert re.search(rf"{task['id']}  cancelled +p0 +true", cancelled), cancelled
    finally:
        served.stop()
