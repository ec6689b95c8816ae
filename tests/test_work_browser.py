"""The control page's Alerts and Tasks tabs as a person uses them, in headless Chromium
against a real server: an agent paused by a staleness rule is resumed from its alert (the
OS reports the process running again), then the alert resolved; a task queued from the
form runs on a labelled worker and shows done; a queued task is cancelled from the table.
Screenshots kept; nothing is fetched from elsewhere."""

from __future__ import annotations

import sys

import httpx
import psutil
import pytest

from .conftest import Served, wait_for

ARGS = ["--no-sandbox", "--disable-gpu"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    s = Served(tmp_path_factory.mktemp("work-ui") / "w.duckdb", extra_args=("--no-demo",),
               ready_path="/control")
    yield s
    s.stop()


def until(fn, timeout: float = 15, what: str = ""):
    return wait_for(fn, timeout, what, every=0.05)


def test_alerts_and_tasks_tabs(served, chromium, output_dir, tmp_path):
    from playwright.sync_api import sync_playwright

    api = httpx.Client(base_url=served.url, timeout=20)
    api.post("/api/alert-rules", json={"rule_id": "quiet", "name": "silent for a second",
                                       "kind": "stale", "minutes": 0.02, "agents": "sleepy",
                                       "actions": ["notify", "pause"]})
    sleepy = api.post("/api/agents", json={
        "name": "sleepy", "backend": "process",
        "command": [sys.executable, "-c", "import time; time.sleep(300)"]}).json()["agent"]
    api.post(f"/api/agents/{sleepy['id']}/start")
    paused = until(lambda: (a := api.get(f"/api/agents/{sleepy['id']}").json()["agent"])[
        "state"] == "paused" and a, what="the rule's pause")
    api.post("/api/agents", json={"name": "ui-worker", "backend": "process",
                                  "labels": ["ui"], "project": "web"})
    marker = tmp_path / "ran.txt"

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        outside: list[str] = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(
            (served.url, "data:", "blob:")) else None)
        page.goto(served.url + "/control")
        page.get_by_role("button", name="Details").first.wait_for(timeout=30_000)
        page.locator(".bk-tab").get_by_text("Alerts", exact=True).click()
        page.get_by_text("sleepy has been silent").first.wait_for(timeout=30_000)
        page.get_by_text("silent for", exact=True).first.wait_for()  # (the evidence)
        page.get_by_text("Evidence").wait_for()
        page.screenshot(path=str(output_dir / "alerts.png"), full_page=True)
        page.get_by_role("button", name="Resume agent").click()
        until(lambda: api.get(f"/api/agents/{sleepy['id']}").json()["agent"]["state"]
              == "running", what="resumed")
        assert psutil.Process(paused["pid"]).status() != psutil.STATUS_STOPPED
        page.get_by_text("acknowledged by loopback").first.wait_for(timeout=15_000)
        # (a second of silence would fire again once this one is resolved)
        api.put("/api/alert-rules/quiet", json={"name": "silent for an hour", "kind": "stale",
                                                "minutes": 60, "agents": "sleepy"})
        page.get_by_role("button", name="Resolve", exact=True).click()
        until(lambda: not api.get("/api/alerts", params={"state": "open"}).json()["alerts"],
              what="resolved")
        page.get_by_text("No alerts: nothing the rules watch for happened.").wait_for(
            timeout=15_000)

        page.locator(".bk-tab").get_by_text("Tasks", exact=True).click()
        page.get_by_text("command", exact=True).click()
        page.get_by_placeholder("fix the failing test in calc.py").fill(
            f"{sys.executable} -c \"open(r'{marker}', 'w').write('ok')\"")
        page.get_by_label("Labels (comma-separated)").fill("ui")
        page.get_by_label("Priority").fill("3")
        page.get_by_role("button", name="Queue task").click()
        until(marker.exists, what="the task's command")
        page.get_by_role("gridcell", name="done", exact=True).first.wait_for(timeout=15_000)
        waiting = api.post("/api/tasks", json={"command": ["true"],
                                               "labels": ["nobody"]}).json()["task"]
        page.get_by_role("gridcell", name="queued", exact=True).first.wait_for(timeout=15_000)
        page.get_by_role("gridcell", name="queued", exact=True).first.click()
        page.get_by_role("button", name="Cancel", exact=True).click()
        until(lambda: api.get(f"/api/tasks/{waiting['id']}").json()["task"]["state"]
              == "cancelled", what="cancelled")
        page.get_by_role("gridcell", name="cancelled", exact=True).first.wait_for(
            timeout=15_000)
        page.screenshot(path=str(output_dir / "tasks.png"), full_page=True)
        page.locator(".bk-tab").get_by_text("Agent", exact=True).click()
        page.locator("h3", has_text="ui-worker").wait_for(timeout=15_000)  # the newest
        page.get_by_text("Tests it broke and fixed").wait_for()
        page.wait_for_timeout(1500)  # (the charts draw on a canvas after the tables)
        page.screenshot(path=str(output_dir / "worker-timeline.png"))
        assert outside == []
        browser.close()
    api.post(f"/api/agents/{sleepy['id']}/stop")
    api.close()
