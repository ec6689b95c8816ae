"""The real Claude Code CLI as a workbench agent, offline against a local stand-in for the
Messages API: its events live, a permission request for a command that writes a file
denied (no file) and, in another session, allowed (the file), an interrupted turn, a
session resumed by id, and its own OpenTelemetry landing linked to the agent."""

from __future__ import annotations

import time

import httpx
import pytest

from .conftest import Served
from .standins.messages_api import MessagesAPI

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(claude, tmp_path_factory):
    root = tmp_path_factory.mktemp("claude")
    with MessagesAPI() as api:
        served = Served(root / "c.duckdb", extra_args=("--no-demo",))
        try:
            yield served, api, root
        finally:
            served.stop()


def define(c: httpx.Client, api: MessagesAPI, root, name: str, prompt: str | None,
           **config) -> dict:
    home = root / f"home-{name}"
    project = root / f"project-{name}"
    home.mkdir(exist_ok=True)
    project.mkdir(exist_ok=True)
    spec = {"name": name, "backend": "claude-code", "cwd": str(project), "project": name,
            "env": {"ANTHROPIC_BASE_URL": api.url, "ANTHROPIC_API_KEY": "sk-test",
                    "HOME": str(home), "DISABLE_AUTOUPDATER": "1"},
            "config": config}
    if prompt:
        spec["prompt"] = prompt
    r = c.post("/api/agents", json=spec)
    assert r.status_code == 201, r.text
    return r.json()["agent"]


def until(fn, timeout: float = 30, what: str = ""):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value is not None and value is not False and (
                not hasattr(value, "__len__") or len(value)):
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def detail(c: httpx.Client, agent_id: str) -> dict:
    return c.get(f"/api/agents/{agent_id}").json()


def test_permission_requests_are_approvals(setup):
    served, api, root = setup
    with httpx.Client(base_url=served.url, timeout=30) as c:
        for decision, name in (("deny", "denied"), ("allow", "allowed")):
            target = root / f"project-{name}" / "made.txt"
            agent = define(c, api, root, name, f"RUN: echo hi > {target}")
            c.post(f"/api/agents/{agent['id']}/start")
            pending = until(lambda a=agent: [p for p in c.get("/api/approvals").json()[
                "approvals"] if p["agent_id"] == a["id"]], what="the approval")
            assert pending[0]["tool"] == "Bash" and "made.txt" in pending[0]["input"]["command"]
            assert detail(c, agent["id"])["agent"]["state"] == "waiting-for-approval"
            r = c.post(f"/api/approvals/{pending[0]['id']}",
                       json={"decision": decision, "message": "not in this test"})
            assert r.status_code == 200, r.text
            decided = time.monotonic()
            done = until(lambda a=agent: [e for e in detail(c, a["id"])["events"]
                                          if e["kind"] == "result"], what="the result")
            assert time.monotonic() - decided < 10
            assert target.exists() is (decision == "allow")
            events = detail(c, agent["id"])["events"]
            kinds = [e["kind"] for e in events]
            assert {"init", "prompt", "tool_use", "tool_result", "result"} <= set(kinds)
            if decision == "deny":
                assert "not in this test" in done[0]["text"]
            state = until(lambda a=agent: detail(c, a["id"])["agent"]["state"] == "idle",
                          what="idle after the turn")
            assert state
            session = detail(c, agent["id"])["agent"]["session_id"]
            assert session
            c.post(f"/api/agents/{agent['id']}/stop")
            until(lambda a=agent: detail(c, a["id"])["agent"]["state"] in ("stopped",
                                                                          "completed"),
                  what="the stop")

        # The CLI's own telemetry (OTel logs and metrics, injected by the workbench) arrived,
        # under the agent's name.
        from workbench.client import RemoteStore

        with RemoteStore(served.url) as remote:
            until(lambda: remote.query("telemetry_counts", service="claude-code")[
                "logs"].item() > 0, timeout=20, what="the CLI's telemetry")
            totals = until(lambda: (lambda df: df if {"allowed", "denied"} <= set(
                df["agent"]) else None)(remote.query("agent_totals")), timeout=20,
                what="sessions under the agents' names")
            assert totals is not None


