"""Issue 20's findings, each reproduced against a real server on loopback: client values
that became git options, secrets that reached children, a viewer's delete, an operator's
allow-all policy, lone surrogates, leftovers after a restart, unbounded hook requests,
500s, a webhook aimed at the workbench itself, and pages served without their login.

(The delete rule, the MCP approval's digest, the HTML sinks, the store's survival and the
report parsers' types have tests of their own: test_delete_rule, test_mcp_approval,
test_html_sinks, test_store_survivor and test_ingest_types / test_fuzz.)"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import psutil
import pytest

from .conftest import ROOT, TOKENS, Served, fill, free_port, role_client, wait_for, write_tree
from .test_coverage_ingest import observatory, run

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow

SECRETS_ENV = {
    "OBSERVATORY_TOKENS": ",".join(f"{t}:{r}" for r, t in TOKENS.items()),
    "OBSERVATORY_COOKIE_SECRET": "cookie-sekrit-0123456789",
    "SERVER_ONLY_NOTE": "not for children", "PASSED_ON": "for children",
    "OBSERVATORY_CHILD_ENV": "PASSED_ON",
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A git project with two commits and a slow test, scanned into a fresh database."""
    root = tmp_path_factory.mktemp("trust")
    repo = write_tree(root / "proj", {
        "proj/__init__.py": "def f(x):\n    return x\n",
        "tests/__init__.py": "",
        "tests/test_f.py": "from proj import f\n\n\ndef test_f():\n    assert f(1) == 1\n",
        # The project's own check of the environment its test run gets.
        "tests/test_env.py": "import os\n\n\ndef test_no_secrets():\n"
                             "    assert 'OBSERVATORY_TOKENS' not in os.environ\n"
                             "    assert 'OBSERVATORY_COOKIE_SECRET' not in os.environ\n"
                             "    assert 'SERVER_ONLY_NOTE' not in os.environ\n"
                             "    assert os.environ.get('PASSED_ON') == 'for children'\n",
        "tests/test_slow.py": "import os\nimport time\n\n\ndef test_sleeps():\n"
                              "    if os.path.exists('SLOW'):\n        time.sleep(300)\n",
        "pyproject.toml": '[project]\nname = "proj"\nversion = "0"\n',
        ".gitignore": ".observatory-test-run.log\nSLOW\n"})
    run(repo, "git", "init", "-q", "-b", "main")
    for i in range(2):
        (repo / "proj" / "__init__.py").write_text(f"def f(x):\n    return x  # {i}\n")
        run(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
        run(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", f"c{i}")
    db = root / "t.duckdb"
    assert observatory("projects", "scan", str(root), "--db", str(db)).returncode == 0
    return {"root": root, "repo": repo, "db": db}


@pytest.fixture(scope="module")
def open_server(project):
    """No authentication configured: loopback clients are admins (the default)."""
    s = Served(project["db"], extra_args=("--no-demo",))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def token_server(tmp_path_factory, project):
    s = Served(tmp_path_factory.mktemp("tok") / "t.duckdb", env=SECRETS_ENV,
               extra_args=("--no-demo",))
    with role_client(s, "operator") as c:
        assert c.post("/api/projects/scan", json={"roots": [str(project["root"])]}
                      ).status_code == 200
    yield s
    s.stop()


# -- 1. git option injection ---------------------------------------------------------------
def test_no_revision_becomes_a_git_option(open_server, project, tmp_path):
    victim = tmp_path / "created-by-git"
    inject = f"--output={victim}"
    with httpx.Client(base_url=open_server.url, timeout=60) as c:
        r = c.get("/api/coverage/patch", params={"project": "proj", "base": inject})
        assert r.status_code == 400 and "not a git revision" in r.json()["error"], r.text
        r = c.get("/api/coverage/patch", params={"project": "proj", "base": "HEAD~1",
                                                 "head": inject})
        assert r.status_code == 400
        r = c.post("/api/select", json={"project": "proj", "base": inject})
        assert r.status_code == 400, r.text
        r = c.post("/api/test-runs", json={"project": "proj", "select": {"base": inject}})
        assert r.status_code == 400, r.text
        # The workbench's own database, the first target worth emptying.
        r = c.get("/api/coverage/patch", params={"project": "proj",
                                                 "base": f"--output={project['db']}"})
        assert r.status_code == 400
        ok = c.post("/api/select", json={"project": "proj", "base": "HEAD~1", "head": "HEAD"})
        assert ok.status_code == 200 and ok.json()["changed_files"] == ["proj/__init__.py"]
        assert c.get("/api/health").status_code == 200

        from mcp import Client
        from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

        async def ask():
            async with create_mcp_http_client() as http, Client(streamable_http_client(
                    f"{open_server.url}/mcp", http_client=http)) as client:
                return await client.call_tool("select_tests", {"project": "proj",
                                                               "base": inject})

        result = asyncio.run(ask())
        assert result.is_error
    assert not victim.exists()
    assert project["db"].stat().st_size > 0


def test_the_stdio_mcp_tool_refuses_an_option_too(project, tmp_path):
    victim = tmp_path / "created-over-stdio"
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters, stdio_client

    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(project["db"].read_bytes())

    async def ask():
        params = StdioServerParameters(command=sys.executable, args=[
            "-m", "workbench", "mcp", "--db", str(copy)], cwd=str(ROOT))
        async with Client(stdio_client(params)) as client:
            return await client.call_tool("select_tests", {"project": "proj",
                                                           "base": f"--output={victim}"})

    assert asyncio.run(ask()).is_error
    assert not victim.exists()


@pytest.mark.browser
def test_a_cross_site_page_cannot_reach_the_api(open_server, project, tmp_path, chromium):
    """An ``<img>`` on any page the user visits sent the GET as a loopback admin."""
    from playwright.sync_api import sync_playwright

    victim = tmp_path / "from-a-web-page"
    page_html = (f'<img src="{open_server.url}/api/coverage/patch?project=proj&'
                 f'base=--output={victim}"><img src="{open_server.url}/api/agents">')
    (tmp_path / "index.html").write_text(page_html)
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=str(tmp_path), **kw)
    site = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium,
                                        args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{site.server_address[1]}/index.html")
            page.wait_for_timeout(1500)
            browser.close()
    finally:
        site.shutdown()
        site.server_close()
    assert not victim.exists()
    with httpx.Client(base_url=open_server.url, timeout=30) as c:
        audit = c.get("/api/audit", params={"limit": 500}).json()["audit"]
    refused = [a for a in audit if "cross-site request refused" in a["outcome"]]
    assert {a["action"] for a in refused} >= {"GET /api/coverage/{question:patch}",
                                              "GET /api/agents"}


# -- 3. secrets ---------------------------------------------------------------------------
def test_no_secret_reaches_an_agent(token_server):
    with role_client(token_server, "operator") as op:
        agent = op.post("/api/agents", json={"name": "env", "backend": "process",
                                             "command": ["env"]}).json()["agent"]
        op.post(f"/api/agents/{agent['id']}/start")
        wait_for(lambda: op.get(f"/api/agents/{agent['id']}").json()["agent"]["state"]
                 == "completed", 30, "env to run")
        with role_client(token_server, "viewer") as viewer:
            shown = json.dumps(viewer.get(f"/api/agents/{agent['id']}").json())
        for secret in [*TOKENS.values(), SECRETS_ENV["OBSERVATORY_COOKIE_SECRET"],
                       "PANEL_BASIC_AUTH", "PANEL_COOKIE_SECRET", "not for children"]:
            assert secret not in shown, secret
        assert "PATH=" in shown and "PASSED_ON=for children" in shown
        # A definition may not ask for the workbench's secrets by name either.
        r = op.post("/api/agents", json={"name": "thief", "backend": "process",
                                         "command": "env",
                                         "env": {"OBSERVATORY_TOKENS": "x"}})
        assert r.status_code == 400 and "env.OBSERVATORY_TOKENS" in r.json()["error"]
        # The devkit backend sends the variable token_env names to a URL an operator
        # chooses: only variables meant for that.
        r = op.post("/api/agents", json={"name": "d", "backend": "devkit", "config": {
            "url": "http://127.0.0.1:9", "agent_id": "a", "token_env": "OBSERVATORY_TOKENS"}})
        assert r.status_code == 400 and "OBSERVATORY_DEVKIT_TOKEN" in r.json()["error"]


def test_no_secret_reaches_a_test_run(token_server):
    with role_client(token_server, "operator") as op:
        started = op.post("/api/test-runs", json={
            "project": "proj", "tests": ["tests/test_env.py::test_no_secrets"]}).json()
        run_id = started["test_run"]["id"]
        done = wait_for(lambda: (r := op.get(f"/api/test-runs/{run_id}").json()["test_run"])[
            "state"] not in ("queued", "running") and r, 90, "the run")
    assert done["state"] == "passed", done
    assert done["results"] == 1


def test_no_secret_reaches_an_mcp_server(monkeypatch, tmp_path):
    from workbench.projects.mcp_client import _stdio

    monkeypatch.setenv("OBSERVATORY_TOKENS", "tok-admin:admin")
    monkeypatch.setenv("PANEL_COOKIE_SECRET", "c")
    params = _stdio({"command": "python3", "args": ["s.py"], "env": {"MODE": "x"}}, tmp_path)
    assert "OBSERVATORY_TOKENS" not in params.env and "PANEL_COOKIE_SECRET" not in params.env
    assert params.env["MODE"] == "x" and params.env["PATH"]


# -- 4, 6, 7: roles and what a request may hold -------------------------------------------
def test_deleting_a_run_needs_an_operator_and_is_audited(token_server, tmp_path):
    report = tmp_path / "r.xml"
    report.write_text('<testsuite name="s"><testcase name="t" classname="c"/></testsuite>')
    with role_client(token_server, "ingest") as ingest:
        run_id = ingest.post("/api/tests/reports", params={"project": "p"},
                             content=report.read_bytes()).json()["run_id"]
        assert ingest.get("/api/runs").status_code == 403  # ingest reads nothing
    with role_client(token_server, "viewer") as viewer:
        assert viewer.delete(f"/api/runs/{run_id}").status_code == 403
        assert viewer.post("/api/tests/reports", content=report.read_bytes()
                           ).status_code == 403  # a viewer writes nothing
    with role_client(token_server, "operator") as op:
        assert op.delete(f"/api/runs/{run_id}").status_code == 200
    with role_client(token_server, "admin") as admin:
        audit = admin.get("/api/audit", params={"limit": 500}).json()["audit"]
    mine = [(a["role"], a["outcome"].split(":")[0]) for a in audit
            if a["action"] == "DELETE /api/runs/{run_id}" and a["target"] == run_id]
    assert ("viewer", "refused") in mine and ("operator", "ok") in mine


def test_a_policy_at_definition_needs_an_admin(token_server):
    spec = {"name": "lenient", "backend": "process", "command": "true",
            "policy": {"rules": [{"tool": "*", "action": "allow"}]}}
    with role_client(token_server, "operator") as op:
        r = op.post("/api/agents", json=spec)
        assert r.status_code == 403 and "policy" in r.json()["error"]
        assert "lenient" not in json.dumps(op.get("/api/agents").json())
    with role_client(token_server, "admin") as admin:
        assert admin.post("/api/agents", json=spec).status_code == 201


def test_a_lone_surrogate_is_refused_before_anything_runs(open_server):
    with httpx.Client(base_url=open_server.url, timeout=30) as c:
        before = len(c.get("/api/agents").json()["agents"])
        tasks = len(c.get("/api/tasks").json()["tasks"])
        for body in (b'{"name": "x\\ud800", "backend": "process", "command": "true"}',
                     b'{"name": "ok", "backend": "process", "command": "true", '
                     b'"prompt": "\\udfff"}'):
            r = c.post("/api/agents", content=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 400 and "surrogate" in r.json()["error"], r.text
        r = c.post("/api/tasks", content=b'{"command": "true", "labels": ["\\ud800"]}')
        assert r.status_code == 400
        assert len(c.get("/api/agents").json()["agents"]) == before
        assert len(c.get("/api/tasks").json()["tasks"]) == tasks
        for body in ({"project": 2**130}, {"project": "a\ud800"}):
            raw = json.dumps(body).encode()
            r = c.post("/api/tests/live", content=raw)
            assert r.status_code == 400, r.text


# -- 10, 11: bounded and never a 500 ------------------------------------------------------
def test_hook_requests_are_bounded(open_server, token_server):
    hook = {"session_id": "s-big", "hook_event_name": "Notification"}
    with httpx.Client(base_url=open_server.url, timeout=60) as c:
        r = c.post("/api/hooks/claude-code", json={**hook, "cwd": "/" + "a" * (20 << 20)})
        assert r.status_code == 413, r.text[:200]
        r = c.post("/api/hooks/claude-code", json={**hook, "cwd": "/" + "a" * 5000})
        assert r.status_code == 400 and "cwd" in r.json()["error"]
        assert "s-big" not in c.get("/api/agents").text
    with role_client(token_server, "viewer") as viewer:  # a reader may not write
        assert viewer.post("/api/hooks/claude-code", json=hook).status_code == 403


def test_nothing_a_client_sends_is_a_500(open_server, token_server):
    from workbench.server.routes import BINARY, ROUTES

    deep = b"[" * 50_000 + b"]" * 50_000
    nested = json.dumps({"a": json.loads("[" * 40 + "]" * 40)}).encode()
    counted: dict[int, int] = {}
    with httpx.Client(base_url=open_server.url, timeout=60) as c:
        for route in ROUTES:
            if route.body is None or route.body is BINARY or route.method == "WS":
                continue
            path = route.template
            for name, choices in route.params():
                spelled = f"{{{name}:{'|'.join(choices)}}}" if choices else f"{{{name}}}"
                path = path.replace(spelled, choices[0] if choices else "x")
            for body in (deep, nested, b'{"x": 1e999}', b"\xff\xfe"):
                r = c.request(route.method, path, content=body)
                # 400, or 404 where the route looks its target up first (a live run's)
                assert r.status_code in (400, 404), (route.name, body[:20], r.text[:200])
                counted[r.status_code] = counted.get(r.status_code, 0) + 1
        assert counted[400] >= 20 * 4 and counted.get(404, 0) <= 2 * 4, counted
        for params in ({"since": 5}, {"limit": "many"}, {"project": {"a": 1}},
                       {"since": "yesterday"}):
            r = c.get("/api/query/runs", params={"params": json.dumps(params)})
            assert r.status_code == 400, (params, r.text)
        r = c.post("/api/agents", json={"name": "x", "backend": ["process"]})
        assert r.status_code == 400 and "backend" in r.json()["error"]
    # The role check comes before any of the query is read.
    with httpx.Client(base_url=token_server.url, timeout=30) as anonymous:
        r = anonymous.get("/api/query/runs", params={"params": '{"since": 5'})
        assert r.status_code == 401


# -- 14. a webhook aimed at the workbench itself -------------------------------------------
def test_a_webhook_cannot_drive_the_workbench(open_server):
    port = open_server.url.rsplit(":", 1)[1]
    with httpx.Client(base_url=open_server.url, timeout=30) as c:
        for url in (f"{open_server.url}/api/agents", f"http://localhost:{port}/api/tasks",
                    f"http://[::1]:{port}/api/agents"):
            r = c.post("/api/webhooks", json={"url": url, "secret": "s3cret-s3cret"})
            assert r.status_code == 400 and "this workbench itself" in r.json()["error"]
        # Whatever name reaches it, a delivery is refused by the API itself.
        r = c.post("/api/tasks", json={"command": "true"},
                   headers={"X-Observatory-Delivery": "dl-1"})
        assert r.status_code == 403 and "webhook" in r.json()["error"]


# -- 9. what a restart does to children ---------------------------------------------------
def test_a_restart_stops_a_test_run_and_keeps_a_running_task(project, tmp_path):
    db = tmp_path / "restart.duckdb"
    db.write_bytes(project["db"].read_bytes())
    (project["repo"] / "SLOW").write_text("")
    go = tmp_path / "go"
    server = Served(db, extra_args=("--no-demo",))
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            slow = c.post("/api/test-runs", json={
                "project": "proj", "tests": ["tests/test_slow.py::test_sleeps"]}).json()
            run_id = slow["test_run"]["id"]
            pid = wait_for(lambda: c.get(f"/api/test-runs/{run_id}").json()["test_run"][
                "pid"], 60, "the run to start")
            worker = c.post("/api/agents", json={"name": "worker", "backend": "process",
                                                 "labels": ["sh"]}).json()["agent"]
            c.post(f"/api/agents/{worker['id']}/start")
            task = c.post("/api/tasks", json={
                # (it ends when told, not after a sleep: a restart on a loaded machine
                # outlasted a 12 s sleep and the adopted task was already done)
                "command": ["sh", "-c", f"while [ ! -e {go} ]; do sleep 0.1; done; "
                            "echo finished"], "labels": ["sh"]}
            ).json()["task"]
            wait_for(lambda: c.get(f"/api/tasks/{task['id']}").json()["task"]["state"]
                     == "running", 30, "the task to start")
            hook = {"session_id": "s-pending", "hook_event_name": "PreToolUse",
                    "tool_name": "Bash", "tool_input": {"command": "make"}, "cwd": "/tmp"}
            def ask() -> None:
                try:
                    httpx.post(server.url + "/api/hooks/claude-code", json=hook, timeout=60)
                except httpx.HTTPError:
                    pass  # (the workbench stops while the request waits: what is tested)

            waiting = threading.Thread(target=ask, daemon=True)
            waiting.start()
            wait_for(lambda: c.get("/api/approvals").json()["approvals"], 30, "the approval")
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(30)
        server._log_file.close()
        assert psutil.pid_exists(pid)  # the run's pytest lives on, orphaned
        server = Served(db, extra_args=("--no-demo",))
        with httpx.Client(base_url=server.url, timeout=30) as c:
            after = c.get(f"/api/test-runs/{run_id}").json()["test_run"]
            assert after["state"] == "lost"
            assert f"pid {pid}" in after["message"] and "stopped" in after["message"] or \
                "killed" in after["message"], after["message"]
            wait_for(lambda: not psutil.pid_exists(pid) or
                     psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, 10, "pytest gone")
            task_id = task["id"]
            assert c.get(f"/api/tasks/{task_id}").json()["task"]["state"] == "running"
            go.write_text("")
            done = wait_for(lambda: (t := c.get(f"/api/tasks/{task_id}").json()["task"])[
                "state"] != "running" and t, 60, "the adopted task to end")
            assert done["state"] == "done", done
            approvals = c.get("/api/approvals", params={"state": "all"}).json()["approvals"]
            mine = [a for a in approvals if a["session_id"] == "s-pending"]
            assert mine and mine[0]["state"] == "expired"
            assert "restarted" in mine[0]["message"]
    finally:
        (project["repo"] / "SLOW").unlink(missing_ok=True)
        server.stop()


def test_an_external_agents_request_does_not_wait_forever(tmp_path):
    server = Served(tmp_path / "h.duckdb", env={"OBSERVATORY_HOOK_TIMEOUT_S": "2"},
                    extra_args=("--no-demo",))
    try:
        t0 = time.monotonic()
        r = httpx.post(server.url + "/api/hooks/claude-code", timeout=60, json={
            "session_id": "s-slow", "hook_event_name": "PreToolUse", "tool_name": "Bash",
            "tool_input": {"command": "make"}, "cwd": "/tmp"})
        waited = time.monotonic() - t0
        out = r.json()["hookSpecificOutput"]
        assert out["permissionDecision"] == "deny" and "no answer within 2" in \
            out["permissionDecisionReason"]
        assert 1.5 < waited < 10
    finally:
        server.stop()


# -- pages fail closed ----------------------------------------------------------------------
def test_plain_panel_serve_with_tokens_keeps_its_pages_closed(tmp_path):
    argv = [sys.executable, "-m", "panel", "serve", str(ROOT / "dashboards" / "tests.py"),
            "--plugins", "workbench.server.plugin", "--address", "127.0.0.1",
            "--port", "{port}", "--allow-websocket-origin", "127.0.0.1:{port}"]
    # (not Served: it waits for a page to answer 200, and none does here)
    port = free_port()
    env = {**os.environ, **SECRETS_ENV, "OBSERVATORY_DB": str(tmp_path / "p.duckdb"),
           "OBSERVATORY_NO_DEMO": "1"}
    proc = subprocess.Popen([a.replace("{port}", str(port)) for a in argv], env=env,
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        admin = {"Authorization": f"Bearer {TOKENS['admin']}"}
        wait_for(lambda: _status(url + "/api/health", admin) == 200, 90, "panel serve")
        page = httpx.get(url + "/tests", timeout=30)
        assert page.status_code == 403 and "requires a login" in page.text
        assert httpx.get(url + "/tests/ws", timeout=30).status_code == 403
        assert httpx.get(url + "/api/runs", timeout=30).status_code == 401
        assert httpx.get(url + "/api/runs", headers=admin, timeout=30).status_code == 200
    finally:
        proc.terminate()
        proc.wait(20)


def _status(url: str, headers: dict[str, str]) -> int:
    try:
        return httpx.get(url, headers=headers, timeout=3).status_code
    except httpx.HTTPError:
        return 0



# -- 2. the writer survives a full disk, and says so --------------------------------------
def test_a_full_disk_fails_the_callers_not_the_server(small_disk):
    server = Served(small_disk / "s.duckdb", extra_args=("--no-demo",))
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            assert c.post("/api/tasks", json={"command": "true"}).status_code == 201
            ballast = fill(small_disk)
            answers = [c.post("/api/tasks", json={"command": "true"}) for _ in range(40)]
            failed = [r for r in answers if r.status_code == 503]
            assert failed, [r.status_code for r in answers]
            assert "could not write" in failed[0].json()["error"]
            stored_after_fill = sum(r.status_code == 201 for r in answers)
            health = c.get("/api/health")
            assert health.status_code == 503 and health.json()["store"] == "error"
            assert "No space left" in health.json()["error"]
            # Reads go on while the disk is full, and nothing 201 was lost.
            tasks = c.get("/api/tasks", params={"state": "all"}).json()["tasks"]
            assert len(tasks) == 1 + stored_after_fill
            ballast.unlink()
            wait_for(lambda: c.post("/api/tasks", json={"command": "true"}).status_code
                     == 201, 30, "writes to work again")
            assert c.get("/api/health").status_code == 200
            fill(small_disk)  # full again, then stopped: the stop must not hang
            c.post("/api/tasks", json={"command": "true"})
        t0 = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(30)
        assert time.monotonic() - t0 < 15
    finally:
        server.stop()
