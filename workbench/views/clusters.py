"""Failure clusters with drill-down to tracebacks and affected tests."""

from __future__ import annotations

import pandas as pd
import panel as pn
import param

from ..analysis.units import number, timestamp
from ..models import TestAnalytics
from ..models.tests import FILTER_PARAMS as TEST_FILTERS
from .common import columns, empty, pre, table, watching
from .escape import escape
from .lazy import LazyView, deferred

CLUSTER_COLUMNS = ["failures", "tests", "runs", "exception", "normalized", "suspect",
                   "first_seen", "last_seen"]
FAILURE_COLUMNS = ["started_at", "branch", "test_id", "attempt", "outcome", "message",
                   "run_id"]


def _title(exception: str | None, normalized: str) -> str:
    """``Exception: message`` without saying the exception twice."""
    if exception and not normalized.startswith(exception):
        return f"{exception}: {normalized}"
    return normalized or exception or "Failure"


class FailureClusters(LazyView):
    """Failures grouped by normalised signature; select one to see every occurrence."""

    model = param.ClassSelector(class_=TestAnalytics, doc="The test analytics model.")

    def __init__(self, **params):
        super().__init__(**params)
        # The empty text and the rows come from one frame (the table says nothing itself).
        self._clusters = table(pd.DataFrame(columns=CLUSTER_COLUMNS),
                               "No failures in this window: nothing to cluster.", boxed=True,
                               grow={"normalized": 3, "suspect": 2, "exception": 1},
                               tips={"tests": "Tests that failed this way",
                                     "runs": "Runs in which it happened"},
                               widths={"exception": 150})
        self._clusters_box = self._clusters.box
        self._clusters.param.watch(self._on_cluster, "selection")
        self._failures = table(pd.DataFrame(columns=FAILURE_COLUMNS),
                               "Select a cluster above to see its failures.", boxed=True,
                               grow={"test_id": 3, "message": 2})
        self._failures_box = self._failures.box
        self._failures.param.watch(self._on_failure, "selection")
        self._detail = pn.Column(
            empty("Select a cluster to drill down."), sizing_mode="stretch_width"
        )
        self._trace = pn.Column(sizing_mode="stretch_width")
        self._frame = pd.DataFrame()
        self._load()

    @param.depends(*watching(TEST_FILTERS), watch=True)
    @deferred
    def _load(self) -> None:
        df = self.model.clusters()
        self._frame = df
        self._clusters.value = columns(df, CLUSTER_COLUMNS)
        self._show()

    def _on_cluster(self, event) -> None:
        if event.new:
            self.model.signature = self._frame.iloc[event.new[0]]["signature"]

    @param.depends("model.signature", watch=True)
    @deferred
    def _show(self) -> None:
        sig = self.model.signature
        row = (
            self._frame[self._frame["signature"] == sig] if sig and not self._frame.empty else None
        )
        self._trace[:] = []
        if row is None or row.empty:
            self._detail[:] = [empty("Select a cluster to drill down.")]
            self._failures.value = pd.DataFrame(columns=FAILURE_COLUMNS)
            return
        r = row.iloc[0]
        tests = "".join(f"<li><code>{escape(t)}</code></li>" for t in list(r["affected_tests"]))
        self._detail[:] = [
            pn.pane.HTML(
                f"<h4 style='margin:4px 0'>{escape(_title(r['exception'], r['normalized']))}</h4>"
                f"<div>Suspect frame: <code>{escape(r['suspect'] or 'unknown')}</code> · "
                f"{escape(number(r['failures']))} failures in {escape(number(r['runs']))} runs"
                f" · first seen {escape(timestamp(r['first_seen']))}, "
                f"last seen {escape(timestamp(r['last_seen']))}</div>"
                f"<details open><summary>{escape(number(r['tests']))} affected test(s)</summary>"
                f"<ul>{tests}</ul></details>",
                sizing_mode="stretch_width",
            )
        ]
        fails = self.model.cluster_failures()
        self._fail_frame = fails
        self._failures.value = fails[FAILURE_COLUMNS]

    def _on_failure(self, event) -> None:
        if event.new:
            row = self._fail_frame.iloc[event.new[0]]
            self._trace[:] = [
                pre(row["details"] if isinstance(row["details"], str) else row["message"])
            ]

    def __panel__(self):
        return pn.Column(self._clusters_box, self._detail, self._failures_box, self._trace,
                         sizing_mode="stretch_width")
