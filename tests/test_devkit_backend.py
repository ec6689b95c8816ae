"""One workbench drives another's agents (the devkit backend), both real servers: starting
the agent here starts it there, pause and stop reach the remote process, its state follows
the remote's websocket, and a remote Claude Code agent's permission request lands in this
workbench's inbox, where the answer decides the remote tool call."""

from __future__ import annotations

import sys

import httpx
import psutil
import pytest

from workbench.control.claude_code import find_binary

from .conftest import IN_CI, Served, wait_for
from .standins.messages_api import MessagesAPI

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow

TICKER = [sys.executable, "-u", "-c",
          "import itertools, time\nfor i in itertools.count(): print(i); time.sleep(0.2)"]


def until(fn, timeout: float = 20, what: str = ""):
    return wait_for(fn, timeout, what, every=0.05)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("devkit")
    there = Served(root / "there.duckdb", extra_args=("--no-demo",),
                   env={"OBSERVATORY_TOKENS": "remote-op:operator"})
    here = Served(root / "here.duckdb", extra_args=("--no-demo",),
                  env={"OBSERVATORY_DEVKIT_TOKEN_REMOTE": "remote-op"})
    yield here, there
    here.stop()
    there.stop()


def state(c: httpx.Client, agent_id: str) -> str:
    return c.get(f"/api/agents/{agent_id}").json()["agent"]["state"]


def test_drive_a_process_agent_of_another_workbench(pair):
    here, there = pair
    with httpx.Client(base_url=there.url, timeout=30,
                      headers={"Authorization": "Bearer remote-op"}) as t, \
            httpx.Client(base_url=here.url, timeout=30) as h:
        remote = t.post("/api/agents", json={"name": "far-ticker", "backend": "process",
                                             "command": TICKER}).json()["agent"]
        r = h.post("/api/agents", json={"name": "near", "backend": "devkit", "config": {
            "url": there.url, "agent_id": remote["id"], "token_env": "OBSERVATORY_DEVKIT_TOKEN_REMOTE"}})
        assert r.status_code == 201, r.text
        near = r.json()["agent"]
        h.post(f"/api/agents/{near['id']}/start")
        until(lambda: state(t, remote["id"]) == "running", what="the remote start")
        until(lambda: state(h, near["id"]) == "running", what="the state here")
        pid = t.get(f"/api/agents/{remote['id']}").json()["agent"]["pid"]

        assert h.post(f"/api/agents/{near['id']}/pause").status_code == 200
        until(lambda: psutil.Process(pid).status() == psutil.STATUS_STOPPED,
              what="the remote process stopped")
        assert state(t, remote["id"]) == "paused"
        h.post(f"/api/agents/{near['id']}/resume")
        until(lambda: state(t, remote["id"]) == "running", what="the remote resume")

        h.post(f"/api/agents/{near['id']}/stop")
        until(lambda: state(t, remote["id"]) == "stopped", what="the remote stop")
        until(lambda: state(h, near["id"]) == "stopped", what="stopped here")
        # What was done there was done by this workbench's token, and is audited there.
        audit = t.get("/api/audit", headers={"Authorization": "Bearer remote-op"})
        assert audit.status_code == 403  # an operator token: the audit is the admins'


def test_a_remote_permission_request_is_answered_here(pair, tmp_path):
    here, there = pair
    claude = find_binary()
    if not claude:
        if IN_CI:
            pytest.fail("the claude CLI is missing (.ci/run installs it)")
        pytest.skip("the claude CLI is not installed")
    home, project = tmp_path / "home", tmp_path / "project"
    home.mkdir()
    project.mkdir()
    with MessagesAPI() as api, httpx.Client(
            base_url=there.url, timeout=30,
            headers={"Authorization": "Bearer remote-op"}) as t, \
            httpx.Client(base_url=here.url, timeout=30) as h:
        remote = t.post("/api/agents", json={
            "name": "far-claude", "backend": "claude-code", "cwd": str(project),
            "prompt": "RUN: echo far > far.txt",
            "env": {"ANTHROPIC_BASE_URL": api.url, "ANTHROPIC_API_KEY": "x",
                    "HOME": str(home)}}).json()["agent"]
        near = h.post("/api/agents", json={"name": "near-claude", "backend": "devkit",
                                           "config": {"url": there.url,
                                                      "agent_id": remote["id"],
                                                      "token_env": "OBSERVATORY_DEVKIT_TOKEN_REMOTE"}}).json()[
            "agent"]
        h.post(f"/api/agents/{near['id']}/start")
        mine = until(lambda: h.get("/api/approvals").json()["approvals"],
                     what="the copy of the remote request")
        assert mine[0]["agent_id"] == near["id"] and mine[0]["tool"] == "Bash"
        assert until(lambda: state(h, near["id"]) == "waiting-for-approval", what="waiting")
        h.post(f"/api/approvals/{mine[0]['id']}", json={"decision": "allow"})
        until(lambda: (project / "far.txt").exists(), what="the remote tool call")
        until(lambda: state(h, near["id"]) == "idle", what="the turn's end, here")
        assert t.get("/api/approvals").json()["approvals"] == []
        h.post(f"/api/agents/{near['id']}/stop")
        until(lambda: state(h, near["id"]) in ("stopped", "completed"), what="the stop")
