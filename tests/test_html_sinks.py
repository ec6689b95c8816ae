"""Escaping is one rule: text that is not the workbench's own — an agent's name, labels and
prompt, a test's name and message, a log body, a file path, an alert's title — reaches
every HTML sink (notifications, HTML and Markdown panes, paged tables, tooltips) as text,
through one escape (:mod:`workbench.views.escape`).

The browser tests sweep markup payloads through every page that shows such text, in
headless Chromium against a real server, hovering where tooltips are: no payload may run
(``window.__xss`` stays undefined, no element of a payload exists) and each is shown
literally. The unit tests check the escape itself and what each sink-building function
makes of a payload.
"""

from __future__ import annotations

import time

import httpx
import pandas as pd
import pytest

from .conftest import Served

ARGS = ["--no-sandbox", "--disable-gpu"]

_RUN = "window.__xss=(window.__xss||0)+1"
#: An event handler on an element (runs when set as innerHTML), a script element (runs
#: when parsed as a page, not as innerHTML), an attribute breakout, and a Markdown code
#: span breakout (the backticks end the span, the markup after them is raw HTML).
PAYLOADS = (
    f'<img src=x onerror="{_RUN}">',
    f"<script>{_RUN}</script>",
    f'"><svg onload="{_RUN}">',
    f'`<img src=x onerror="{_RUN}">`',
)
IMG, SCRIPT, SVG, TICKS = PAYLOADS
#: A project named with markup: test runs, coverage and agents name it.
PROJECT = f"{IMG}shop"


