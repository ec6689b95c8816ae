"""A plugin in a package of its own (tests/plugin_sample), installed into a virtual
environment beside the workbench, adds a report format, an alert action, a webhook format,
an export target and a dashboard tab without touching the workbench's code; its broken
entry point is reported and skipped, and the server serves on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import httpx
import pytest

from .conftest import ROLE_ENV, ROOT, TOKENS, Served, page_log_in, wait_for

pytestmark = pytest.mark.slow
SAMPLE = Path(__file__).parent / "plugin_sample"


@pytest.fixture(scope="module")
def plugged(tmp_path_factory) -> Path:
    """A venv that sees this interpreter's packages (the workbench among them) and holds
    the sample plugin, installed the way a user would (pip, from its folder)."""
    home = tmp_path_factory.mktemp("plugged")
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(home / "venv")
    python = home / "venv" / "bin" / "python"
    src = home / "src"
    shutil.copytree(SAMPLE, src)
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                           "--quiet", "--no-deps", "--no-build-isolation", str(src)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return python


def cli(python: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-m", "workbench.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, **(env or {})}, timeout=300)


def test_a_plugin_package_extends_the_workbench(plugged, tmp_path, chromium, output_dir):
    # The report comes from its real producer: node's own test runner, TAP reporter.
    project = tmp_path / "js"
    project.mkdir()
    (project / "math.test.mjs").write_text(
        "import test from 'node:test';\nimport assert from 'node:assert';\n"
        "test('adds', () => assert.strictEqual(1 + 1, 2));\n"
        "test('fails', () => assert.strictEqual(1 + 1, 3));\n"
        "test('later', { skip: 'not today' }, () => {});\n"
        "test('group', async (t) => { await t.test('inner', () => {}); });\n")
    tap = subprocess.run(["node", "--test", "--test-reporter=tap"], cwd=project,
                         capture_output=True, text=True)
    report = tmp_path / "node.tap"
    report.write_text(tap.stdout)
    assert tap.stdout.startswith("TAP version")

    listed = cli(plugged, "plugins", "--json")
    found = {p["name"]: p for p in json.loads(listed.stdout)}
    assert listed.returncode == 1  # (one plugin is broken: said, in the exit status too)
    assert {n for n, p in found.items() if p["loaded"]} == {
        "tap", "append-to-file", "teams", "runs-jsonl", "tap-summary"}
    assert "ModuleNotFoundError" in found["broken"]["error"]
    assert found["tap"]["package"] == "observatory-sample-plugin"

    db = tmp_path / "p.duckdb"
    stored = cli(plugged, "ingest", "tests", str(report), "--db", str(db), "--project", "js",
                 "--json")
    assert stored.returncode == 0, stored.stderr
    run = json.loads(stored.stdout)
    assert (run["tests"], run["passed"], run["failed"], run["skipped"]) == (4, 2, 1, 1)
    # Without the plugin, the same workbench does not know the format.
    plain = subprocess.run([sys.executable, "-m", "workbench.cli", "ingest", "tests",
                            str(report), "--db", str(tmp_path / "plain.duckdb")],
                           capture_output=True, text=True, cwd=ROOT)
    assert plain.returncode != 0 and "not a recognised test report" in plain.stderr
    out = tmp_path / "runs.jsonl"
    exported = cli(plugged, "export", "--db", str(db), "--target", f"runs-jsonl={out}")
    assert exported.returncode == 0, exported.stderr
    assert [json.loads(x)["format"] for x in out.read_text().splitlines()] == ["tap"]
    unknown = cli(plugged, "export", "--db", str(db), "--target", "nope=x")
    assert unknown.returncode == 2 and "no export target 'nope'" in unknown.stderr

    alerts = tmp_path / "alerts.jsonl"
    served = Served(db, env={**ROLE_ENV, "SAMPLE_PLUGIN_ALERTS": str(alerts)},
                    argv=[str(plugged), "-m", "workbench.cli", "serve", "--address",
                          "127.0.0.1", "--port", "{port}", "--db", str(db), "--no-demo"])
    try:
        admin = httpx.Client(base_url=served.url, timeout=30,
                             headers={"Authorization": f"Bearer {TOKENS['admin']}"})
        plugins = admin.get("/api/plugins").json()["plugins"]
        assert {p["name"] for p in plugins if not p["loaded"]} == {"broken"}
        assert "plugin(s) skipped: broken" in served.log.read_text()
        # A rule with the plugin's action fires it (a storage rule: it always fires here).
        rule = {"rule_id": "plug", "name": "plugin action", "kind": "storage",
                "metric": "disk_free_percent", "threshold": 100.5,
                "actions": ["notify", "append-to-file"]}
        r = admin.put("/api/alert-rules/plug", json=rule)
        assert r.status_code == 200, r.text
        bad = admin.put("/api/alert-rules/plug", json={**rule, "actions": ["broken"]})
        assert bad.status_code == 400
        assert admin.post("/api/store/retention/run", json={}).status_code == 200
        got = wait_for(lambda: alerts.exists() and alerts.read_text().splitlines(),
                       what="the plugin's action")
        assert json.loads(got[0])["rule_id"] == "plug"
        # The plugin's webhook format is one a webhook may name.
        r = admin.post("/api/webhooks", json={"url": "http://192.0.2.1/hook",
                                              "secret": "s" * 12, "format": "teams"})
        assert r.status_code in (200, 201), r.text
        r = admin.post("/api/webhooks", json={"url": "http://192.0.2.1/hook",
                                              "secret": "s" * 12, "format": "broken"})
        assert r.status_code == 400
        # The plugin's tab is on the Tests page (its title is in the page's document).
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium,
                                        args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page_log_in(page, served.url, "admin")
            page.goto(served.url + "/tests")
            page.get_by_text("TAP runs", exact=True).click(timeout=60_000)
            page.get_by_text("1 TAP runs").wait_for(timeout=30_000)
            page.screenshot(path=output_dir / "plugin-tab.png")
            browser.close()
        admin.close()
    finally:
        served.stop()
