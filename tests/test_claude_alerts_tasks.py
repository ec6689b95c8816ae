"""Alerts and the work queue with the real Claude Code CLI (offline, against the Messages
API stand-in): an agent stuck calling the same tool is paused by the shipped loop rule
within 2 s of the fifth call and resumed by a person from the alert; a cost rule stops a
spender; an idle agent with labels takes prompt tasks from the queue and each task's
result links its session, cost, tokens and tool calls."""

from __future__ import annotations

import time
from datetime import datetime

import httpx
import pytest

from .conftest import ROLE_ENV, Served, role_client
from .standins.messages_api import MessagesAPI
from .test_claude_code_agent import define, until

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(claude, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("claude-alerts")
    env = ROLE_ENV
    with MessagesAPI() as api:
        served = Served(root / "c.duckdb", env=env, extra_args=("--no-demo",))
        try:
            yield served, api, root
        finally:
            served.stop()


def client(served, role: str = "operator") -> httpx.Client:
    return role_client(served, role)


def events(c: httpx.Client, agent_id: str) -> list[dict]:
    return c.get(f"/api/agents/{agent_id}", params={"limit": 2000}).json()["events"]


def at(event: dict) -> datetime:
    return datetime.fromisoformat(event["ts"].rstrip("Z"))


def test_a_looping_agent_is_paused_and_resumed_from_the_alert(setup):
    served, api, root = setup
    with client(served) as c:
        agent = define(c, api, root, "looper", "LOOP: echo same again")
        c.post(f"/api/agents/{agent['id']}/start")
        alert = until(lambda: [a for a in c.get("/api/alerts").json()["alerts"]
                               if a["agent_id"] == agent["id"]], what="the loop alert")[0]
        assert alert["rule_id"] == "tool-loop" and len(alert["evidence"]) == 5
        until(lambda: c.get(f"/api/agents/{agent['id']}").json()["agent"]["state"] == "paused",
              what="the pause")
        seen = events(c, agent["id"])
        calls = [e for e in seen if e["kind"] == "tool_use"]
        paused = [e for e in seen if e["kind"] == "state" and e["data"]["to"] == "paused"][0]
        assert all(e["text"] == calls[0]["text"] for e in calls[:5])
        assert (at(paused) - at(calls[4])).total_seconds() < 2.0
        until(lambda: [e for e in events(c, agent["id"]) if e["kind"] == "result"],
              what="the interrupted turn's end")
        settled = len([e for e in events(c, agent["id"]) if e["kind"] == "tool_use"])
        assert settled <= 7  # the turn was interrupted: the loop stopped
        r = c.post(f"/api/alerts/{alert['id']}/resume")
        assert r.status_code == 200, r.text
        assert r.json()["alert"]["agent"]["state"] == "idle"  # its turn ended while paused
    with client(served, "admin") as c:
        audit = c.get("/api/audit").json()["audit"]
        assert [a["outcome"] for a in audit if a["who"] == "rule:tool-loop"
                and a["action"] == "pause" and a["target"] == agent["id"]] == ["ok"]
        assert [a for a in audit if a["action"] == "resume" and a["target"] == agent["id"]
                and a["role"] == "operator"]
        c.post(f"/api/agents/{agent['id']}/stop")


def test_a_cost_rule_stops_a_spender(setup):
    served, api, root = setup
    with client(served, "admin") as c:
        r = c.post("/api/alert-rules", json={
            "rule_id": "spend", "name": "any spending", "kind": "threshold",
            "metric": "cost_per_hour", "threshold": 1e-9, "window_s": 3600,
            "agents": "spender", "actions": ["notify", "stop"]})
        assert r.status_code == 201, r.text
        agent = define(c, api, root, "spender", "hello")
        c.post(f"/api/agents/{agent['id']}/start")
        alert = until(lambda: [a for a in c.get("/api/alerts").json()["alerts"]
                               if a["agent_id"] == agent["id"]], what="the cost alert")[0]
        assert alert["rule_id"] == "spend" and "cost_per_hour" in alert["title"]
        until(lambda: c.get(f"/api/agents/{agent['id']}").json()["agent"]["state"] == "stopped",
              what="the stop")
        assert [a for a in c.get("/api/audit").json()["audit"]
                if a["who"] == "rule:spend" and a["action"] == "stop"]
        c.delete("/api/alert-rules/spend")


def test_an_idle_labelled_agent_takes_prompt_tasks(setup):
    served, api, root = setup
    with client(served) as c:
        for folder in ("project-worker", "home-worker"):
            (root / folder).mkdir(exist_ok=True)
        spec = {"name": "coder", "backend": "claude-code", "labels": ["code"],
                "project": "coder", "cwd": str(root / "project-worker"),
                "env": {"ANTHROPIC_BASE_URL": api.url, "ANTHROPIC_API_KEY": "sk-test",
                        "HOME": str(root / "home-worker"), "DISABLE_AUTOUPDATER": "1"}}
        coder = c.post("/api/agents", json=spec).json()["agent"]
        c.post(f"/api/agents/{coder['id']}/start")
        until(lambda: c.get(f"/api/agents/{coder['id']}").json()["agent"]["state"] == "idle",
              what="the idle session")
        talk = c.post("/api/tasks", json={"prompt": "hello there", "labels": ["code"],
                                          "priority": 1}).json()["task"]
        run = c.post("/api/tasks", json={"prompt": "RUN: echo from-a-task",
                                         "labels": ["code"]}).json()["task"]
        for task in (talk, run):
            done = until(lambda t=task: (x := c.get(f"/api/tasks/{t['id']}").json()["task"])[
                "state"] in ("done", "failed") and x, timeout=60, what="the task's end")
            assert done["state"] == "done" and done["agent_id"] == coder["id"], done
            assert done["session_id"] and done["cost_usd"] > 0 and done["tokens"] > 0
        assert c.get(f"/api/tasks/{talk['id']}").json()["task"]["tool_calls"] == 0
        ran = c.get(f"/api/tasks/{run['id']}").json()["task"]
        assert ran["tool_calls"] == 1 and "from-a-task" in ran["result"]
        assert ran["started_at"] >= c.get(f"/api/tasks/{talk['id']}").json()["task"][
            "ended_at"]
        c.post(f"/api/agents/{coder['id']}/stop")


def test_spending_with_no_edit_and_no_passing_test_is_a_stall(setup):
    served, api, root = setup
    with client(served, "admin") as c:
        c.post("/api/alert-rules", json={"rule_id": "stall", "name": "stalled", "kind": "stall",
                                         "minutes": 0.02, "agents": "staller"})
        agent = define(c, api, root, "staller", "hello")
        c.post(f"/api/agents/{agent['id']}/start")

        def stalled() -> list:
            # It keeps spending: a turn, and when that ends, another (no edit, no test).
            if c.get(f"/api/agents/{agent['id']}").json()["agent"]["state"] == "idle":
                c.post(f"/api/agents/{agent['id']}/message", json={"text": "think more"})
            time.sleep(0.3)
            return [a for a in c.get("/api/alerts").json()["alerts"]
                    if a["agent_id"] == agent["id"] and a["rule_id"] == "stall"]

        alert = until(stalled, what="the stall alert")[0]
        assert alert["evidence"][0]["tokens"] > 0
        c.delete("/api/alert-rules/stall")
        c.post(f"/api/agents/{agent['id']}/stop")
