"""Two `observatory serve` processes on one ClickHouse, as a team runs them: what one
node stores, the other answers, and a page open on the other refreshes by itself.

No ClickHouse server installs here, so the shared ClickHouse is a stand-in: ClickHouse's
own engine (chDB) behind the ClickHouse HTTP interface (tests/standins/clickhouse_http.py),
reached by the real client. The nodes hear of each other's writes through Debian's real
redis-server.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import httpx
import pytest

from workbench.client import RemoteStore

from .conftest import ROOT, Served, free_port
from .test_browser import ARGS
from .test_clickhouse_signal import _redis

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture
def clickhouse(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.standins.clickhouse_http",
                             str(tmp_path / "clickhouse"), str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert "listening" in proc.stdout.readline()
    yield f"clickhouse://default:@127.0.0.1:{port}/team"
    proc.terminate()
    proc.wait(10)
    proc.stdout.close()


def _node(tmp_path, name: str, url: str, redis_url: str) -> Served:
    home = tmp_path / name
    home.mkdir()
    return Served(home / "serve", ready_path="/api/health",
                  env={"OBSERVATORY_HOME": str(home), "OBSERVATORY_NO_DEMO": "1",
                       "OBSERVATORY_REDIS_URL": redis_url, "OBSERVATORY_SHARED_POLL_S": "30"}
                  if redis_url else {"OBSERVATORY_HOME": str(home), "OBSERVATORY_NO_DEMO": "1"},
                  argv=[sys.executable, "-m", "workbench.cli", "serve", "--address",
                        "127.0.0.1", "--port", "{port}", "--db", url])


def _send(url: str, service: str, agent: str) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=url + "/v1/traces")))
    with provider.get_tracer("shared").start_as_current_span("chat m", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.agent.name": agent,
            "gen_ai.conversation.id": f"{agent}-1", "gen_ai.usage.input_tokens": 42}):
        pass
    provider.shutdown()


@pytest.mark.skipif(shutil.which("redis-server") is None,
                    reason="needs Debian's redis-server (.ci/run installs it)")
def test_two_nodes_share_one_clickhouse_and_refresh_each_others_pages(
        tmp_path, clickhouse, chromium):
    from playwright.sync_api import sync_playwright

    port = free_port()
    redis = _redis(port)
    a = b = None
    try:
        a = _node(tmp_path, "a", clickhouse, f"redis://127.0.0.1:{port}/0")
        b = _node(tmp_path, "b", clickhouse, f"redis://127.0.0.1:{port}/0")
        for node in (a, b):
            health = httpx.get(node.url + "/api/health").json()
            assert health["clickhouse"]["url"] == clickhouse.replace("default:@", "default@")
            assert health["clickhouse"]["redis"] == "ok"
        _send(a.url, "team-a", "first-agent")
        with RemoteStore(b.url) as remote:
            assert remote.query("agent_sessions").agent.tolist() == ["first-agent"]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(b.url + "/agents")
            page.locator("text=first-agent >> visible=true").first.wait_for(timeout=30_000)
            _send(a.url, "team-a", "second-agent")  # (stored by node a)
            # Node b's open page shows it with no reload: Redis told b at once (its own
            # look at the tables is 30 s away here).
            page.locator("text=second-agent >> visible=true").first.wait_for(timeout=15_000)
            page.screenshot(path=str(tmp_path / "node-b-agents.png"))
            browser.close()
        live = httpx.get(b.url + "/api/live").json()
        assert any("telemetry" in r["topics"] and r["sessions"] for r in live["rounds"])
        # A report node a took, an agent it ran and what was done to it: node b answers
        # them from ClickHouse.
        (tmp_path / "t").mkdir()
        (tmp_path / "t" / "test_two.py").write_text(
            "def test_one():\n    assert True\n\ndef test_two():\n    assert 1 == 2\n")
        junit = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             f"--junitxml={tmp_path / 'j.xml'}", "test_two.py"], cwd=tmp_path / "t",
            capture_output=True, text=True, timeout=300)
        assert (tmp_path / "j.xml").exists(), junit.stdout + junit.stderr
        stored = httpx.post(a.url + "/api/tests/reports", params={"project": "shared"},
                            content=(tmp_path / "j.xml").read_bytes()).json()
        agent = httpx.post(a.url + "/api/agents", json={
            "name": "printer", "backend": "process",
            "command": [sys.executable, "-c", "print('hello from node a')"]}).json()["agent"]
        httpx.post(f"{a.url}/api/agents/{agent['id']}/start")
        with RemoteStore(b.url) as remote:
            runs = remote.query("runs", project="shared")
            assert runs.run_id.tolist() == [stored["run_id"]]
            assert int(runs.tests[0]) == stored["tests"] > 0
            texts = _until(lambda: " ".join(str(t) for t in remote.query(
                "agent_events", agent_id=agent["id"]).text), "hello from node a")
            assert "hello from node a" in texts
            assert agent["id"] in remote.query("audit_log").target.tolist()
        for node in (a, b):
            assert "Traceback" not in node.log.read_text()
    finally:
        for node in (a, b):
            if node is not None:
                node.stop()
        redis.terminate()
        redis.wait(10)


def _until(read, want: str, seconds: float = 30.0) -> str:
    """What ``read()`` says once it says ``want`` (or at the deadline)."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        said = read()
        if want in said or time.monotonic() > deadline:
            return said
        time.sleep(0.3)


