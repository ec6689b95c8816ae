"""A person's view: the served dashboard in headless Chromium."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import Served

pytestmark = pytest.mark.browser

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def test_open_a_run_and_see_its_failures(server, remote, chromium, output_dir):
    from playwright.sync_api import sync_playwright

    runs = remote.query("runs", project="checkout-service", limit=1000)
    target = runs[(runs.failed > 0) & (runs.status == "complete")].iloc[0]
    failing = remote.query("run_results", run_id=target.run_id)
    failing_test = failing[failing.outcome == "failed"].test_id.iloc[0]

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        errors, external = [], []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on(
            "request",
            lambda r: (
                r.url.startswith(("http:", "https:"))
                and not r.url.startswith(server.url)
                and external.append(r.url)
            ),
        )
        page.goto(server.url + "/tests")
        cell = page.get_by_role("gridcell", name=target.build, exact=True).first
        cell.wait_for(timeout=60_000)
        page.wait_for_timeout(1500)  # let the chart draw before the screenshot
        page.screenshot(path=output_dir / "1-runs.png", full_page=True)

        cell.click()
        page.get_by_text(f"Run {target.run_id}").wait_for(timeout=30_000)
        page.get_by_text(failing_test, exact=True).first.wait_for(timeout=30_000)
        page.screenshot(path=output_dir / "2-run-detail.png", full_page=True)

        page.get_by_text("Failure clusters", exact=True).click()
        page.get_by_text("ConnectionResetError", exact=True).first.click()
        page.get_by_text("Suspect frame").wait_for(timeout=30_000)
        page.screenshot(path=output_dir / "3-cluster.png", full_page=True)

        page.get_by_text("Flaky tests", exact=True).click()
        page.get_by_text("statistically flaky", exact=False).first.wait_for(timeout=30_000)
        page.screenshot(path=output_dir / "4-flaky.png", full_page=True)
        browser.close()

    assert errors == []
    assert external == []


HOSTILE = b"""<?xml version="1.0"?>
<testsuite name="xss" tests="2">
  <testcase classname="x" name="t&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;&lt;b&gt;bold&lt;/b&gt;">
    <failure message="&lt;script&gt;window.__xss=2&lt;/script&gt;&lt;i&gt;it&lt;/i&gt;">&lt;b&gt;trace&lt;/b&gt;</failure>
  </testcase>
  <testcase classname="x" name="ok"/>
