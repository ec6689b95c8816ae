"""A process agent on a PTY printing 50 MB as fast as it can, watched in the browser.

A real ``observatory serve`` on 127.0.0.1 (no demo), an agent defined with
``config.pty``, and headless Chromium attached to its terminal on the Console page. It
prints ``--mb`` megabytes in lines of 1,000 bytes. Measured in one run:

- **page**: while the flood runs, a click in the page's search box and a key typed there
  are answered (the box holds the key) — the time of each, max and median;
- **server memory**: the serve process's resident set size, sampled every 100 ms: before
  and at its peak;
- **the agent**: how long it took to print everything with the page attached, against the
  same command printing into ``/dev/null`` (its own pace), and the time the console's flow
  control held it (``paused_s``).

    python benchmarks/console_flood.py [--mb 50]
"""

from __future__ import annotations

import argparse
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import machine  # noqa: E402
from otlp_ingest import ROOT, free_port, wait_http  # noqa: E402

FLOOD = ("import sys, time\n"
         "time.sleep({delay})\n"
         "line = ('x' * 999 + '\\n').encode()\n"
         "block = line * 64\n"
         "t0 = time.time()\n"
         "for _ in range({blocks}): sys.stdout.buffer.write(block)\n"
         "sys.stdout.buffer.flush()\n"
         "print('flood done in %.2f s' % (time.time() - t0), flush=True)\n")


def own_pace(blocks: int) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", FLOOD.format(delay=0, blocks=blocks)],
                   stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=50)
    args = ap.parse_args()
    blocks = args.mb * 1_000_000 // (1000 * 64)
    print(machine())
    alone = own_pace(blocks)
    tmp = tempfile.mkdtemp(prefix="console-flood-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "serve", "--address", "127.0.0.1", "--port",
         str(port), "--db", f"{tmp}/c.duckdb", "--no-demo"], cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(url + "/api/health", 90)
        serve = psutil.Process(server.pid)
        rss = {"before": serve.memory_info().rss, "peak": 0}
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.1):
                try:
                    rss["peak"] = max(rss["peak"], serve.memory_info().rss)
                except psutil.Error:
                    return

        threading.Thread(target=sample, daemon=True).start()
        c = httpx.Client(base_url=url, timeout=30)
        agent = c.post("/api/agents", json={
            "name": "flood", "backend": "process", "config": {"pty": True},
            "command": [sys.executable, "-c", FLOOD.format(delay=4, blocks=blocks)]}).json()[
            "agent"]
        c.post(f"/api/agents/{agent['id']}/start")
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                        args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"{url}/console?agent={agent['id']}")
            page.locator(".xterm-rows").first.wait_for(timeout=30_000)
            box = page.get_by_placeholder("search the screen")
            clicks = []
            started = time.perf_counter()
            while True:
                info = next((x for x in c.get("/api/console").json()["consoles"]
                             if x["name"] == f"agent-{agent['id']}"), {})
                if info.get("ended") or time.perf_counter() - started > 600:
                    break
                t0 = time.perf_counter()
                box.click()
                page.keyboard.type("a")
                page.wait_for_function("el => el.value.endsWith('a')", arg=box.element_handle())
                clicks.append(time.perf_counter() - t0)
                time.sleep(0.25)
            took = time.perf_counter() - started
            screen = page.locator(".xterm-rows").first.inner_text()
            browser.close()
        stop.set()
        events = c.get(f"/api/agents/{agent['id']}", params={"limit": 50}).json()["events"]
        out = next((e["text"] for e in events if "flood done" in (e.get("text") or "")),
                   "flood done in ? s")
        print(f"flood: {args.mb} MB in lines of 1,000 bytes; the agent printed it in "
              f"{out.split(' in ')[-1]} with the page attached (alone, into /dev/null: "
              f"{alone:.2f} s for the whole process)")
        print(f"flow control held the agent {info.get('paused_s', 0):.2f} s in all; "
              f"{info.get('bytes_out', 0) / 1e6:.1f} MB read from its terminal")
        print(f"page: {len(clicks)} clicks+keys during {took:.1f} s; answered in median "
              f"{statistics.median(clicks) * 1000:.0f} ms, max {max(clicks) * 1000:.0f} ms")
        print(f"server RSS: {rss['before'] / 2**20:.0f} MB before, peak "
              f"{rss['peak'] / 2**20:.0f} MB")
        print(f"the page's screen ends with the flood's last line: "
              f"{'flood done' in screen}")
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
