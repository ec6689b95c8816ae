"""Charts that a live refresh patches in place instead of rebuilding."""

from __future__ import annotations

import pandas as pd
import panel as pn
from bokeh.models import ColumnDataSource, FactorRange, HoverTool, NumeralTickFormatter
from bokeh.plotting import figure

from .common import empty, same_frame


class StackedBars(pn.viewable.Viewer):
    """Stacked bars per category, built once; new data is a data-source patch.

    Setting a HoloViews pane's ``object`` builds a whole new Bokeh figure on the server and
    in every open browser; even HoloViews' in-place update (a DynamicMap over a Pipe) costs
    ~80 ms of the server's event loop per session and refresh, for a handful of bars. With
    five Agents dashboards open under OTLP load that held ingest to a fraction of its idle
    rate (benchmarks/dashboards_vs_ingest.py). A plain Bokeh figure whose
    ``ColumnDataSource`` and factors are replaced costs a few milliseconds and two small
    patches. The same frame again sends nothing; an empty frame shows ``empty_text``.
    """

    def __init__(self, category: str, stacks: dict[str, str], title: str, empty_text: str,
                 height: int, **params):
        super().__init__(**params)
        self._category, self._stacks = category, stacks
        self._frame: pd.DataFrame | None = None
        self._source = ColumnDataSource({category: [], **{s: [] for s in stacks}})
        fig = figure(x_range=FactorRange(), height=height, title=title,
                     sizing_mode="stretch_width", toolbar_location="right",
                     tools="xpan,xwheel_zoom,reset,save")
        names = list(stacks)
        fig.vbar_stack(names, x=category, width=0.8, source=self._source,
                       color=list(stacks.values()), legend_label=names, line_color=None)
        fig.add_tools(HoverTool(tooltips=[(category, f"@{category}"), ("$name", "@$name{0,0}")]))
        fig.yaxis.formatter = NumeralTickFormatter(format="0.0a")
        fig.y_range.start = 0
        fig.xgrid.grid_line_color = None
        fig.legend.location = "top_right"
        fig.add_layout(fig.legend[0], "right")  # beside the bars, never over them
        self._fig = fig
        self._pane = pn.pane.Bokeh(fig, sizing_mode="stretch_width", height=height,
                                   visible=False)
        self._empty = empty(empty_text)

    def send(self, frame: pd.DataFrame) -> None:
        """Show ``frame``: one row per category, one column per stack."""
        if same_frame(self._frame, frame):
            return
        self._frame = frame
        self._empty.visible = frame.empty
        self._pane.visible = not frame.empty
        cats = [str(c) for c in frame[self._category]]
        if list(self._fig.x_range.factors) != cats:
            self._fig.x_range.factors = cats
        self._source.data = {self._category: cats,
                             **{s: frame[s].astype(float).tolist() for s in self._stacks}}

    def __panel__(self):
        return pn.Column(self._empty, self._pane, sizing_mode="stretch_width")
