"""The test-failure investigation dashboard: filters, tabs, live refresh."""

from __future__ import annotations

import panel as pn
import param

from ..models import TestAnalytics
from .clusters import FailureClusters
from .common import nav
from .flaky import FlakyTests
from .runs import RunDetail, RunHistory
from .testdetail import Durations, TestDetail

TABS = ("Runs", "Run detail", "Failure clusters", "Flaky tests", "Test detail", "Durations")


class TestsDashboard(pn.viewable.Viewer):
    """Every test view over one model; opening a run or a test switches to its tab."""

    __test__ = False
    model = param.ClassSelector(class_=TestAnalytics, doc="The test analytics model.")
    live_ms = param.Integer(default=2000, doc="How often (ms) to look for new data; 0 = never.")

    def __init__(self, **params):
        super().__init__(**params)
        m = self.model
        self._tabs = pn.Tabs(
            ("Runs", RunHistory(model=m)),
            ("Run detail", RunDetail(model=m)),
            ("Failure clusters", FailureClusters(model=m)),
            ("Flaky tests", FlakyTests(model=m)),
            ("Test detail", TestDetail(model=m)),
            ("Durations", Durations(model=m)),
            dynamic=True,
            sizing_mode="stretch_width",  # only the open tab is sent to the browser
        )
        m.param.watch(lambda e: self._goto("Run detail"), "run_id")
        m.param.watch(lambda e: self._goto("Test detail"), "test_id")
        self._version = None

    def _goto(self, name: str) -> None:
        self._tabs.active = TABS.index(name)

    def filters(self) -> pn.Column:
        m = self.model
        refresh = pn.widgets.Button(name="Refresh", button_type="primary")
        refresh.on_click(lambda e: m.refresh())
        return pn.Column(
            pn.widgets.Select.from_param(m.param.project, name="Project", width=230),
            pn.widgets.Select.from_param(m.param.branch, name="Branch", width=230),
            pn.widgets.Select.from_param(m.param.variant, name="Variant", width=230),
            pn.widgets.RadioButtonGroup.from_param(
                m.param.window, name="Window", orientation="vertical", button_type="light"
            ),
            pn.widgets.IntSlider.from_param(
                m.param.flaky_runs, name="Runs per test (flaky)", width=230
            ),
            refresh,
            pn.pane.Markdown(
                "New runs appear by themselves while this page is open.",
                styles={"font-size": "12px", "color": "#667"},
            ),
            width=250,
        )

    def _poll(self) -> None:
        version = tuple(self.model.store.query("data_version").iloc[0].tolist())
        if self._version is not None and version != self._version:
            self.model.refresh()
        self._version = version

    def template(self) -> pn.template.BaseTemplate:
        """A served page: filters in the sidebar, tabs in the main area, live polling."""
        if self.live_ms:
            self._poll()
            pn.state.add_periodic_callback(self._poll, period=self.live_ms)
        # BootstrapTemplate: FastListTemplate would fetch Google Fonts, and pages here must
        # work with no network at all.
        return pn.template.BootstrapTemplate(
            title="Happy Observatory · Tests",
            sidebar=[self.filters()],
            main=[self._tabs],
            header=[nav("tests")],
            header_background="#3b5bdb",
            sidebar_width=280,
        )

    def __panel__(self):
        return pn.Row(self.filters(), self._tabs, sizing_mode="stretch_width")
