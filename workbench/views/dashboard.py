"""The test-failure investigation dashboard."""

from __future__ import annotations

import panel as pn
import param

from ..models import TestAnalytics
from .clusters import FailureClusters
from .flaky import FlakyTests
from .runs import RunDetail, RunHistory
from .shell import DashboardShell
from .testdetail import Durations, TestDetail


class TestsDashboard(DashboardShell):
    """Every test view over one model; opening a run or a test switches to its tab."""

    __test__ = False
    model = param.ClassSelector(class_=TestAnalytics, doc="The test analytics model.")

    page, title, color = "tests", "Happy Observatory · Tests", "#3b5bdb"
    topic = "tests"
    live_note = "New runs appear by themselves while this page is open."
    tabs = ("Runs", "Run detail", "Failure clusters", "Flaky tests", "Test detail", "Durations")

    def __init__(self, **params):
        super().__init__(**params)
        m = self.model
        views = (RunHistory, RunDetail, FailureClusters, FlakyTests, TestDetail, Durations)
        # dynamic: only the open tab is sent to the browser
        self.build_tabs(views)
        m.param.watch(lambda e: self.goto("Run detail"), "run_id")
        m.param.watch(lambda e: self.goto("Test detail"), "test_id")

    def filter_widgets(self) -> list:
        m = self.model
        return [
            pn.widgets.Select.from_param(m.param.project, name="Project", width=230),
            pn.widgets.Select.from_param(m.param.branch, name="Branch", width=230),
            pn.widgets.Select.from_param(m.param.variant, name="Variant", width=230),
            pn.widgets.RadioButtonGroup.from_param(m.param.window, name="Window",
                                                   orientation="vertical", button_type="light"),
            pn.widgets.IntSlider.from_param(m.param.flaky_runs, name="Runs per test (flaky)",
                                            width=230),
        ]
