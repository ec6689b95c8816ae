"""The coverage map and the file view of the projects page (issue 21, items 12 and 13), on a
project measured here: a git repository of a package with many modules of every size and
coverage (0 to 100 %) and one long module, its tests run by pytest under coverage.py with
per-test contexts, the report ingested, the folder found by a scan.

- The file view goes to a line — from the Go-to input, and from the page's address
  (``?project=P&file=PATH#L123``, and a changed fragment): it opens the File tab, pages the
  lines to the one asked for and marks it; a line that is not a statement shows no count of
  tests (blank, not 0), a statement no test ran shows 0.
- The treemap's labels are dark or light by the tile's colour (whichever reads better), and
  shown only where they fit: measured in Chromium, no label runs over its tile, at 1440 and
  1920 px, in the light and the dark theme.
"""

from __future__ import annotations

import json
import re
import sys

import pandas as pd
import pytest

from workbench.analysis import units
from workbench.models.projects import ProjectsModel
from workbench.store import Store
from workbench.views.coverage_map import (
    DARK_TEXT,
    LIGHT_TEXT,
    NAN_COLOUR,
    PALETTE,
    contrast,
    fill_colour,
    label_colour,
    line_of_fragment,
)

from .conftest import Served, documentation, write_tree
from .test_coverage_ingest import observatory, run

#: Folders of the package: (folder, [(module, functions, how many of them the tests call)]).
FOLDERS = {
    "billing": [("invoices", 12, 12), ("credit_notes", 6, 3), ("tax", 3, 0),
                ("currency_conversion_rates_and_rounding", 20, 17)],
    "catalog": [(f"module_{i}", 2 + i, i % 4) for i in range(14)],
    "shipping": [("carriers", 30, 29), ("labels", 4, 1), ("tracking_numbers", 9, 9)],
    "auth": [("tokens", 5, 5), ("sessions", 8, 2)],
}
#: The long module: 40 functions of 4 lines and a blank line, every other one called.
LONG = "".join(f"def f{i}(x):\n    if x:\n        return x + {i}\n    return -{i}\n\n"
               for i in range(40))


def module(functions: int) -> str:
    return "".join(f"def f{i}():\n    return {i}\n\n\n" for i in range(functions))


def suite() -> str:
    body = "import importlib\n\n\n"
    for folder, modules in FOLDERS.items():
        for name, _, called in modules:
            body += (f"def test_{folder}_{name}():\n"
                     f"    m = importlib.import_module('wide.{folder}.{name}')\n"
                     f"    assert [getattr(m, f'f{{i}}')() for i in range({called})] == "
                     f"list(range({called}))\n\n\n")
    body += ("def test_long():\n    from wide import long\n"
             "    assert [long.__dict__[f'f{i}'](1) for i in range(0, 40, 2)] == "
             "[1 + i for i in range(0, 40, 2)]\n")
    return body


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    root = tmp_path_factory.mktemp("wide")
    files = {"wide/__init__.py": "", "wide/long.py": LONG, "tests/__init__.py": "",
             "tests/test_wide.py": suite(),
             "pyproject.toml": '[project]\nname = "wide"\nversion = "0"\n'}
    for folder, modules in FOLDERS.items():
        files[f"wide/{folder}/__init__.py"] = ""
        files.update({f"wide/{folder}/{name}.py": module(n) for name, n, _ in modules})
    repo = write_tree(root / "wide", files)
    run(repo, "git", "init", "-q", "-b", "main")
    run(repo, "git", "add", ".")
    run(repo, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm",
        "wide")
    sha = run(repo, "git", "rev-parse", "HEAD").strip()
    run(repo, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
        "no:observatory", "--cov=wide", "--cov-context=test", "--cov-report=", "tests")
    db = root / "w.duckdb"
    result = json.loads(observatory("ingest", "coverage", str(repo / ".coverage"), "--project",
                                    "wide", "--commit", sha, "--db", str(db), "--json").stdout)
    assert result["ok"] and result["contexts"] == 24, result
    assert observatory("projects", "scan", str(root), "--db", str(db)).returncode == 0
    return {"repo": repo, "db": db}


def long_lines() -> dict[str, int]:
    """Line numbers of wide/long.py: a statement tests ran, one they did not, a blank."""
    lines = LONG.splitlines()
    return {"hit": lines.index("        return x + 2") + 1,
            "miss": lines.index("        return x + 23") + 1,
            "blank": lines.index("def f20(x):"), "last": len(lines)}


