"""One test across runs, and the duration views (slowest, regressions)."""

from __future__ import annotations

import holoviews as hv
import pandas as pd
import panel as pn
import param
from bokeh.models import HoverTool

from ..analysis.units import duration, number, percent
from ..models import TestAnalytics
from ..models.tests import FILTER_PARAMS as TEST_FILTERS
from .charts import DurationBars, in_duration_unit, number_ticks, time_axis_hook
from .common import OUTCOME_COLORS, columns, empty, pre, table, watching
from .escape import escape
from .lazy import LazyView, deferred, drawn

HISTORY_COLUMNS = ["started_at", "branch", "variant", "attempt", "final", "outcome",
                   "duration_s", "message", "run_id"]
SLOW_COLUMNS = ["test_id", "runs", "median_s", "max_s", "total_s"]
REGRESSION_COLUMNS = ["test_id", "runs", "recent_median_s", "older_median_s", "ratio",
                      "older_runs"]

#: (Bokeh's own redraw, for the view being typed in; a Bokeh without these names keeps its
#: redraw on the next key, as before)
REDRAW_SUGGESTIONS = """
const index = Bokeh.index;
const view = index != null && index.find_one != null ? index.find_one(source) : null;
if (view != null && typeof view._toggle_menu === "function" && view.shadow_el != null
    && view.shadow_el.activeElement === view.input_el) view._toggle_menu();
"""


class TestDetail(LazyView):
    """History of one test: outcomes, durations, messages."""

    __test__ = False
    model = param.ClassSelector(class_=TestAnalytics, doc="The test analytics model.")

    def __init__(self, **params):
        super().__init__(**params)
        self._search = pn.widgets.AutocompleteInput(
            label="Find a test",
            placeholder="type part of a test name…",
            min_characters=2,
            case_sensitive=False,
            search_strategy="includes",
            sizing_mode="stretch_width",
        )
        self._search.param.watch(self._on_search, "value")
        self._search.param.watch(self._on_input, "value_input")
        # Bokeh redraws the suggestions on a key press only; ours come from the server just
        # after it, so without this a person who stops typing sees no list (or the one for
        # the text before their last key) until they press another key.
        self._search.jscallback(options=REDRAW_SUGGESTIONS)
        self._history = table(pd.DataFrame(columns=HISTORY_COLUMNS),
                              "No runs of this test in this window.", boxed=True,
                              grow={"message": 1})
        self._history_box = self._history.box
        self._history.param.watch(self._on_select, "selection")
        self._trace = pn.Column(sizing_mode="stretch_width")

    def _on_input(self, event) -> None:
        if event.new and len(event.new) >= 2:
            self._search.options = self.model.search_tests(event.new)

    def _on_search(self, event) -> None:
        if event.new:
            self.model.test_id = event.new

    @param.depends("shown", *watching(TEST_FILTERS, "test_id", "flaky_runs"))
    @drawn
    def _view(self):
        if not self.model.test_id:
            return empty("Pick a test from the flaky list, a cluster, or search above.")
        hist = self.model.test_history()
        self._frame = hist
        self._history.value = hist[HISTORY_COLUMNS]
        trend = self.model.duration_trend()
        header = pn.pane.HTML(
            f"<h3 style='margin:4px 0'>{escape(self.model.test_id)}</h3>"
            f"{number(len(hist))} attempt{'' if len(hist) == 1 else 's'} in this window"
            f"{self._label()}",
            sizing_mode="stretch_width",
        )
        # A skipped attempt did not run: it has no duration to draw (not a 0 s point).
        trend = trend[trend["outcome"] != "skipped"] if not trend.empty else trend
        if trend.empty:
            return pn.Column(header, self._history_box, sizing_mode="stretch_width")
        # Drawn in the unit its durations read best in: 250 ms, not 0.25 s or 2.5e-1.
        took, unit = in_duration_unit(trend["duration_s"].astype(float))
        trend = trend.assign(took=took, duration=trend["duration_s"].map(duration))
        points = hv.Scatter(trend, "started_at", ["took", "outcome", "duration"]).opts(
            color="outcome", cmap=OUTCOME_COLORS, size=6,
            tools=[HoverTool(tooltips=[("started", "@started_at{%F %T}"),
                                       ("duration", "@duration"), ("outcome", "@outcome")],
                             formatters={"@started_at": "datetime"})])
        curve = hv.Curve(trend, "started_at", "took").opts(color="#8899aa", alpha=0.6)
        chart = (curve * points).opts(
            responsive=True,
            height=240,
            title=f"Duration per run ({unit})",
            xlabel="",
            ylabel=unit,
            yformatter=number_ticks(),
            hooks=[time_axis_hook],
            show_legend=True,
            legend_position="right",  # beside the points, never over them
        )
        return pn.Column(header, chart, self._history_box, sizing_mode="stretch_width")

    def _label(self) -> str:
        """The test's flaky/broken label and its evidence in full (the Flaky table elides
        long evidence), as HTML; nothing for a test with no label."""
        flaky = self.model.flaky_tests()
        row = flaky[flaky["test_id"] == self.model.test_id] if not flaky.empty else flaky
        if row.empty:
            return ""
        r = row.iloc[0]
        return (f" · <b>{escape(r['label'])}</b>: {escape(r['evidence'])} (flip rate "
                f"{escape(percent(r['flip_rate']))} over its last {escape(number(r['runs']))}"
                " runs)")

    def _on_select(self, event) -> None:
        """A row of the history is one run of this test: open that run."""
        if event.new:
            row = self._frame.iloc[event.new[0]]
            self._trace[:] = [pre(row["message"])] if isinstance(row["message"], str) else []
            self.model.run_id = row["run_id"]

    def __panel__(self):
        return pn.Column(self._search, pn.param.ParamMethod(self._view, lazy=True), self._trace,
                         sizing_mode="stretch_width")


