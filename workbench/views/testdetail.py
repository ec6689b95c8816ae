"""One test across runs, and the duration views (slowest, regressions)."""

from __future__ import annotations

import holoviews as hv
import pandas as pd
import panel as pn
import param

from ..models import TestAnalytics
from ..models.tests import FILTER_PARAMS as TEST_FILTERS
from .common import OUTCOME_COLORS, empty, pre, rounded, table, watching
from .escape import escape
from .lazy import LazyView, deferred, drawn


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
        self._history = table(pd.DataFrame(), empty_text="No runs of this test in this window.")
        self._history.param.watch(self._on_select, "selection")
        self._trace = pn.Column(sizing_mode="stretch_width")

    def _on_input(self, event) -> None:
        if event.new and len(event.new) >= 2:
            self._search.options = self.model.search_tests(event.new)

    def _on_search(self, event) -> None:
        if event.new:
            self.model.test_id = event.new

    @param.depends("shown", *watching(TEST_FILTERS, "test_id"))
    @drawn
    def _view(self):
        if not self.model.test_id:
            return empty("Pick a test from the flaky list, a cluster, or search above.")
        hist = self.model.test_history()
        self._frame = hist
        self._history.value = hist[
            [
                "started_at",
                "branch",
                "variant",
                "attempt",
                "final",
                "outcome",
                "duration_s",
                "message",
                "run_id",
            ]
        ]
        trend = self.model.duration_trend()
        header = pn.pane.HTML(
            f"<h3 style='margin:4px 0'>{escape(self.model.test_id)}</h3>"
            f"{len(hist)} attempts in this window",
            sizing_mode="stretch_width",
        )
        # A skipped attempt did not run: it has no duration to draw (not a 0 s point).
        trend = trend[trend["outcome"] != "skipped"] if not trend.empty else trend
        if trend.empty:
            return pn.Column(header, self._history)
        points = hv.Scatter(trend, "started_at", ["duration_s", "outcome"]).opts(
            color="outcome", cmap=OUTCOME_COLORS, size=6, tools=["hover"]
        )
        curve = hv.Curve(trend, "started_at", "duration_s").opts(color="#8899aa", alpha=0.6)
        chart = (curve * points).opts(
            responsive=True,
            height=240,
            title="Duration per run (s)",
            xlabel="",
            ylabel="seconds",
            show_legend=True,
        )
        return pn.Column(header, chart, self._history, sizing_mode="stretch_width")

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
        self._slow = table(pd.DataFrame(), empty_text="No test durations in this window.")
        self._reg = table(pd.DataFrame(), empty_text=(
            "No duration regressions: no test's recent median is clearly above its older one "
            "(needs 5+ older runs)."))
        self._chart = pn.pane.HoloViews(sizing_mode="stretch_width", height=420)
        for t in (self._slow, self._reg):
            t.param.watch(lambda e, t=t: self._open(t, e), "selection")
        self._load()

    @param.depends(*watching(TEST_FILTERS), watch=True)
    @deferred
    def _load(self) -> None:
        slow = self.model.slowest_tests()
        self._slow.value = rounded(slow)
        self._reg.value = rounded(self.model.duration_regressions())
        top = slow.head(15).iloc[::-1] if not slow.empty else slow
        self._chart.object = None if top.empty else hv.Bars(
            top.assign(test=top["test_id"].str.slice(-60)), "test", "median_s").opts(
            invert_axes=True, responsive=True, height=420, color="#3b7dd8",
            xlabel="", ylabel="median seconds", title="Slowest (median s)",
            tools=["hover"], fontsize={"yticks": 8})

    def _open(self, widget, event) -> None:
        if event.new:
            self.model.test_id = widget.value.iloc[event.new[0]]["test_id"]

    def __panel__(self):
        return pn.Column(
            pn.pane.Markdown(
                "#### Duration regressions (recent median clearly above the older one)"
            ),
            self._reg,
            pn.pane.Markdown("#### Slowest tests (median of final attempts)"),
            pn.Row(pn.Column(self._slow, sizing_mode="stretch_width"),
                   pn.Column(self._chart, width=460), sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
