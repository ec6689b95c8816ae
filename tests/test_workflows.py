"""Workflows through a real server: a definition is checked on save (errors name the node),
roles decide who edits and who runs, a run of command steps fans out and joins, waits in
the approvals inbox for a person (allow ends it one way, deny the other), is cancelled and
resumed, and survives a kill -9 of the server while it waits — every finished step ran
exactly once. Versions, their diff, and the CLI's run/export/import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import httpx
import pytest
from websockets.sync.client import connect

from .conftest import ROLE_ENV, TOKENS, Served, role_client

# real processes (a served workbench, its agents): not in the quick part
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    s = Served(tmp_path_factory.mktemp("workflows") / "w.duckdb", env=ROLE_ENV,
               extra_args=("--no-demo",))
    yield s
    s.stop()


def appends(path: Path, word: str, status: int = 0) -> str:
    """A command step that appends ``word`` to ``path`` (its side effect, to count)."""
    return (f"{sys.executable} -c \"open({str(path)!r}, 'a').write({word!r} + '\\n'); "
            f"raise SystemExit({status})\"")


def gated(out: Path, name: str = "gated") -> dict:
    """a → (b ∥ c) → join → a person → good | bad."""
    def step(node_id: str, word: str, status: int = 0) -> dict:
        return {"id": node_id, "kind": "agent",
                "settings": {"agent": "sh", "command": appends(out, word, status)}}
    return {
        "name": name, "agents": {"sh": {"backend": "process", "cwd": str(out.parent)}},
        "nodes": [step("a", "a"), {"id": "fan", "kind": "parallel"}, step("b", "b"),
                  step("c", "c"), {"id": "both", "kind": "join"},
                  {"id": "ask", "kind": "approval", "settings": {"message": "ship {name}?"}},
                  step("after", "after"),
                  {"id": "good", "kind": "end", "settings": {"message": "shipped"}},
                  {"id": "bad", "kind": "end", "settings": {"status": "failed",
                                                            "message": "refused"}}],
        "edges": [{"source": "a", "target": "fan"}, {"source": "fan", "target": "b"},
                  {"source": "fan", "target": "c"}, {"source": "b", "target": "both"},
                  {"source": "c", "target": "both"}, {"source": "both", "target": "ask"},
                  {"source": "ask", "target": "after"}, {"source": "after", "target": "good"},
                  {"source": "ask", "target": "bad", "when": "denied"}],
        "inputs": {"name": "it"}}


def save(c: httpx.Client, spec: dict) -> dict:
    r = c.post("/api/workflows", json=spec)
    assert r.status_code == 201, r.text
    return r.json()["workflow"]


def start(c: httpx.Client, workflow_id: str, **inputs) -> dict:
    r = c.post(f"/api/workflows/{workflow_id}/runs", json={"inputs": inputs})
    assert r.status_code == 201, r.text
    return r.json()["run"]


def wait_run(c: httpx.Client, run_id: str, states: set[str], timeout: float = 40) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = c.get(f"/api/workflow-runs/{run_id}").json()["run"]
        if run["state"] in states:
            return run
        assert time.monotonic() < deadline, f"run stayed {run['state']}: {run}"
        time.sleep(0.1)


def pending_for(c: httpx.Client, run_id: str) -> list[dict]:
    return [a for a in c.get("/api/approvals").json()["approvals"] if a["agent_id"] == run_id]


def states(run: dict) -> dict[str, str]:
    return {s["node"] + (f"#{s['visit']}" if s["visit"] > 1 else ""): s["state"]
            for s in run["steps"]}


@pytest.mark.parametrize("change, error", [
    (lambda s: s["edges"].append({"source": "after", "target": "a"}),
     "node a: a loop (a → fan → b → both → ask → after → a) with no condition"),
    (lambda s: s["edges"].append({"source": "a", "target": "nowhere"}),
     "edges[9].target: no node 'nowhere' (a dangling edge)"),
    (lambda s: s["nodes"].append({"id": "lost", "kind": "parallel"}),
     "node lost: not reachable from the start (a)"),
    (lambda s: s["nodes"][0]["settings"].update(agent="nobody"),
     "node a.settings.agent: no agent 'nobody'"),
    (lambda s: s["edges"].append({"source": "ask", "target": "good", "when": "passed"}),
     "a approval step ends allowed, denied"),
    (lambda s: s["nodes"][5]["settings"].update(timeout_s="soon"),
     "node ask.settings.timeout_s:"),
    (lambda s: s["edges"].append({"source": "b", "target": "after"}),
     "node after: reached from ask, b, which can each start it"),
    (lambda s: s["nodes"].append({"id": "loop", "kind": "condition", "settings": {
        "step": "a", "max_iterations": 1}}) or s["edges"].extend([
            {"source": "after", "target": "loop"},
            {"source": "loop", "target": "loop", "when": "exhausted"}]),
     "node loop: a loop (loop → loop) with no condition step to end it"),
    (lambda s: s["nodes"][5]["settings"].update(timeout_s=True),
     "node ask.settings.timeout_s: a number, not true or false"),
    (lambda s: s.update(name="wf-0123456789"), "name: reads like a workflow's id"),
])
def test_a_bad_workflow_is_refused_naming_what_is_wrong(served, tmp_path, change, error):
    spec = gated(tmp_path / "x.txt")
    change(spec)
    with role_client(served, "admin") as c:
        r = c.post("/api/workflows", json=spec)
        assert r.status_code == 400 and error in r.json()["error"], r.text
        checked = c.post("/api/workflows/validate", json=spec).json()
        assert checked["valid"] is False and error in checked["error"]
        assert c.post("/api/workflows/validate", json=gated(tmp_path / "x.txt")).json()[
            "valid"] is True


def test_viewers_read_operators_run_admins_edit(served, tmp_path):
    spec = gated(tmp_path / "roles.txt", "roles")
    for role in ("viewer", "operator"):
        with role_client(served, role) as c:
            assert c.post("/api/workflows", json=spec).status_code == 403
    with role_client(served, "admin") as c:
        workflow = save(c, spec)
        assert c.put(f"/api/workflows/{workflow['id']}", json=spec).json()["workflow"][
            "version"] == 2
    with role_client(served, "viewer") as c:
        assert c.get(f"/api/workflows/{workflow['id']}").json()["workflow"]["version"] == 2
        assert c.post(f"/api/workflows/{workflow['id']}/runs", json={}).status_code == 403
    with role_client(served, "operator") as c:
        assert c.put(f"/api/workflows/{workflow['id']}", json=spec).status_code == 403
        run = start(c, workflow["id"])
        wait_run(c, run["id"], {"waiting"})
        assert c.post(f"/api/workflow-runs/{run['id']}/cancel").json()["run"]["state"] == \
            "cancelled"
    with role_client(served, "admin") as c:
        audit = c.get("/api/audit", params={"limit": 500}).json()["audit"]
        mine = [(a["action"], a["role"], a["outcome"]) for a in audit
                if a["target"] in (workflow["id"], run["id"]) or
                (a["action"] == "workflow-edit" and a["outcome"] != "ok")]
        assert ("workflow-edit", "admin", "ok") in mine
        assert ("workflow-run", "operator", "ok") in mine
        assert ("workflow-cancel", "operator", "ok") in mine
        refused = [a for a in audit if a["role"] == "viewer" and a["outcome"] != "ok"]
        assert any(workflow["id"] in (a["target"] or "") + a["action"] for a in refused), \
            refused[:3]


def test_a_run_fans_out_joins_and_waits_for_a_person_who_allows(served, tmp_path):
    out = tmp_path / "allow.txt"
    with role_client(served, "admin") as c:
        workflow = save(c, gated(out, "allow"))
    with role_client(served, "operator") as c:
        run = start(c, workflow["id"], name="v2")
        run = wait_run(c, run["id"], {"waiting"})
        assert states(run) == {"a": "done", "fan": "done", "b": "done", "c": "done",
                               "both": "done", "ask": "needs approval"}
        [ask] = pending_for(c, run["id"])
        assert ask["tool"] == "workflow" and ask["text"] == "allow · ask: ship v2?"
        r = c.post(f"/api/approvals/{ask['id']}", json={"decision": "allow"})
        assert r.status_code == 200, r.text
        run = wait_run(c, run["id"], {"succeeded", "failed"})
    assert run["state"] == "succeeded" and run["message"] == "shipped", run
    assert states(run)["after"] == "done" and "bad" not in states(run)
    ask_step = next(s for s in run["steps"] if s["node"] == "ask")
    assert ask_step["outcome"] == "allowed" and "operator" not in ask_step["output"] or \
        ask_step["output"].startswith("allow by ")
    assert sorted(out.read_text().split()) == ["a", "after", "b", "c"]  # each exactly once
    tasks = {s["node"]: s["task_id"] for s in run["steps"] if s.get("task_id")}
    assert len(set(tasks.values())) == 4


def test_deny_routes_to_the_failure_branch(served, tmp_path):
    out = tmp_path / "deny.txt"
    with role_client(served, "admin") as c:
        workflow = save(c, gated(out, "deny"))
    with role_client(served, "operator") as c:
        run = wait_run(c, start(c, workflow["id"])["id"], {"waiting"})
        [ask] = pending_for(c, run["id"])
        c.post(f"/api/approvals/{ask['id']}", json={"decision": "deny", "message": "not now"})
        run = wait_run(c, run["id"], {"succeeded", "failed"})
    assert run["state"] == "failed" and run["message"] == "refused"
    assert states(run)["ask"] == "failed" and states(run)["bad"] == "failed"
    assert "after" not in states(run) and "after" not in out.read_text()
    assert next(s for s in run["steps"] if s["node"] == "ask")["output"].endswith("not now")


def test_an_unrouted_failure_ends_the_run_failed_there(served, tmp_path):
    out = tmp_path / "fail.txt"
    spec = {"name": "fails", "agents": {"sh": {"backend": "process", "cwd": str(tmp_path)}},
            "nodes": [{"id": "boom", "kind": "agent",
                       "settings": {"agent": "sh", "command": appends(out, "boom", 3)}},
                      {"id": "never", "kind": "agent",
                       "settings": {"agent": "sh", "command": appends(out, "never")}}],
            "edges": [{"source": "boom", "target": "never"}]}
    with role_client(served, "admin") as c:
        workflow = save(c, spec)
        run = wait_run(c, start(c, workflow["id"])["id"], {"succeeded", "failed"})
    assert run["state"] == "failed" and run["message"].startswith("step boom failed: "), run
    assert "exit status 3" in run["message"]
    assert out.read_text().split() == ["boom"]


def test_a_loop_runs_until_its_condition_and_stops_at_the_cap(served, tmp_path):
    out = tmp_path / "loop.txt"
    spec = {"name": "loop", "agents": {"sh": {"backend": "process", "cwd": str(tmp_path)}},
            "nodes": [{"id": "try", "kind": "agent",
                       "settings": {"agent": "sh", "command": appends(out, "try")}},
                      {"id": "enough", "kind": "condition",
                       "settings": {"step": "try", "check": "output_matches",
                                    "value": "never-said", "max_iterations": 3}},
                      {"id": "out", "kind": "end", "settings": {"status": "failed"}}],
            "edges": [{"source": "try", "target": "enough"},
                      {"source": "enough", "target": "try", "when": "no"},
                      {"source": "enough", "target": "out", "when": "exhausted"}]}
    with role_client(served, "admin") as c:
        run = wait_run(c, start(c, save(c, spec)["id"])["id"], {"succeeded", "failed"})
    assert out.read_text().split() == ["try"] * 4  # three loops back, then the cap
    assert [s["outcome"] for s in run["steps"] if s["node"] == "enough"] == \
        ["no", "no", "no", "exhausted"]


def test_versions_and_their_diff(served, tmp_path):
    spec = gated(tmp_path / "v.txt", "versions")
    with role_client(served, "admin") as c:
        workflow = save(c, spec)
        spec["nodes"][5]["settings"]["message"] = "really ship?"
        spec["nodes"].append({"id": "note", "kind": "end"})
        spec["edges"].append({"source": "ask", "target": "note", "when": "always"})
        spec["nodes"][0]["position"] = {"x": 50, "y": 60}
        r = c.put(f"/api/workflows/{workflow['id']}", json=spec)
        assert r.json()["workflow"]["version"] == 2
        versions = c.get(f"/api/workflows/{workflow['id']}/versions").json()["versions"]
        assert [v["version"] for v in versions] == [1, 2]
        diff = c.get(f"/api/workflows/{workflow['id']}/diff", params={"a": 1, "b": 2}).json()[
            "diff"]
    assert diff["added"] == ["note"] and diff["removed"] == []
    assert diff["changed"] == [{"id": "ask", "fields": ["settings"]}]
    assert diff["edges_added"] == [["ask", "note", "always"]] and diff["moved"] == ["a"]
    assert "really ship?" in diff["text"]


def test_a_cancelled_run_resumes_without_running_finished_steps_again(served, tmp_path):
    out = tmp_path / "resume.txt"
    with role_client(served, "admin") as c:
        workflow = save(c, gated(out, "resume"))
    with role_client(served, "operator") as c:
        run = wait_run(c, start(c, workflow["id"])["id"], {"waiting"})
        c.post(f"/api/workflow-runs/{run['id']}/cancel")
        assert pending_for(c, run["id"]) == []
        assert c.post(f"/api/workflow-runs/{run['id']}/cancel").status_code == 400
        r = c.post(f"/api/workflow-runs/{run['id']}/resume")
        assert r.status_code == 200, r.text
        wait_run(c, run["id"], {"waiting"})
        [ask] = pending_for(c, run["id"])
        c.post(f"/api/approvals/{ask['id']}", json={"decision": "allow"})
        run = wait_run(c, run["id"], {"succeeded", "failed"})
    assert run["state"] == "succeeded"
    assert sorted(out.read_text().split()) == ["a", "after", "b", "c"]


def test_a_kill_9_while_waiting_resumes_at_the_approval(tmp_path):
    out, db = tmp_path / "crash.txt", tmp_path / "crash.duckdb"
    first = Served(db, env=ROLE_ENV, extra_args=("--no-demo",))
    try:
        with role_client(first, "admin") as c:
            workflow = save(c, gated(out, "crash"))
            run = wait_run(c, start(c, workflow["id"])["id"], {"waiting"})
            [old] = pending_for(c, run["id"])
    finally:
        first.proc.kill()  # SIGKILL: no shutdown of any kind
        first.proc.wait()
        first._log_file.close()
    second = Served(db, env=ROLE_ENV, extra_args=("--no-demo",))
    try:
        with role_client(second, "operator") as c:
            old_now = [a for a in c.get("/api/approvals", params={"state": "all"}).json()[
                "approvals"] if a["id"] == old["id"]]
            assert old_now[0]["state"] == "expired"
            [ask] = _until(lambda: pending_for(c, run["id"]))
            assert ask["id"] != old["id"] and ask["text"] == "crash · ask: ship it?"
            c.post(f"/api/approvals/{ask['id']}", json={"decision": "allow"})
            done = wait_run(c, run["id"], {"succeeded", "failed"})
        assert done["state"] == "succeeded", done
        assert sorted(out.read_text().split()) == ["a", "after", "b", "c"]
        assert [s["visit"] for s in done["steps"] if s["node"] == "a"] == [1]
    finally:
        second.stop()
    with duckdb.connect(str(db), read_only=True) as con:
        spans = con.sql("SELECT attributes->>'workflow.node', status_code FROM spans "
                        "WHERE attributes->>'workflow.run_id' = ?", params=[run["id"]]
                        ).fetchall()
    nodes = sorted(n for n, _ in spans if n)
    # every step once, the approval twice (it waited, then it was answered), and the run
    assert nodes == sorted(["a", "fan", "b", "c", "both", "ask", "after", "good"]), nodes
    assert len([n for n, _ in spans if n is None]) == 1


def _until(fn, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not (value := fn()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return value


def observatory(served: Served, *args: str, role: str = "admin"
                ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args, "--url", served.url],
                          capture_output=True, text=True, timeout=90,
                          env={**os.environ, "OBSERVATORY_TOKEN": TOKENS[role]})


def test_the_cli_imports_runs_exports(served, tmp_path):
    out = tmp_path / "cli.txt"
    spec = gated(out, "cli")
    spec["edges"] = [e for e in spec["edges"] if e["source"] != "both"] + [
        {"source": "both", "target": "after"}]
    spec["nodes"] = [n for n in spec["nodes"] if n["id"] not in ("ask", "bad")]
    spec["edges"] = [e for e in spec["edges"] if "ask" not in (e["source"], e["target"])]
    (tmp_path / "cli.json").write_text(json.dumps(spec))
    done = observatory(served, "workflows", "import", str(tmp_path / "cli.json"))
    assert done.returncode == 0 and " v1  cli  (7 steps)" in done.stdout, done.stderr
    again = observatory(served, "workflows", "import", str(tmp_path / "cli.json"))
    assert " v2  cli " in again.stdout  # the same name: a new version
    denied = observatory(served, "workflows", "import", str(tmp_path / "cli.json"),
                         role="operator")
    assert denied.returncode == 1 and "403" in denied.stderr
    ran = observatory(served, "workflows", "run", "cli", "--wait", role="operator")
    assert ran.returncode == 0, ran.stderr
    assert "succeeded" in ran.stdout and "after" in ran.stdout
    assert "a                done" in ran.stdout
    exported = observatory(served, "workflows", "export", "cli", "-o", str(tmp_path / "e.json"))
    assert exported.returncode == 0
    back = json.loads((tmp_path / "e.json").read_text())
    assert [n["id"] for n in back["nodes"]] == [n["id"] for n in spec["nodes"]]
    listed = observatory(served, "workflows", "list", role="viewer")
    assert "cli  (7 steps)  1 runs" in listed.stdout
    bad = observatory(served, "workflows", "run", "cli", "--input", "nope=1", role="operator")
    assert bad.returncode == 1 and "inputs.nope: not an input of cli" in bad.stderr


def test_inputs_fill_a_command_as_data_never_as_its_syntax(served, tmp_path):
    out, pwned = tmp_path / "said.txt", tmp_path / "pwned"
    said = f"x; touch {pwned}; $(touch {pwned}) `id` \"'"
    spec = {"name": "quoted", "inputs": {"word": "hello"},
            "agents": {"sh": {"backend": "process", "cwd": str(tmp_path)}},
            "nodes": [{"id": "say", "kind": "agent", "settings": {
                "agent": "sh", "command": f"sh -c 'echo \"$1\" > {out}' _ {{word}}"}}]}
    with role_client(served, "admin") as c:
        workflow = save(c, spec)
        # a value inside a word, or in a shell agent's command, would be shell syntax
        inside = {**spec, "nodes": [{"id": "say", "kind": "agent", "settings": {
            "agent": "sh", "command": "sh -c \"echo hello {word}\""}}]}
        r = c.post("/api/workflows", json=inside)
        assert r.status_code == 400 and "a value must be a word of its own" in r.text
        shell = {**spec, "agents": {"sh": {"backend": "process", "cwd": str(tmp_path),
                                           "config": {"shell": True}}},
                 "nodes": [{"id": "say", "kind": "agent", "settings": {
                     "agent": "sh", "command": "echo {word}"}}]}
        r = c.post("/api/workflows", json=shell)
        assert r.status_code == 400 and "a shell agent's command cannot take values" in r.text
        option = save(c, {**spec, "name": "option", "nodes": [
            {"id": "log", "kind": "agent", "settings": {
                "agent": "sh", "command": f"touch {{word}} {tmp_path / 'touched'}"}}]})
    with role_client(served, "operator") as c:
        run = wait_run(c, start(c, workflow["id"], word=said)["id"], {"succeeded", "failed"})
        assert run["state"] == "succeeded", run
        bad = wait_run(c, start(c, option["id"], word="--version")["id"],
                       {"succeeded", "failed"})
    assert not pwned.exists() and out.read_text() == said + "\n"
    assert bad["state"] == "failed" and "a value, not an option" in bad["message"], bad
    assert not (tmp_path / "touched").exists()


def test_a_run_never_works_in_the_servers_own_folder(served, tmp_path):
    spec = gated(tmp_path / "x.txt", "homeless")
    del spec["agents"]["sh"]["cwd"]
    with role_client(served, "admin") as c:
        workflow = save(c, spec)
    with role_client(served, "operator") as c:
        r = c.post(f"/api/workflows/{workflow['id']}/runs", json={"inputs": {}})
        assert r.status_code == 400 and "has agents that work in the project's folder (sh)" \
            in r.json()["error"]
        r = c.post(f"/api/workflows/{workflow['id']}/runs",
                   json={"inputs": {"project": "nope"}})
        assert r.status_code == 400 and "no scanned folder for 'nope'" in r.json()["error"]
        assert c.get("/api/workflow-runs", params={"workflow": workflow["id"]}).json()[
            "runs"] == []


def test_a_runs_agents_take_only_its_tasks_and_their_keys_are_for_admins(served, tmp_path):
    out = tmp_path / "own.txt"
    spec = gated(out, "own agents")
    spec["agents"]["sh"]["env"] = {"DEPLOY_KEY": "s3cr3t-deploy"}
    headers = {"Authorization": f"Bearer {TOKENS['viewer']}"}
    with connect(served.url.replace("http", "ws") + "/ws/agents",
                 additional_headers=headers) as ws, role_client(served, "admin") as c:
        ws.recv()  # (the snapshot)
        workflow = save(c, spec)
        pushed = json.loads(ws.recv(timeout=10))
        while pushed["type"] != "workflow_update":
            pushed = json.loads(ws.recv(timeout=10))
        # a viewer's websocket hears of it, not its definition (its agents' keys)
        assert pushed["workflow"]["id"] == workflow["id"] and "s3cr3t" not in str(pushed)
        assert c.get(f"/api/workflows/{workflow['id']}").json()["workflow"]["spec"][
            "agents"]["sh"]["env"] == {"DEPLOY_KEY": "s3cr3t-deploy"}
        named = c.post("/api/workflows", json=spec)
        assert named.status_code == 400 and "a workflow named 'own agents' exists" in named.text
    with role_client(served, "viewer") as c:
        for path in (f"/api/workflows/{workflow['id']}",
                     f"/api/workflows/{workflow['id']}/versions"):
            assert "s3cr3t" not in c.get(path).text
    with role_client(served, "operator") as c:
        run = wait_run(c, start(c, workflow["id"])["id"], {"waiting"})
        assert "s3cr3t" not in c.get(f"/api/workflow-runs/{run['id']}").text
        label = f"{run['id']}-sh"
        r = c.post("/api/tasks", json={"command": "env", "labels": [label]})
        assert r.status_code == 400 and "are a workflow run's own" in r.text
        r = c.post("/api/agents", json={"name": "thief", "backend": "process",
                                         "labels": [label]})
        assert r.status_code == 400 and "are a workflow run's own" in r.text
        loose = c.post("/api/tasks", json={"command": "env"}).json()["task"]
        time.sleep(1.5)  # (the queue looks at least once a second)
        assert c.get(f"/api/tasks/{loose['id']}").json()["task"]["state"] == "queued"
        c.post(f"/api/tasks/{loose['id']}/cancel")
        c.post(f"/api/workflow-runs/{run['id']}/cancel")


def test_resumes_race_once_and_a_failed_step_runs_again(served, tmp_path):
    out, flag = tmp_path / "resumed.txt", tmp_path / "second-time"
    # fails the first time, passes the next (the flag file says it ran before)
    flaky = (f"{sys.executable} -c \"import os; p = {str(flag)!r}; ok = os.path.exists(p); "
             f"open(p, 'w').close(); open({str(out)!r}, 'a').write('flaky\\n'); "
             f"raise SystemExit(0 if ok else 4)\"")
    spec = {"name": "resumable", "agents": {"sh": {"backend": "process", "cwd": str(tmp_path)}},
            "nodes": [{"id": "first", "kind": "agent", "settings": {
                          "agent": "sh", "command": appends(out, "first")}},
                      {"id": "flaky", "kind": "agent", "settings": {
                          "agent": "sh", "command": flaky}}],
            "edges": [{"source": "first", "target": "flaky"}]}
    with role_client(served, "admin") as c:
        workflow = save(c, spec)
    with role_client(served, "operator") as c:
        run = wait_run(c, start(c, workflow["id"])["id"], {"succeeded", "failed"})
        assert run["state"] == "failed" and "step flaky failed" in run["message"]
        with ThreadPoolExecutor(4) as pool:
            codes = sorted(pool.map(lambda _: c.post(
                f"/api/workflow-runs/{run['id']}/resume").status_code, range(4)))
        assert codes == [200, 400, 400, 400]
        run = wait_run(c, run["id"], {"succeeded", "failed"})
    assert run["state"] == "succeeded", run
    assert out.read_text().split() == ["first", "flaky", "flaky"]  # first ran once


def test_a_join_whose_branch_never_ran_fails_the_run(served, tmp_path):
    spec = {"name": "join after a choice",
            "agents": {"sh": {"backend": "process", "cwd": str(tmp_path)}},
            "nodes": [{"id": "a", "kind": "agent", "settings": {
                          "agent": "sh", "command": appends(tmp_path / "j.txt", "a")}},
                      {"id": "pick", "kind": "condition", "settings": {
                          "step": "a", "check": "exit_status", "value": "0"}},
                      {"id": "x", "kind": "parallel"}, {"id": "y", "kind": "parallel"},
                      {"id": "both", "kind": "join"}],
            "edges": [{"source": "a", "target": "pick"},
                      {"source": "pick", "target": "x", "when": "yes"},
                      {"source": "pick", "target": "y", "when": "no"},
                      {"source": "x", "target": "both"}, {"source": "y", "target": "both"}]}
    with role_client(served, "admin") as c:
        run = wait_run(c, start(c, save(c, spec)["id"])["id"], {"succeeded", "failed"})
    assert run["state"] == "failed"
    assert run["message"] == "join both waited for y, which did not run (a join waits for " \
        "every branch)"
