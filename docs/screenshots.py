"""Retake the README's tour screenshots (docs/images/tour-*.png) from a fresh demo
workbench: a real ``observatory serve`` on 127.0.0.1 in a temporary home, two command
agents started through the CLI so the control page has something to show, and headless
Chromium at 1440x900 (saved 1080 wide, 128 colours, to keep the repository small).

    python docs/screenshots.py [--theme light|dark] [--out docs/images]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent

#: (file, path, a selector to wait for — Playwright's pierce shadow roots —, a tab to open
#: first or None)
SHOTS = (
    ("tour-tests", "/tests", ".tabulator-row", None),
    ("tour-agents", "/agents", "canvas", None),
    ("tour-control", "/control", "text=ticker", None),
    ("tour-projects", "/projects", "canvas", "Coverage map"),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "workbench", *args], env=env, check=True,
                   capture_output=True, timeout=120)


def shrink(path: Path) -> None:
    from PIL import Image

    img = Image.open(path)
    img = img.resize((1080, round(img.height * 1080 / img.width)), Image.LANCZOS)
    img.convert("RGB").quantize(128).save(path, optimize=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--theme", choices=["light", "dark"], default="light")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="tour-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OBSERVATORY_HOME": str(home), "OBSERVATORY_URL": base}
    env.pop("OBSERVATORY_DB", None)
    server = subprocess.Popen([sys.executable, "-m", "workbench", "serve", "--port", str(port),
                               "--address", "127.0.0.1"], env=env, cwd=home,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{base}/api/health", timeout=10).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the workbench did not start")
            time.sleep(0.5)
        tick = (f"{sys.executable} -c \"import time\nfor i in range(10**6): "
                f"print('tick', i, flush=True); time.sleep(1)\"")
        cli(env, "agents", "add", "ticker", "--command", tick, "--project", "checkout-service",
            "--label", "demo", "--start")
        cli(env, "agents", "add", "nightly-lint", "--command",
            f"{sys.executable} -c \"print('lint: 0 problems')\"", "--project", "web-frontend",
            "--start")
        time.sleep(5)
        args.out.mkdir(parents=True, exist_ok=True)
        query = "?theme=dark" if args.theme == "dark" else ""
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                        args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            for name, path, selector, tab in SHOTS:
                page.goto(base + path + query, wait_until="networkidle", timeout=120_000)
                if tab:
                    page.locator(".bk-tab", has_text=tab).first.click()
                try:
                    page.locator(f"{selector} >> visible=true").first.wait_for(timeout=60_000)
                except Exception:
                    page.screenshot(path=str(args.out / f"{name}-failed.png"))
                    raise
                page.wait_for_timeout(3000)  # (charts and tables finish drawing)
                out = args.out / f"{name}{'-dark' if args.theme == 'dark' else ''}.png"
                page.screenshot(path=str(out))
                shrink(out)
                print(out)
            browser.close()
    finally:
        # Agents run in their own process groups and outlive a server (a restart adopts
        # them): stop ours first.
        stop = subprocess.run([sys.executable, "-m", "workbench", "agents", "stop", "ticker"],
                              env=env, capture_output=True, text=True, timeout=120)
        if stop.returncode:
            print(f"could not stop the ticker agent: {stop.stderr.strip()}", file=sys.stderr)
        os.killpg(server.pid, 15)
        server.wait(timeout=60)
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
