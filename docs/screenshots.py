"""Retake the README's tour screenshots (docs/images/tour-*.png) from a fresh demo
workbench: a real ``observatory serve`` on 127.0.0.1 in a temporary home, two command
agents started through the CLI so the control page has something to show, and headless
Chromium at 1440x900 (saved 1080 wide, 128 colours, to keep the repository small).

    python docs/screenshots.py [--theme light|dark] [--out docs/images]
"""

from __future__ import annotations

import argparse
import json
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
    ("workflows-run", "/workflows?run={run}", ".react-flow__node.wf-needs-approval", None),
)


def release_workflow() -> dict:
    """A workflow for the Workflows page's picture: a build, two checks at once, a person's
    approval, then the release or the way back."""
    py = sys.executable

    def step(node_id: str, label: str, x: int, y: int, command: str) -> dict:
        return {"id": node_id, "kind": "agent", "label": label, "position": {"x": x, "y": y},
                "settings": {"agent": "sh", "command": command}}
    return {
        "name": "release", "description": "build, check twice at once, a person approves",
        "agents": {"sh": {"backend": "process", "cwd": tempfile.gettempdir()}},
        "nodes": [step("build", "build", 0, 120, f"{py} -c \"print('built wheel 1.4.0')\""),
                  {"id": "fan", "kind": "parallel", "label": "checks", "position":
                   {"x": 220, "y": 120}},
                  step("lint", "lint", 440, 40, f"{py} -c \"print('lint: 0 problems')\""),
                  step("smoke", "smoke test", 440, 200,
                       f"{py} -c \"print('smoke: 12 requests ok')\""),
                  {"id": "both", "kind": "join", "label": "both pass", "position":
                   {"x": 660, "y": 120}},
                  {"id": "ok", "kind": "approval", "label": "release?", "position":
                   {"x": 880, "y": 120}, "settings": {"message": "Release 1.4.0?"}},
                  step("publish", "publish", 1100, 40, f"{py} -c \"print('published')\""),
                  {"id": "stop", "kind": "end", "label": "held back", "position":
                   {"x": 1100, "y": 200}, "settings": {"status": "failed"}}],
        "edges": [{"source": "build", "target": "fan"}, {"source": "fan", "target": "lint"},
                  {"source": "fan", "target": "smoke"}, {"source": "lint", "target": "both"},
                  {"source": "smoke", "target": "both"}, {"source": "both", "target": "ok"},
                  {"source": "ok", "target": "publish"},
                  {"source": "ok", "target": "stop", "when": "denied"}]}


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
        spec = home / "release.json"
        spec.write_text(json.dumps(release_workflow()))
        cli(env, "workflows", "import", str(spec))
        run = httpx.post(f"{base}/api/workflows/release/runs", json={}, timeout=30).json()[
            "run"]["id"]
        time.sleep(5)
        args.out.mkdir(parents=True, exist_ok=True)
        query = "?theme=dark" if args.theme == "dark" else ""
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                        args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            for name, path, selector, tab in SHOTS:
                path = path.format(run=run)
                query_ = ("&" if "?" in path else "?") + query[1:] if query else ""
                page.goto(base + path + query_, wait_until="networkidle", timeout=120_000)
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