</testsuite>"""


def test_names_and_messages_from_reports_are_text_not_markup(server, chromium, output_dir):
    import httpx
    from playwright.sync_api import sync_playwright

    r = httpx.post(server.url + "/api/tests/reports", content=HOSTILE, params={"project": "xss"})
    assert r.status_code == 200, r.text
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(server.url + "/tests")
        page.get_by_role("gridcell").first.wait_for(timeout=60_000)
        page.locator("select").first.select_option("xss")
        page.get_by_role("gridcell", name="xss", exact=True).first.click()
        name = 'x::t<img src=x onerror="window.__xss=1"><b>bold</b>'
        page.get_by_text(name, exact=True).first.click()
        page.get_by_text("<b>trace</b>", exact=True).wait_for(timeout=30_000)
        page.get_by_text("<script>window.__xss=2</script><i>it</i>", exact=True).first.wait_for()
        page.screenshot(path=output_dir / "escaped.png", full_page=True)
        assert page.evaluate("window.__xss") is None
        assert page.locator("b:text-is('bold'), i:text-is('it'), b:text-is('trace')").count() == 0
        assert dialogs == []
        browser.close()


def test_a_run_in_progress_appears_without_reload(server, chromium, output_dir):
    import httpx
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.goto(server.url + "/tests")
        page.get_by_role("gridcell").first.wait_for(timeout=60_000)

        start = httpx.post(
            server.url + "/api/tests/live",
            json={"project": "live-demo", "branch": "main", "build": "L-77"},
        )
        run_id = start.json()["run_id"]
        writer = {"X-Observatory-Run-Secret": start.json()["secret"]}
        page.get_by_role("gridcell", name="L-77", exact=True).first.wait_for(timeout=20_000)
        page.get_by_role("gridcell", name="running", exact=True).first.wait_for(timeout=5_000)
        # The server's account of it: this page's session is subscribed to test data, and
        # a round of refreshes for the new run went out to it.
        live = httpx.get(server.url + "/api/live").json()
        assert live["sessions"]["tests"] >= 1 and live["versions"]["tests"] >= 1
        rounds = [r for r in live["rounds"] if "tests" in r["topics"] and r["sessions"]]
        assert rounds and all(r["refreshed"] >= r["published"] for r in rounds), live

        tests = [
            {
                "classname": "live",
                "name": f"t{i}",
                "attempts": [
                    {
                        "outcome": "failed" if i == 3 else "passed",
                        "duration_s": 0.1,
                        "message": "boom" if i == 3 else None,
                    }
                ],
            }
            for i in range(5)
        ]
        httpx.post(f"{server.url}/api/tests/live/{run_id}/results", json={"tests": tests},
                   headers=writer)
        httpx.post(f"{server.url}/api/tests/live/{run_id}/finish", json={"duration_s": 1.0},
                   headers=writer)
        page.get_by_role("gridcell", name="L-77", exact=True).first.click()
        page.get_by_text("live::t3", exact=True).first.wait_for(timeout=20_000)
        page.get_by_text(f"Run {run_id} · live-demo · main · build L-77").wait_for(timeout=20_000)
        page.wait_for_timeout(500)
        page.screenshot(path=output_dir / "live.png", full_page=True)
        browser.close()


def test_agents_dashboard_shows_an_sdk_sent_session_and_its_cost(server, chromium, output_dir):
    import uuid

    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from playwright.sync_api import sync_playwright

    session = f"browser-{uuid.uuid4().hex[:8]}"
    provider = LoggerProvider(resource=Resource.create({"service.name": "claude-code"}))
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=server.url + "/v1/logs"))
    )
    logger = provider.get_logger("claude_code")
    logger.emit(
        body="claude_code.api_request",
        attributes={
            "event.name": "api_request",
            "session.id": session,
            "model": "claude-opus-4",
            "cost_usd": "1.2345",
            "input_tokens": "4000",
            "output_tokens": "900",
        },
    )
    # A session id that is markup: the sessions table (HTML) shows it as text.
    hostile = f'<img src=x onerror="window.__xss={len(session)}">{session}'
    logger.emit(body="claude_code.api_request",
                attributes={"event.name": "api_request", "session.id": hostile})
    provider.shutdown()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/agents")
        page.get_by_role("gridcell", name=session, exact=True).wait_for(timeout=60_000)
        page.get_by_role("gridcell", name=hostile, exact=True).wait_for(timeout=10_000)
        assert page.evaluate("window.__xss") is None
        # Its cost as money (the one formatting layer), not the float it was sent as.
        page.get_by_role("gridcell", name="$1.23", exact=True).first.wait_for(timeout=10_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=output_dir / "agents.png", full_page=True)
        # Clicking the session's row opens its records (Claude Code sends logs only).
        page.get_by_role("gridcell", name=session, exact=True).click()
        page.get_by_text("Filtered to session").wait_for(timeout=30_000)
        page.get_by_role("gridcell", name="claude_code.api_request").first.wait_for(
            timeout=30_000)
        page.screenshot(path=output_dir / "agents-session-opened.png", full_page=True)
        page.get_by_text("Show all sessions").click()
        page.get_by_text("All sessions.").wait_for(timeout=30_000)
        page.get_by_text("Traces", exact=True).click()
        page.get_by_text("invoke_agent triage", exact=True).first.click()
        page.get_by_role("gridcell", name="chat gpt-5-mini", exact=True).first.wait_for(
            timeout=30_000
        )
        page.wait_for_timeout(1000)
        page.screenshot(path=output_dir / "waterfall.png", full_page=True)
        browser.close()
    assert errors == []


def _page_text(chromium, url, wait_for, shot):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(url)
        page.get_by_text(wait_for, exact=False).first.wait_for(timeout=60_000)
        page.screenshot(path=shot, full_page=True)
        browser.close()


def _plain_panel_serve(db):
    return Served(db, env={"OBSERVATORY_DB": str(db)}, ready_path="/tests", argv=[
        sys.executable, "-m", "panel", "serve", "dashboards/tests.py", "--address",
        "127.0.0.1", "--port", "{port}"])


def test_plain_panel_serve_on_a_held_file_shows_why_not_a_blank_page(tmp_path, chromium,
                                                                   output_dir):
    """A database held by a process that is no workbench (a notebook, say)."""
    db = tmp_path / "held.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from workbench.store import Store; "
         f"s = Store({str(db)!r}); print('ready', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        served = _plain_panel_serve(db)
        try:
            _page_text(chromium, served.url + "/tests", f"is held by process {holder.pid}",
                       output_dir / "held-by-a-notebook.png")
        finally:
            served.stop()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_plain_panel_serve_on_a_file_a_workbench_holds_reads_through_it(tmp_path, chromium,
                                                                      output_dir):
    db = tmp_path / "shared.duckdb"
    owner = Served(db, extra_args=("--no-demo",), ready_path="/api/health")
    try:
        served = _plain_panel_serve(db)
        try:
            _page_text(chromium, served.url + "/tests",
                       f"Read-only view of the workbench at {owner.url}",
                       output_dir / "held-by-a-workbench.png")
        finally:
            served.stop()
    finally:
        owner.stop()


PAGES = {
    "/tests": ("Runs", "Run detail", "Failure clusters", "Flaky tests", "Test detail",
               "Durations"),
    "/agents": ("Agents", "Timeline", "Traces", "Logs", "Metrics"),
}


@pytest.mark.parametrize("viewport", [(1440, 900), (1920, 1080)], ids=lambda v: f"{v[0]}x{v[1]}")
def test_every_page_and_tab_stays_on_this_machine(server, chromium, output_dir, viewport):
    """A person's session: every page and tab, a row clicked in each table, the time
    window changed. Nothing may be fetched from another host and nothing may log an error
    (Panel's loading indicator once fetched loading.css from its CDN after a click)."""
    from playwright.sync_api import sync_playwright

    external, errors = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        page.on("request", lambda r: r.url.startswith(("http:", "https:"))
                and not r.url.startswith(server.url) and external.append(r.url))
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(str(e)))
        for path, tabs in PAGES.items():
            page.goto(server.url + path)
            page.get_by_role("gridcell").first.wait_for(timeout=60_000)
            for window in ("all time", "7 days"):
                page.get_by_text(window, exact=True).first.click()
                page.wait_for_timeout(400)
            for tab in tabs:
                page.get_by_text(tab, exact=True).first.click()
                page.wait_for_timeout(800)
                cells = page.locator(".tabulator-row .tabulator-cell:visible")
                for k in range(min(cells.count(), 8)):
                    try:
                        cells.nth(k).click(trial=True, timeout=300)
                        # (covered between the two: a tab switch still arriving on a loaded
                        # machine put the next tab over the last one's cell)
                        cells.nth(k).click(timeout=5_000)
                    except Exception:  # noqa: BLE001  (covered by another tab's content)
                        continue
                    page.wait_for_timeout(600)
                    break
                name = f"{path.strip('/')}-{tab.replace(' ', '-').lower()}.png"
                page.get_by_text(tab, exact=True).first.click()
                page.wait_for_timeout(600)
                page.screenshot(path=output_dir / name, full_page=True)
        browser.close()
    assert external == []
    assert errors == []


def test_pages_follow_the_browsers_colour_scheme_until_one_is_chosen(server, chromium,
                                                                     output_dir):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        dark = browser.new_context(color_scheme="dark", viewport={"width": 1440, "height": 900})
        page = dark.new_page()
        page.goto(server.url + "/agents")
        page.wait_for_url("**/agents?theme=dark", timeout=30_000)
        page.get_by_text("☀ light").wait_for(timeout=30_000)  # the dark page's switch
        page.get_by_role("gridcell").first.wait_for(timeout=60_000)
        page.screenshot(path=output_dir / "agents-follows-dark.png")
        page.get_by_text("☀ light").click()  # chosen: stays light, page to page
        page.wait_for_url("**/agents?theme=default", timeout=30_000)
        page.get_by_text("Tests", exact=True).first.click()
        page.wait_for_url("**/tests?theme=default", timeout=30_000)
        page.get_by_text("☾ dark").wait_for(timeout=30_000)
        light = browser.new_context(color_scheme="light").new_page()
        light.goto(server.url + "/tests")
        light.get_by_text("☾ dark").wait_for(timeout=30_000)
        assert "theme=" not in light.url
        browser.close()
