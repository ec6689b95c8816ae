"""From a failing test to the agent session that broke it, end to end with real parts: a
git repository built here, the real Claude Code CLI as two agents on its project (one edits
the code under test through an approved shell command, a later one edits notes), real
pytest runs sending their results through the workbench's plugin — and the workbench names
the session and the tool call that broke the test first, then counts the fix when the same
agent puts it back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from .conftest import Served
from .standins.messages_api import MessagesAPI
from .test_claude_code_agent import until

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow

CALC = ("def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n\n\n"
        "def checked_add(a, b):\n    result = add(a, b)\n    if b > 0 and result <= a:\n"
        "        raise ArithmeticError(f'add({a}, {b}) = {result}')\n    return result\n")
TESTS = ("from calc import add, checked_add, mul\n\n\n"
         "def test_checked_add():\n    assert checked_add(2, 3) == 5\n\n\n"
         "def test_add():\n    assert add(2, 3) == 5\n\n\n"
         "def test_add_zero():\n    assert add(0, 4) == 4\n\n\n"
         "def test_mul():\n    assert mul(2, 3) == 6\n")


def git(repo, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture(scope="module")
def setup(claude, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("culprits")
    repo = root / "calc"
    repo.mkdir()
    (repo / "calc.py").write_text(CALC)
    (repo / "test_calc.py").write_text(TESTS)
    (repo / "NOTES.md").write_text("notes\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "init",
        "--allow-empty")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "calc")
    with MessagesAPI() as api:
        served = Served(root / "c.duckdb", extra_args=("--no-demo",))
        try:
            yield served, api, root, repo
        finally:
            served.stop()


def pytest_run(served, repo, build: str) -> dict:
    """Run the repository's tests with the workbench's plugin; the run it stored."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "--observatory-url", served.url, "--observatory-project", "calc",
                    "--observatory-build", build,
                    "--observatory-commit", git(repo, "rev-parse", "HEAD").strip()],
                   cwd=repo, env=env, capture_output=True, timeout=120)
    runs = httpx.get(f"{served.url}/api/runs", params={"project": "calc"}).json()["runs"]
    return runs[0]


def covered(served, repo) -> None:
    """The repository's tests under coverage.py with per-test contexts, sent in."""
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "-p", "no:observatory", "--cov=.", "--cov-context=test", "--cov-report=",
                    "--cov-branch"], cwd=repo, capture_output=True, timeout=120, check=True)
    out = subprocess.run([sys.executable, "-m", "workbench", "ingest", "coverage",
                          str(repo / ".coverage"), "--project", "calc", "--url", served.url,
                          "--json"], capture_output=True, text=True, timeout=120)
    assert json.loads(out.stdout)["contexts"] == 4, out.stdout + out.stderr


def agent_runs(c: httpx.Client, api, root, repo, name: str, command: str) -> dict:
    """A Claude Code agent on the project that runs ``command`` (approved by a person)."""
    home = root / f"home-{name}"
    home.mkdir()
    agent = c.post("/api/agents", json={
        "name": name, "backend": "claude-code", "project": "calc", "cwd": str(repo),
        "prompt": f"RUN: {command}",
        "env": {"ANTHROPIC_BASE_URL": api.url, "ANTHROPIC_API_KEY": "sk-test",
                "HOME": str(home), "DISABLE_AUTOUPDATER": "1"}}).json()["agent"]
    c.post(f"/api/agents/{agent['id']}/start")
    approve(c, agent)
    return agent


def approve(c: httpx.Client, agent: dict) -> None:
    pending = until(lambda: [p for p in c.get("/api/approvals").json()["approvals"]
                             if p["agent_id"] == agent["id"]], what="the approval")
    c.post(f"/api/approvals/{pending[0]['id']}", json={"decision": "allow"})
    until(lambda: c.get(f"/api/agents/{agent['id']}").json()["agent"]["state"] == "idle",
          timeout=30, what="the turn's end")


