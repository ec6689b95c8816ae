"""The real Codex CLI (`codex app-server`) as a workbench agent, offline against a local
stand-in for the Responses API: its command-approval requests are approvals; denied, the
file is not written; allowed, it is; its events are stored; a second prompt continues the
same thread."""

from __future__ import annotations

import httpx
import pytest

from workbench.control.codex import find_binary

from .conftest import IN_CI, Served, wait_for
from .standins.responses_api import ResponsesAPI

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def codex() -> str:
    binary = find_binary()
    if binary:
        return binary
    if IN_CI:
        pytest.fail("the codex CLI is missing (.ci/run installs @openai/codex)")
    pytest.skip("the codex CLI is not installed: npm install @openai/codex")


def until(fn, timeout: float = 30, what: str = ""):
    return wait_for(fn, timeout, what, every=0.1)


def test_codex_approvals_decide_its_commands(codex, tmp_path):
    served = Served(tmp_path / "codex.duckdb", extra_args=("--no-demo",))
    try:
        with ResponsesAPI() as api, httpx.Client(base_url=served.url, timeout=30) as c:
            for decision, name in (("deny", "denied"), ("allow", "allowed")):
                home, project = tmp_path / f"home-{name}", tmp_path / f"project-{name}"
                (home / ".codex").mkdir(parents=True)
                project.mkdir()
                spec = {
                    "name": f"codex-{name}", "backend": "codex", "cwd": str(project),
                    "prompt": "RUN: echo hi > made.txt",
                    "env": {"HOME": str(home), "CODEX_HOME": str(home / ".codex"),
                            "LOCAL_KEY": "x"},
                    "config": {"approval_policy": "untrusted",
                               "sandbox": "danger-full-access", "overrides": [
                                   "model_provider=local", "model=gpt-5",
                                   f'model_providers.local={{name="local", base_url='
                                   f'"{api.url}", wire_api="responses", env_key="LOCAL_KEY"}}']},
                }
                r = c.post("/api/agents", json=spec)
                assert r.status_code == 201, r.text
                agent = r.json()["agent"]
                c.post(f"/api/agents/{agent['id']}/start")
                pending = until(lambda a=agent: [p for p in c.get("/api/approvals").json()[
                    "approvals"] if p["agent_id"] == a["id"]], what="the approval")
                assert pending[0]["tool"] == "exec_command"
                assert "made.txt" in pending[0]["text"]
                c.post(f"/api/approvals/{pending[0]['id']}", json={"decision": decision})

                def events(a=agent):
                    return c.get(f"/api/agents/{a['id']}").json()["events"]

                until(lambda: [e for e in events() if e["kind"] == "result"], what="the turn")
                assert (project / "made.txt").exists() is (decision == "allow")
                kinds = {e["kind"] for e in events()}
                assert {"init", "prompt", "tool_use", "assistant", "result"} <= kinds
                thread = c.get(f"/api/agents/{agent['id']}").json()["agent"]["session_id"]
                assert thread

            # The same thread takes the next prompt.
            seen = len(api.requests)
            r = c.post(f"/api/agents/{agent['id']}/message", json={"text": "anything else?"})
            assert r.status_code == 200, r.text
            until(lambda: len([e for e in events() if e["kind"] == "result"]) >= 2,
                  what="the second turn")
            assert "echo hi" in str(api.requests[seen]["body"]["input"])  # the history
            c.post(f"/api/agents/{agent['id']}/stop")
            final = until(lambda: c.get(f"/api/agents/{agent['id']}").json()["agent"][
                "state"] in ("stopped", "completed") and True, what="the stop")
            assert final
    finally:
        served.stop()
