"""What would moving the pages onto panel-material-ui cost? The tests page as it is
(BootstrapTemplate + views.common.ThemedDesign) and the same page built with
panel-material-ui (pmui.Page, its Tabs, Select, RadioButtonGroup, IntSlider and Button over
the same model and views), served side by side by one ``panel serve`` on 127.0.0.1 over
the demo dataset, each loaded in headless Chromium in light and dark: requests, bytes
received (as sent), requests to other hosts, time until the first table has rows (median of
``--runs``), and a screenshot of each at 1440x900 (docs/images/toolkit-*.png).

panel-material-ui is not a dependency of the workbench: ``pip install panel-material-ui``
first (the script says so and stops otherwise).

    python benchmarks/ui_toolkit.py [--runs 3] [--images docs/images]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent

#: The tests page again, on panel-material-ui: only the shell changes, not the views.
MUI_PAGE = '''
import panel as pn
import panel_material_ui as pmui

from workbench.models import TestAnalytics
from workbench.views.dashboard import TestsDashboard
from workbench.views.page import open_data

pn.extension("tabulator")
store, _ = open_data()
dash = TestsDashboard(model=TestAnalytics(store=store))
m = dash.model
tabs = pmui.Tabs(*zip(dash.tabs, dash._views), sizing_mode="stretch_width")
tabs.param.watch(dash._on_tab, "active")
dash._tabs = tabs
filters = pmui.Column(
    pmui.Select.from_param(m.param.project, label="Project", width=230),
    pmui.Select.from_param(m.param.branch, label="Branch", width=230),
    pmui.Select.from_param(m.param.variant, label="Variant", width=230),
    pmui.RadioButtonGroup.from_param(m.param.window, label="Window", orientation="vertical"),
    pmui.IntSlider.from_param(m.param.flaky_runs, label="Runs per test (flaky)", width=230),
    pmui.Button(label="Refresh", button_type="primary", on_click=lambda e: m.refresh()),
)
dark = pn.state.session_args.get("theme", [b""])[0] == b"dark"
pmui.Page(title="Happy Observatory · Tests", sidebar=[filters], main=[tabs],
          dark_theme=dark, sidebar_width=280).servable()
'''

#: The first table has rows (Panel's components live in nested shadow roots).
SETTLED = """() => { const has = (root) => !!root.querySelector('.tabulator-row') ||
    [...root.querySelectorAll('*')].some(e => e.shadowRoot && has(e.shadowRoot));
    return has(document); }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(browser, url: str, shot: Path | None) -> dict:
    # a fresh context each time: a first visit, nothing cached
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    requests, external, received = [], [], 0
    host = urlsplit(url).netloc

    def on_response(resp):
        nonlocal received
        requests.append(resp.url)
        if urlsplit(resp.url).netloc not in (host, ""):
            external.append(resp.url)
        try:  # as sent (compressed where the server compresses)
            sizes = resp.request.sizes()
            received += sizes["responseBodySize"] + sizes["responseHeadersSize"]
        except Exception:  # noqa: BLE001  (a websocket upgrade or redirect has no sizes)
            pass

    page.on("response", on_response)
    start = time.perf_counter()
    page.goto(url, wait_until="networkidle", timeout=120_000)
    page.wait_for_function(SETTLED, timeout=120_000)
    settled = time.perf_counter() - start
    page.wait_for_timeout(1500)  # (charts finish drawing)
    if shot:
        page.screenshot(path=str(shot))
        sys.path.insert(0, str(ROOT / "docs"))
        from screenshots import shrink  # (docs/screenshots.py: 1080 wide, 128 colours)

        shrink(shot)
    context.close()
    return {"requests": len(requests), "bytes": received, "external": external,
            "settled_s": settled}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="loads per page and theme")
    ap.add_argument("--images", type=Path, help="write toolkit-{current,mui}-{light,dark}.png")
    args = ap.parse_args()
    try:
        import panel_material_ui  # noqa: F401
    except ImportError:
        print("panel-material-ui is not installed: pip install panel-material-ui",
              file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="toolkit-"))
    db = tmp / "demo.duckdb"
    subprocess.run([sys.executable, "-m", "workbench", "demo", "--db", str(db)], check=True,
                   capture_output=True)
    (tmp / "tests_mui.py").write_text(MUI_PAGE)
    port = free_port()
    env = {**os.environ, "OBSERVATORY_DB": str(db)}
    server = subprocess.Popen(
        [sys.executable, "-m", "panel", "serve", str(ROOT / "dashboards" / "tests.py"),
         str(tmp / "tests_mui.py"), "--address", "127.0.0.1", "--port", str(port),
         "--allow-websocket-origin", f"127.0.0.1:{port}"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/tests", timeout=30).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
              f"{platform.python_version()}, panel {__import__('panel').__version__}, "
              f"panel-material-ui {panel_material_ui.__version__}")
        print(f"{'page':8} {'theme':6} {'requests':>8} {'MB':>6} {'external':>8} "
              f"{'settled s (median)':>18}")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                        args=["--no-sandbox", "--disable-gpu"])
            for name, path in (("current", "tests"), ("mui", "tests_mui")):
                for theme in ("light", "dark"):
                    url = f"{base}/{path}" + ("?theme=dark" if theme == "dark" else "")
                    load(browser, url, None)  # warm the server's caches
                    shot = (args.images / f"toolkit-{name}-{theme}.png") if args.images else None
                    got = [load(browser, url, shot if i == 0 else None)
                           for i in range(args.runs)]
                    first = got[0]
                    print(f"{name:8} {theme:6} {first['requests']:>8} "
                          f"{first['bytes'] / 1e6:>6.2f} {len(first['external']):>8} "
                          f"{statistics.median(g['settled_s'] for g in got):>18.2f}")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
