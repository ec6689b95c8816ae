"""``observatory tui`` driven by Textual's own pilot against a real server: a real Claude Code
session (the Messages API stand-in behind it) asks to run a command, and the approval is
allowed with a key in the inbox; a process agent is paused and resumed from the fleet; its
transcript, a run's failures and a console are opened; the help screen. Each screen is
saved as an SVG (Textual's export) under test-output/ to look at."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import httpx
import pytest

from workbench.tui.app import ObservatoryApp, Table

from .conftest import ROLE_ENV, TOKENS, Served, role_client, wait_for
from .standins.messages_api import MessagesAPI

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(claude, tmp_path_factory):
    root = tmp_path_factory.mktemp("tui")
    with MessagesAPI() as api:
        served = Served(root / "t.duckdb", env={**ROLE_ENV, "OBSERVATORY_NO_DEMO": "1"},
                        ready_path="/login")
        try:
            yield served, api, root
        finally:
            served.stop()


async def until(pilot, fn, timeout: float = 40, what: str = ""):
    """``fn()`` once truthy, letting the app run between tries."""
    deadline = time.monotonic() + timeout
    while not (value := fn()):
        status = pilot.app.query_one("#status").render()
        assert time.monotonic() < deadline, f"timed out: {what} (the TUI says: {status})"
        await pilot.pause(0.2)
    return value


def rows(app: ObservatoryApp, tab: str) -> list[str]:
    table = app.query_one(f"#{tab}-table", Table)
    return [k.value for k in table.rows]


def junit_of_a_failing_run(root) -> bytes:
    """A JUnit report from pytest itself: one test passes, one fails."""
    (suite := root / "suite").mkdir()
    (suite / "test_tui_run.py").write_text(
        "def test_fine():\n    assert True\n\n"
        "def test_broken():\n    assert 2 + 2 == 5, 'arithmetic is off'\n")
    report = root / "junit.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    f"--junitxml={report}", str(suite)], cwd=suite, capture_output=True)
    return report.read_bytes()


def test_the_tui_answers_an_approval_and_pauses_an_agent(setup, output_dir):
    served, api, root = setup
    with role_client(served, "ingest") as c:
        r = c.post("/api/tests/reports", params={"project": "tui", "format": "junit"},
                   content=junit_of_a_failing_run(root))
        assert r.status_code == 200, r.text
    target = root / "made-by-claude.txt"
    project = root / "project"
    (home := root / "home").mkdir()
    project.mkdir()
    with role_client(served, "operator") as c:
        claude_agent = c.post("/api/agents", json={
            "name": "claude-tui", "backend": "claude-code", "cwd": str(project),
            "prompt": f"RUN: echo hi > {target}",
            "env": {"ANTHROPIC_BASE_URL": api.url, "ANTHROPIC_API_KEY": "sk-test",
                    "HOME": str(home), "DISABLE_AUTOUPDATER": "1"}}).json()["agent"]
        worker = c.post("/api/agents", json={
            "name": "ticker", "backend": "process", "config": {"pty": True},
            "command": [sys.executable, "-u", "-c",
                        "import time\nwhile True:\n    print('tick', flush=True)\n"
                        "    time.sleep(0.3)"]}).json()["agent"]
        for agent in (claude_agent, worker):
            assert c.post(f"/api/agents/{agent['id']}/start").status_code == 200
        pending = wait_for(lambda: [p for p in c.get("/api/approvals").json()["approvals"]
                                    if p["agent_id"] == claude_agent["id"]], 60,
                           "Claude Code's permission request")
    app = ObservatoryApp(served.url, token=TOKENS["operator"])

    def shot(name: str) -> None:
        app.save_screenshot(f"{name}.svg", str(output_dir))

    async def drive() -> None:
        async with app.run_test(size=(150, 40)) as pilot:
            await until(pilot, lambda: worker["id"] in rows(app, "fleet"), what="the fleet")
            await pilot.press("2")
            await until(pilot, lambda: pending[0]["id"] in rows(app, "approvals"),
                        what="the approval in the inbox")
            shot("approvals")
            table = app.query_one("#approvals-table", Table)
            table.move_cursor(row=rows(app, "approvals").index(pending[0]["id"]))
            await pilot.press("a")
            await until(pilot, target.exists, what="the allowed command's file")
            await until(pilot, lambda: pending[0]["id"] not in rows(app, "approvals"),
                        what="the inbox emptied")
            # The fleet: the process agent, paused and resumed with a key.
            await pilot.press("1")
            fleet = app.query_one("#fleet-table", Table)
            while fleet.current() != worker["id"]:
                await pilot.press("down")
            await pilot.press("p")
            await until(pilot, lambda: httpx.get(
                f"{served.url}/api/agents/{worker['id']}",
                headers={"Authorization": f"Bearer {TOKENS['viewer']}"}).json()["agent"][
                "state"] == "paused", what="paused")
            await until(pilot, lambda: "paused" in str(fleet.get_row(worker["id"])),
                        what="the fleet shows it paused")
            shot("fleet")
            await pilot.press("r")
            await until(pilot, lambda: "running" in str(fleet.get_row(worker["id"])),
                        what="resumed")
            # Its transcript, then its terminal (read-only).
            await pilot.press("t")
            await until(pilot, lambda: "tick" in "".join(
                str(line.text) for line in app.screen.log_widget.lines), what="transcript")
            shot("transcript")
            await pilot.press("escape")
            await pilot.press("c")
            await until(pilot, lambda: sum("tick" in str(line.text)
                                           for line in app.screen.log_widget.lines) >= 2,
                        what="the terminal's output")
            shot("console")
            await pilot.press("escape")
            # The test runs: the failing one's failures.
            await pilot.press("5")
            await until(pilot, lambda: rows(app, "tests"), what="the test runs")
            await pilot.press("enter")
            await until(pilot, lambda: "arithmetic is off" in "".join(
                str(line.text) for line in app.screen.log_widget.lines), what="the failure")
            assert "test_broken" in "".join(str(x.text) for x in app.screen.log_widget.lines)
            shot("failures")
            await pilot.press("escape")
            await pilot.press("question_mark")
            await pilot.pause(0.3)
            shot("help")
            assert "approvals" in str(app.screen.query_one("Markdown").source)
            await pilot.press("escape")
            await pilot.press("q")

    asyncio.run(drive())
    with role_client(served, "admin") as admin:
        audit = admin.get("/api/audit", params={"limit": 500}).json()["audit"]
        decided = admin.get("/api/approvals", params={"state": "allowed"}).json()["approvals"]
        admin.post(f"/api/agents/{worker['id']}/stop")
        admin.post(f"/api/agents/{claude_agent['id']}/stop")
    assert [a for a in decided if a["id"] == pending[0]["id"]]
    assert {("pause", worker["id"]), ("resume", worker["id"])} <= {
        (a["action"], a["target"]) for a in audit if a["role"] == "operator"}
    for name in ("approvals", "fleet", "transcript", "console", "failures", "help"):
        assert (output_dir / f"{name}.svg").stat().st_size > 5000
