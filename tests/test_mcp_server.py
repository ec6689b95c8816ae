"""The workbench over MCP, through the official ``mcp`` SDK's own client: ``observatory
mcp`` launched as a stdio server over a database holding the demo's runs and a real
coverage report with per-test contexts; the answers agree with the workbench's analysis."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from workbench.analysis.flaky import label_tests
from workbench.store import Store

from .test_coverage_ingest import ingest, line_of, repo  # noqa: F401 (a fixture)

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow

TOOLS = {"flaky_status", "failures", "covering_tests", "project_health", "recent_sessions"}


@pytest.fixture(scope="module")
def db(repo, tmp_path_factory):  # noqa: F811
    path = tmp_path_factory.mktemp("mcp") / "mcp.duckdb"
    subprocess.run([sys.executable, "-m", "workbench", "demo", "--db", str(path)], check=True,
                   capture_output=True, timeout=300)
    assert ingest(repo, path, ".coverage")[0]["ok"]
    return path


def ask(db, calls: list[tuple[str, dict]]) -> tuple[set[str], list]:
    """List the tools and make ``calls`` with the SDK's client over stdio."""
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    async def session():
        server = StdioServerParameters(command=sys.executable,
                                       args=["-m", "workbench", "mcp", "--db", str(db)])
        async with Client(server) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            results = [await client.call_tool(name, args) for name, args in calls]
        return tools, results

    return asyncio.run(asyncio.wait_for(session(), 120))


def payload(result) -> dict:
    assert not result.is_error, result
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(result.content[0].text)


def test_an_agent_asks_the_workbench(db):
    with Store(db, read_only=True) as store:
        labels = label_tests(store.query("test_run_stats", project="checkout-service"))
        flaky = labels[labels["label"] == "flaky"].iloc[0]
        latest = store.query("runs", project="checkout-service", limit=1, offset=0).iloc[0]
    line = line_of("discounted")
    tools, results = ask(db, [
        ("flaky_status", {"test": flaky["test_id"], "project": "checkout-service"}),
        ("flaky_status", {"test": "no.such::test"}),
        ("covering_tests", {"project": "shop", "file": "shop/cart.py", "line": line}),
        ("project_health", {"project": "checkout-service"}),
        ("failures", {"project": "checkout-service"}),
        ("recent_sessions", {"project": "checkout-service"}),
    ])
    assert TOOLS <= tools
    status, unknown, covering, health, failing, sessions = map(payload, results)
    assert status["label"] == "flaky" and status["runs"] == int(flaky["runs"])
    assert status["evidence"] == str(flaky["evidence"])
    assert unknown["label"] == "unknown"
    assert covering["tests"] == ["tests/test_cart.py::test_discount"]
    assert health["last_run"]["run_id"] == latest["run_id"]
    assert health["flaky"] >= 1 and health["agents"] == {}
    assert failing["run_id"] == latest["run_id"]
    assert all(f["status"] in ("new failure", "still failing") for f in failing["failures"])
    assert sessions["agents"] == []


def test_the_served_workbench_answers_mcp_with_the_same_auth(db):
    """``POST /mcp`` on a served workbench with tokens: the SDK's streamable-HTTP client
    with a token gets the same answers as over stdio; without one, or from another site's
    page, it is refused like every API route."""
    import httpx
    from mcp import Client
    from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

    from .conftest import ROLE_ENV, TOKENS, Served

    line = line_of("discounted")
    served = Served(db, env=ROLE_ENV)
    try:
        async def session(headers):
            async with create_mcp_http_client(headers=headers) as http:
                transport = streamable_http_client(f"{served.url}/mcp", http_client=http)
                async with Client(transport) as client:
                    tools = {t.name for t in (await client.list_tools()).tools}
                    covering = await client.call_tool("covering_tests", {
                        "project": "shop", "file": "shop/cart.py", "line": line})
            return tools, covering

        tools, covering = asyncio.run(asyncio.wait_for(session(
            {"Authorization": f"Bearer {TOKENS['viewer']}"}), 60))
        assert TOOLS <= tools
        assert payload(covering)["tests"] == ["tests/test_cart.py::test_discount"]
        # Without a token the client cannot even start (the SDK reports the 401 as a
        # generic error response; the plain requests below show the status itself).
        with pytest.raises(BaseException, match="error"):
            asyncio.run(asyncio.wait_for(session({}), 60))
        hello = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        anonymous = httpx.post(f"{served.url}/mcp", json=hello)
        assert anonymous.status_code == 401
        cross = httpx.post(f"{served.url}/mcp", json=hello, headers={
            "Authorization": f"Bearer {TOKENS['viewer']}", "Origin": "http://evil.example"})
        assert cross.status_code == 403
        garbage = httpx.post(f"{served.url}/mcp", content=b"{not json", headers={
            "Authorization": f"Bearer {TOKENS['viewer']}", "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream"})
        assert 400 <= garbage.status_code < 500  # the SDK's parse error, never a 500
    finally:
        served.stop()
