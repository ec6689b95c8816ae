"""The composer in headless Chromium, as a person uses it: drag three steps from the
palette onto an empty canvas, connect them by dragging from handle to handle, fill each
step's form, save, run, and watch the steps change state on the canvas — with no request
leaving the machine (panel-reactflow's import map names esm.sh; nothing may load it)."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from .conftest import OUTPUT, Served

pytestmark = pytest.mark.browser

SHOTS = OUTPUT / "workflows"  # (never data/: the default database's home)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    s = Served(tmp_path_factory.mktemp("wf-browser") / "wb.duckdb", extra_args=("--no-demo",))
    yield s
    s.stop()


@pytest.fixture()
def page(served):
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is missing (.ci/run installs it)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium,
                                    args=["--no-sandbox", "--disable-gpu"])
        pg = browser.new_page(viewport={"width": 1400, "height": 1200})
        pg.outside = []
        pg.errors = []
        pg.on("request", lambda r: None if r.url.startswith(
            ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")) else pg.outside.append(r.url))
        pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
        yield pg
        browser.close()


def center(locator) -> tuple[float, float]:
    box = locator.bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def connect(pg, source: str, target: str) -> None:
    out = pg.locator(f".react-flow__node[data-id='{source}'] .react-flow__handle.source")
    into = pg.locator(f".react-flow__node[data-id='{target}'] .react-flow__handle.target")
    (x0, y0), (x1, y1) = center(out), center(into)
    pg.mouse.move(x0, y0)
    pg.mouse.down()
    pg.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=10)
    pg.mouse.move(x1, y1, steps=10)
    pg.mouse.up()


def fill(pg, node: str, label: str, value: str) -> None:
    """Type into the field ``label`` of ``node``'s settings form (the side panel)."""
    pg.locator(f".react-flow__node[data-id='{node}']").click()
    panel = pg.locator(".react-flow__panel.right")
    panel.locator("code", has_text=node).wait_for(timeout=10_000)  # (its form, not the last)
    field = panel.get_by_label(label, exact=True)
    field.wait_for(timeout=10_000)
    field.fill(value)
    field.press("Enter")
    field.blur()


def wait_for(fn, timeout: float = 30, what: str = ""):
    deadline = time.monotonic() + timeout
    while not (value := fn()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return value


def test_draw_save_run_and_watch(served, page, tmp_path):
    out = tmp_path / "drawn.txt"
    pg = page
    pg.goto(served.url + "/workflows")
    pg.wait_for_load_state("networkidle")
    pane = pg.locator(".react-flow__pane")
    pane.wait_for()
    # a new workbench shows a shipped workflow to start from; this one starts from nothing
    assert pg.locator(".react-flow__node[data-id='fix']").count() == 1
    pg.get_by_label("New", exact=True).select_option("(an empty canvas)")
    wait_for(lambda: pg.locator(".react-flow__node").count() == 0, what="an empty canvas")
    box = pane.bounding_box()
    nodes = ["agent-1", "agent-2", "end-1"]
    at = {"x": 150, "y": box["height"] / 2}
    for node in nodes:
        pg.locator(f".wf-pal[data-kind='{node.split('-')[0]}']").drag_to(pane, target_position=at)
        placed = pg.locator(f".react-flow__node[data-id='{node}']")
        placed.wait_for(timeout=10_000)
        time.sleep(0.5)  # (the canvas fits its view to the first step: look where it went)
        drop = placed.bounding_box()
        at = {"x": drop["x"] - box["x"] + drop["width"] + 120,
              "y": drop["y"] - box["y"] + drop["height"] / 2}
    connect(pg, "agent-1", "agent-2")
    connect(pg, "agent-2", "end-1")
    wait_for(lambda: pg.locator(".react-flow__edge").count() == 2, what="two edges")
    for node, word in (("agent-1", "first"), ("agent-2", "second")):
        fill(pg, node, "Agent", "sh")
        fill(pg, node, "Command", f"sh -c 'echo {word} >> {out}; sleep 0.5'")
    pg.get_by_text("Agents, inputs and description").click()
    meta = pg.get_by_label("Agents and inputs (JSON)")
    meta.fill(json.dumps({"agents": {"sh": {"backend": "process", "cwd": str(tmp_path)}},
                          "inputs": {}}))
    meta.blur()
    name = pg.get_by_label("Name", exact=True)
    name.fill("drawn")
    name.press("Enter")
    pg.get_by_role("button", name="Save as new").click()
    wait_for(lambda: pg.get_by_text("Saved drawn as version 1").count(), what="the save")
    SHOTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(SHOTS / "workflows-drawn.png"), full_page=True)
    pg.get_by_role("button", name="Run", exact=True).click()
    # each step's border follows its state, pushed by the engine (no reload)
    wait_for(lambda: pg.locator(".react-flow__node.wf-running").count() >= 1,
             what="a running step on the canvas")
    pg.screenshot(path=str(SHOTS / "workflows-running.png"), full_page=True)
    wait_for(lambda: all(pg.locator(f".react-flow__node[data-id='{n}']").get_attribute(
        "class").find("wf-done") >= 0 for n in nodes[:2]), what="both steps done")
    wait_for(lambda: pg.get_by_text("succeeded", exact=True).count(), what="the run's end")
    assert "wf-done" in pg.locator(".react-flow__node[data-id='end-1']").get_attribute("class")
    pg.screenshot(path=str(SHOTS / "workflows-done.png"), full_page=True)
    assert out.read_text().split() == ["first", "second"]
    assert pg.outside == [], pg.outside
    assert not [e for e in pg.errors if "favicon" not in e], pg.errors
