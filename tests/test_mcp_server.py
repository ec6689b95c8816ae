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