def test_the_breaking_session_and_tool_call_come_first(setup, chromium, output_dir):
    served, api, root, repo = setup
    with httpx.Client(base_url=served.url, timeout=30) as c:
        base = pytest_run(served, repo, "before-agents")
        assert base["failed"] == 0 and base["passed"] == 4
        covered(served, repo)  # which lines each test runs, as coverage.py recorded it
        time.sleep(0.2)
        breaker = agent_runs(c, api, root, repo, "breaker",
                             "sed -i 's/return a + b/return a - b/' calc.py")
        assert "a - b" in (repo / "calc.py").read_text()
        decoy = agent_runs(c, api, root, repo, "decoy", "echo more >> NOTES.md")
        assert (repo / "NOTES.md").read_text().endswith("more\n")
        time.sleep(0.2)
        broken = pytest_run(served, repo, "after-agents")
        assert broken["failed"] == 3, broken

        found = c.get(f"/api/runs/{broken['run_id']}/culprits").json()
        assert found["base_run_id"] == base["run_id"] and found["edits"] == 2
        by_test = {f["test_id"].split("::")[-1]: f for f in found["failures"]}
        assert sorted(by_test) == ["test_add", "test_add_zero", "test_checked_add"]
        inside = by_test["test_checked_add"]["candidates"][0]  # raised inside calc.py
        assert inside["agent_id"] == breaker["id"] and inside["score"] == 3.0
        assert inside["reasons"] == ["edited calc.py, which is in the failure's stack trace"]
        first, second = by_test["test_add"]["candidates"][:2]
        assert first["agent_id"] == breaker["id"] and second["agent_id"] == decoy["id"]
        assert first["score"] > second["score"]
        assert first["session_id"] and first["reasons"] == [
            "edited calc.py, whose lines the failing test ran (coverage)"]
        assert first["score"] == 2.2
        call = first["tool_call"]
        assert call["tool"] == "Bash" and call["paths"] == ["calc.py"]
        assert "sed -i" in call["diff"]
        uses = [e for e in c.get(f"/api/agents/{breaker['id']}").json()["events"]
                if e["kind"] == "tool_use"]
        assert call["tool_use_id"] == uses[0]["data"]["id"]

        impact = c.get(f"/api/agents/{breaker['id']}/impact").json()
        assert sorted(b["test_id"].split("::")[-1] for b in impact["broke"]) == [
            "test_add", "test_add_zero", "test_checked_add"]
        assert impact["fixed"] == []
        assert c.get(f"/api/agents/{decoy['id']}/impact").json()["broke"] == []

        c.post(f"/api/agents/{breaker['id']}/message",
               json={"text": "RUN: sed -i 's/return a - b/return a + b/' calc.py"})
        approve(c, breaker)
        time.sleep(0.2)
        fixed = pytest_run(served, repo, "after-the-fix")
        assert fixed["failed"] == 0
        impact = c.get(f"/api/agents/{breaker['id']}/impact").json()
        assert sorted(f["test_id"].split("::")[-1] for f in impact["fixed"]) == [
            "test_add", "test_add_zero", "test_checked_add"]
        assert c.get("/api/runs/no-such-run/culprits").status_code == 404
        see_it_in_the_browser(served, chromium, output_dir, breaker)
        for agent in (breaker, decoy):
            c.post(f"/api/agents/{agent['id']}/stop")


def see_it_in_the_browser(served, chromium, output_dir, breaker: dict) -> None:
    """The run detail names the session under the failure; the agent's detail lists what
    it broke and fixed."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium,
                                    args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.goto(served.url + "/tests")
        page.get_by_role("gridcell", name="after-agents", exact=True).first.click()
        page.get_by_text("Likely cause of 3 new failure(s)").wait_for(timeout=30_000)
        page.get_by_role("gridcell", name="test_calc::test_add", exact=True).first.click()
        page.get_by_text("whose lines the failing test ran").first.wait_for(timeout=30_000)
        page.get_by_text("sed -i 's/return a + b/return a - b/' calc.py").first.wait_for()
        page.screenshot(path=str(output_dir / "run-detail-cause.png"), full_page=True)
        page.goto(served.url + "/control")
        page.get_by_role("button", name="Details").first.wait_for(timeout=30_000)
        page.locator(".bk-tab").get_by_text("Agent", exact=True).click()
        # As a person does: the tab shows the newest agent, then one is picked. (Picking
        # while the tab's tables are still being created lost a table's first update.)
        page.locator("h3", has_text="decoy").wait_for(timeout=30_000)
        page.wait_for_timeout(500)
        page.locator("select").first.select_option(label=f"breaker ({breaker['id']})")
        page.locator("h3", has_text="breaker").wait_for(timeout=30_000)
        page.get_by_text("Tests it broke and fixed").scroll_into_view_if_needed()
        page.get_by_role("gridcell", name="fixed", exact=True).first.wait_for(timeout=30_000)
        page.get_by_role("gridcell", name="broke", exact=True).first.wait_for()
        page.screenshot(path=str(output_dir / "agent-broke-fixed.png"))
        browser.close()