def test_interrupt_and_resume(setup):
    served, api, root = setup
    with httpx.Client(base_url=served.url, timeout=30) as c:
        agent = define(c, api, root, "slow", "SLOW please")
        c.post(f"/api/agents/{agent['id']}/start")
        until(lambda: [e for e in detail(c, agent["id"])["events"] if e["kind"] == "init"],
              what="the session")
        time.sleep(1.0)  # mid-turn: the stand-in streams for ~30 s
        r = c.post(f"/api/agents/{agent['id']}/interrupt")
        assert r.status_code == 200, r.text
        interrupted = time.monotonic()
        result = until(lambda: [e for e in detail(c, agent["id"])["events"]
                                if e["kind"] == "result"], what="the interrupted result")
        assert time.monotonic() - interrupted < 10
        assert result[0]["data"]["subtype"] != "success" or "interrupt" in result[0][
            "text"].lower() or result[0]["data"]["is_error"]
        session = detail(c, agent["id"])["agent"]["session_id"]
        c.post(f"/api/agents/{agent['id']}/stop")
        until(lambda: detail(c, agent["id"])["agent"]["state"] in ("stopped", "completed"),
              what="the stop")

        # A new agent resumes that session by id: the CLI sends the old turns again.
        resumed = define(c, api, root, "slow", "hello again", resume=session)
        seen = len(api.requests)
        c.post(f"/api/agents/{resumed['id']}/start")
        until(lambda: [e for e in detail(c, resumed["id"])["events"] if e["kind"] == "result"],
              what="the resumed turn")
        assert detail(c, resumed["id"])["agent"]["session_id"] == session
        bodies = [r["body"] for r in api.requests[seen:] if r["path"].startswith("/v1/messages")]
        assert any("SLOW please" in str(b.get("messages")) for b in bodies)
        c.post(f"/api/agents/{resumed['id']}/stop")


def test_sessions_not_started_here_ask_through_http_hooks(claude, tmp_path):
    """A Claude Code session started by someone else, with the README's hook settings,
    files its permission requests in the same inbox; the answer decides the tool call."""
    import json
    import os
    import subprocess
    import threading

    tokens = {"tok-op": "operator", "tok-hook": "ingest"}
    served = Served(tmp_path / "hooks.duckdb", extra_args=("--no-demo",),
                    env={"OBSERVATORY_TOKENS": ",".join(f"{t}:{r}" for t, r in tokens.items())})
    home, project = tmp_path / "home", tmp_path / "project"
    (home / ".claude").mkdir(parents=True)
    project.mkdir()
    (home / ".claude" / "settings.json").write_text(json.dumps({"hooks": {"PreToolUse": [{
        "matcher": "Bash|Write|Edit", "hooks": [{
            "type": "http", "url": served.url + "/api/hooks/claude-code", "timeout": 120,
            "headers": {"Authorization": "Bearer $OBSERVATORY_TOKEN"},
            "allowedEnvVars": ["OBSERVATORY_TOKEN"]}]}]}}))
    try:
        with MessagesAPI() as api, httpx.Client(
                base_url=served.url, timeout=30,
                headers={"Authorization": "Bearer tok-op"}) as c:
            env = {**os.environ, "ANTHROPIC_BASE_URL": api.url, "ANTHROPIC_API_KEY": "x",
                   "HOME": str(home), "OBSERVATORY_TOKEN": "tok-hook"}

            def run(command: str) -> threading.Thread:
                t = threading.Thread(target=subprocess.run, args=(
                    [claude, "-p", f"RUN: {command}", "--output-format", "json"],),
                    kwargs={"env": env, "cwd": project, "capture_output": True,
                            "timeout": 120})
                t.start()
                return t

            for decision, name in (("deny", "no.txt"), ("allow", "yes.txt")):
                session = run(f"echo hi > {name}")
                pending = until(lambda: c.get("/api/approvals").json()["approvals"],
                                what="the hook's request")
                assert pending[0]["agent_id"].startswith("ext-")
                assert pending[0]["tool"] == "Bash" and name in pending[0]["text"]
                r = c.post(f"/api/approvals/{pending[0]['id']}", json={"decision": decision})
                assert r.status_code == 200, r.text
                session.join(60)
                assert (project / name).exists() is (decision == "allow")

            # The default policy answers at once, without a person.
            session = run("rm -rf build")
            session.join(60)
            assert c.get("/api/approvals").json()["approvals"] == []
            denied = c.get("/api/approvals", params={"state": "denied"}).json()["approvals"]
            assert any(a["decided_by"].startswith("policy") and "rm -rf" in json.dumps(
                a["input"]) for a in denied)
            agents = c.get("/api/agents").json()["agents"]
            external = [a for a in agents if a["backend"] == "external"]
            assert len(external) == 3 and external[0]["name"].endswith("project")
            r = c.post(f"/api/agents/{external[0]['id']}/stop")
            assert r.status_code == 400 and "cannot be steered" in r.json()["error"]
    finally:
        served.stop()


