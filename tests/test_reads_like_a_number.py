"""Numbers, times and headers as a person reads them (issue 21, items 2, 10, 11 and 13).

One formatting layer (workbench/analysis/units.py, through views/common.readable) shows
every table's numbers: durations with their unit, shares as percentages, money in
dollars, the rest rounded, times whole; headers are short words that fit, their meaning in
a tooltip; an empty table's reason comes from the frame its rows come from. The unit tests
pin the formatters; the browser tests open the served pages and read what is on them."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from workbench.analysis.units import (
    duration,
    duration_ms,
    duration_unit,
    money,
    number,
    percent,
    ratio,
    timestamp,
)

from .conftest import Served, wait_for

# -- the formatters -------------------------------------------------------------------------


def test_a_duration_always_has_its_unit():
    assert duration(17.9712) == "17.97 s"
    assert duration(0.001) == "1 ms"
    assert duration(0.0123) == "12.3 ms"
    assert duration(0.143) == "143 ms"
    assert duration(0.00025) == "250 µs"
    assert duration(10.0) == "10 s" and duration(2.5) == "2.5 s"
    assert duration(125) == "2 min 5 s" and duration(120) == "2 min"
    assert duration(3725) == "1 h 2 min" and duration(2 * 86400 + 4 * 3600) == "2 d 4 h"
    assert duration(0) == "0 s" and duration(-1.5) == "-1.5 s"
    # At a unit's edge the rounded value moves up a unit rather than reading "1000 ms".
    assert duration(0.9996) == "1 s" and duration(0.0009996) == "1 ms"
    assert duration(59.999) == "1 min" and duration(3599.7) == "1 h"
    for missing in (None, float("nan"), pd.NA, pd.NaT, "12", float("inf")):
        assert duration(missing) == ""
    assert duration_ms(1500) == "1.5 s" and duration_ms(9042.0) == "9.04 s"
    assert duration_ms(0.4) == "400 µs"


def test_shares_are_percentages_and_money_is_dollars():
    assert percent(0.3412) == "34%" and percent(0.093) == "9.3%" and percent(0.05) == "5%"
    assert percent(1) == "100%" and percent(0) == "0%" and percent(0.0004) == "<0.1%"
    assert percent(None) == "" and percent(float("nan")) == ""
    assert money(4.0581) == "$4.06" and money(0.5878) == "$0.59" and money(0.0238) == "$0.024"
    assert money(0.0004) == "<$0.001" and money(0) == "$0" and money(1234.5) == "$1,234.50"
    assert ratio(3.2734) == "3.27×" and ratio(12.54) == "12.5×" and ratio(None) == ""


def test_other_numbers_are_rounded_never_scientific():
    assert number(89.83000000000001) == "89.83"
    assert number(1234567) == "1,234,567" and number(np.int64(3)) == "3"
    assert number(2.0) == "2" and number(-1.5) == "-1.5" and number(1e6) == "1,000,000"
    assert number(0.0238) == "0.024" and number(0.5) == "0.5" and number(0.0004) == "<0.001"
    assert number(None) == "" and number(True) == "" and number("7") == ""
    # Over every magnitude: no exponent, at most three decimals, and the value kept.
    for exp in range(-12, 16):
        for mantissa in (1.0, 1.2345678, 9.87654321):
            x = mantissa * 10.0 ** exp
            text = number(x)
            assert not re.search(r"\de[-+]?\d", text.lower()), text
            decimals = text.split(".")[1] if "." in text else ""
            assert len(decimals) <= 3, text
            if x >= 0.0005:
                assert math.isclose(float(text.replace(",", "")), x, rel_tol=0.01,
                                    abs_tol=0.0005), text


def test_times_are_whole_fields():
    when = datetime(2026, 12, 5, 23, 53, 43, 987000)
    assert timestamp(when) == "2026-12-05 23:53:43"
    assert timestamp(when, seconds=False) == "2026-12-05 23:53"  # a field left out, not cut
    assert timestamp(pd.Timestamp(when)) == "2026-12-05 23:53:43"
    assert timestamp(pd.NaT) == "" and timestamp(None) == "" and timestamp("x") == ""


def test_a_chart_draws_durations_in_the_unit_they_read_best_in():
    assert duration_unit(0.0004) == ("µs", 1e6)
    assert duration_unit(0.25) == ("ms", 1e3)
    assert duration_unit(7.5) == ("s", 1.0)
    assert duration_unit(600)[0] == "min" and duration_unit(86400)[0] == "h"
    assert duration_unit(None) == ("s", 1.0) and duration_unit(float("nan")) == ("s", 1.0)


def test_axes_read_clock_times_and_plain_numbers():
    from workbench.views.charts import number_ticks, time_ticks

    ticks = time_ticks()
    assert ticks.milliseconds == "%H:%M:%S.%3N"  # never a bare "200ms"
    assert ticks.seconds == "%H:%M:%S" and ticks.hours == "%H:%M"
    assert ticks.context is not None and ticks.context.milliseconds == "%b %d, %Y"
    assert number_ticks().format == "0,0.[00]"  # no 1.000e-3


# -- one formatting layer for every table ----------------------------------------------------


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "test_id": ["a", "b", "c"],
        "duration_s": [17.9712, 0.001, 125.0],
        "flip_rate": [0.34, 0.093, None],
        "cost_usd": [0.5878, 4.0581, 0.0238],
        "started_at": pd.to_datetime(["2026-12-05 23:53:43", None, "2026-12-04 01:00:00"]),
        "tests": pd.array([1234, None, 7], dtype="Int64"),
        "final": [True, False, True],
        "mean": [89.83000000000001, 0.0004, 1e6],
    })


def test_every_table_shows_values_through_one_layer():
    from workbench.views.common import readable, sort_keys

    shown = readable(_frame())
    assert shown["duration_s"].tolist() == ["17.97 s", "1 ms", "2 min 5 s"]
    assert shown["flip_rate"].tolist() == ["34%", "9.3%", None]
    assert shown["cost_usd"].tolist() == ["$0.59", "$4.06", "$0.024"]
    assert shown["started_at"].tolist() == ["2026-12-05 23:53:43", None, "2026-12-04 01:00:00"]
    assert shown["tests"].tolist() == ["1,234", None, "7"]
    assert shown["final"].tolist() == ["yes", "no", "yes"]
    assert shown["mean"].tolist() == ["89.83", "<0.001", "1,000,000"]
    # text: a Tabulator's columns never change type
    assert all(dtype is np.dtype(object) for dtype in shown.dtypes)
    assert set(shown.attrs["numeric"]) == {"duration_s", "flip_rate", "cost_usd", "tests",
                                           "mean"}
    keys = sort_keys(shown)
    assert keys["duration_s"].tolist() == [17.9712, 0.001, 125.0]
    assert readable(shown) is shown  # formatted once, shared as it is


def test_a_column_sorts_by_value_not_by_its_text():
    from workbench.views.common import table
    from workbench.views.paged_table import PagedTable

    frame = pd.DataFrame({"test_id": ["t9", "t10", "t2"], "duration_s": [9.0, 10.0, 0.002]})
    t = table(frame.iloc[:0])
    t.value = frame
    t.sorters = [{"field": "duration_s", "dir": "asc"}]
    assert t._processed["duration_s"].tolist() == ["2 ms", "9 s", "10 s"]  # not "10 s" first
    t.sorters = [{"field": "duration_s", "dir": "desc"}]
    assert t._processed["test_id"].tolist() == ["t10", "t9", "t2"]
    t.sorters = [{"field": "test_id", "dir": "asc"}]  # text sorts as text
    assert t._processed["test_id"].tolist() == ["t10", "t2", "t9"]

    paged = PagedTable("test_id", on_open=lambda key: None)
    paged.value = frame
    paged._handle_msg({"sort": "duration_s"})
    assert re.findall(r'data-open="([^"]+)"', paged.html) == ["t2", "t9", "t10"]
    assert "<td class=n>2 ms</td>" in paged.html


def test_headers_are_short_with_their_meaning_in_a_tooltip():
    from workbench.views.common import COLUMNS, WIDTHS, table, title_width

    t = table(pd.DataFrame(columns=["test_id", "passed", "recent_median_s", "older_runs"]))
    assert t.titles["passed"] == "pass" and t.titles["recent_median_s"] == "recent"
    assert t.header_tooltips["recent_median_s"] == "Median duration over its last 5 runs"
    assert t.header_tooltips["test_id"].startswith("The test")
    assert t.text_align["passed"] == "right" and "test_id" not in t.text_align
    for name, col in COLUMNS.items():  # every header fits the width it is given
        if name in WIDTHS:
            assert WIDTHS[name] >= title_width(col.title), name
        assert "_" not in col.title and len(col.title) <= 12, name  # no `grp`, `rate_per_s`


def test_a_boxed_table_says_why_it_is_empty_from_its_own_frame():
    from workbench.views.common import table

    t = table(pd.DataFrame(columns=["test_id", "tests"]), "No <runs> here.", boxed=True)
    reason = t.box.objects[0]
    assert t._configuration["placeholder"] == ""  # Tabulator never guesses
    assert reason.visible and not t.visible and "&lt;runs&gt;" in reason.object
    t.value = pd.DataFrame({"test_id": ["x"], "tests": [3]})
    assert t.visible and not reason.visible  # never the reason beside rows
    t.value = pd.DataFrame(columns=["test_id", "tests"])
    assert reason.visible and not t.visible


def test_the_tests_views_keep_their_columns_from_the_start(demo_store):
    """A table whose columns change is built anew in the browser, and rows sent meanwhile
    were lost: the placeholder said "no failures" beside a pager of two pages."""
    from workbench.models import TestAnalytics
    from workbench.views.clusters import FailureClusters
    from workbench.views.flaky import FlakyTests
    from workbench.views.runs import RunHistory
    from workbench.views.testdetail import Durations

    for cls, attrs in ((RunHistory, ["_table"]), (FailureClusters, ["_clusters", "_failures"]),
                       (FlakyTests, ["_table"]), (Durations, ["_slow", "_reg"])):
        before = {a: list(getattr(cls(model=TestAnalytics(store=demo_store), shown=False), a)
                          .value.columns) for a in attrs}
        view = cls(model=TestAnalytics(store=demo_store, window="all time"))
        for a in attrs:
            assert list(getattr(view, a).value.columns) == before[a], (cls.__name__, a)


def test_run_detail_names_what_the_run_has_and_nothing_else(store):
    from workbench.ingest import parse_bytes
    from workbench.models import TestAnalytics
    from workbench.store.writes import insert_run
    from workbench.views.runs import RunDetail

    xml = b'<testsuite><testcase name="t" time="17.9712"><failure message="x"/></testcase>' \
          b"</testsuite>"
    run_id, _ = insert_run(store, parse_bytes(xml, "r.xml"),
                           {"project": "p", "started_at": datetime(2026, 12, 5, 23, 53, 43)})
    m = TestAnalytics(store=store, window="all time", run_id=run_id)
    text = RunDetail(model=m)._header[0].object
    assert "build" not in text and "variant" not in text and "commit" not in text
    assert " -" not in text and "started 2026-12-05 23:53:43" in text


def test_the_test_detail_counts_one_attempt_as_one(store):
    from workbench.ingest import parse_bytes
    from workbench.models import TestAnalytics
    from workbench.store.writes import insert_run
    from workbench.views.testdetail import TestDetail

    m = TestAnalytics(store=store, window="all time", test_id="t")
    for i in range(2):
        xml = f'<testsuite><testcase name="t" time="0.{i + 1}"/></testsuite>'.encode()
        insert_run(store, parse_bytes(xml, f"r{i}.xml"), {"project": "p"})
        m.param.trigger("refreshed")
        header = TestDetail(model=m)._view()[0].object
        assert (" 1 attempt in this window" if i == 0 else " 2 attempts in this window") \
            in header.replace("</h3>", " "), header


def test_flaky_evidence_is_whole_in_the_test_detail(demo_store):
    from workbench.models import TestAnalytics
    from workbench.views.testdetail import TestDetail

    m = TestAnalytics(store=demo_store, window="all time")
    flaky = m.flaky_tests().iloc[0]
    m.test_id = flaky["test_id"]
    header = TestDetail(model=m)._view()[0].object
    assert f"<b>{flaky['label']}</b>" in header and flaky["evidence"] in header
    assert re.search(r"flip rate \d+(\.\d)?%", header)


# -- in Chromium ----------------------------------------------------------------------------

ARGS = ["--no-sandbox", "--disable-gpu"]
_DURATION = re.compile(r"^(<?-?[\d,.]+ (µs|ms|s|min|h|d))( [\d]+ (s|min|h))?$")
_RAW_FLOAT = re.compile(r"\d\.\d{4,}|\de[-+−]?\d")

#: Whether an element is on screen: neither it nor anything it is in (shadow hosts
#: included) is hidden. A tab that is not open is ``visibility: hidden``, but Panel's
#: Tabulator sets ``visibility: visible`` on itself, so checkVisibility() counts its rows.
_SHOWN = """const shown = (el) => {
  if (!el.checkVisibility() || el.getBoundingClientRect().width < 1) return false;
  for (let e = el; e; e = e.parentElement || (e.getRootNode() && e.getRootNode().host)) {
    const cs = getComputedStyle(e);
    if (cs.display === 'none' || (e !== el && cs.visibility === 'hidden')) return false;
  }
  return true; };"""

#: In each visible header of a table, the text as shown and whether it is cut.
_HEADERS = """() => {
  """ + _SHOWN + """
  const out = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll('.tabulator-col:not(.empty) .tabulator-col-title, table.obs-t th')) {
      if (shown(el))
        out.push({text: el.textContent.trim(), scroll: el.scrollWidth, client: el.clientWidth,
                  field: (el.closest('.tabulator-col') || el).getAttribute('tabulator-field')
                         || el.getAttribute('data-sort'),
                  width: (el.closest('.tabulator-col') || el).getBoundingClientRect().width});
    }
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot);
  };
  walk(document); return out; }"""

#: Every visible table cell: its field (column) and text, and whether its text is cut.
_CELLS = """() => {
  """ + _SHOWN + """
  const out = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll('.tabulator-cell')) {
      if (shown(el))
        out.push({field: el.getAttribute('tabulator-field'), text: el.textContent.trim(),
                  scroll: el.scrollWidth, client: el.clientWidth});
    }
    for (const table of root.querySelectorAll('table.obs-t')) {
      if (!shown(table)) continue;
      const fields = [...table.querySelectorAll('thead th')].map(
        th => th.getAttribute('data-sort') || th.textContent.trim());
      for (const tr of table.querySelectorAll('tbody tr'))
        [...tr.children].forEach((td, i) => out.push({field: fields[i],
          text: td.textContent.trim(), scroll: td.scrollWidth, client: td.clientWidth}));
    }
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot);
  };
  walk(document); return out; }"""

#: Grey "why it is empty" texts and Tabulator placeholders that are on screen.
_VISIBLE_TEXT = """(texts) => {
  """ + _SHOWN + """
  const found = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll('p, em, .tabulator-placeholder')) {
      const t = el.textContent.trim();
      if (t && shown(el)
          && (el.classList.contains('tabulator-placeholder') || texts.some(x => t.includes(x))))
        found.push(t);
    }
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot);
  };
  walk(document); return found; }"""


#: The categories of every categorical axis drawn on the page (from Bokeh's views: what is
#: on screen, not what a document once held).
_FACTORS = """() => {
  const out = [], seen = new Set();
  const visit = (v) => {
    if (!v || seen.has(v)) return;
    seen.add(v);
    for (const axis of ['x_range', 'y_range']) {
      const r = v.model && v.model[axis];
      if (r && Array.isArray(r.factors) && r.factors.length) out.push([...r.factors]);
    }
    for (const c of (v.child_views || [])) visit(c);
  };
  for (const v of Object.values(Bokeh.index)) visit(v);
  return out; }"""


def _numeric_fields() -> set[str]:
    from workbench.views.common import COLUMNS, NUMERIC_KINDS

    return {n for n, c in COLUMNS.items() if c.kind in NUMERIC_KINDS}


def _duration_fields() -> set[str]:
    from workbench.views.common import COLUMNS

    return {n for n, c in COLUMNS.items() if c.kind in ("duration_s", "duration_ms")}


def _open(page, url: str, tab: str | None = None) -> None:
    page.goto(url)
    page.locator(".bk-tab").first.wait_for(timeout=60_000)
    if tab:
        page.locator(".bk-tab", has_text=tab).first.click()
    page.wait_for_timeout(2500)


def _browser(p, chromium):
    return p.chromium.launch(executable_path=chromium, args=ARGS)


TABS = [("/tests", t) for t in ("Runs", "Failure clusters", "Flaky tests", "Durations")] + [
    ("/agents", t) for t in ("Agents", "Traces", "Logs", "Metrics")]


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [(1440, 900), (1920, 1080)], ids=lambda v: f"{v[0]}")
def test_headers_fit_and_cells_read_like_numbers(server, chromium, output_dir, viewport):
    from playwright.sync_api import sync_playwright

    numeric, durations = _numeric_fields(), _duration_fields()
    cut, raw, unitless, seen = [], [], [], set()
    with sync_playwright() as p:
        browser = _browser(p, chromium)
        page = browser.new_page(viewport=dict(zip(("width", "height"), viewport, strict=True)))
        for i, (path, tab) in enumerate(TABS):
            _open(page, server.url + path, tab)
            page.screenshot(path=output_dir / f"{i}-{tab.replace(' ', '-')}.png", full_page=True)
            headers = page.evaluate(_HEADERS)
            assert headers, (path, tab)
            cut += [(tab, h["text"], h["scroll"], h["client"]) for h in headers
                    if h["scroll"] > h["client"]]
            for c in page.evaluate(_CELLS):
                if c["field"] in numeric and c["text"]:
                    seen.add(c["field"])
                    if _RAW_FLOAT.search(c["text"]):
                        raw.append((tab, c["field"], c["text"]))
                    if c["field"] in durations and not _DURATION.match(c["text"]):
                        unitless.append((tab, c["field"], c["text"]))
        browser.close()
    assert cut == [], f"headers cut: {cut}"
    assert raw == [], f"raw floats: {raw}"
    assert unitless == [], f"durations without a unit: {unitless}"
    assert {"duration_s", "median_s", "flip_rate", "duration_ms", "cost_usd"} <= seen


@pytest.mark.browser
def test_the_flaky_table_gives_the_test_name_the_width(server, chromium, output_dir):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = _browser(p, chromium)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        _open(page, server.url + "/tests", "Flaky tests")
        page.locator(".tabulator-cell[tabulator-field=test_id]").first.wait_for()
        page.screenshot(path=output_dir / "flaky-1440.png", full_page=True)
        widths = {h["field"]: h["width"] for h in page.evaluate(_HEADERS)}
        names = [c for c in page.evaluate(_CELLS) if c["field"] == "test_id"]
        # The header's tooltip says what a short title means.
        page.locator(".tabulator-col[tabulator-field=fails]").hover()
        tip = page.locator(".tabulator-tooltip").first
        tip.wait_for(timeout=5_000)
        tip_text = tip.inner_text()
        browser.close()
    assert max(widths, key=widths.get) == "test_id", widths
    long = [c for c in names if len(c["text"]) >= 40]
    assert long, names
    for c in long:  # characters shown = the share of the text that fits
        shown = len(c["text"]) * min(1.0, c["client"] / c["scroll"])
        assert shown >= 40, c
    assert tip_text == "Runs in which it failed"


@pytest.mark.browser
def test_the_durations_chart_heading_and_toolbar_do_not_overlap(server, chromium, output_dir):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = _browser(p, chromium)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        _open(page, server.url + "/tests", "Durations")
        page.screenshot(path=output_dir / "durations-1440.png", full_page=True)
        heading = page.get_by_text("Slowest tests (median of final attempts)").bounding_box()
        boxes = page.evaluate("""() => {
          """ + _SHOWN + """
          const out = [];
          const walk = (root) => {
            for (const el of root.querySelectorAll('.bk-Toolbar, canvas')) {
              const r = el.getBoundingClientRect();
              if (r.width > 20 && shown(el))
                out.push({kind: el.tagName, x: r.x, y: r.y, width: r.width, height: r.height});
            }
            for (const el of root.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot);
          };
          walk(document); return out; }""")
        bars = [len(f) for f in page.evaluate(_FACTORS)]
        browser.close()

    def overlap(a, b) -> bool:
        return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                    or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])

    # The chart's heading is the view's (no title inside the plot to run into the toolbar),
    # and nothing of the chart — canvas or toolbar — lies over it.
    assert heading and 15 in bars, (heading, bars)
    assert [b for b in boxes if b["kind"] != "CANVAS"], boxes  # a toolbar is there
    assert all(not overlap(heading, b) for b in boxes), (heading, boxes)


@pytest.mark.browser
def test_an_empty_reason_never_shows_beside_rows(server, chromium, output_dir):
    import httpx
    from playwright.sync_api import sync_playwright

    reasons = ["No failures in this window", "No test durations", "No duration regressions",
               "No failing tests in this window", "No runs in this window"]
    # A project whose only run is years old: nothing of it in any window but "all time".
    old = (b'<testsuite name="s" timestamp="2020-01-02T03:04:05"><testcase classname="c" '
           b'name="t" time="0.5"><failure message="x"/></testcase></testsuite>')
    r = httpx.post(server.url + "/api/tests/reports", content=old, params={"project": "old-only"})
    assert r.status_code == 200, r.text
    with sync_playwright() as p:
        browser = _browser(p, chromium)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        for tab in ("Runs", "Failure clusters", "Flaky tests", "Durations"):
            _open(page, server.url + "/tests", tab)
            rows = page.evaluate(_CELLS)
            said = page.evaluate(_VISIBLE_TEXT, reasons)
            assert rows and said == [], (tab, said)
        # A window with nothing in it: each tab says why, with no rows and no placeholder.
        page.reload()
        page.locator(".bk-tab").first.wait_for(timeout=60_000)
        page.locator("select").first.select_option("old-only")
        empty = {}
        for tab in ("Runs", "Failure clusters", "Flaky tests", "Durations"):
            page.locator(".bk-tab", has_text=tab).first.click()
            page.wait_for_timeout(2000)
            empty[tab] = (page.evaluate(_VISIBLE_TEXT, reasons), page.evaluate(_CELLS))
        page.screenshot(path=output_dir / "durations-empty.png", full_page=True)
        browser.close()
    for tab, (said, rows) in empty.items():
        assert said and rows == [], (tab, said, rows)
        assert not any(s.startswith("Nothing here") for s in said), (tab, said)


@pytest.mark.browser
def test_a_click_on_a_runs_bar_opens_that_run(server, chromium, output_dir):
    """The runs chart's bars are HTML: the newest one, clicked, opens its run's detail (the
    bar's tooltip names it; the browser sends the click and the server checks it)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = _browser(p, chromium)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        _open(page, server.url + "/tests")
        bar = page.locator(".sb-c[data-open]").last
        bar.wait_for(timeout=30_000)
        label = bar.get_attribute("data-open")
        assert label and label.split("\n")[0] in bar.get_attribute("title")
        build = label.rsplit("#", 1)[-1].split()[0]
        bar.click()
        page.get_by_text(f"build {build}").first.wait_for(timeout=30_000)
        page.screenshot(path=output_dir / "runs-bar-opened.png", full_page=True)
        browser.close()
    assert errors == []


SUITE = """
import time, pytest

@pytest.mark.parametrize("i", range(24))
def test_step(i):
    time.sleep(0.1)
    assert i % 7 != 3
"""


@pytest.mark.browser
@pytest.mark.parametrize("theme", ["default", "dark"])
def test_the_runs_chart_stays_when_a_live_run_finishes(tmp_path, chromium, output_dir, theme):
    """On a fresh server (no runs yet), the Runs tab open while pytest streams a run into it:
    the chart appears with the run's bar and is still there, with it, after the run ends
    (and after a second run). The chart's box was hidden while empty; showing a Bokeh pane
    of a themed page raised in Panel, so the first bars never reached the page."""
    from playwright.sync_api import sync_playwright

    served = Served(tmp_path / "live.duckdb", env={"OBSERVATORY_NO_DEMO": "1"})
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "test_steps.py").write_text(SUITE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB_", "CI_"))}

    def run(build: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
             "test_steps.py", "--observatory-url", served.url, "--observatory-project", "live",
             "--observatory-build", build],
            cwd=tmp_path / "suite", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


    def factors() -> list[str]:
        """The runs the chart draws a bar for (its bars are HTML: see stacked_bars)."""
        return page.locator(".sb-c[data-open]").evaluate_all(
            "els => els.filter(e => e.getClientRects().length).map(e => e.dataset.open)")
    try:
        with sync_playwright() as p:
            browser = _browser(p, chromium)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            _open(page, f"{served.url}/tests?theme={theme}")
            page.get_by_text("No runs in this window").wait_for(timeout=30_000)
            first = run("L-1")
            page.get_by_role("gridcell", name="live", exact=True).wait_for(timeout=30_000)
            wait_for(lambda: any(f.endswith("#L-1") for f in factors()), 30,
                     "the live run's bar")
            assert first.wait(120) == 1  # its failures fail it
            page.get_by_role("gridcell", name="complete", exact=True).wait_for(timeout=30_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=output_dir / f"finished-{theme}.png", full_page=True)
            assert any(f.endswith("#L-1") for f in factors())
            chart = page.locator(".sb-bars").first
            assert chart.is_visible() and chart.bounding_box()["height"] > 100  # on screen
            assert not page.get_by_text("No runs in this window").is_visible()
            # Open the run and come back: the chart is there, and so is a second run.
            page.get_by_role("gridcell", name="live", exact=True).click()
            page.get_by_text("compared with no earlier run").wait_for(timeout=30_000)
            second = run("L-2")
            second.wait(120)
            page.locator(".bk-tab", has_text="Runs").first.click()
            wait_for(lambda: {"L-1", "L-2"} <= {f.rsplit("#", 1)[-1] for f in factors()}, 30,
                     "both runs' bars")
            page.screenshot(path=output_dir / f"two-runs-{theme}.png", full_page=True)
            browser.close()
        assert errors == []
        assert "Traceback" not in served.log.read_text()
    finally:
        served.stop()
