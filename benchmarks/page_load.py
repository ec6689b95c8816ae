"""How long until a page is usable: every workbench page against a bare Panel page, in one run.

Two servers on 127.0.0.1, both ``panel serve`` the same way: the workbench
(``observatory serve`` over the demo dataset, on a fresh file) and a one-pane Panel app
(a Markdown pane and a Tabulator of 20 rows: the framework's floor). Headless Chromium
opens each page ``--runs`` times:

- **first visit**: a fresh browser context, nothing cached;
- **returning visit**: the same page again in the context of the first (its cache warm),
  as a person opening it a second time.

For each it records, from the navigation's start (the Navigation Timing API): the HTML
document received (the server builds the session's document before answering), the page's
scripts run (``DOMContentLoaded``), and *usable*: every Bokeh view rendered and the
document idle (``Bokeh.documents[0].is_idle``), and *settled*: Playwright's network idle
(no request for 500 ms, which includes those 500 ms). Bytes and requests are what the
browser received (as sent, compressed or not). The median of the runs is printed per page
and the ratio against the bare page::

    python benchmarks/page_load.py [--runs 3] [--pages /tests /agents ...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine  # noqa: E402
from otlp_ingest import ROOT, free_port, wait_http  # noqa: E402

PAGES = ["/tests", "/agents", "/control", "/projects", "/workflows", "/console", "/storage"]

#: The floor: what any Panel page costs, served by the same ``panel serve``.
BARE = """
import pandas as pd
import panel as pn

pn.extension("tabulator")
frame = pd.DataFrame({"test": [f"test_{i}" for i in range(20)], "seconds": range(20)})
pn.Column(pn.pane.Markdown("# Bare Panel page"), pn.widgets.Tabulator(frame)).servable()
"""

#: Rendered and idle: BokehJS's document says so once every view has been built and drawn.
USABLE = """() => { const d = window.Bokeh && Bokeh.documents && Bokeh.documents[0];
    return !!(d && d.is_idle); }"""

TIMES = """() => { const n = performance.getEntriesByType('navigation')[0];
    const got = performance.getEntriesByType('resource');
    return {html: n.responseEnd, scripts: n.domContentLoadedEventEnd, now: performance.now(),
            bytes: n.transferSize + got.reduce((a, r) => a + (r.transferSize || 0), 0),
            requests: 1 + got.length}; }"""


def visit(page, url: str) -> dict:
    """Open ``url`` in ``page``; the milestones in seconds after the navigation began."""
    started = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.wait_for_function(USABLE, polling=10, timeout=120_000)
    got = page.evaluate(TIMES)
    page.wait_for_load_state("networkidle")
    return {"html": got["html"] / 1000, "scripts": got["scripts"] / 1000,
            "usable": got["now"] / 1000, "settled": time.perf_counter() - started,
            "kib": got["bytes"] / 1024, "requests": got["requests"]}


def measure(browser, url: str, runs: int) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {"first": [], "returning": []}
    for _ in range(runs):
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        out["first"].append(visit(page, url))
        page.goto("about:blank")
        out["returning"].append(visit(page, url))
        context.close()
    return out


def serve(argv: list[str], port: int, env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen(argv, cwd=env["PYTHONPATH"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/", seconds=180)
    except SystemExit:
        proc.terminate()  # (left running, it skewed every figure after it)
        raise
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pages", nargs="*", default=PAGES)
    parser.add_argument("--code", type=Path, default=ROOT, help="serve the workbench of this "
                        "checkout (e.g. a `git worktree` of an older commit, for a before "
                        "figure)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    print(machine(), f"· serving {args.code}")
    env = {**os.environ, "OBSERVATORY_NO_BROWSER": "1",
           "PYTHONPATH": str(args.code.resolve())}
    with tempfile.TemporaryDirectory() as tmp:
        bare_py = Path(tmp) / "bare.py"
        bare_py.write_text(BARE)
        wport, bport = free_port(), free_port()
        servers = [
            serve([sys.executable, "-m", "workbench", "serve", "--address", "127.0.0.1",
                   "--port", str(wport), "--db", str(Path(tmp) / "w.duckdb")], wport, env),
            serve([sys.executable, "-m", "panel", "serve", str(bare_py), "--address",
                   "127.0.0.1", "--port", str(bport), "--allow-websocket-origin",
                   f"127.0.0.1:{bport}"], bport, env),
        ]
        try:
            wait_http(f"http://127.0.0.1:{wport}/api/health", seconds=180)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=shutil.which("chromium"),
                                             args=["--no-sandbox", "--disable-gpu"])
                # one warm-up of each server (first sessions import and fill caches)
                measure(browser, f"http://127.0.0.1:{bport}/bare", 1)
                measure(browser, f"http://127.0.0.1:{wport}/tests", 1)
                rows = {"bare Panel page": measure(browser, f"http://127.0.0.1:{bport}/bare",
                                                   args.runs)}
                for path in args.pages:
                    rows[path] = measure(browser, f"http://127.0.0.1:{wport}{path}", args.runs)
                browser.close()
        finally:
            for proc in servers:
                proc.terminate()
                proc.wait(30)
    report(rows, args.runs)


def report(rows: dict[str, dict[str, list[dict]]], runs: int) -> None:
    print(f"# seconds from the navigation's start, median of {runs}; ratio = usable against "
          "the bare page's, same visit")
    for visit_kind in ("first", "returning"):
        print(f"\n{visit_kind} visit")
        print(f"{'page':<17}{'html':>7}{'scripts':>9}{'usable':>8}{'settled':>9}"
              f"{'ratio':>7}{'KiB':>9}{'requests':>9}")
        floor = statistics.median(r["usable"] for r in rows["bare Panel page"][visit_kind])
        for name, got in rows.items():
            med = {k: statistics.median(r[k] for r in got[visit_kind])
                   for k in ("html", "scripts", "usable", "settled", "kib", "requests")}
            print(f"{name:<17}{med['html']:>7.2f}{med['scripts']:>9.2f}{med['usable']:>8.2f}"
                  f"{med['settled']:>9.2f}{med['usable'] / floor:>6.2f}x{med['kib']:>9,.0f}"
                  f"{med['requests']:>9.0f}")


if __name__ == "__main__":
    main()
