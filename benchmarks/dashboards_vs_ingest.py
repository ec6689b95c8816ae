"""Do open dashboards starve ingest? OTLP spans stored per second with 0 and with N open
Chromium dashboards on the live tabs, in one run against one server, and how soon each
open dashboard shows new data while the load runs.

The server is a real ``observatory serve`` on 127.0.0.1 with the demo dataset; the load is
the shared generator (../shared/tools/otlp_load.py); the dashboards are real headless
Chromium pages (Debian's ``chromium``) on the Agents tab of /agents, left open and live.
Freshness: every few seconds during the loaded phase one probe span from a new agent
(``probe-K``) is sent; the figure is the time from its acknowledgement until each page
lists that agent, as the page itself timed it (a 50 ms watcher inside each page).

The idle rate is the mean of one run before the pages open and one after they close (after
a warm-up run). On a small machine the browsers compete with the server for the same CPUs,
which a real user's browser does not: by default they are pinned to the last CPU at the
lowest priority (``--browser-cpus all`` lets them run anywhere); their CPU time is printed.

    python benchmarks/dashboards_vs_ingest.py [--spans 60000] [--pages 5] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

sys.path.insert(0, str(Path(__file__).resolve().parent))
from otlp_ingest import ROOT, TOOL, free_port, run_load, wait_http  # noqa: E402


def probe_body(name: str) -> bytes:
    """One span from a service of its own: a new agent on the Agents tab."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name",
                                           value=AnyValue(string_value=name)))
    now = time.time_ns()
    span = Span(trace_id=os.urandom(16), span_id=os.urandom(8), name=f"{name} chat",
                start_time_unix_nano=now - 1_000_000, end_time_unix_nano=now)
    span.attributes.append(KeyValue(key="gen_ai.operation.name",
                                    value=AnyValue(string_value="chat")))
    rs.scope_spans.add().spans.append(span)
    return req.SerializeToString()


class Dashboards:
    """N Chromium pages on one URL, each in its own browser context (its own session),
    driven from one thread (Playwright's sync API is single-threaded)."""

    def __init__(self, url: str, n: int, executable: str):
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self._browser = self._pw.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        self.pages = []
        for _ in range(n):
            page = self._browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
            page.goto(url)
            page.wait_for_selector("text=Sessions (", timeout=60_000)
            self.pages.append(page)

    #: Runs in each page: every 50 ms, note the first time (the page's own clock, epoch
    #: milliseconds) each awaited text is on screen. Panel renders inside shadow roots,
    #: which ``innerText`` and observers of the document do not reach: walk them — but only
    #: after something changed (a MutationObserver on the document and on every shadow
    #: root found), so that five watchers do not keep the browsers' one CPU busy walking
    #: unchanged pages, which would delay the very rendering they time.
    WATCH = """texts => {
      window.__seen = window.__seen || {};
      window.__observed = window.__observed || new WeakSet();
      const observer = window.__observer = window.__observer || new MutationObserver(
        () => { window.__dirty = true; });
      const observe = root => {
        if (window.__observed.has(root)) return;
        window.__observed.add(root);
        observer.observe(root, {childList: true, subtree: true, characterData: true});
      };
      const walk = (root, found) => {
        observe(root);
        for (const el of root.querySelectorAll('*')) {
          if (el.shadowRoot) walk(el.shadowRoot, found);
          if (el.childElementCount === 0) found.add(el.textContent.trim());
        }
        return found;
      };
      window.__dirty = true;
      clearInterval(window.__watch);
      window.__watch = setInterval(() => {
        const pending = texts.filter(t => !(t in window.__seen));
        if (!pending.length || !window.__dirty) return;
        window.__dirty = false;
        const found = walk(document, new Set());
        for (const t of pending) if (found.has(t)) window.__seen[t] = Date.now();
      }, 50);
    }"""

    def wait_for_text(self, text: str, sent_ms: float, timeout: float = 30) -> list[float]:
        """Seconds from ``sent_ms`` (epoch ms) until each page showed ``text``, as each
        page timed it itself (inf if it never did)."""
        for page in self.pages:
            page.evaluate(self.WATCH, [text])
        deadline = time.monotonic() + timeout
        seen: list = [None] * len(self.pages)
        while time.monotonic() < deadline and None in seen:
            time.sleep(0.5)
            seen = [page.evaluate("t => (window.__seen || {})[t] ?? null", text)
                    for page in self.pages]
        return [float("inf") if t is None else (t - sent_ms) / 1000 for t in seen]

    def close(self) -> None:
        self._browser.close()
        self._pw.stop()


def browser_cpu_seconds() -> float:
    total = 0.0
    for proc in psutil.process_iter(["name"]):
        try:
            if "chrom" in (proc.info["name"] or ""):
                times = proc.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            pass
    return total