def _agent(url: str, spec: dict) -> dict:
    r = httpx.post(url + "/api/agents", json=spec, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()["agent"]


def _junit() -> bytes:
    """A report whose test names and failure messages are markup."""
    from xml.sax.saxutils import escape, quoteattr

    cases = "".join(
        f'<testcase classname="x" name={quoteattr(f"t{i} {p}")}>'
        f'<failure message={quoteattr(f"E{i}: {p}")}>{escape(f"trace {i} {p}")}</failure>'
        "</testcase>" for i, p in enumerate(PAYLOADS))
    return (f'<?xml version="1.0"?><testsuite name="sinks" tests="{len(PAYLOADS) + 1}">'
            f'{cases}<testcase classname="x" name="ok"/></testsuite>').encode()


def _lcov() -> bytes:
    """A coverage report whose file paths are markup (no slash: files at the root)."""
    return "".join(f"SF:{p}{i}.py\nDA:1,1\nDA:2,0\nDA:3,1\nend_of_record\n"
                   for i, p in enumerate((IMG, SVG, TICKS))).encode()


def _logs() -> dict:
    """OTLP/JSON log records from an agent whose service name, session id and log bodies
    are markup."""
    now = str(time.time_ns())

    def attr(key: str, value: str) -> dict:
        return {"key": key, "value": {"stringValue": value}}

    records = [{"timeUnixNano": now, "severityText": "INFO",
                "body": {"stringValue": f"body {p}"},
                "attributes": [attr("event.name", "api_request"),
                               attr("session.id", f"s{i}{p}"), attr("model", "claude-x"),
                               attr("cost_usd", "0.5"), attr("input_tokens", "100"),
                               attr("output_tokens", "20")]}
               for i, p in enumerate(PAYLOADS)]
    return {"resourceLogs": [{
        "resource": {"attributes": [attr("service.name", f"{SVG}agent")]},
        "scopeLogs": [{"scope": {"name": "sinks"}, "logRecords": records}]}]}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A workbench (no tokens: loopback is admin) holding markup wherever text can go."""
    s = Served(tmp_path_factory.mktemp("sinks") / "sinks.duckdb", extra_args=("--no-demo",),
               ready_path="/control")
    url = s.url
    try:
        r = httpx.post(url + "/api/tests/reports", content=_junit(),
                       params={"project": PROJECT}, timeout=60)
        assert r.status_code == 200, r.text
        r = httpx.post(url + "/api/coverage/reports", content=_lcov(), timeout=60,
                       params={"project": PROJECT, "filename": "sinks.lcov"})
        assert r.status_code == 200, r.text
        r = httpx.post(url + "/v1/logs", json=_logs(), timeout=60)
        assert r.status_code == 200, r.text
        # Agents to start from the page (each start is a notification with its name).
        for p in (IMG, SVG, TICKS):
            _agent(url, {"name": f"{p}agent", "backend": "process", "command": "sleep 30",
                         "labels": [p], "project": PROJECT})
        # A rule named with markup, and an agent that fails at once: an alert whose title
        # is its name, and whose evidence is what it said.
        r = httpx.post(url + "/api/alert-rules", timeout=30, json={
            "name": f"{SVG}rule", "kind": "state", "states": ["error"]})
        assert r.status_code in (200, 201), r.text
        failing = _agent(url, {"name": f"{SCRIPT}failing", "backend": "process",
                               "command": ["sh", "-c", f"echo '{IMG}' >&2; exit 3"]})
        r = httpx.post(f"{url}/api/agents/{failing['id']}/start", timeout=30)
        assert r.status_code == 200, r.text
        # A task no agent takes (no agent has its label): it stays queued, shown.
        r = httpx.post(url + "/api/tasks", timeout=30, json={
            "prompt": f"fix {IMG} and {TICKS}", "labels": [f"{SCRIPT}nobody"],
            "project": PROJECT})
        assert r.status_code in (200, 201), r.text
    except BaseException:
        s.stop()
        raise
    yield s
    for a in httpx.get(url + "/api/agents", timeout=30).json()["agents"]:
        if a["state"] in ("running", "starting", "paused"):
            httpx.post(f"{url}/api/agents/{a['id']}/stop", timeout=30)
    s.stop()


#: The page's visible text, shadow roots included (Panel renders into them, and an
#: element's innerText leaves its descendants' shadow roots out).
_DEEP_TEXT = """() => {
  const parts = []
  const visit = (root) => {
    for (const el of root.querySelectorAll("*")) { if (el.shadowRoot) visit(el.shadowRoot) }
    const kids = root === document ? [document.body] : [...root.children]
    for (const k of kids) { if (k.innerText) parts.push(k.innerText) }
  }
  visit(document)
  return parts.join("\\n")
}"""


#: The text of each notification not collected before (each is marked as collected).
_NEW_TOASTS = """() => {
  const found = []
  const visit = (root) => {
    for (const el of root.querySelectorAll("*")) {
      if (el.shadowRoot) visit(el.shadowRoot)
      if (el.classList.contains("notyf__toast") && !el.dataset.seen) {
        el.dataset.seen = "1"
        const message = el.querySelector(".notyf__message")
        found.push(message ? message.innerText : "")
      }
    }
  }
  visit(document)
  return found
}"""


class Sweep:
    """One browser page: what ran, what was notified, what the page showed."""

    def __init__(self, page, output_dir):
        self.page, self.dir = page, output_dir
        self.notes: list[str] = []
        self.texts: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def shows(self, text: str, timeout: float = 60_000):
        """Wait until ``text`` is on the page, as text."""
        self.page.get_by_text(text, exact=False).first.wait_for(timeout=timeout)

    def tab(self, name: str) -> None:
        """Open a tab, as a person would: once more if it did not open. (A click right
        after one that makes the server switch tabs, a row opening its project, lost to
        that switch when it arrived late on a loaded CI machine.)"""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        for _ in range(3):
            self.page.locator(".bk-tab", has_text=name).first.click()
            try:
                self.page.locator(".bk-tab.bk-active", has_text=name).first.wait_for(
                    timeout=5_000)
                self.page.wait_for_timeout(800)
                if self.page.locator(".bk-tab.bk-active", has_text=name).count():
                    return
            except PlaywrightTimeout:
                pass
        raise AssertionError(f"the {name!r} tab did not open")

    def look(self, shot: str) -> None:
        """Keep what the page shows now (text and a screenshot)."""
        self.texts.append(self.page.evaluate(_DEEP_TEXT))
        self.page.screenshot(path=str(self.dir / f"{shot}.png"), full_page=True)

    def notified(self, timeout: float = 15) -> None:
        """Wait for a new notification; keep the text of every new one."""
        deadline = time.monotonic() + timeout
        while not (new := self.page.evaluate(_NEW_TOASTS)):
            assert time.monotonic() < deadline, "no notification appeared"
            self.page.wait_for_timeout(100)
        self.notes.extend(new)

    def hover(self, locator, shot: str) -> str:
        """Hover over ``locator``'s middle; the tooltips' text (Bokeh's)."""
        box = locator.bounding_box()
        if box is None:
            return ""
        texts = []
        for fx, fy in ((0.5, 0.5), (0.25, 0.3), (0.75, 0.6), (0.15, 0.8)):
            self.page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
            self.page.wait_for_timeout(400)
            texts += self.page.locator(".bk-tooltip-content").all_inner_texts()
        self.page.screenshot(path=str(self.dir / f"{shot}.png"), full_page=True)
        self.texts.append(" ".join(texts))
        return " ".join(texts)

    def check(self, *expected: str) -> None:
        """Nothing ran; no element of a payload exists; each of ``expected`` was shown
        literally somewhere (page text, a notification or a tooltip)."""
        ran = self.page.evaluate("window.__xss")
        assert ran is None, f"markup from data ran {ran} time(s); notifications: {self.notes}"
        injected = self.page.locator("img[src='x'], svg[onload], script:text('__xss')")
        assert injected.count() == 0, "an element of a payload is in the page"
        assert self.dialogs == []
        shown = "\n".join(self.texts + self.notes)
        missing = [t for t in expected if t not in shown]
        assert not missing, f"not shown as text: {missing}"
        assert self.errors == [], self.errors


def _browser(p, chromium):
    browser = p.chromium.launch(executable_path=chromium, args=ARGS)
    return browser, browser.new_page(viewport={"width": 1440, "height": 1000})


@pytest.mark.browser
def test_control_page_notifications_cards_alerts_and_tasks(served, chromium, output_dir):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser, page = _browser(p, chromium)
        s = Sweep(page, output_dir)
        page.goto(served.url + "/control")
        for name in (f"{IMG}agent", f"{SVG}agent", f"{TICKS}agent", f"{SCRIPT}failing"):
            s.shows(name)
        s.look("1-fleet")
        # Start each idle agent from its card: each start is a notification naming it.
        for p in (IMG, SVG, TICKS):
            # (the card is the innermost column with the name: the last in document order)
            card = page.locator(".bk-panel-models-layout-Column").filter(
                has_text=f"{p}agent").last
            card.get_by_role("button", name="Start", exact=True).click()
            s.notified()
            card.get_by_role("button", name="Pause", exact=True).wait_for()
        s.look("2-started")
        # Define one from the form: its notification names it too, and it opens.
        s.tab("New agent")
        page.get_by_placeholder("e.g. nightly-fixer").fill(f"{SCRIPT}form")
        page.get_by_placeholder("python agent.py --task x").fill("sleep 30")
        page.get_by_role("button", name="Create agent").click()
        s.notified()
        s.shows("idle → starting")
        s.look("3-detail")
        s.hover(page.locator(".bk-Figure").first, "4-detail-timeline-hover")
        s.tab("Alerts")
        s.shows(f"{SCRIPT}failing is error")
        s.look("5-alerts")
        s.tab("Tasks")
        s.shows(f"fix {IMG}")
        s.look("6-tasks")
        s.tab("Audit")
        s.shows("start")
        s.look("7-audit")
        s.check(f"start: {IMG}agent", f"start: {SVG}agent", f"start: {TICKS}agent",
                f"{SCRIPT}form: ", f"{SCRIPT}failing", f"rule {SVG}rule", f"fix {IMG} and")
        browser.close()


@pytest.mark.browser
def test_agents_page_tables_sessions_logs_and_chart_tooltips(served, chromium, output_dir):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser, page = _browser(p, chromium)
        s = Sweep(page, output_dir)
        page.goto(served.url + "/agents")
        s.shows(f"s0{IMG}")
        page.wait_for_timeout(1000)
        s.look("1-agents")
        # The tokens chart is HTML: each bar's tooltip is its title, shown as text.
        page.locator(".sb-c").first.hover()
        tips = " ".join(page.locator(".sb-c").evaluate_all("els => els.map(e => e.title)"))
        s.texts.append(tips)
        s.look("2-tokens-hover")
        s.tab("Logs")
        s.shows(f"body {SVG}")
        s.look("3-logs")
        s.tab("Timeline")
        page.wait_for_timeout(1500)
        s.hover(page.locator(".bk-Figure").first, "4-timeline-hover")
        s.check(f"s0{IMG}", f"s1{SCRIPT}", f"s3{TICKS}", f"{SVG}agent", f"body {IMG}",
                f"body {TICKS}")
        assert f"{SVG}agent" in tips, tips  # the bar's tooltip names the agent, as text
        browser.close()


@pytest.mark.browser
def test_tests_page_runs_failures_clusters_and_test_detail(served, chromium, output_dir):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser, page = _browser(p, chromium)
        s = Sweep(page, output_dir)
        page.goto(served.url + "/tests")
        page.get_by_role("gridcell", name=PROJECT, exact=True).first.wait_for(timeout=60_000)
        s.look("1-runs")
        page.get_by_role("gridcell", name=PROJECT, exact=True).first.click()
        s.shows(f"x::t0 {IMG}")
        s.look("2-run-detail")
        page.get_by_role("gridcell", name=f"x::t3 {TICKS}", exact=True).first.click()
        s.shows(f"trace 3 {TICKS}")
        s.look("3-failure")
        s.tab("Failure clusters")
        page.locator(".tabulator-cell[tabulator-field='normalized']").filter(
            has_text="<script>").first.click()
        s.shows("Suspect frame")
        s.look("4-cluster")
        s.tab("Test detail")
        search = page.get_by_placeholder("type part of a test name…")
        search.fill("t2")  # (no key up after the text: the list must show without one)
        # The server sends the matching names; the list shows them without another key.
        page.locator(".bk-menu div", has_text=f"x::t2 {SVG}").first.wait_for(timeout=30_000)
        search.press("Enter")  # (the first match)
        s.shows("1 attempt in this window")  # (its one run: the report is sent once)
        s.look("5-test-detail")
        s.check(f"x::t0 {IMG}", f"x::t1 {SCRIPT}", f"x::t2 {SVG}", f"x::t3 {TICKS}",
                f"trace 3 {TICKS}", f"E1: {SCRIPT}", PROJECT, "<script>window.__xss")
        browser.close()


@pytest.mark.browser
def test_projects_page_project_coverage_map_and_file(served, chromium, output_dir):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser, page = _browser(p, chromium)
        s = Sweep(page, output_dir)
        page.goto(served.url + "/projects")
        page.get_by_role("gridcell", name=PROJECT, exact=True).first.wait_for(timeout=60_000)
        s.look("1-projects")
        page.get_by_role("gridcell", name=PROJECT, exact=True).first.click()
        s.shows("Commits")
        s.look("2-project")
        s.tab("Coverage map")
        s.shows(f"{TICKS}2.py")
        page.wait_for_timeout(1000)
        s.look("3-coverage-map")
        tips = s.hover(page.locator(".bk-Figure").first, "4-coverage-map-hover")
        page.get_by_role("gridcell", name=f"{TICKS}2.py", exact=True).first.click()
        s.shows("tests ran lines of it")
        page.locator(".tabulator-cell[tabulator-field='line']").get_by_text(
            "2", exact=True).first.click()
        s.shows("ran line 2")
        s.look("5-file")
        s.check(PROJECT, f"{IMG}0.py", f"{SVG}1.py", f"{TICKS}2.py", f"of {TICKS}2.py")
        assert any(f"{i}.py" in tips for i in range(3)), tips  # a tile's tooltip
        browser.close()


# -- unit: the escape, and what each sink-building function makes of a payload ------------


def _no_markup(html: str) -> None:
    """No payload's markup survives in ``html`` (only its escaped text)."""
    for bad in ("<img", "<script", "<svg", 'onerror="', 'onload="'):
        assert bad not in html, (bad, html)


def test_escape_is_text_in_elements_and_attributes():
    from workbench.views.escape import escape

    for p in PAYLOADS:
        out = escape(p)
        _no_markup(out)
        assert "<" not in out and ">" not in out and '"' not in out and "'" not in out
    assert escape("a & b") == "a &amp; b"
    assert escape(None) == "" and escape(float("nan")) == "" and escape(pd.NA) == ""
    assert escape(3) == "3" and escape(1.5) == "1.5"
    import html

    assert html.unescape(escape(IMG)) == IMG  # shown as it was sent


def test_notifications_are_escaped_text(monkeypatch):
    from workbench.views import notify

    sent: list[tuple[str, str]] = []

    class Area:
        def send(self, message, duration=3000, type=None):
            sent.append((type, message))

    monkeypatch.setattr(notify, "_area", lambda: Area())
    notify.notify(f"start: {IMG}agent")
    assert notify.attempt(lambda: 7, ok=f"{SVG}: running") == 7

    def refuse():
        raise ValueError(f"cannot start {SCRIPT}" + "x" * 400)

    assert notify.attempt(refuse, ok="never") is None
    assert [t for t, _ in sent] == ["success", "success", "error"]
    for _, message in sent:
        _no_markup(message)
    assert sent[0][1] == notify.notification_text(f"start: {IMG}agent")
    import html

    assert html.unescape(sent[0][1]) == f"start: {IMG}agent"
    assert len(html.unescape(sent[2][1])) <= 300  # cut before escaping: no broken entity


def test_html_tables_and_paged_tables_escape_values_headers_and_titles():
    from workbench.views.common import empty_html, html_table
    from workbench.views.paged_table import PagedTable

    frame = pd.DataFrame({"agent": list(PAYLOADS), IMG: [1, 2, 3, 4],
                          "message": [p * 3 for p in PAYLOADS]})
    _no_markup(html_table(frame))
    assert "&lt;img src=x" in html_table(frame)
    _no_markup(empty_html(SCRIPT))
    table = PagedTable("agent")
    table.value = frame
    _no_markup(table.html)
    assert table.html.count('data-open="') == 4


def test_html_bar_charts_escape_categories_legend_title_and_tooltips():
    from workbench.views.stacked_bars import StackedBars

    bars = StackedBars("agent", {"input": "#3b7dd8", "other": "#2e9e5b"}, SVG, "", 200,
                       extra=("note",), ylabel=TICKS, labels={"input": IMG, "other": SCRIPT},
                       on_tap=lambda _: None)
    bars.send(pd.DataFrame({"agent": list(PAYLOADS), "input": [1.0, 2.0, 3.0, 4.0],
                            "other": [1.0, 1.0, 1.0, 1.0], "note": list(PAYLOADS)}))
    _no_markup(bars.html)
    assert bars.html.count('data-open="') == 4 and "&lt;img src=x" in bars.html


def test_text_panes_badges_strips_and_cards_escape():
    from workbench.views.common import _card, empty, pre, strip_html
    from workbench.views.control import FleetBoard, state_badge
    from workbench.views.coverage_map import _line_html, _status_html

    for p in PAYLOADS:
        _no_markup(pre(p).object)
        _no_markup(_card(p, p, "#000"))
        _no_markup(strip_html([p, "passed"]))
        _no_markup(state_badge(p))
        _no_markup(_line_html(p, "hit") + _status_html(p))
        _no_markup(empty(p).object)
    agent = {"id": "ag-1", "name": IMG, "backend": "process", "project": SVG,
             "state": "running", "last_event": {"text": SCRIPT}, "last_error": TICKS,
             "pid": 1, "cost_usd": 0.0, "pending_approvals": 0}
    head = FleetBoard(model=None)._head(agent)
    _no_markup(head)
    from workbench.views.escape import escape

    assert all(escape(p) in head for p in PAYLOADS)  # each shown, as text


def test_views_that_show_data_in_html_escape_it():
    """The panes built from one row of data (the alert, the approval, the run's cause)."""
    import panel as pn

    from workbench.views.control import ApprovalsInbox
    from workbench.views.work import AlertsView

    class Model:
        def may(self, _action):
            return False

        def alerts(self, _state):
            return [alert]

        def alerts_frame(self, alerts):
            return pd.DataFrame([{"id": a["id"], "title": a["title"]} for a in alerts],
                                columns=["id", "title"])

        def rules(self):
            return pd.DataFrame([{"name": SVG, "kind": "state"}])

    alert = {"id": "al-1", "title": IMG, "severity": "critical", "rule_name": SVG,
             "agent_name": SCRIPT, "agent_id": "ag-1", "fired_at": "2025-01-01T00:00:00",
             "state": "firing", "acked_by": TICKS, "resolved_by": None,
             "actions": [IMG], "evidence": [{"text": SCRIPT}]}
    view = AlertsView(model=Model())
    view.refresh()
    panes = [o for o in view._detail.objects if isinstance(o, pn.pane.HTML)]
    for pane in panes:
        _no_markup(pane.object)
    assert "&lt;img src=x" in panes[0].object
    approval = {"id": "ap-1", "created_at": "2025-01-01T00:00:00", "tool": SVG,
                "project": IMG, "session_id": TICKS, "reason": SCRIPT, "text": IMG}
    card = ApprovalsInbox(model=Model())._card(approval, IMG)
    _no_markup(card[0].object)
    _no_markup(card[1].object)


def test_the_notification_helper_is_its_own_module():
    """control.py and work.py both notify through :mod:`.notify`: work.py no longer takes
    control.py's helper, so control.py can import work.py's views at the top."""
    from pathlib import Path

    import workbench.views.work as work
    from workbench.views import control, notify

    assert "from .control" not in Path(work.__file__).read_text()
    assert control.AlertsView is work.AlertsView and work.attempt is notify.attempt