class Durations(LazyView):
    """Slowest tests and duration regressions; selecting one opens it."""

    model = param.ClassSelector(class_=TestAnalytics, doc="The test analytics model.")

    def __init__(self, **params):
        super().__init__(**params)
        self._slow = table(pd.DataFrame(columns=SLOW_COLUMNS),
                           "No test durations in this window.", boxed=True, grow={"test_id": 1},
                           tips={"runs": "Runs in which its final attempt ran"})
        self._slow_box = self._slow.box
        self._reg = table(pd.DataFrame(columns=REGRESSION_COLUMNS), (
            "No duration regressions: no test's recent median is clearly above its older one "
            "(needs 5+ older runs)."), boxed=True, grow={"test_id": 1},
                          tips={"runs": "Runs in which its final attempt ran"})
        self._reg_box = self._reg.box
        # The 15 slowest, full width under their heading (beside the table, at 1440 px the
        # chart's title, ticks and toolbar ran into each other and the table's names were
        # cut); a bar opens its test.
        self._chart = DurationBars("median", height=15 * 24 + 60, on_tap=self._open_test)
        for t in (self._slow, self._reg):
            t.param.watch(lambda e, t=t: self._open(t, e), "selection")
        self._load()

    @param.depends(*watching(TEST_FILTERS), watch=True)
    @deferred
    def _load(self) -> None:
        slow = self.model.slowest_tests()
        self._slow.value = columns(slow, SLOW_COLUMNS)
        self._reg.value = columns(self.model.duration_regressions(), REGRESSION_COLUMNS)
        top = columns(slow, SLOW_COLUMNS).head(15)
        self._chart.send(top["test_id"], top["median_s"])

    def _open(self, widget, event) -> None:
        if event.new:
            self.model.test_id = widget.value.iloc[event.new[0]]["test_id"]

    def _open_test(self, test_id: str) -> None:
        self.model.test_id = test_id

    def __panel__(self):
        return pn.Column(
            pn.pane.Markdown(
                "#### Duration regressions (recent median clearly above the older one)"
            ),
            self._reg_box,
            pn.pane.Markdown("#### Slowest tests (median of final attempts)"),
            self._chart,
            self._slow_box,
            sizing_mode="stretch_width",
        )
