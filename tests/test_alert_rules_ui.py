"""Alert rules, everywhere the API has them (issue 21, item 9): the preview — a pure
function over stored events and samples, and ``POST /api/alert-preview`` (viewers; changes
nothing) over a real server's day — the rules section of the control page's Alerts tab in
headless Chromium (an admin creates, edits, disables, previews and deletes a rule; a
viewer previews, and its change buttons are disabled), and ``observatory alerts rules …``
and ``observatory agents add --label`` against the same server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pandas as pd
import pytest

from workbench.analysis.alert_preview import preview
from workbench.control.alerts import AlertRule, check_rule

from .conftest import ROLE_ENV, TOKENS, Served, page_log_in, role_client, wait_for

# real processes (a served workbench, agents, pytest, kernels): not in the quick part
pytestmark = pytest.mark.slow

ARGS = ["--no-sandbox", "--disable-gpu"]
AGENTS = pd.DataFrame({"agent_id": ["a1", "a2"], "name": ["web-1", "db-1"]})
NONE = pd.DataFrame(columns=["agent_id", "t"])


def rule(**fields) -> dict:
    return check_rule({"name": "r", **fields})


def events(rows: list[tuple]) -> pd.DataFrame:
    """(agent_id, t, kind, data) rows as the store gives them (data as JSON text)."""
    return pd.DataFrame([{"agent_id": a, "t": float(t), "kind": k, "state": "running",
                          "text": f"{k} at {t}", "data": json.dumps(d)} for a, t, k, d in rows])


def fired(r: dict, ev=NONE, samples=NONE, quiet=NONE, end=10_000.0,
          agents=AGENTS) -> pd.DataFrame:
    from workbench.analysis.alert_preview import watched

    return preview(r, watched(r, agents), ev, samples, quiet, end)


def test_preview_state_and_loop_from_events():
    ev = events([("a1", 10, "state", {"to": "error", "error": "exit status 3"}),
                 ("a1", 20, "state", {"to": "running"}),
                 ("a1", 30, "state", {"to": "lost"}),
                 ("a2", 40, "state", {"to": "error"})])
    got = fired(rule(kind="state", states=["error", "lost"], agents="web-*"), ev)
    assert got["title"].tolist() == ["web-1 is lost", "web-1 is error: exit status 3"]
    assert got["at"].tolist() == [30.0, 10.0]  # newest first
    call = {"tool": "Bash", "input": {"command": "ls"}}
    loop = [("a1", t, "tool_use", call) for t in (0, 10, 20, 30, 40, 50)]  # 6 in a minute
    loop += [("a1", 25, "tool_use", {"tool": "Bash", "input": {"command": "pwd"}})]
    loop += [("a1", t, "tool_use", call) for t in (2000, 2001, 2002, 2003, 2004)]  # again
    got = fired(rule(kind="loop", count=5, window_s=600), events(sorted(
        loop, key=lambda r: r[1])))
    assert got["at"].tolist() == [2004.0, 40.0]  # each run of repeats once, at its 5th
    assert got["title"].iloc[1].startswith("web-1 made the same tool call 5 times in 600 s")


def test_preview_stale_and_thresholds():
    quiet = pd.DataFrame({"agent_id": ["a1", "a1", "a2"], "t": [100.0, 500.0, 100.0],
                          "until": [400.0, float("nan"), 900.0]})
    got = fired(rule(kind="stale", minutes=1, agents="web-*"), quiet=quiet, end=530.0)
    assert got["title"].tolist() == ["web-1 was silent for 5.0 minutes while running"]
    assert got["at"].tolist() == [160.0]
    ongoing = fired(rule(kind="stale", minutes=1, agents="web-*"), quiet=quiet, end=900.0)
    assert ongoing["title"].iloc[0].endswith("while running (and still is)")
    # CPU: 10 % for two minutes, 90 % for one, 10 % again; the window's mean crosses 50 %
    # once, half a window into the busy minute.
    t = range(300)
    samples = pd.DataFrame({"agent_id": "a1", "t": [float(x) for x in t], "n": 1,
                            "cpu": [90.0 if 120 <= x < 180 else 10.0 for x in t],
                            "rss_mb": 100.0})
    got = fired(rule(kind="threshold", metric="cpu_percent", threshold=50, window_s=60,
                     count=5), samples=samples)
    assert len(got) == 1 and 145 <= got["at"].iloc[0] <= 155
    assert got["title"].iloc[0].startswith("web-1: cpu_percent ")
    assert fired(rule(kind="threshold", metric="rss_mb", threshold=100, window_s=60,
                      count=5), samples=samples).empty  # (100 is not above 100)
    results = events([("a1", t, "tool_result", {"is_error": t >= 50}) for t in range(0, 100, 5)])
    got = fired(rule(kind="threshold", metric="tool_failure_rate", threshold=0.5,
                     window_s=30, count=4), results)
    assert len(got) == 1 and got["at"].iloc[0] == 65.0
    usage = events([("a2", t, "result", {"usage": {"input_tokens": 600, "output_tokens": 400},
                                         "total_cost_usd": t / 100}) for t in (0, 30, 60)])
    got = fired(rule(kind="threshold", metric="tokens_per_minute", threshold=1500,
                     window_s=60, agents="db-*"), usage)
    assert got["at"].tolist() == [30.0]  # 2,000 tokens in the minute
    # titles in the metric's unit, never `.4g` (`1.8e+01`)
    assert got["title"].tolist() == ["db-1: tokens_per_minute 2,000 tokens/min > "
                                     "1,500 tokens/min"]
    spend = fired(rule(kind="threshold", metric="cost_per_hour", threshold=10, window_s=60,
                       agents="db-*"), usage)
    assert spend["at"].tolist() == [30.0]  # $0.30 in a minute: $18 an hour
    assert spend["title"].tolist() == ["db-1: cost_per_hour $18.00/h > $10.00/h"]
    assert fired(rule(kind="test_health"), usage).empty


def test_the_cli_options_are_the_rule_class():
    """``alerts rules`` takes every field of AlertRule, with the same choices (the CLI
    declares them itself, so that --help does not import the control plane)."""
    from workbench.cli import RULE_OPTIONS

    fields = [n for n in AlertRule.param if n not in ("name", "enabled")]
    assert sorted(RULE_OPTIONS) == sorted(fields)
    for name, (kind, many, _help) in RULE_OPTIONS.items():
        objects = getattr(AlertRule.param[name], "objects", None)
        if objects:
            assert list(kind) == list(objects), name
            assert many == isinstance(AlertRule.param[name].default, list), name


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    s = Served(tmp_path_factory.mktemp("rules-ui") / "r.duckdb",
               env={**ROLE_ENV, "OBSERVATORY_NO_DEMO": "1"}, ready_path="/login")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def history(served):
    """A day with something in it: ``pv-err`` errs out twice; ``pv-quiet`` prints, is
    silent 2 s while running, and completes; ``pv-busy`` spins a CPU for 3 s."""
    with role_client(served, "admin") as c:
        made = {}
        for name, code in (
                ("pv-err", "print('boom'); raise SystemExit(3)"),
                ("pv-quiet", "import time; print('hello', flush=True); time.sleep(2)"),
                ("pv-busy", "import time\nend = time.time() + 3\nwhile time.time() < end: pass")):
            made[name] = c.post("/api/agents", json={
                "name": name, "backend": "process",
                "command": [sys.executable, "-c", code]}).json()["agent"]
        for name in ("pv-err", "pv-quiet", "pv-busy"):
            c.post(f"/api/agents/{made[name]['id']}/start")
        done = {"error", "completed"}
        until(lambda: all(c.get(f"/api/agents/{a['id']}").json()["agent"]["state"] in done
                          for a in made.values()), what="the first runs")
        c.post(f"/api/agents/{made['pv-err']['id']}/start")
        until(lambda: len([e for e in c.get(f"/api/agents/{made['pv-err']['id']}").json()[
            "events"] if e["kind"] == "state" and e["data"]["to"] == "error"]) == 2,
              what="the second error")
    return made


def until(fn, timeout: float = 20, what: str = ""):
    return wait_for(fn, timeout, what, every=0.1)


def test_preview_over_http_reads_the_stored_day_and_changes_nothing(served, history):
    with role_client(served, "admin") as admin, role_client(served, "viewer") as viewer:
        rules_before = admin.get("/api/alert-rules").json()["rules"]
        alerts_before = admin.get("/api/alerts").json()["alerts"]
        r = viewer.post("/api/alert-preview", json={"kind": "state", "states": ["error"],
                                                     "agents": "pv-*"})
        assert r.status_code == 200, r.text
        got = r.json()["preview"]
        assert got["count"] == 2 and got["agents"] == ["pv-err", "pv-quiet", "pv-busy"]
        assert [f["agent"] for f in got["fired"]] == ["pv-err", "pv-err"]
        assert got["fired"][0]["at"] > got["fired"][1]["at"]  # newest first
        assert "exit status 3; last output: boom" in got["fired"][0]["title"]
        stale = viewer.post("/api/alert-preview", json={
            "kind": "stale", "minutes": 0.02, "agents": "pv-quiet"}).json()["preview"]
        assert stale["count"] == 1 and "while running" in stale["fired"][0]["title"]
        assert "(and still is)" not in stale["fired"][0]["title"]  # it completed
        busy = viewer.post("/api/alert-preview", json={
            "kind": "threshold", "metric": "cpu_percent", "threshold": 20, "window_s": 2,
            "count": 1, "agents": "pv-*"}).json()["preview"]
        assert busy["count"] >= 1 and {f["agent"] for f in busy["fired"]} == {"pv-busy"}
        health = viewer.post("/api/alert-preview", json={"kind": "test_health"}).json()
        assert health["preview"]["count"] == 0 and "not previewed" in health["preview"]["note"]
        bad = viewer.post("/api/alert-preview", json={"kind": "telepathy"})
        assert bad.status_code == 400 and "kind" in bad.json()["error"]
        bad = viewer.post("/api/alert-preview", json={"kind": "stale", "minutes": -1})
        assert bad.status_code == 400 and "minutes" in bad.json()["error"]
        with role_client(served, "ingest") as ingest:
            assert ingest.post("/api/alert-preview", json={}).status_code == 403
        # Nothing was stored, fired or audited by the previews.
        assert admin.get("/api/alert-rules").json()["rules"] == rules_before
        assert admin.get("/api/alerts").json()["alerts"] == alerts_before
        audit = admin.get("/api/audit", params={"limit": 2000}).json()["audit"]
        assert not [a for a in audit if "preview" in a["action"] and a["outcome"] == "ok"]


def observatory(*args: str, role: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], capture_output=True,
                          text=True, timeout=60,
                          env={**os.environ, "OBSERVATORY_TOKEN": TOKENS[role]})


def test_cli_alerts_rules_and_agent_labels(served, history):
    url = ("--url", served.url)
    add = observatory("alerts", "rules", "add", "errors of pv", "--rule-id", "pv-errors",
                      "--kind", "state", "--states", "error", "lost", "--agents", "pv-*",
                      "--actions", "notify", "--json", *url, role="admin")
    assert add.returncode == 0, add.stderr
    assert json.loads(add.stdout)["states"] == ["error", "lost"]
    listed = observatory("alerts", "rules", "list", *url, role="viewer")
    assert listed.returncode == 0
    line = next(x for x in listed.stdout.splitlines() if x.startswith("pv-errors"))
    assert re.search(r"pv-errors\s+on\s+state\s+pv-\*\s+warning\s+notify\s+errors of pv",
                     line), line
    edit = observatory("alerts", "rules", "edit", "pv-errors", "--severity", "critical",
                       "--name", "pv errors", "--json", *url, role="admin")
    assert edit.returncode == 0, edit.stderr
    edited = json.loads(edit.stdout)
    assert edited["severity"] == "critical" and edited["name"] == "pv errors"
    assert edited["states"] == ["error", "lost"]  # the other fields stay
    off = observatory("alerts", "rules", "disable", "pv-errors", "--json", *url, role="admin")
    assert off.returncode == 0 and json.loads(off.stdout)["enabled"] is False
    on = observatory("alerts", "rules", "enable", "pv-errors", "--json", *url, role="admin")
    assert on.returncode == 0 and json.loads(on.stdout)["enabled"] is True
    shown = observatory("alerts", "rules", "preview", "pv-errors", *url, role="viewer")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.strip().splitlines()
    assert len(lines) == 3 and all("pv-err" in x and "exit status 3" in x for x in lines[:2])
    assert lines[-1].startswith("2 firing(s) from ") and "over 3 agent(s)" in lines[-1]
    fresh = observatory("alerts", "rules", "preview", "--kind", "stale", "--minutes", "0.02",
                        "--agents", "pv-quiet", "--json", *url, role="viewer")
    assert fresh.returncode == 0 and json.loads(fresh.stdout)["count"] == 1
    refused = observatory("alerts", "rules", "delete", "pv-errors", *url, role="operator")
    assert refused.returncode == 1 and "403" in refused.stderr and "admin" in refused.stderr
    gone = observatory("alerts", "rules", "delete", "pv-errors", *url, role="admin")
    assert gone.returncode == 0 and gone.stdout.strip() == "pv-errors  deleted"
    missing = observatory("alerts", "rules", "enable", "pv-errors", *url, role="admin")
    assert missing.returncode == 1 and "no alert rule 'pv-errors'" in missing.stderr
    worker = observatory("agents", "add", "labelled", "--label", "py", "--label", "fast",
                         "--spec", '{"labels": ["first"]}', "--json", *url, role="operator")
    assert worker.returncode == 0, worker.stderr
    assert json.loads(worker.stdout)["labels"] == ["first", "py", "fast"]


def rules_tab(page, url: str) -> None:
    page.goto(url)
    page.locator(".bk-tab").get_by_text("Alerts", exact=True).click()
    # (a rule by its name; its id is the cell's tooltip)
    page.get_by_role("gridcell", name="agent error or lost").first.wait_for(timeout=30_000)


def manage_a_rule(browser, served, api, theme: str, output_dir) -> None:
    """As an admin in ``theme``: a new rule from the form, previewed, edited, disabled and
    deleted, each checked against the API."""
    def stored() -> dict:
        return {r["rule_id"]: r for r in api.get("/api/alert-rules").json()["rules"]}

    page = browser.new_page(viewport={"width": 1440, "height": 900})
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(
        (served.url, "data:", "blob:")) else None)
    page_log_in(page, served.url, "admin")
    rules_tab(page, served.url + f"/control?theme={theme}")
    rule_id = f"ui-{theme}"
    # New: a state rule on the pv agents, from the form built from AlertRule.
    page.get_by_role("button", name="New rule").click()
    page.get_by_placeholder("what people read").fill(f"pv errors ({theme})")
    page.get_by_placeholder("(made for you)").fill(rule_id)
    page.get_by_label("agents", exact=True).fill("pv-*")
    assert not page.get_by_label("minutes", exact=True).is_visible()  # (stale, stall)
    page.get_by_role("button", name="Save rule").click()
    until(lambda: rule_id in stored(), what="the new rule")
    made = stored()[rule_id]
    assert (made["kind"], made["agents"], made["states"]) == ("state", "pv-*",
                                                                ["error", "lost"])
    assert made["name"] == f"pv errors ({theme})" and made["enabled"] is True
    page.get_by_text(f"Edit pv errors ({theme})").wait_for()
    # Preview: what it would have fired on in the last day.
    page.get_by_role("button", name="Preview (last day)").click()
    page.get_by_text("2 firing(s)").wait_for(timeout=15_000)
    box = page.locator("div.bk-panel-models-layout-Column",
                       has=page.get_by_text("2 firing(s)")).last
    assert box.get_by_role("gridcell", name=re.compile(
        "pv-err is error: exit status 3")).count() == 2
    page.get_by_text("2 firing(s)").scroll_into_view_if_needed()
    page.screenshot(path=str(output_dir / f"preview-{theme}.png"))
    # Edit: another kind shows its own fields; saved under the same id.
    page.get_by_label("kind", exact=True).select_option("stale")
    page.get_by_label("minutes", exact=True).fill("30")
    page.get_by_label("minutes", exact=True).press("Enter")
    page.get_by_role("button", name="Save rule").click()
    until(lambda: stored()[rule_id]["kind"] == "stale" and stored()[rule_id]["minutes"] == 30,
          what="the edit")
    page.get_by_role("gridcell", name=f"pv errors ({theme})", exact=True).click()
    page.get_by_role("button", name="Disable").click()
    until(lambda: stored()[rule_id]["enabled"] is False, what="disabled")
    page.get_by_role("button", name="Enable").wait_for()
    page.get_by_role("gridcell", name=f"pv errors ({theme})",
                     exact=True).scroll_into_view_if_needed()
    page.screenshot(path=str(output_dir / f"rules-{theme}.png"))
    page.get_by_role("button", name="Delete").click()
    assert rule_id in stored()  # the first click only asks
    page.get_by_role("button", name="Really delete?").click()
    until(lambda: rule_id not in stored(), what="deleted")
    assert [a for a in api.get("/api/audit").json()["audit"]
            if a["action"] == "rules" and a["target"] == rule_id and a["who"] != "-"]
    assert outside == []
    page.close()


def test_alert_rules_on_the_alerts_tab(served, history, chromium, output_dir):
    from playwright.sync_api import sync_playwright

    api = role_client(served, "admin")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        for theme in ("light", "dark"):
            manage_a_rule(browser, served, api, theme, output_dir)
        # A viewer: may preview, may not change (the buttons say so; the server checks).
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page_log_in(page, served.url, "viewer")
        rules_tab(page, served.url + "/control")
        # The rules table's cell: the alerts table above names the rule too, and may be
        # drawn before the rules table is, so "the last such cell" can be the alerts'.
        rules = page.locator('.tabulator:has(.tabulator-col[tabulator-field="enabled"])')
        rules.get_by_role("gridcell", name="agent error or lost").click()
        page.get_by_text("Changing rules is for admins").wait_for()
        assert page.get_by_role("button", name="Save rule").is_disabled()
        assert page.get_by_role("button", name="Disable").is_disabled()
        assert page.get_by_role("button", name="Delete").is_disabled()
        page.get_by_role("button", name="Preview (last day)").click()
        page.get_by_text("firing(s)").first.wait_for(timeout=15_000)
        page.screenshot(path=str(output_dir / "viewer.png"))
        browser.close()
    api.close()
