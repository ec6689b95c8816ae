"""The work queue through a real server: process workers take command tasks by priority
then age, a pool starts agents for tasks up to its cap, budgets and deadlines end tasks,
a failed task is retried with its failure carried, and bad requests are refused."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest

from .conftest import ROLE_ENV, TOKENS, Served, role_client

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    env = ROLE_ENV
    s = Served(tmp_path_factory.mktemp("queue") / "q.duckdb", env=env,
               extra_args=("--no-demo",))
    yield s
    s.stop()


def client(served, role: str = "operator") -> httpx.Client:
    return role_client(served, role)


def writes(path, name: str, sleep: float = 0.0) -> list[str]:
    """A command that appends ``name`` to ``path`` (after ``sleep`` seconds)."""
    return [sys.executable, "-c",
            f"import time; time.sleep({sleep}); open({str(path)!r}, 'a').write({name!r} + '\\n')"]


def until_task(c: httpx.Client, task_id: str, states: set[str], timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        task = c.get(f"/api/tasks/{task_id}").json()["task"]
        if task["state"] in states:
            return task
        assert time.monotonic() < deadline, f"task stayed {task['state']}: {task}"
        time.sleep(0.05)


def add(c: httpx.Client, **body) -> dict:
    r = c.post("/api/tasks", json=body)
    assert r.status_code == 201, r.text
    return r.json()["task"]


def test_priority_then_age_on_a_worker(served, tmp_path):
    out = tmp_path / "order.txt"
    with client(served) as c:
        worker = c.post("/api/agents", json={"name": "w-order", "backend": "process",
                                             "labels": ["order"], "project": "q"}).json()
        assert worker["agent"]["state"] == "idle", worker
        first = add(c, command=writes(out, "first", 1.0), labels=["order"])
        until_task(c, first["id"], {"running"})
        low = add(c, command=writes(out, "low"), labels=["order"], priority=1)
        high = add(c, command=writes(out, "high"), labels=["order"], priority=9)
        mid_old = add(c, command=writes(out, "mid-old"), labels=["order"], priority=5)
        mid_new = add(c, command=writes(out, "mid-new"), labels=["order"], priority=5,
                      project="q")
        queue = c.get("/api/tasks", params={"state": "queued"}).json()["tasks"]
        assert [t["id"] for t in queue] == [high["id"], mid_old["id"], mid_new["id"], low["id"]]
        for task in (first, low, high, mid_old, mid_new):
            done = until_task(c, task["id"], {"done"})
            assert done["agent_id"] == worker["agent"]["id"]
        assert out.read_text().split() == ["first", "high", "mid-old", "mid-new", "low"]
        detail = c.get(f"/api/tasks/{first['id']}").json()["task"]
        assert detail["result"] == "exit status 0" and detail["tool_calls"] == 0
        assert detail["started_at"] <= detail["ended_at"]
        events = c.get(f"/api/agents/{worker['agent']['id']}").json()["events"]
        assert sum(e["kind"] == "task" for e in events) == 10  # started and ended, five times


def test_unmatched_task_waits_and_is_cancelled_and_reprioritised(served):
    with client(served) as c:
        task = add(c, command=["true"], labels=["nobody-has-this"])
        time.sleep(1.2)
        assert c.get(f"/api/tasks/{task['id']}").json()["task"]["state"] == "queued"
        r = c.post(f"/api/tasks/{task['id']}/priority", json={"priority": 42})
        assert r.json()["task"]["priority"] == 42
        assert c.post(f"/api/tasks/{task['id']}/cancel").json()["task"]["state"] == "cancelled"
        again = c.post(f"/api/tasks/{task['id']}/cancel")
        assert again.status_code == 400 and "cancelled" in again.json()["error"]
        expired = add(c, command=["true"], labels=["nobody-has-this"],
                      deadline="2020-01-01T00:00:00Z")
        assert until_task(c, expired["id"], {"expired"})["failure"].startswith("its deadline")


def test_failure_is_carried_to_the_retry(served, tmp_path):
    flag = tmp_path / "second-time"
    script = (f"import os, sys; p = {str(flag)!r}\n"
              "if not os.path.exists(p):\n open(p, 'w').close(); print('boom'); sys.exit(3)\n")
    with client(served) as c:
        c.post("/api/agents", json={"name": "w-retry", "backend": "process",
                                    "labels": ["retry"]})
        task = add(c, command=[sys.executable, "-c", script], labels=["retry"])
        failed = until_task(c, task["id"], {"failed"})
        assert "exit status 3" in failed["failure"] and "boom" in failed["failure"]
        assert c.post(f"/api/tasks/{task['id']}/retry").json()["task"]["attempt"] == 2
        done = until_task(c, task["id"], {"done"})
        assert done["attempt"] == 2 and "exit status 3" in done["failure"]  # carried


def test_time_budget_stops_the_task(served):
    with client(served) as c:
        agent = c.post("/api/agents", json={"name": "w-budget", "backend": "process",
                                            "labels": ["budget"]}).json()["agent"]
        task = add(c, command=[sys.executable, "-c", "import time; time.sleep(60)"],
                   labels=["budget"], budget={"seconds": 0.5})
        failed = until_task(c, task["id"], {"failed"}, timeout=10)
        assert failed["failure"].startswith("time budget")
        deadline = time.monotonic() + 10
        while c.get(f"/api/agents/{agent['id']}").json()["agent"]["state"] != "stopped":
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_pool_starts_agents_up_to_its_cap(served, tmp_path):
    out = tmp_path / "pool.txt"
    with client(served, "admin") as c:
        r = c.post("/api/pools", json={"pool": "burst", "max_agents": 2, "template": {
            "backend": "process", "labels": ["burst"], "project": "q"}})
        assert r.status_code == 201, r.text
        tasks = [add(c, command=writes(out, f"t{i}", 0.8), labels=["burst"]) for i in range(3)]
        for task in tasks:
            until_task(c, task["id"], {"done"})
        members = [a for a in c.get("/api/agents").json()["agents"] if a["pool"] == "burst"]
        assert sorted(a["name"] for a in members) == ["burst-1", "burst-2"]
        assert sorted(out.read_text().split()) == ["t0", "t1", "t2"]
        assert {t["agent_id"] for t in c.get("/api/tasks", params={"state": "done"}).json()[
            "tasks"] if t["id"] in {x["id"] for x in tasks}} == {a["id"] for a in members}
    with client(served, "operator") as c:  # defining a pool is an admin's
        assert c.post("/api/pools", json={"pool": "x", "template": {}}).status_code == 403


@pytest.mark.parametrize("body, error", [
    ({}, "prompt or command"),
    ({"prompt": "a", "command": "b"}, "prompt or command"),
    ({"prompt": ""}, "prompt"),
    ({"command": []}, "command"),
    ({"prompt": "a", "priority": "high"}, "priority"),
    ({"prompt": "a", "priority": 10**9}, "priority"),
    ({"prompt": "a", "labels": "x"}, "labels"),
    ({"prompt": "a", "deadline": "soon"}, "deadline"),
    ({"prompt": "a", "budget": {"cost_usd": -1}}, "budget"),
    ({"prompt": "a", "colour": "red"}, "colour"),
    ([1, 2], "JSON object"),
])
def test_bad_tasks_are_400_naming_the_field(served, body, error):
    with client(served) as c:
        r = c.post("/api/tasks", json=body)
        assert r.status_code == 400 and error in r.json()["error"], r.text


def test_roles_and_missing_tasks(served):
    with client(served, "viewer") as c:
        assert c.get("/api/tasks").status_code == 200
        assert c.post("/api/tasks", json={"prompt": "x"}).status_code == 403
    with client(served) as c:
        assert c.get("/api/tasks/tk-nope").status_code == 404
        assert c.post("/api/tasks/tk-nope/cancel").status_code == 404
        assert c.post("/api/tasks/tk-nope/priority", json={"priority": "x"}).status_code == 400


def test_cli_tasks_add_list_cancel(served):
    env = {"OBSERVATORY_TOKEN": TOKENS["operator"], "PATH": "/usr/bin:/bin"}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "workbench", "tasks", *args, "--url",
                               served.url], capture_output=True, text=True, env=env,
                              timeout=60)

    added = cli("add", "--command", "true", "--label", "cli-only", "--priority", "7", "--json")
    assert added.returncode == 0, added.stderr
    task = json.loads(added.stdout)
    assert task["priority"] == 7 and task["labels"] == ["cli-only"]
    listed = cli("list", "--state", "queued")
    assert task["id"] in listed.stdout and "p7" in listed.stdout
    assert cli("cancel", task["id"]).returncode == 0
    again = cli("cancel", task["id"])
    assert again.returncode == 1 and "observatory tasks cancel: 400" in again.stderr
