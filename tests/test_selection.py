"""Test selection and test runs with real producers: a git repository built here (a package
of six functions, 30 tests, one test file per function, and a slow test), a history of
commits that break and fix functions, each run by pytest through the workbench's plugin and
under coverage.py with per-test contexts (one pytest run per commit), the reports
ingested. Then a change to one function: the selector ranks the tests that ran the changed
lines first (checked against coverage.py's own contexts), its node ids run as they are, the
replay beats random order on this history, and runs started through a served workbench
stream their results, queue per project, cancel their whole process group, and need the
operator role."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import coverage
import psutil
import pytest

from workbench.store import Store

from .conftest import ROLE_ENV, TOKENS, Served, role_client, wait_for, write_tree
from .test_coverage_ingest import observatory, run

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow

OPS = '''\
def add(a, b):
    return a + b


def sub(a, b):
    return a - b


def mul(a, b):
    return a * b


def div(a, b):
    if b == 0:
        raise ZeroDivisionError("b")
    return a / b


def power(a, n):
    out = 1
    for _ in range(n):
        out *= a
    return out


def clamp(x, lo, hi):
    return max(lo, min(hi, x))
'''
CASES = {
    "add": ["add(1, 2) == 3", "add(0, 0) == 0", "add(-1, 1) == 0", "add(2, 2) == 4",
            "add(10, 5) == 15"],
    "sub": ["sub(3, 2) == 1", "sub(0, 0) == 0", "sub(-1, 1) == -2", "sub(2, 5) == -3",
            "sub(10, 5) == 5"],
    "mul": ["mul(2, 3) == 6", "mul(0, 9) == 0", "mul(-1, 4) == -4", "mul(5, 5) == 25",
            "mul(1, 7) == 7"],
    "div": ["div(6, 3) == 2", "div(1, 4) == 0.25", "div(-8, 2) == -4", "div(9, 3) == 3",
            "raises(ZeroDivisionError, div, 1, 0)"],
    "power": ["power(2, 3) == 8", "power(5, 0) == 1", "power(3, 2) == 9", "power(1, 9) == 1",
              "power(10, 2) == 100"],
    "clamp": ["clamp(5, 0, 3) == 3", "clamp(-1, 0, 3) == 0", "clamp(2, 0, 3) == 2",
              "clamp(0, 0, 0) == 0", "clamp(9, 1, 8) == 8"],
}
#: (commit message, what to replace in ops.py, with what): break and fix functions.
HISTORY = [
    ("break add", "return a + b", "return a + b + 1"),
    ("fix add", "return a + b + 1", "return a + b"),
    ("break mul", "return a * b", "return a * b * 2"),
    ("fix mul", "return a * b * 2", "return a * b"),
    ("break clamp", "return max(lo, min(hi, x))", "return min(lo, max(hi, x))"),
    ("fix clamp", "return min(lo, max(hi, x))", "return max(lo, min(hi, x))"),
    ("break power", "out *= a", "out += a"),
    ("fix power", "out += a", "out *= a"),
]


def suite_of(name: str) -> str:
    body = "from pytest import raises\n\nfrom calc.ops import *  # noqa\n"
    for i, case in enumerate(CASES[name]):
        body += f"\n\ndef test_{name}_{i}():\n"
        body += f"    {case}\n" if case.startswith("raises") else f"    assert {case}\n"
    return body


def git(repo: Path, *args: str) -> str:
    return run(repo, "git", "-c", "user.name=t", "-c", "user.email=t@example.com",
               *args).strip()


def commit_and_test(repo: Path, db: Path, message: str) -> str:
    git(repo, "commit", "-qam", message) if message else None
    sha = git(repo, "rev-parse", "HEAD")
    # One pytest run: results through the workbench's plugin, coverage with contexts.
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "--observatory-db", str(db), "--observatory-project", "calc",
                    "--observatory-commit", sha, "--cov=calc", "--cov-context=test",
                    "--cov-report=", "tests"], cwd=repo, capture_output=True, timeout=180)
    out = observatory("ingest", "coverage", str(repo / ".coverage"), "--project", "calc",
                      "--commit", sha, "--db", str(db), "--json")
    assert json.loads(out.stdout)["contexts"] == 30, out.stdout + out.stderr
    return sha


@pytest.fixture(scope="module")
def calc(tmp_path_factory):
    root = tmp_path_factory.mktemp("selection")
    repo = write_tree(root / "calc", {
        "calc/__init__.py": "", "calc/ops.py": OPS, "tests/__init__.py": "",
        **{f"tests/test_{name}.py": suite_of(name) for name in CASES},
        "tests/test_slow.py": "import os\nimport time\n\n\ndef test_sleeps():\n"
                              "    if os.path.exists('SLOW'):\n        time.sleep(120)\n",
        "pyproject.toml": '[project]\nname = "calc"\nversion = "0"\n',
        ".gitignore": ".coverage\n.observatory-test-run.log\nSLOW\n"})
    db = root / "s.duckdb"
    run(repo, "git", "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "calc")
    commit_and_test(repo, db, "")
    for message, old, new in HISTORY:
        ops = (repo / "calc" / "ops.py").read_text()
        (repo / "calc" / "ops.py").write_text(ops.replace(old, new))
        commit_and_test(repo, db, message)
    truth = coverage.CoverageData(basename=str(repo / ".coverage"))
    truth.read()
    ops_file = next(f for f in truth.measured_files() if f.endswith("ops.py"))
    contexts = {n: {c.rsplit("|", 1)[0] for c in ctx if c}
                for n, ctx in truth.contexts_by_lineno(ops_file).items()}
    # The change the selection is asked about: div's two last lines, committed, not run.
    ops = (repo / "calc" / "ops.py").read_text()
    (repo / "calc" / "ops.py").write_text(ops.replace(
        'raise ZeroDivisionError("b")', 'raise ZeroDivisionError("division by zero")')
        .replace("return a / b", "return float(a) / b"))
    git(repo, "commit", "-qam", "div: floats, a clearer message")
    assert observatory("projects", "scan", str(root), "--db", str(db)).returncode == 0
    changed = {i for i, line in enumerate(OPS.splitlines(), 1)
               if 'ZeroDivisionError("b")' in line or "return a / b" in line}
    return {"repo": repo, "db": db, "contexts": contexts, "changed": changed}


def select(calc, *args: str) -> subprocess.CompletedProcess:
    return observatory("select", "--project", "calc", "--db", str(calc["db"]), *args)


def test_the_tests_that_ran_the_changed_lines_come_first(calc):
    r = select(calc, "--base", "HEAD~1", "--head", "HEAD", "--format", "json")
    assert r.returncode == 0, r.stderr
    ranking = json.loads(r.stdout)
    truth = set().union(*(calc["contexts"][n] for n in calc["changed"]))
    assert truth and truth <= {f"tests/test_div.py::test_div_{i}" for i in range(5)}
    assert {t["test"] for t in ranking[: len(truth)]} == truth
    top = ranking[0]
    assert set(top) >= {"test", "score", "reasons"}
    assert any("changed lines" in reason for reason in top["reasons"])
    assert [t["score"] for t in ranking[len(truth):]] == sorted(
        (t["score"] for t in ranking[len(truth):]), reverse=True)
    assert len(ranking) == 31  # every test of the repository, none twice
    # History: the tests of the functions broken before carry their failures as a reason.
    power = next(t for t in ranking if t["test"] == "tests/test_power.py::test_power_0")
    assert any("failed 1 of its last" in reason for reason in power["reasons"])


def test_selected_node_ids_run_as_they_are_and_budgets_cut(calc):
    r = select(calc, "--base", "HEAD~1", "--head", "HEAD", "--top", "4", "--format", "pytest")
    ids = r.stdout.split()
    assert len(ids) == 4 and all(i.startswith("tests/test_div.py::") for i in ids)
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-p", "no:observatory", *ids], cwd=calc["repo"],
                         capture_output=True, text=True, timeout=120)
    assert "4 passed" in out.stdout, out.stdout
    table = select(calc, "--base", "HEAD~1", "--head", "HEAD", "--budget", "0.0001")
    lines = table.stdout.splitlines()
    assert table.returncode == 0 and lines[0].split()[:3] == ["rank", "score", "P(fail)"]
    assert len([line for line in lines if re.match(r" +\d+\*? ", line)]) == 1  # one fits
    # The whole table: a header, the ranks in order, each group by score, * explained.
    full = select(calc, "--base", "HEAD~1", "--head", "HEAD").stdout.splitlines()
    ranked = [line.split() for line in full if re.match(r" +\d+\*? ", line)]
    assert [int(r[0].rstrip("*")) for r in ranked] == list(range(1, 32))
    for group in (True, False):
        scores = [float(r[1]) for r in ranked if r[0].endswith("*") == group]
        assert scores == sorted(scores, reverse=True)
    if any(r[0].endswith("*") for r in ranked):
        assert full[-1].startswith("* always first:")
    bad = select(calc, "--base", "no-such-rev")
    assert bad.returncode == 1 and "no-such-rev" in bad.stderr
    assert select(calc, "--head", "HEAD").returncode == 2  # --head needs --base


def test_a_new_test_file_goes_first_from_the_working_tree(calc):
    new = calc["repo"] / "tests" / "test_extra.py"
    new.write_text("from calc.ops import add\n\n\ndef test_extra():\n    assert add(1, 1) == 2\n")
    try:
        ranking = json.loads(select(calc, "--base", "HEAD", "--format", "json").stdout)
    finally:
        new.unlink()
    assert ranking[0]["test"] == "tests/test_extra.py::test_extra"
    assert "new or changed by this change" in ranking[0]["reasons"]


def test_the_replay_beats_random_order_on_this_history(calc):
    r = select(calc, "--evaluate", "--format", "json")
    result = json.loads(r.stdout)
    assert result["with_git"] and result["evaluated"] == 4  # the four breaking commits
    orders = result["orders"]
    assert orders["selector"]["apfd"] > orders["random"]["apfd"] + 0.2
    assert orders["selector"]["tests_25"] == 1.0  # every failure within the first quarter
    assert orders["selector"]["apfd"] >= orders["last-failed-first"]["apfd"]
    assert len(orders["selector"]["curve"]) == len(result["curve_x"]) == 21
    text = select(calc, "--evaluate").stdout
    assert "selector" in text and "random" in text and "APFD" in text
    selector = next(line for line in text.splitlines() if line.startswith("selector"))
    apfd = round(orders["selector"]["apfd"] * 100)  # shares as percentages
    assert selector.split()[1] == f"{apfd}%" and "100%" in selector.split()[3]


@pytest.fixture(scope="module")
def served(calc):
    s = Served(calc["db"], env=ROLE_ENV, extra_args=("--no-demo",))
    yield s
    s.stop()


def test_runs_from_the_workbench_stream_queue_and_cancel(calc, served):
    viewer, operator = role_client(served, "viewer"), role_client(served, "operator")
    ranked = viewer.post("/api/select", json={"project": "calc", "base": "HEAD~1",
                                              "head": "HEAD", "top": 3}).json()
    assert [t["test"].split("::")[0] for t in ranked["ranking"]] == ["tests/test_div.py"] * 3
    refused = viewer.post("/api/test-runs", json={"project": "calc", "tests": []})
    assert refused.status_code == 403
    started = operator.post("/api/test-runs", json={"project": "calc", "select": {
        "base": "HEAD~1", "head": "HEAD", "top": 3}}).json()["test_run"]
    assert started["tests"] == [t["test"] for t in ranked["ranking"]]
    done = wait_for(lambda: (r := operator.get(f"/api/test-runs/{started['id']}").json()[
        "test_run"])["state"] in ("passed", "failed") and r, what="the selected run")
    assert done["state"] == "passed" and done["results"] == 3 and done["failures"] == 0
    assert done["run_status"] == "complete"
    runs = operator.get("/api/runs", params={"project": "calc", "limit": 500}).json()["runs"]
    assert {r["build"] for r in runs if r["run_id"] == done["run_id"]} == {done["id"]}
    # A slow run, a second one queued behind it (one at a time per project), then cancel.
    (calc["repo"] / "SLOW").write_text("")
    try:
        slow = operator.post("/api/test-runs", json={
            "project": "calc", "tests": ["tests/test_slow.py::test_sleeps"]}).json()["test_run"]
        running = wait_for(lambda: (r := operator.get(f"/api/test-runs/{slow['id']}").json()[
            "test_run"])["state"] == "running" and r["run_status"] == "running" and r,
            what="the slow run under way")
        behind = operator.post("/api/test-runs", json={
            "project": "calc", "tests": ["tests/test_add.py::test_add_0"]}).json()["test_run"]
        assert behind["state"] == "queued"
        pid = running["pid"]
        children = psutil.Process(pid).children(recursive=True)
        cancelled = operator.post(f"/api/test-runs/{slow['id']}/cancel")
        assert cancelled.status_code == 200
        wait_for(lambda: operator.get(f"/api/test-runs/{slow['id']}").json()["test_run"][
            "state"] == "cancelled", 15, "the cancel")
        wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() ==
                 psutil.STATUS_ZOMBIE, 10, "pytest gone")
        assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
        after = operator.get(f"/api/test-runs/{slow['id']}").json()["test_run"]
        assert after["run_status"] == "cancelled"
        finished = wait_for(lambda: (r := operator.get(f"/api/test-runs/{behind['id']}")
                                     .json()["test_run"])["state"] == "passed" and r, 60,
                            "the queued run, after the cancel")
        assert finished["results"] == 1
    finally:
        (calc["repo"] / "SLOW").unlink()
    with role_client(served, "admin") as admin:
        audit = admin.get("/api/audit", params={"limit": 100}).json()["audit"]
    by = {(e["action"], e["outcome"]) for e in audit}
    assert ("test-run-cancel", "ok") in by and ("test-run", "ok") in by
    assert any(a == "POST /api/test-runs" and o.startswith("refused") and "viewer" in o
               for a, o in by)  # the viewer's, refused by the route's role
    assert operator.post("/api/test-runs/tr-nope/cancel").status_code == 404
    assert operator.post("/api/test-runs", json={"project": "calc", "tests": ["--co"]}
                         ).status_code == 400
    viewer.close()
    operator.close()


def test_run_tests_command_and_the_mcp_tool(calc, served):
    env = {**os.environ, "OBSERVATORY_TOKEN": TOKENS["operator"]}
    out = subprocess.run([sys.executable, "-m", "workbench", "run-tests", "--project", "calc",
                          "--url", served.url, "tests/test_sub.py::test_sub_0",
                          "tests/test_sub.py::test_sub_1"], capture_output=True, text=True,
                         timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert "passed: 2/2 results, 0 failed" in out.stderr
    from mcp import Client
    from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

    async def ask():
        headers = {"Authorization": f"Bearer {TOKENS['viewer']}"}
        async with create_mcp_http_client(headers=headers) as http:
            async with Client(streamable_http_client(f"{served.url}/mcp",
                                                     http_client=http)) as client:
                return await client.call_tool("select_tests", {
                    "project": "calc", "base": "HEAD~1", "head": "HEAD", "top": 2})

    import asyncio

    result = asyncio.run(asyncio.wait_for(ask(), 60))
    ranking = result.structured_content["ranking"]
    assert [t["test"].split("::")[0] for t in ranking] == ["tests/test_div.py"] * 2


def test_another_runners_command_and_its_junit_file(calc, served):
    """A Node project's tests through the workbench: ``node --test`` with its JUnit
    reporter is the command; its report is ingested when it ends."""
    import shutil

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (.ci/run has it)")
    js = calc["repo"] / "js" / "math.test.mjs"
    js.parent.mkdir(exist_ok=True)
    js.write_text("import test from 'node:test';\nimport assert from 'node:assert';\n"
                  "test('adds', () => assert.equal(1 + 1, 2));\n"
                  "test('subtracts', () => assert.equal(3 - 1, 2));\n"
                  "test('is wrong', () => assert.equal(2 * 2, 5));\n")
    with role_client(served, "operator") as operator:
        started = operator.post("/api/test-runs", json={
            "project": "calc", "command": [node, "--test", "--test-reporter=junit",
                                           "--test-reporter-destination=node-junit.xml",
                                           "js/math.test.mjs"],
            "junit": "node-junit.xml"}).json()["test_run"]
        done = wait_for(lambda: (r := operator.get(f"/api/test-runs/{started['id']}").json()[
            "test_run"])["state"] not in ("queued", "running") and r, what="node's run")
        assert done["state"] == "failed" and done["exit_code"] == 1, done
        assert done["results"] == 3 and done["failures"] == 1
        missing = operator.post("/api/test-runs", json={
            "project": "calc", "command": ["true"], "junit": "nowhere.xml"}).json()["test_run"]
        gone = wait_for(lambda: (r := operator.get(f"/api/test-runs/{missing['id']}").json()[
            "test_run"])["state"] not in ("queued", "running") and r, what="a run without JUnit")
        assert gone["state"] == "error" and "was not written" in gone["message"]
        assert operator.post("/api/test-runs", json={"project": "calc", "command": ["true"]}
                             ).status_code == 400  # no junit named
    js.unlink()
    (calc["repo"] / "node-junit.xml").unlink()


def test_with_a_store_closed_the_results_are_all_there(calc, served):
    served.stop()
    with Store(calc["db"], read_only=True) as s:
        runs = s.sql("SELECT build, status, tests FROM runs WHERE build LIKE 'tr-%' "
                     "ORDER BY started_at")
    assert list(runs["status"]) == ["complete"] + ["cancelled"] + ["complete"] * 3
    assert list(runs["tests"]) == [3, 0, 1, 2, 3]  # (the last: node's three)


def test_a_person_ranks_runs_and_cancels_from_the_page(calc, chromium, output_dir):
    """Headless Chromium on the projects page: rank the tests for the change, run the top
    five and watch them arrive, start the whole suite (with a test that hangs) and cancel
    it."""
    from playwright.sync_api import sync_playwright

    served = Served(calc["db"], extra_args=("--no-demo",), ready_path="/projects")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium,
                                        args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(served.url + "/projects")
            page.locator(".bk-tab", has_text="Select & run").click()
            page.get_by_label("Top N (0: all)").fill("5")
            page.get_by_label("Top N (0: all)").press("Enter")
            page.get_by_role("button", name="Rank tests").click()
            page.locator(".tabulator-cell", has_text="ran 1 of the changed lines").first \
                .wait_for()
            page.get_by_text(re.compile(r"5 of \d+ tests")).wait_for()
            page.screenshot(path=str(output_dir / "ranked.png"), full_page=True)
            page.get_by_role("button", name=re.compile(r"Run these \d+ tests")).click()
            page.get_by_text(re.compile(r"passed: (\d+) of \1 results, 0 failed")).wait_for(
                timeout=60_000)
            page.locator(".tabulator-cell", has_text="tests/test_div.py::test_div").first \
                .wait_for()
            page.screenshot(path=str(output_dir / "run-done.png"), full_page=True)
            (calc["repo"] / "SLOW").write_text("")
            try:
                page.get_by_role("button", name="Run the whole suite").click()
                page.get_by_text(" results, 0 failed").filter(has_text="running").wait_for(
                    timeout=60_000)
                page.wait_for_function("() => true")
                page.get_by_role("button", name="Cancel run").click()
                page.get_by_text("cancelled:").wait_for(timeout=30_000)
                page.screenshot(path=str(output_dir / "cancelled.png"), full_page=True)
            finally:
                (calc["repo"] / "SLOW").unlink()
            browser.close()
        assert errors == []
    finally:
        served.stop()


def test_any_stored_run_is_found_however_many_came_after(tmp_path):
    """A run is looked up by its id, not among the newest thousand."""
    from workbench.control.testruns import TestRuns

    with Store(tmp_path / "s.duckdb") as store:
        store.write(lambda cur: cur.execute(
            "INSERT INTO test_runs (id, project, state, tests, created_at) "
            "SELECT 'run-' || i, 'p', 'passed', '[\"t::x\"]', "
            "TIMESTAMP '2026-01-01' + i * INTERVAL 1 MINUTE FROM range(1200) r(i)"))
        runs = TestRuns(store)
        assert runs.get("run-0")["tests"] == ["t::x"]  # the oldest of 1,200
        assert runs.get("run-1199")["state"] == "passed"
        with pytest.raises(KeyError, match="no test run 'run-9999'"):
            runs.get("run-9999")