def test_a_line_that_is_not_a_statement_counts_no_tests(wide):
    with Store(wide["db"], read_only=True) as s:
        m = ProjectsModel(store=s, project="wide")
        m.path = "wide/long.py"
        frame, where = m.file_view()
    at = frame.set_index("line")
    n = long_lines()
    assert where.startswith("git show ")
    assert at.loc[n["hit"], "status"] == "hit" and at.loc[n["hit"], "tests"] == 1
    assert at.loc[n["miss"], "status"] == "miss" and at.loc[n["miss"], "tests"] == 0
    assert at.loc[n["blank"], "status"] == "" and at.loc[n["blank"], "tests"] is pd.NA


def test_coverage_reads_as_a_percentage_and_its_change_in_points():
    assert [units.percentage(v) for v in (68.4712, 100, 99.96, 0, 0.04, 12, None,
                                          float("nan"))] == [
        "68.5%", "100%", "100.0%", "0%", "0.0%", "12.0%", "", ""]  # (100% only when all)
    assert [units.points(v) for v in (2, -0.44, 0.01, -0.02, 0, None)] == [
        "+2.0 pts", "-0.4 pts", "0 pts", "0 pts", "0 pts", ""]
    assert units.FORMATS["percentage"] is units.percentage  # a table column's kind


def test_fragments_name_a_line():
    assert [line_of_fragment(f) for f in ("#L12", "#12", "L7", "#L3-L9", "", None, "#top",
                                          "#L", "#L-3")] == [12, 12, 7, 3, None, None, None,
                                                             None, None]


