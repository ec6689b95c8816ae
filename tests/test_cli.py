"""The observatory command: ingest exit codes and JSON lines, demo, help, docs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.cli import build_parser
from workbench.store import Store

from .conftest import FIXTURES, ROOT, documentation

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow


def observatory(*args, env=None, cwd=None):
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "GITLAB_", "CI_", "JENKINS_", "CIRCLE", "BUILDKITE"))
    }
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        cwd=cwd or ROOT,
        timeout=120,
    )


def test_ingest_json_lines_good_bad_and_globs(tmp_path):
    db = tmp_path / "i.duckdb"
    r = observatory(
        "ingest",
        "tests",
        str(FIXTURES / "passing.xml"),
        str(FIXTURES / "truncated.xml"),
        str(FIXTURES / "*.json"),
        "--db",
        str(db),
        "--json",
        "--project",
        "shop",
        "--branch",
        "main",
        "--commit",
        "abc",
    )
    assert r.returncode == 1
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    by_name = {Path(line["path"]).name: line for line in lines}
    assert set(by_name) == {"passing.xml", "truncated.xml", "ctrf.json"}
    assert by_name["passing.xml"] | {"run_id": None} == {
        "path": str(FIXTURES / "passing.xml"),
        "ok": True,
        "run_id": None,
        "duplicate": False,
        "tests": 3,
        "passed": 2,
        "failed": 1,
        "errors": 0,
        "skipped": 0,
        "warnings": [],
    }
    bad = by_name["truncated.xml"]
    assert bad["ok"] is False and "truncated.xml: not well-formed XML" in bad["error"]
    with Store(db) as s:
        runs = s.sql("SELECT source, project, branch, commit_sha FROM runs ORDER BY source")
    assert len(runs) == 2 and not runs.source.str.contains("truncated").any()
    assert runs.project.tolist() == ["shop", "shop"] and set(runs.commit_sha) == {"abc"}


def test_ingest_all_good_exits_zero_and_reingest_is_a_duplicate(tmp_path):
    db = tmp_path / "i.duckdb"
    first = observatory("ingest", "tests", str(FIXTURES / "retries.xml"), "--db", str(db))
    assert first.returncode == 0, first.stderr
    assert "7 tests, 4 passed, 0 failed, 1 errors, 2 skipped" in first.stdout
    assert "warning: " in first.stderr and "header says 9 tests" in first.stderr
    again = observatory("ingest", "tests", str(FIXTURES / "retries.xml"), "--db", str(db))
    assert again.returncode == 0 and "(already stored)" in again.stdout


def test_ingest_reads_ci_environment(tmp_path):
    db = tmp_path / "ci.duckdb"
    env = {
        "GITLAB_CI": "true",
        "CI_PROJECT_PATH": "team/app",
        "CI_COMMIT_SHA": "f00d",
        "CI_COMMIT_REF_NAME": "release",
        "CI_PIPELINE_ID": "77",
    }
    r = observatory("ingest", "tests", str(FIXTURES / "passing.xml"), "--db", str(db), env=env)
    assert r.returncode == 0, r.stderr
    with Store(db) as s:
        row = s.sql("SELECT project, commit_sha, branch, build, ci_provider FROM runs").iloc[0]
    assert tuple(row) == ("team/app", "f00d", "release", "77", "gitlab")


def test_demo_command(tmp_path):
    r = observatory("demo", "--db", str(tmp_path / "d.duckdb"))
    assert r.returncode == 0, r.stderr
    n = int(re.search(r"stored (\d+) demo runs", r.stdout).group(1))
    assert n >= 200
    with Store(tmp_path / "d.duckdb") as s:
        assert len(s.query("projects")) >= 4


def _commands(parser, prefix=()):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _commands(sub, (*prefix, name))


@pytest.mark.parametrize("command", [c for c, _ in _commands(build_parser())], ids=" ".join)
def test_every_command_has_help(command):
    r = observatory(*command, "--help")
    assert r.returncode == 0 and "usage: observatory" in r.stdout


def test_every_cli_option_is_documented():
    readme = documentation()
    missing = []
    for command, sub in _commands(build_parser()):
        if f"observatory {' '.join(command)}" not in readme:
            missing.append(" ".join(command))
        for action in sub._actions:
            for opt in action.option_strings:
                if opt.startswith("--") and opt != "--help" and opt not in readme:
                    missing.append(f"{' '.join(command)} {opt}")
    assert missing == []


def test_every_pytest_plugin_option_and_env_var_is_documented():
    readme = documentation()
    plugin = (ROOT / "workbench" / "pytest_plugin.py").read_text()
    options = set(re.findall(r'"(--observatory[\w-]*)"', plugin))
    options |= {f"--observatory-{k}" for k in ("project", "branch", "commit", "variant", "build")}
    env_vars = set(
        re.findall(
            r"OBSERVATORY_[A-Z_]+",
            "".join(p.read_text() for p in (ROOT / "workbench").rglob("*.py")),
        )
    )
    assert sorted(o for o in options | env_vars if o not in readme) == []


def test_report_time_zone_for_naive_timestamps(tmp_path):
    report = tmp_path / "naive.xml"
    report.write_text('<testsuite timestamp="2026-03-01T12:00:00"><testcase name="t"/></testsuite>')
    db = tmp_path / "tz.duckdb"
    r = observatory("ingest", "tests", str(report), "--db", str(db), "--report-tz", "Europe/Berlin")
    assert r.returncode == 0, r.stderr
    with Store(db) as s:
        assert str(s.query("runs").started_at.iloc[0]) == "2026-03-01 11:00:00"
    bad = observatory("ingest", "tests", str(report), "--db", str(db), "--report-tz", "Mars/Olympus")
    assert bad.returncode == 2 and "unknown time zone 'Mars/Olympus'" in bad.stderr
