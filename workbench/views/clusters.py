"""Failure clusters with drill-down to tracebacks and affected tests."""

from __future__ import annotations

import pandas as pd
import panel as pn
import param

from ..models import TestAnalytics
from ..models.tests import FILTER_PARAMS as TEST_FILTERS
from .common import columns, empty, pre, table, watching
from .escape import escape
from .lazy import LazyView, deferred


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
        self._clusters = table(pd.DataFrame(),
                               empty_text="No failures in this window: nothing to cluster.")
        self._clusters.param.watch(self._on_cluster, "selection")
        self._failures = table(pd.DataFrame(),
                               empty_text="Select a cluster above to see its failures.")
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
        cols = [
            "failures",
            "tests",
            "runs",
            "exception",
            "normalized",
            "suspect",
            "first_seen",
            "last_seen",
        ]
        self._clusters.value = columns(df, cols)
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
            self._failures.value = pd.DataFrame()
            return
        r = row.iloc[0]
        tests = "".join(f"<li><code>{escape(t)}</code></li>" for t in list(r["affected_tests"]))
        self._detail[:] = [
            pn.pane.HTML(
                f"<h4 style='margin:4px 0'>{escape(_title(r['exception'], r['normalized']))}</h4>"
                f"<div>Suspect frame: <code>{escape(r['suspect'] or 'unknown')}</code> · "
                f"{escape(r['failures'])} failures in {escape(r['runs'])} runs · first seen "
                f"{escape(r['first_seen'])}, "
                f"last seen {escape(r['last_seen'])}</div>"
                f"<details open><summary>{escape(r['tests'])} affected test(s)</summary>"
                f"<ul>{tests}</ul></details>",
                sizing_mode="stretch_width",
            )
        ]
        fails = self.model.cluster_failures()
        self._fail_frame = fails
        self._failures.value = fails[
            ["started_at", "branch", "test_id", "attempt", "outcome", "message", "run_id"]
        ]

    def _on_failure(self, event) -> None:
        if event.new:
            row = self._fail_frame.iloc[event.new[0]]
            self._trace[:] = [
                pre(row["details"] if isinstance(row["details"], str) else row["message"])
            ]

    def __panel__(self):
        return pn.Column(
            self._clusters, self._detail, self._failures, self._trace, sizing_mode="stretch_width"
        )