def _standin(folder, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "tests.standins.clickhouse_http",
                             str(folder), str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert "listening" in proc.stdout.readline()
    return proc


def test_a_clickhouse_that_goes_away_is_said_plainly_and_served_through(tmp_path, chromium):
    """ClickHouse stops: health says so, OTLP gets 503 with Retry-After (the exporter
    retries), the API 503, a page the reason; nothing is a 500 and the server serves on.
    ClickHouse back: everything answers again by itself."""
    from .test_clickhouse_store import _request

    port = free_port()
    clickhouse = _standin(tmp_path / "clickhouse", port)
    node = None
    try:
        node = _node(tmp_path, "n", f"clickhouse://default@127.0.0.1:{port}/team", "")
        otlp = {"content-type": "application/x-protobuf"}
        assert httpx.post(node.url + "/v1/traces", content=_request("before"),
                          headers=otlp).status_code == 200
        clickhouse.terminate()
        clickhouse.wait(10)
        clickhouse.stdout.close()

        health = httpx.get(node.url + "/api/health").json()
        assert health["store"] == "error" and not health["ok"]
        assert health["clickhouse"]["error"] == "the server does not answer"
        down = httpx.post(node.url + "/v1/traces", content=_request("during"), headers=otlp)
        assert down.status_code == 503 and down.headers["Retry-After"]
        query = httpx.get(node.url + "/api/query/agent_sessions")
        assert query.status_code == 503 and "cannot read" in query.json()["error"]
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:  # (a person opening the page sees why)
            browser = p.chromium.launch(executable_path=chromium, args=ARGS)
            page = browser.new_page()
            page.goto(node.url + "/agents")
            page.get_by_text("cannot read clickhouse://").wait_for(timeout=30_000)
            assert page.get_by_text("reads again as soon as the store answers").is_visible()
            browser.close()

        clickhouse = _standin(tmp_path / "clickhouse", port)
        assert httpx.post(node.url + "/v1/traces", content=_request("after"),
                          headers=otlp).status_code == 200
        assert httpx.get(node.url + "/api/health").json()["store"] == "ok"
        with RemoteStore(node.url) as remote:
            assert remote.query("telemetry_counts").spans[0] == 6  # (before and after)
        assert "Traceback" not in node.log.read_text()
    finally:
        if node is not None:
            node.stop()
        clickhouse.terminate()
        clickhouse.wait(10)
        if not clickhouse.stdout.closed:
            clickhouse.stdout.close()