def test_policy_rules_time_outs_live_config_and_cost_limit(setup):
    """A rule answers before a person has to; an unanswered request takes the policy's
    time-out action; a model change reaches the running session; the cost limit stops it."""
    served, api, root = setup
    with httpx.Client(base_url=served.url, timeout=30) as c:
        target = root / "project-ruled" / "ruled.txt"
        ruled = define(c, api, root, "ruled", f"RUN: echo ok > {target}")
        r = c.put(f"/api/agents/{ruled['id']}/config", json={})
        assert r.status_code == 200
        spec_policy = {"rules": [{"tool": "Bash", "input": r"^echo ok ", "action": "allow"}]}
        r = c.put(f"/api/agents/{ruled['id']}/policy", json=spec_policy)
        assert r.status_code == 200, r.text
        c.post(f"/api/agents/{ruled['id']}/start")
        until(lambda: target.exists(), what="the rule's allow")
        decided = c.get("/api/approvals", params={"state": "allowed"}).json()["approvals"]
        assert any(a["agent_id"] == ruled["id"] and a["decided_by"].startswith("policy")
                   for a in decided)

        # Nobody answers: the time-out denies.
        late = root / "project-late" / "late.txt"
        slow = define(c, api, root, "late", f"RUN: echo late > {late}")
        c.put(f"/api/agents/{slow['id']}/policy", json={"timeout_s": 1,
                                                        "timeout_action": "deny"})
        c.post(f"/api/agents/{slow['id']}/start")
        until(lambda: [e for e in detail(c, slow["id"])["events"] if e["kind"] == "result"],
              what="the timed-out turn")
        assert not late.exists()
        expired = c.get("/api/approvals", params={"state": "denied"}).json()["approvals"]
        assert any(a["agent_id"] == slow["id"] and a["decided_by"] == "policy: time-out"
                   for a in expired)

        # A model change applies to the running session (the next request names it).
        until(lambda: detail(c, slow["id"])["agent"]["state"] == "idle", what="idle")
        r = c.put(f"/api/agents/{slow['id']}/config", json={"model": "claude-test-model"})
        assert r.status_code == 200 and r.json()["applied_live"] is True, r.text
        seen = len(api.requests)
        c.post(f"/api/agents/{slow['id']}/message", json={"text": "again"})
        until(lambda: any(q["body"].get("model") == "claude-test-model"
                          for q in api.requests[seen:]), what="the new model")
        c.post(f"/api/agents/{slow['id']}/stop")

        # The cost limit: any cost at all is over a limit of zero.
        costly = define(c, api, root, "costly", "hello")
        c.put(f"/api/agents/{costly['id']}/limits", json={"max_cost_usd": 0})
        c.post(f"/api/agents/{costly['id']}/start")
        stopped = until(lambda: (lambda a: a if a["state"] in ("stopped", "error") else None)(
            detail(c, costly["id"])["agent"]), what="the cost stop")
        assert stopped["state"] == "stopped" and stopped["last_error"].startswith(
            "cost limit:"), stopped
        audit = c.get("/api/audit").json()["audit"]
        assert any(a["action"] == "policy" and a["target"] == slow["id"] for a in audit)


def test_a_paused_agent_gets_its_answer_when_resumed(setup):
    """Pause is a safe point for a coding agent: an answer given while it is paused waits
    for the resume."""
    served, api, root = setup
    with httpx.Client(base_url=served.url, timeout=30) as c:
        target = root / "project-held" / "held.txt"
        agent = define(c, api, root, "held", f"RUN: echo held > {target}")
        c.post(f"/api/agents/{agent['id']}/start")
        pending = until(lambda: [p for p in c.get("/api/approvals").json()["approvals"]
                                 if p["agent_id"] == agent["id"]], what="the request")
        assert c.post(f"/api/agents/{agent['id']}/pause").json()["agent"]["state"] == "paused"
        r = c.post(f"/api/approvals/{pending[0]['id']}", json={"decision": "allow"})
        assert r.status_code == 200 and r.json()["approval"]["held"] is True
        time.sleep(1.5)
        assert not target.exists()
        assert detail(c, agent["id"])["agent"]["state"] == "paused"
        c.post(f"/api/agents/{agent['id']}/resume")
        until(lambda: target.exists(), what="the tool call after the resume")
        c.post(f"/api/agents/{agent['id']}/stop")
