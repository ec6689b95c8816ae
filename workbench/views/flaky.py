"""Flaky, statistically flaky and broken tests with their pass/fail strip and evidence."""

from __future__ import annotations

import pandas as pd
import panel as pn
import param

from ..models import TestAnalytics
from ..models.tests import FILTER_PARAMS as TEST_FILTERS
from .common import strip_html, table, watching
from .lazy import LazyView, deferred

_LABEL_COLORS = {
    "flaky": "#e08a1e",
    "statistically flaky": "#c9a227",
    "broken": "#d64545",
    "failing": "#9aa3ad",
}


#: The evidence is what makes a label believable: it stays on screen at 1440 px.
COLUMNS = ["label", "test_id", "fails", "flip_rate", "evidence", "strip", "runs", "flips"]


class FlakyTests(LazyView):
    """Selecting a test opens it in the test detail view."""

    model = param.ClassSelector(class_=TestAnalytics, doc="The test analytics model.")

    def __init__(self, **params):
        super().__init__(**params)
        # The test name is what a person reads this table for: it gets the width (two
        # shares to the evidence's one, and at least 40 characters at 1440 px); the
        # counts are short words that fit, their meaning in the header's tooltip. On a
        # narrow page the rightmost columns (runs, flips) are hidden first.
        self._table = table(
            pd.DataFrame(columns=COLUMNS),
            "No failing tests in this window: nothing flaky, nothing broken.", boxed=True,
            # Long evidence is elided here; selecting the test shows it whole (Test detail).
            formatters={"strip": {"type": "html"}},
            grow={"test_id": 2, "evidence": 1},
            min_widths={"test_id": 330, "evidence": 150},
            tips={"runs": "Runs of it looked at (the slider: runs per test)"},
        )
        self._box = self._table.box
        self._table.param.watch(self._on_select, "selection")
        self._summary = pn.pane.HTML(sizing_mode="stretch_width")
        self._load()

    @param.depends(*watching(TEST_FILTERS, "flaky_runs"), watch=True)
    @deferred
    def _load(self) -> None:
        df = self.model.flaky_tests()
        counts = df["label"].value_counts() if not df.empty else {}
        self._summary.object = " ".join(
            f'<span style="background:{c};color:white;border-radius:4px;padding:3px 8px;'
            f'margin-right:6px">{label}: {int(counts.get(label, 0))}</span>'
            for label, c in _LABEL_COLORS.items()
        )
        if df.empty:
            self._table.value = pd.DataFrame(columns=COLUMNS)
            return
        shown = df.copy()
        shown["strip"] = shown["strip"].map(strip_html)
        self._table.value = shown[COLUMNS]

    def _on_select(self, event) -> None:
        if event.new:
            self.model.test_id = self._table.value.iloc[event.new[0]]["test_id"]

    def __panel__(self):
        return pn.Column(self._summary, self._box, sizing_mode="stretch_width")
