"""The pytest plugin records a real pytest run (with reruns) into a file or a server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from workbench.store import Store

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow

SUITE = """
import pytest, pathlib

COUNTER = pathlib.Path(__file__).with_name("count")

def test_ok():
    pass

@pytest.mark.parametrize("x", [1, 2])
def test_param(x):
    assert x == 1, "two is not one"

@pytest.mark.flaky(reruns=2)
def test_flaky():
    n = int(COUNTER.read_text()) if COUNTER.exists() else 0
    COUNTER.write_text(str(n + 1))
    assert n >= 1, "first try fails"

def test_skip():
    pytest.skip("not here")

@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")

def test_error(broken):
    pass
"""


def run_pytest(tmp_path, *args):
    (tmp_path / "test_suite.py").write_text(SUITE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB_", "CI_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_suite.py", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def check(runs, results):
    run = runs.iloc[0]
    assert run.status == "complete" and run.project == "plug"
    assert (run.tests, run.passed, run.failed, run.errors, run.skipped) == (6, 3, 1, 1, 1)
    flaky = results[results.test_id == "test_suite::test_flaky"].sort_values("attempt")
    assert flaky.outcome.tolist() == ["failed", "passed"]
    assert flaky.final.tolist() == [False, True]
    failed = results[results.test_id == "test_suite::test_param[2]"].iloc[0]
    assert "two is not one" in failed.message and "assert x == 1" in failed.details
    err = results[results.test_id == "test_suite::test_error"].iloc[0]
    assert err.outcome == "error" and "fixture broke" in err.message
    skip = results[results.test_id == "test_suite::test_skip"].iloc[0]
    assert skip.message == "not here"


def test_records_into_a_database_file(tmp_path):
    db = tmp_path / "rec.duckdb"
    r = run_pytest(
        tmp_path,
        "--observatory-db",
        str(db),
        "--observatory-project",
        "plug",
        "--observatory-branch",
        "main",
    )
    assert r.returncode == 1 and "observatory: recorded run live-" in r.stdout, r.stdout + r.stderr
    with Store(db) as s:
        runs = s.query("runs")
        check(runs, s.query("run_results", run_id=runs.run_id.iloc[0]))


def test_streams_to_a_running_server(tmp_path, server, remote):
    r = run_pytest(tmp_path, "--observatory-url", server.url, "--observatory-project", "plug")
    assert "observatory: recorded run" in r.stdout, r.stdout + r.stderr
    run_id = r.stdout.split("observatory: recorded run ")[1].split()[0]
    check(remote.query("run", run_id=run_id), remote.query("run_results", run_id=run_id))


def test_off_unless_asked_and_never_fails_the_run(tmp_path):
    r = run_pytest(tmp_path)
    assert "observatory" not in r.stdout
    down = run_pytest(tmp_path, "--observatory-url", "http://127.0.0.1:9")
    assert down.returncode == 1  # the suite's own failures, not an internal error
    assert "observatory: recording failed" in down.stdout