def chromium(tmp: str, cpus: str) -> str:
    """The browser to launch: Debian's chromium, pinned and niced unless ``cpus=all``."""
    exe = shutil.which("chromium")
    if cpus == "all":
        return exe
    if cpus == "last":
        cpus = str((os.cpu_count() or 1) - 1)
    wrapper = Path(tmp) / "chromium"
    wrapper.write_text(f'#!/bin/sh\nexec taskset -c {cpus} nice -n 19 {exe} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=60_000, help="spans per phase")
    parser.add_argument("--pages", type=int, default=5, help="open dashboards in phase 2")
    parser.add_argument("--concurrency", type=int, default=8, help="OTLP clients")
    parser.add_argument("--tool", type=Path, default=TOOL, help="path to otlp_load.py")
    parser.add_argument("--browser-cpus", default="last",
                        help="CPUs the browsers may use: 'last' (default), a taskset list, "
                        "or 'all'")
    parser.add_argument("--rounds", type=Path, help="write the server's rounds (from "
                        "/api/live) and the probes' acknowledgement times to this JSON file")
    args = parser.parse_args()
    if not args.tool.exists():
        raise SystemExit(f"{args.tool}: the shared load generator is not here")
    if not shutil.which("chromium"):
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; server, load tool and browsers on the same machine")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen(
            [sys.executable, "-m", "workbench", "serve", "--address", "127.0.0.1",
             "--port", str(port), "--db", str(Path(tmp) / "bench.duckdb")],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_http(url + "/api/health", 300)

            def count(marker: str) -> int:
                from workbench.client import RemoteStore

                with RemoteStore(url) as remote:
                    return int(remote.query("span_count_like", text=marker)["n"].iloc[0])

            def load(marker: str) -> dict:
                return run_load(args.tool, url + "/v1/traces", args.spans, args.concurrency,
                                False, marker, count)

            load("warm-up")
            idle_before = load("idle-1")
            t0 = time.monotonic()
            dash = Dashboards(url + "/agents", args.pages, chromium(tmp, args.browser_cpus))
            opened = time.monotonic() - t0
            cpu0 = browser_cpu_seconds()
            result: dict = {}
            worker = threading.Thread(target=lambda: result.update(load("watched")))
            worker.start()
            lags: list[float] = []
            acks: list[float] = []
            k = 0
            with httpx.Client(timeout=30) as client:
                while worker.is_alive():
                    k += 1
                    resp = client.post(url + "/v1/traces", content=probe_body(f"probe-{k}"),
                                       headers={"Content-Type": "application/x-protobuf"})
                    resp.raise_for_status()
                    acked_ms = time.time() * 1000  # the browsers' clock is this machine's
                    acks.append(acked_ms / 1000)
                    lags += dash.wait_for_text(f"probe-{k}", acked_ms)
                    time.sleep(2)
                rounds = client.get(url + "/api/live").json()["rounds"]
            worker.join()
            browser_cpu = browser_cpu_seconds() - cpu0
            dash.close()
            idle_after = load("idle-2")
        finally:
            server.terminate()
            server.wait(30)
    watched = result
    if args.rounds:
        args.rounds.write_text(json.dumps({"rounds": rounds, "acks": acks}, indent=1))
    idle_rate = (idle_before["rate"] + idle_after["rate"]) / 2
    print(f"{args.pages} dashboards opened in {opened:.1f} s; browsers on CPUs: "
          f"{args.browser_cpus}; they used {browser_cpu:.1f} CPU-s during the loaded phase")
    for name, r in (("0 dashboards", idle_before), (f"{args.pages} dashboards", watched),
                    ("0 dashboards", idle_after)):
        print(f"{name:<13} {r['stored']:>8,} spans stored in {r['seconds']:6.2f} s = "
              f"{r['rate']:>8,.0f} spans/s {r['statuses']}")
    print(f"with dashboards open: {watched['rate'] / idle_rate:.0%} of the idle rate "
          f"({idle_rate:,.0f} spans/s; target >= 80%)")
    # The server's part: from the acknowledgement until the last session's refresh of the
    # first round whose queries began after it (and so after the probe's commit). A round
    # whose queries began between the commit and the acknowledgement is missed: at most.
    server = []
    for acked in acks:
        first = next((r for r in rounds if "telemetry" in r["topics"]
                      and r["asked"] >= acked), None)
        server.append(first["refreshed"] - acked if first else float("inf"))
    loaded = [r for r in rounds if r["sessions"]]
    gaps = [b["published"] - a["published"] for a, b in zip(loaded, loaded[1:], strict=False)]
    if server and gaps:
        print(f"server side: every session refreshed at most {statistics.median(server):.2f} s "
              f"(median) / {max(server):.2f} s (worst) after a probe; rounds every "
              f"{statistics.median(gaps):.2f} s (median, max {max(gaps):.2f} s), each "
              f"costing {statistics.median(r['cost_s'] for r in loaded):.3f} s (max "
              f"{max(r['cost_s'] for r in loaded):.3f} s; queries "
              f"{statistics.median(r.get('queries_s', 0) for r in loaded):.3f} s) and lasting "
              f"{statistics.median(r['refreshed'] - r['published'] for r in loaded):.2f} s")
    finite = sorted(x for x in lags if x != float("inf"))
    late = sum(x > 2 for x in lags)
    print(f"new data on every page: {len(lags)} probe sightings, median "
          f"{statistics.median(finite) if finite else float('nan'):.2f} s, 90th percentile "
          f"{finite[int(0.9 * (len(finite) - 1))] if finite else float('nan'):.2f} s, worst "
          f"{max(lags) if lags else float('nan'):.2f} s, {late} later than 2 s "
          "(target <= 2 s)")
    print("each probe, its pages' sightings (s): " + "; ".join(
        " ".join(f"{x:.2f}" for x in lags[i:i + args.pages])
        for i in range(0, len(lags), args.pages)))


if __name__ == "__main__":
    main()