def test_labels_take_the_colour_that_reads_on_their_tile():
    assert label_colour(PALETTE[-1]) == LIGHT_TEXT  # dark green: white, not black
    assert label_colour(PALETTE[0]) == LIGHT_TEXT  # dark red
    assert label_colour(PALETTE[len(PALETTE) // 2]) == DARK_TEXT  # yellow
    assert label_colour(NAN_COLOUR) == DARK_TEXT
    for colour in (*PALETTE, NAN_COLOUR):  # every tile's label meets WCAG AA (4.5:1)
        assert contrast(label_colour(colour), colour) >= 4.5, colour
    assert [fill_colour(p) for p in (0, 50, 99.9, 100, None)] == [
        PALETTE[0], PALETTE[5], PALETTE[-1], PALETTE[-1], NAN_COLOUR]


#: The treemap's tiles and labels as the browser has them: each tile's rectangle and label
#: in pixels, the label's lines measured in the labels' font.
TILES_JS = """() => {
  const doc = Bokeh.documents[0];
  const src = doc.all_models && [...doc.all_models].find(
      m => m.data && m.data.label && m.data.text_colour);
  const fig = [...doc.all_models].find(m => Array.isArray(m.renderers) && m.renderers.some(
      r => r.data_source === src));
  const sx = fig.inner_width / 100, sy = fig.inner_height / 62;
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.font = '11px helvetica';
  const d = src.data;
  return [...d.name.keys()].map(i => ({
    name: d.name[i], label: d.label[i], colour: d.text_colour[i], percent: d.percent[i],
    value: Number.isFinite(d.colour_value[i]) ? d.colour_value[i] : null,
    w: d.dx[i] * sx, h: d.dy[i] * sy,
    name_w: ctx.measureText(d.name[i]).width, pct_w: ctx.measureText(d.percent[i]).width,
    widths: d.label[i] ? d.label[i].split('\\n').map(t => ctx.measureText(t).width) : []}));
}"""


def test_go_to_a_line_and_readable_labels_in_chromium(wide, chromium, output_dir):
    from playwright.sync_api import sync_playwright

    served = Served(wide["db"], extra_args=("--no-demo",), ready_path="/projects")
    n = long_lines()
    errors: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium,
                                        args=["--no-sandbox", "--disable-gpu"])
            for (w, h), theme in [((1440, 900), "default"), ((1920, 1080), "dark")]:
                page = browser.new_page(viewport={"width": w, "height": h})
                page.on("console", lambda m: errors.append(m.text) if m.type == "error"
                        else None)
                page.on("pageerror", lambda e: errors.append(str(e)))
                # An address naming the file and a line on its third page of 40.
                page.goto(f"{served.url}/projects?theme={theme}&project=wide&file=wide/"
                          f"long.py#L{n['miss']}")
                page.get_by_text("git show ").wait_for()
                assert page.locator(".bk-tab.bk-active").inner_text().strip() == "File"
                marked(page, n["miss"])
                shown = rows(page)
                assert min(shown) == 81 and n["miss"] in shown  # the page around the line
                assert shown[n["miss"]] == ("miss", "0")
                blank = next(k for k, v in shown.items() if v[0] == "")
                assert shown[blank] == ("", "")  # not a statement: no count, not 0
                page.get_by_text(f"ran line {n['miss']}").wait_for()
                link = page.get_by_text("link to this line").get_attribute("href")
                assert "project=wide" in link and "file=wide%2Flong.py" in link
                assert link.endswith(f"#L{n['miss']}")
                page.screenshot(path=str(output_dir / f"file-{theme}-{w}.png"), full_page=True)
                # The Go-to input, then a changed fragment, then one past the end.
                goto = page.get_by_label("Go to line")
                goto.fill(str(n["hit"]))
                goto.press("Enter")
                marked(page, n["hit"])
                assert min(rows(page)) == 1
                page.evaluate(f"window.location.hash = '#L{n['last']}'")
                marked(page, n["last"])
                assert n["last"] in rows(page)
                page.evaluate("window.location.hash = '#L9999'")
                page.get_by_text(f"no line 9999: the file has {n['last']:,} lines").wait_for()
                # The treemap of the folder of many modules.
                page.locator(".bk-tab", has_text="Coverage map").click()
                page.locator(".tabulator-cell", has_text="catalog").first.click()
                page.locator(".tabulator-cell", has_text="module_13.py").first.wait_for()
                page.wait_for_timeout(500)
                check_labels(page.evaluate(TILES_JS))
                page.screenshot(path=str(output_dir / f"map-catalog-{theme}-{w}.png"),
                                full_page=True)
                page.locator(".bk-btn", has_text="wide").first.click()
                page.locator(".tabulator-cell", has_text="billing").first.wait_for()
                page.wait_for_timeout(500)
                check_labels(page.evaluate(TILES_JS))
                page.screenshot(path=str(output_dir / f"map-top-{theme}-{w}.png"),
                                full_page=True)
                page.close()
            browser.close()
    finally:
        served.stop()
    assert errors == []


def marked(page, line: int) -> None:
    """Wait until ``line`` is the one selected (marked) row of the lines table, and on
    screen (a line asked for by number is scrolled to)."""
    row = page.locator(".tabulator-row.tabulator-selected")
    row.locator(".tabulator-cell[tabulator-field='line']").filter(
        has_text=re.compile(rf"^{line}$")).wait_for()
    assert row.count() == 1
    height = page.viewport_size["height"]
    for _ in range(50):
        box = row.bounding_box()
        if box and 0 <= box["y"] and box["y"] + box["height"] <= height:
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"line {line} is marked but off screen: {row.bounding_box()}")


def rows(page) -> dict[int, tuple[str, str]]:
    """The lines table's rows on screen: line → (status, tests)."""
    out = {}
    cell = ".tabulator-cell[tabulator-field='{}']".format
    for row in page.locator(f".tabulator-row:has({cell('code')})").all():
        line, status, tests = (row.locator(cell(f)).inner_text().strip()
                               for f in ("line", "status", "tests"))
        out[int(line)] = (status, tests)
    return out


def check_labels(tiles: list[dict]) -> None:
    """Every label reads on its tile and stays inside it; and every tile is labelled as
    fully as it has room for (name and percentage, the name, the name elided, nothing)."""
    assert len(tiles) >= 4 and any(t["label"] for t in tiles), tiles
    for t in tiles:
        assert t["colour"] == label_colour(fill_colour(t["value"])), t
        room, rows_ = t["w"] - 8, int((t["h"] - 4) // 14)
        lines = t["label"].split("\n") if t["label"] else []
        if lines:
            assert max(t["widths"]) <= room and len(lines) <= rows_, t  # inside its tile
        if rows_ >= 1 and t["name_w"] <= room:
            assert lines[0] == t["name"], t
            assert len(lines) == (2 if rows_ >= 2 and t["pct_w"] <= room else 1), t
        elif lines:
            assert len(lines) == 1 and lines[0].endswith("…"), t
            assert t["name"].startswith(lines[0][:-1]) and len(lines[0]) >= 5, t


def test_the_documentation_names_the_address_of_a_line():
    readme = documentation()
    assert "?project=" in readme and "#L" in readme
