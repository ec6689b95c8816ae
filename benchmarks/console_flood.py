"""A process agent on a PTY printing 50 MB as fast as it can, watched in the browser.

A real ``observatory serve`` on 127.0.0.1 (no demo), an agent defined with
``config.pty``, and headless Chromium attached to its terminal on the Console page. It
prints ``--mb`` megabytes in lines of 1,000 bytes. Measured in one run:

- **page**: while the flood runs, a click in the page's search box and a key typed there
  are answered (the box holds the key) — the time of each, max and median;
- **server memory**: the serve process's resident set size, sampled every 100 ms: before
  and at its peak;
- **the agent**: how long it took to print everything with the page attached, against the
  same agent with nobody attached (the server still reads its terminal, keeps the replay
  buffer and makes log events), and the time the console's flow control held it
  (``paused_s``).

    python benchmarks/console_flood.py [--mb 50]
"""

from __future__ import annotations

import argparse
import re
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


def printed_in(url: str, name: str) -> float:
    """The agent's own report of how long its printing took (the end of its screen)."""
    from websockets.sync.client import connect

    out = b""
    with connect(url.replace("http", "ws") + f"/ws/console/{name}") as ws:
        end = time.monotonic() + 2
        while time.monotonic() < end and b"flood done" not in out:
            try:
                message = ws.recv(timeout=0.5)
            except TimeoutError:
                continue
            if isinstance(message, bytes):
                out += message
    found = re.search(rb"flood done in ([\d.]+) s", out)
    return float(found.group(1)) if found else float("nan")


def flood(c: httpx.Client, blocks: int, name: str) -> dict:
    agent = c.post("/api/agents", json={
        "name": name, "backend": "process", "config": {"pty": True},
        "command": [sys.executable, "-c", FLOOD.format(delay=4, blocks=blocks)]}).json()[
        "agent"]
    c.post(f"/api/agents/{agent['id']}/start")
    return agent


def info(c: httpx.Client, agent: dict) -> dict:
    return next((x for x in c.get("/api/console").json()["consoles"]
                 if x["name"] == f"agent-{agent['id']}"), {})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=int, default=50)
    args = ap.parse_args()
    blocks = args.mb * 1_000_000 // (1000 * 64)
    print(machine())
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
        rss = {"peak": 0}
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.1):
                try:
                    rss["peak"] = max(rss["peak"], serve.memory_info().rss)
                except psutil.Error:
                    return

        threading.Thread(target=sample, daemon=True).start()
        c = httpx.Client(base_url=url, timeout=30)
        # 1. Nobody attached: the server reads the terminal, keeps its replay buffer and
        # turns the output into log events.
        before = serve.memory_info().rss
        alone = flood(c, blocks, "flood-alone")
        while not info(c, alone).get("ended"):
            time.sleep(0.2)
        alone_info, alone_peak = info(c, alone), rss["peak"]
        alone_s = printed_in(url, f"agent-{alone['id']}")
        # 2. The same with the Console page attached, clicked and typed into meanwhile.
        rss["peak"] = 0
        agent = flood(c, blocks, "flood-watched")
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
            while not info(c, agent).get("ended") and time.perf_counter() - started < 600:
                t0 = time.perf_counter()
                box.click()
                page.keyboard.type("a")
                page.wait_for_function("el => el.value.endsWith('a')", arg=box.element_handle())
                clicks.append(time.perf_counter() - t0)
                time.sleep(0.25)
            took = time.perf_counter() - started
            deadline = time.monotonic() + 30  # (the terminal is in a shadow root)
            while "flood done" not in page.locator(".xterm-rows").first.inner_text():
                assert time.monotonic() < deadline, "the page never showed the flood's end"
                time.sleep(0.2)
            browser.close()
        stop.set()
        watched = info(c, agent)
        watched_s = printed_in(url, f"agent-{agent['id']}")
        print(f"flood: {args.mb} MB in lines of 1,000 bytes from a process agent on a PTY")
        print(f"{'':<26}{'prints it in':>14}{'held by flow control':>22}{'server RSS peak':>17}")
        print(f"{'nobody attached':<26}{alone_s:>12.2f} s{alone_info['paused_s']:>20.2f} s"
              f"{alone_peak / 2**20:>14.0f} MB")
        print(f"{'the Console page attached':<26}{watched_s:>12.2f} s"
              f"{watched['paused_s']:>20.2f} s{rss['peak'] / 2**20:>14.0f} MB")
        print(f"server RSS before: {before / 2**20:.0f} MB; "
              f"{watched['bytes_out'] / 1e6:.1f} MB read from the watched terminal")
        print(f"page during the flood: {len(clicks)} clicks+keys in {took:.1f} s, answered in "
              f"median {statistics.median(clicks) * 1000:.0f} ms, max "
              f"{max(clicks) * 1000:.0f} ms; its screen ends with the flood's last line")
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
