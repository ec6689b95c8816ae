"""A LangGraph app imported as a workflow (its graph read in the project's Python, the app
run as a step), and the shipped "fix the failing test" workflow end to end, with the real Claude Code CLI
(offline, against the Messages API stand-in) on a real git project: the first test run
fails, the agent step's edit lands, the second run passes and the loop ends. And a
Claude step before an approval survives a kill -9 of the server: after the restart the
run waits at the approval again, and the finished Claude step is not asked again (the
stand-in's requests are counted)."""

from __future__ import annotations

import copy
import subprocess
import time

import pytest

from workbench.workflows.templates import FIX_FAILING_TEST

from .conftest import ROLE_ENV, Served, role_client
from .standins.messages_api import MessagesAPI
from .test_workflows import appends, pending_for, save, start, wait_run

# real processes (a served workbench, the claude CLI, pytest): not in the quick part
pytestmark = pytest.mark.slow


def git(folder, *args: str) -> None:
    subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
                        "HOME": str(folder), "PATH": "/usr/bin:/bin"})


@pytest.fixture(scope="module")
def setup(claude, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("wf-claude")
    project = root / "calc"
    project.mkdir()
    (project / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (project / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
        "def test_zero():\n    assert add(0, 0) == 0\n")
    git(project, "init", "-q")
    git(project, "add", ".")
    git(project, "commit", "-qm", "a bug")
    (root / "home").mkdir()
    with MessagesAPI() as api:
        served = Served(root / "w.duckdb", env=ROLE_ENV, extra_args=("--no-demo",))
        try:
            with role_client(served, "operator") as c:
                r = c.post("/api/projects/scan", json={"roots": [str(project)],
                                                       "name": "calc"})
                assert r.status_code == 200, r.text
            yield served, api, root, project
        finally:
            served.stop()


def claude_agent(api: MessagesAPI, root) -> dict:
    return {"backend": "claude-code",
            "env": {"ANTHROPIC_BASE_URL": api.url, "ANTHROPIC_API_KEY": "sk-test",
                    "HOME": str(root / "home"), "DISABLE_AUTOUPDATER": "1"},
            "policy": {"rules": [{"tool": "Bash|Edit|Write|Read", "action": "allow"}]}}


def asked(api: MessagesAPI, marker: str) -> int:
    """How many requests the stand-in got whose messages carry ``marker``."""
    return sum(marker in str((r["body"] or {}).get("messages")) for r in api.requests)


def test_fix_the_failing_test_end_to_end(setup):
    served, api, root, project = setup
    spec = copy.deepcopy(FIX_FAILING_TEST)
    spec["agents"]["fixer"] = claude_agent(api, root)
    fix = next(n for n in spec["nodes"] if n["id"] == "fix")
    # (the stand-in's script: "RUN: cmd" makes the model call Bash with cmd)
    fix["settings"]["prompt"] += " RUN: sed -i s/a\\ -\\ b/a\\ +\\ b/ calc.py"
    with role_client(served, "admin") as c:
        workflow = save(c, spec)
    with role_client(served, "operator") as c:
        run = start(c, workflow["id"], project="calc")
        run = wait_run(c, run["id"], {"succeeded", "failed"}, timeout=240)
    assert run["state"] == "succeeded", (run["message"], run["steps"])
    assert run["message"] == "the tests pass"
    steps = [(s["node"], s["visit"], s["outcome"]) for s in run["steps"]]
    assert steps == [("run", 1, "failed"), ("green", 1, "no"), ("fix", 1, "ok"),
                     ("run", 2, "passed"), ("green", 2, "yes"), ("fixed", 1, "succeeded")]
    first, second = [s for s in run["steps"] if s["node"] == "run"]
    assert "1 failed" in first["output"] and "2 passed" in second["output"]
    assert first["test_run_id"] != second["test_run_id"]
    fixed = next(s for s in run["steps"] if s["node"] == "fix")
    assert fixed["session_id"] and fixed["agent_id"] and fixed["task_id"]
    assert fixed["cost_usd"] > 0 and run["cost_usd"] == pytest.approx(fixed["cost_usd"])
    assert "a + b" in (project / "calc.py").read_text()  # the agent's edit landed
    with role_client(served, "viewer") as c:
        task = c.get(f"/api/tasks/{fixed['task_id']}").json()["task"]
        assert task["state"] == "done" and task["created_by"] == f"workflow:{run['id']}"
        assert task["tool_calls"] >= 1
        agent = c.get(f"/api/agents/{fixed['agent_id']}").json()["agent"]
        # the run's own agent was stopped when the run ended
        _until(lambda: c.get(f"/api/agents/{fixed['agent_id']}").json()["agent"]["state"]
               in ("stopped", "completed"))
        assert agent["name"] == f"{run['id']}-fixer"


def _until(fn, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not (value := fn()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
    return value


def test_a_claude_step_is_not_asked_again_after_a_kill_9(claude, tmp_path):  # noqa: F811
    out = tmp_path / "after.txt"
    (tmp_path / "home").mkdir()
    with MessagesAPI() as api:
        coder = {**claude_agent(api, tmp_path), "cwd": str(tmp_path)}
        spec = {"name": "ask after claude", "agents": {"coder": coder,
                                                       "sh": {"backend": "process",
                                                              "cwd": str(tmp_path)}},
                "nodes": [{"id": "write", "kind": "agent", "settings": {
                              "agent": "coder",
                              "prompt": "step-marker-7 RUN: echo wrote >> " + str(out)}},
                          {"id": "ask", "kind": "approval"},
                          {"id": "after", "kind": "agent", "settings": {
                              "agent": "sh", "command": appends(out, "after")}}],
                "edges": [{"source": "write", "target": "ask"},
                          {"source": "ask", "target": "after"}]}
        db = tmp_path / "k.duckdb"
        first = Served(db, env=ROLE_ENV, extra_args=("--no-demo",))
        try:
            with role_client(first, "admin") as c:
                run = start(c, save(c, spec)["id"])
                wait_run(c, run["id"], {"waiting"}, timeout=120)
        finally:
            first.proc.kill()
            first.proc.wait()
            first._log_file.close()
        before = asked(api, "step-marker-7")
        assert before >= 1
        second = Served(db, env=ROLE_ENV, extra_args=("--no-demo",))
        try:
            with role_client(second, "operator") as c:
                [ask] = _until(lambda: pending_for(c, run["id"]))
                c.post(f"/api/approvals/{ask['id']}", json={"decision": "allow"})
                done = wait_run(c, run["id"], {"succeeded", "failed"}, timeout=60)
        finally:
            second.stop()
    assert done["state"] == "succeeded", done
    assert asked(api, "step-marker-7") == before  # the finished step was not run again
    assert out.read_text().split() == ["wrote", "after"]


def test_a_run_needs_a_scanned_project_for_its_tests(setup):
    served, api, root, project = setup
    spec = copy.deepcopy(FIX_FAILING_TEST)
    spec["agents"]["fixer"] = claude_agent(api, root)
    with role_client(served, "admin") as c:
        workflow = save(c, {**spec, "name": "needs a project"})
        r = c.post(f"/api/workflows/{workflow['id']}/runs", json={"inputs": {"project": "nope"}})
        assert r.status_code == 400
        assert "no scanned folder for 'nope'" in r.json()["error"]
        r = c.post(f"/api/workflows/{workflow['id']}/runs", json={"inputs": {}})
        assert "runs tests, which needs a project with a scanned folder" in r.json()["error"]


APP = '''from typing import TypedDict

from langgraph.graph import END, START, StateGraph


class S(TypedDict, total=False):
    n: int
    path: list


def double(state):
    return {"n": state["n"] * 2, "path": [*state.get("path", []), "double"]}


def small(state):
    return {"path": [*state["path"], "small"]}


def big(state):
    return {"path": [*state["path"], "big"]}


g = StateGraph(S)
g.add_node("double", double)
g.add_node("small", small)
g.add_node("big", big)
g.add_edge(START, "double")
g.add_conditional_edges("double", lambda s: "big" if s["n"] > 10 else "small", ["small", "big"])
g.add_edge("small", END)
g.add_edge("big", END)
app = g.compile()
'''


def test_a_langgraph_app_is_imported_shown_and_run_as_a_step(setup):
    served, api, root, project = setup
    (project / "flow.py").write_text(APP)
    with role_client(served, "operator") as c:
        r = c.post("/api/workflows/import-langgraph", json={"target": "flow:app",
                                                            "project": "calc"})
        assert r.status_code == 403  # editing is an admin's
    with role_client(served, "admin") as c:
        bad = c.post("/api/workflows/import-langgraph", json={"target": "nowhere:app",
                                                              "project": "calc"})
        assert bad.status_code == 400 and "nowhere:app: could not read its graph" in \
            bad.json()["error"] and "ModuleNotFoundError" in bad.json()["error"]
        r = c.post("/api/workflows/import-langgraph", json={"target": "flow:app",
                                                            "project": "calc"})
        assert r.status_code == 201, r.text
        workflow = r.json()["workflow"]
    graph = workflow["spec"]["app"]["graph"]
    assert sorted(n["id"] for n in graph["nodes"]) == ["__end__", "__start__", "big",
                                                       "double", "small"]
    assert {(e["source"], e["target"], e["conditional"]) for e in graph["edges"]} >= {
        ("__start__", "double", False), ("double", "big", True), ("double", "small", True)}
    with role_client(served, "operator") as c:
        run = start(c, workflow["id"], project="calc", input='{"n": 7}')
        run = wait_run(c, run["id"], {"succeeded", "failed"}, timeout=60)
    assert run["state"] == "succeeded", run
    [step] = run["steps"]
    assert '"path": ["double", "big"]' in step["output"] and '"n": 14' in step["output"]
