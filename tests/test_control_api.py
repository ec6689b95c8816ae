"""The control plane through a real server: process agents started, paused, resumed,
stopped, killed from outside and stopped by their memory limit; the role matrix of every
control route; the websocket's pushed updates; adoption after a restart."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest
import websockets

from .conftest import ROLE_ENV, TOKENS, Served, role_client

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow

TICKER = [sys.executable, "-c",
          "import time\nfor i in range(10**6):\n print('tick', i, flush=True); time.sleep(0.1)"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    env = ROLE_ENV
    s = Served(tmp_path_factory.mktemp("control") / "c.duckdb", env=env,
               extra_args=("--no-demo",))
    yield s
    s.stop()


def client(served, role: str = "operator") -> httpx.Client:
    return role_client(served, role)


def wait_state(c: httpx.Client, agent_id: str, states: set[str], timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        agent = c.get(f"/api/agents/{agent_id}").json()["agent"]
        if agent["state"] in states:
            return agent
        if time.monotonic() > deadline:
            raise AssertionError(f"agent stayed {agent['state']}, not {states}: {agent}")
        time.sleep(0.05)


def define(c: httpx.Client, **spec) -> dict:
    r = c.post("/api/agents", json={"backend": "process", "command": TICKER, **spec})
    assert r.status_code == 201, r.text
    return r.json()["agent"]


def test_process_agent_lifecycle(served):
    with client(served) as c:
        agent = define(c, name="ticker")
        assert agent["state"] == "idle" and agent["pid"] is None
        started = time.monotonic()
        assert c.post(f"/api/agents/{agent['id']}/start").status_code == 200
        # (a bound that tells "at once" from "after the watchdog's next pass" on a loaded
        # machine; how fast it is, benchmarks/control_agents.py prints)
        running = wait_state(c, agent["id"], {"running"}, timeout=10)
        assert time.monotonic() - started < 10
        pid = running["pid"]
        group = [psutil.Process(pid)]

        assert c.post(f"/api/agents/{agent['id']}/pause").json()["agent"]["state"] == "paused"
        time.sleep(0.2)
        assert all(p.status() == psutil.STATUS_STOPPED for p in group)
        assert c.post(f"/api/agents/{agent['id']}/resume").json()["agent"]["state"] == "running"
        time.sleep(0.2)
        assert group[0].status() != psutil.STATUS_STOPPED

        c.post(f"/api/agents/{agent['id']}/stop")
        stopped = wait_state(c, agent["id"], {"stopped"})
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
        assert stopped["pid"] is None

        detail = c.get(f"/api/agents/{agent['id']}").json()
        kinds = [e["kind"] for e in detail["events"]]
        assert "log" in kinds and "started" in kinds
        transitions = [e["data"]["to"] for e in detail["events"] if e["kind"] == "state"]
        assert transitions == ["starting", "running", "paused", "running", "stopping",
                               "stopped"]
        assert any(e["text"].startswith("tick") for e in detail["events"])


def test_killed_from_outside_is_an_error_with_its_status(served):
    with client(served) as c:
        agent = define(c, name="victim")
        c.post(f"/api/agents/{agent['id']}/start")
        pid = wait_state(c, agent["id"], {"running"})["pid"]
        while not any(e["kind"] == "log" for e in
                      c.get(f"/api/agents/{agent['id']}").json()["events"]):
            time.sleep(0.05)
        os.killpg(pid, signal.SIGKILL)
        failed = wait_state(c, agent["id"], {"error"})
        assert "killed by signal 9" in failed["last_error"]
        assert "tick" in failed["last_error"]  # its last output


def test_memory_limit_stops_the_agent_with_the_reason(served):
    hog = [sys.executable, "-c", "import time\nx = []\nwhile True:\n"
           " x.append(bytearray(8 * 2**20)); time.sleep(0.05)"]
    with client(served) as c:
        agent = define(c, name="hog", command=hog, limits={"memory_mb": 80})
        c.post(f"/api/agents/{agent['id']}/start")
        stopped = wait_state(c, agent["id"], {"stopped", "error"}, timeout=20)
        assert stopped["state"] == "stopped"
        assert stopped["last_error"].startswith("memory limit:"), stopped


def test_crash_restarts_with_backoff(served):
    with client(served) as c:
        agent = define(c, name="crasher", command=[sys.executable, "-c", "raise SystemExit(3)"],
                       restart={"policy": "on-failure", "max_restarts": 2, "backoff_s": 0.1})
        c.post(f"/api/agents/{agent['id']}/start")
        deadline = time.monotonic() + 15
        while True:
            detail = c.get(f"/api/agents/{agent['id']}").json()
            restarts = [e["text"] for e in detail["events"] if e["kind"] == "restart"]
            if restarts and restarts[-1].startswith("not restarted"):
                break
            assert time.monotonic() < deadline, restarts
            time.sleep(0.1)
        assert restarts == ["restart 1 in 0.1 s", "restart 2 in 0.2 s",
                            "not restarted: 2 restarts already"]
        assert detail["agent"]["state"] == "error" and detail["agent"]["restarts"] == 2
        assert "exit status 3" in detail["agent"]["last_error"]
        starts = [e for e in detail["events"] if e["kind"] == "started"]
        assert len(starts) == 3


def test_bad_definitions_and_config_get_400_naming_the_field(served):
    with client(served, "admin") as c:  # (admin: one case holds a policy)
        cases = [
            ({"backend": "nope", "name": "x"}, "backend"),
            ({"backend": "process", "name": "x"}, "command"),
            ({"backend": "process", "name": "x", "command": "true",
              "limits": {"memory_mb": -5}}, "limits.memory_mb"),
            ({"backend": "process", "name": "x", "command": "true",
              "policy": {"rules": [{"input": "("}]}}, "policy.rules[0]"),
            ({"backend": "claude-code", "name": "x",
              "config": {"permission_mode": "yolo"}}, "config.permission_mode"),
        ]
        for spec, field in cases:
            r = c.post("/api/agents", json=spec)
            assert r.status_code == 400 and field in r.json()["error"], (spec, r.text)
        assert c.post("/api/agents", content=b"{not json").status_code == 400
        agent = define(c, name="configurable")
        r = c.put(f"/api/agents/{agent['id']}/config", json={"shell": "maybe"})
        assert r.status_code == 400 and r.json()["error"].startswith("config.shell")
        r = c.put(f"/api/agents/{agent['id']}/config", json={"shell": True})
        assert r.status_code == 200 and r.json()["config"]["shell"] is True
        assert c.get(f"/api/agents/{agent['id']}/config").json()["config"]["shell"] is True
        assert c.post("/api/agents/ag-missing/start").status_code == 404
        assert c.post(f"/api/agents/{agent['id']}/resume").status_code == 400


ROUTES = [
    ("GET", "/api/agents", None, "viewer"),
    ("POST", "/api/agents", {"backend": "process", "name": "m", "command": "true"}, "operator"),
    ("GET", "/api/agents/{id}", None, "viewer"),
    ("GET", "/api/agents/{id}/config", None, "viewer"),
    ("PUT", "/api/agents/{id}/config", {"shell": False}, "operator"),
    ("PUT", "/api/agents/{id}/limits", {"memory_mb": 500}, "operator"),
    ("PUT", "/api/agents/{id}/policy", {"rules": [{"tool": "Bash", "action": "deny"}]},
     "admin"),
    ("POST", "/api/agents/{id}/start", None, "operator"),
    ("POST", "/api/agents/{id}/pause", None, "operator"),
    ("POST", "/api/agents/{id}/resume", None, "operator"),
    ("POST", "/api/agents/{id}/interrupt", None, "operator"),
    ("POST", "/api/agents/{id}/message", {"text": "hello"}, "operator"),
    ("POST", "/api/agents/{id}/restart", None, "operator"),
    ("POST", "/api/agents/{id}/stop", None, "operator"),
    ("GET", "/api/approvals", None, "viewer"),
    ("POST", "/api/approvals/ap-none", {"decision": "allow"}, "operator"),
    ("GET", "/api/audit", None, "admin"),
]
RANK = ["viewer", "operator", "admin"]


def test_role_matrix(served):
    with client(served, "admin") as admin:
        agent = define(admin, name="matrix")
        for role in RANK:
            with client(served, role) as c:
                for method, path, body, need in ROUTES:
                    url = path.format(id=agent["id"])
                    r = c.request(method, url, json=body)
                    if RANK.index(role) < RANK.index(need):
                        assert r.status_code == 403, (role, method, url, r.text)
                        assert need in r.json()["error"]
                    else:  # allowed: whatever the action's own outcome, never a refusal
                        assert r.status_code not in (401, 403), (role, method, url, r.text)
                        assert r.status_code < 500, (role, method, url, r.text)
        admin.post(f"/api/agents/{agent['id']}/stop")
        audit = admin.get("/api/audit", params={"limit": 1000}).json()["audit"]
        refused = [a for a in audit if a["outcome"].startswith("refused")]
        agent_action = ("POST /api/agents/{agent_id}/"
                        "{action:start|stop|pause|resume|restart|interrupt}")
        policy, audit_route = "PUT /api/agents/{agent_id}/{part:policy}", "GET /api/audit"
        assert {a["action"] for a in refused} >= {
            agent_action, "POST /api/approvals/{approval_id}", "POST /api/agents",
            audit_route, policy, "PUT /api/agents/{agent_id}/{part:limits}"}
        assert all(a["role"] == "viewer" or a["action"] in (audit_route, policy, "audit")
                   for a in refused), [(a["role"], a["action"]) for a in refused]
        # (what the workbench did by itself — an alert resolved because its agent's run
        # ended — has no client)
        assert all(a["client"] == "127.0.0.1" for a in audit if a["who"] != "workbench")
        # The audit log cannot be read around the role check, nor changed at all.
        with client(served, "operator") as op:
            assert op.get("/api/query/audit_log").status_code == 403
            assert op.delete("/api/audit").status_code in (403, 405)


def test_websocket_pushes_updates_and_checks_roles(served):
    async def scenario() -> None:
        ws_url = served.url.replace("http", "ws") + "/ws/agents"
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(ws_url):
                pass
        with client(served) as c:
            agent = define(c, name="watched")
        headers = {"Authorization": f"Bearer {TOKENS['viewer']}"}
        async with websockets.connect(ws_url, additional_headers=headers) as ws:
            snapshot = json.loads(await ws.recv())
            assert snapshot["type"] == "snapshot"
            assert agent["id"] in [a["id"] for a in snapshot["agents"]]
            await ws.send(json.dumps({"action": "start", "agent_id": agent["id"]}))
            seen: list[str] = []
            refused = False
            while not refused:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if msg["type"] == "result":
                    assert not msg["ok"] and "operator" in msg["error"]
                    refused = True
            with client(served) as c:
                started = time.monotonic()
                c.post(f"/api/agents/{agent['id']}/start")
                while "running" not in seen:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    if msg["type"] == "agent_update" and msg["agent"]["id"] == agent["id"]:
                        seen.append(msg["agent"]["state"])
                assert time.monotonic() - started < 10  # pushed, not polled for
                c.post(f"/api/agents/{agent['id']}/stop")

    asyncio.run(scenario())


def test_agents_are_adopted_or_marked_lost_after_a_restart(tmp_path):
    db = tmp_path / "adopt.duckdb"
    first = Served(db, extra_args=("--no-demo",))
    try:
        with httpx.Client(base_url=first.url, timeout=20) as c:
            keep = define(c, name="survivor")
            gone = define(c, name="casualty")
            c.post(f"/api/agents/{keep['id']}/start")
            c.post(f"/api/agents/{gone['id']}/start")
            keep_pid = wait_state(c, keep["id"], {"running"})["pid"]
            gone_pid = wait_state(c, gone["id"], {"running"})["pid"]
    finally:
        first.proc.kill()  # the workbench dies; its agents' process groups live on
        first.proc.wait()
        first._log_file.close()
    os.killpg(gone_pid, signal.SIGKILL)
    time.sleep(0.3)
    second = Served(db, extra_args=("--no-demo",))
    try:
        with httpx.Client(base_url=second.url, timeout=20) as c:
            agents = {a["name"]: a for a in c.get("/api/agents").json()["agents"]}
            assert agents["survivor"]["state"] == "running"
            assert agents["survivor"]["pid"] == keep_pid
            assert agents["casualty"]["state"] == "lost"
            c.post(f"/api/agents/{keep['id']}/stop")
            wait_state(c, keep["id"], {"stopped", "completed"})
            assert not psutil.pid_exists(keep_pid) or \
                psutil.Process(keep_pid).status() == "zombie"
    finally:
        second.stop()


def observatory(*args: str, token: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True,
                          text=True, timeout=60,
                          env={**os.environ, "OBSERVATORY_TOKEN": token})


def test_cli_drives_agents(served):
    add = observatory("agents", "add", "from-cli", "--command", shlex.join(TICKER),
                      "--start", "--json", "--url", served.url, token=TOKENS["operator"])
    assert add.returncode == 0, add.stderr
    agent = json.loads(add.stdout)
    assert agent["state"] in ("starting", "running") and agent["pid"]
    listed = observatory("agents", "list", "--url", served.url, token=TOKENS["viewer"])
    assert listed.returncode == 0 and agent["id"] in listed.stdout
    refused = observatory("agents", "stop", agent["id"], "--url", served.url,
                          token=TOKENS["viewer"])
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"observatory agents stop: 403: POST /api/agents/{agent['id']}/stop needs the "
        f"operator role; {refused.stderr.split('; ')[1].strip()}")
    assert "viewer" in refused.stderr
    # by its name as well as its id
    paused = observatory("agents", "pause", "from-cli", "--json", "--url", served.url,
                         token=TOKENS["operator"])
    assert json.loads(paused.stdout)["state"] == "paused"
    twin = observatory("agents", "add", "from-cli", "--command", "true", "--json", "--url",
                       served.url, token=TOKENS["operator"])
    ambiguous = observatory("agents", "resume", "from-cli", "--url", served.url,
                            token=TOKENS["operator"])
    assert ambiguous.returncode == 1, ambiguous.stderr
    assert "409: 2 agents are called 'from-cli': give one of their ids (" in ambiguous.stderr
    assert agent["id"] in ambiguous.stderr and json.loads(twin.stdout)["id"] in ambiguous.stderr
    stop = observatory("agents", "stop", agent["id"], "--url", served.url,
                       token=TOKENS["operator"])
    # (the answer is the state right after the signal: a paused ticker woken with SIGCONT to
    # see SIGTERM may already have ended)
    assert stop.returncode == 0 and re.search(r"\bstopp(ing|ed)\b", stop.stdout), stop.stdout


BAD_BODIES = [b"", b"{", b"[]", b"null", b'"x"', b"12", b'{"name": 5}', b"\xff\xfe",
              b'{"backend": "process", "name": "x", "command": [1, 2]}',
              b'{"backend": "process", "name": "x", "command": "true", "env": {"A": 1}}',
              b'{"backend": "process", "name": "x", "command": "true", "limits": "big"}',
              b'{"backend": "process", "name": "x", "command": "true", "labels": "a"}',
              b'{"backend": "devkit", "name": "x", "config": {"url": 3}}',
              b'{"backend": "process", "name": "' + b"n" * 500 + b'", "command": "true"}']


def test_nothing_a_client_sends_to_the_control_routes_is_a_500(served):
    """Every malformed body on every control route is refused with a one-line reason; the
    server keeps serving and stores nothing for it."""
    with client(served, "admin") as c:
        agent = define(c, name="target")
        before = len(c.get("/api/agents").json()["agents"])
        routes = [("POST", "/api/agents"), ("PUT", f"/api/agents/{agent['id']}/config"),
                  ("PUT", f"/api/agents/{agent['id']}/policy"),
                  ("PUT", f"/api/agents/{agent['id']}/limits"),
                  ("POST", f"/api/agents/{agent['id']}/message"),
                  ("POST", "/api/approvals/ap-x"), ("POST", "/api/hooks/claude-code")]
        for method, path in routes:
            for body in BAD_BODIES:
                r = c.request(method, path, content=body,
                              headers={"Content-Type": "application/json"})
                assert 400 <= r.status_code < 500, (method, path, body[:40], r.status_code,
                                                    r.text)
                error = r.json()["error"]
                assert error and "\n" not in error, (path, body[:40], error)
        for params in ({"limit": "-1"}, {"limit": "1e30"}, {"limit": "x"},
                       {"state": "nonsense"}):
            assert c.get("/api/approvals", params=params).status_code < 500
            assert c.get("/api/audit", params=params).status_code < 500
        assert c.get("/api/agents").json()["agents"].__len__() == before
        assert c.get("/api/health").status_code == 200
