"""Charts that a live refresh patches in place instead of rebuilding, and the axes every
chart shares: times as whole clock fields, durations in a unit chosen by their size."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import panel as pn
from bokeh.models import (
    ColumnDataSource,
    DatetimeTickFormatter,
    FactorRange,
    HoverTool,
    NumeralTickFormatter,
    TapTool,
)
from bokeh.plotting import figure

from ..analysis.units import duration, duration_unit
from .common import bokeh_changes, empty, same_frame


def time_ticks() -> DatetimeTickFormatter:
    """Time-axis labels that read as clock times at every zoom: ``05:28:36.200`` (never a
    bare ``200ms``), ``05:28:36``, ``05:28``, ``Dec 06``, ``Dec 2026``; the first tick
    also says the day (and year), so a zoomed-in axis still tells when it is."""
    day = "%b %d, %Y"
    return DatetimeTickFormatter(
        microseconds="%H:%M:%S.%6N", milliseconds="%H:%M:%S.%3N", seconds="%H:%M:%S",
        minsec="%H:%M:%S", minutes="%H:%M", hourmin="%H:%M", hours="%H:%M",
        days="%b %d", months="%b %Y", years="%Y",
        context=DatetimeTickFormatter(
            microseconds=day, milliseconds=day, seconds=day, minsec=day, minutes=day,
            hourmin=day, hours=day, days="%Y", months="", years=""),
        context_which="start", context_location="below")


def number_ticks() -> NumeralTickFormatter:
    """Number-axis labels with thousands separators and at most two decimals, never in
    scientific notation (``0.001``, not ``1.000e-3``)."""
    return NumeralTickFormatter(format="0,0.[00]")


def in_duration_unit(seconds: pd.Series) -> tuple[pd.Series, str]:
    """``seconds`` in the unit their largest value reads best in (µs, ms, s, min, h), and
    that unit: a chart of millisecond tests draws ``250`` ms, not ``0.25`` s."""
    unit, factor = duration_unit(seconds.max() if not seconds.empty else None)
    return seconds * factor, unit


def time_axis_hook(plot, element) -> None:
    """A HoloViews hook: the x axis (times) labelled by :func:`time_ticks`."""
    plot.state.xaxis.formatter = time_ticks()


def _shown_or_not(fig, height: int) -> pn.Column:
    """The figure in a box that is shown or hidden (``visible``), hidden to begin with.

    Not the Bokeh pane itself: in a served page the template's theme gives the figure
    stylesheets, and then setting the pane's ``visible`` raised a TypeError in Panel
    (``Bokeh.stylesheets`` items must be strings) — halfway through a view's update, so the
    new bars were never sent and the chart stayed blank."""
    pane = pn.pane.Bokeh(fig, sizing_mode="stretch_width", height=height)
    return pn.Column(pane, sizing_mode="stretch_width", visible=False, margin=0)


class StackedBars(pn.viewable.Viewer):
    """Stacked bars per category, built once; new data is a data-source patch.

    Setting a HoloViews pane's ``object`` builds a whole new Bokeh figure on the server and
    in every open browser; even HoloViews' in-place update (a DynamicMap over a Pipe) costs
    ~80 ms of the server's event loop per session and refresh, for a handful of bars. With
    five Agents dashboards open under OTLP load that held ingest to a fraction of its idle
    rate (benchmarks/dashboards_vs_ingest.py). A plain Bokeh figure whose
    ``ColumnDataSource`` and factors are replaced costs a few milliseconds and two small
    patches. The same frame again sends nothing; an empty frame shows ``empty_text``.

    ``extra`` columns are shown on hover; ``labels`` names the stacks in the legend (their
    column names otherwise); ``on_tap`` is called with the category of a clicked bar.
    """

    def __init__(self, category: str, stacks: dict[str, str], title: str, empty_text: str,
                 height: int, extra: tuple[str, ...] = (), ylabel: str = "",
                 y_format: str = "0.0a", label_angle: float = 0.0,
                 label_size: str | None = None, labels: dict[str, str] | None = None,
                 on_tap: Callable[[str], None] | None = None, **params):
        super().__init__(**params)
        self._category, self._stacks, self._extra = category, stacks, extra
        self._on_tap = on_tap
        self._frame: pd.DataFrame | None = None
        self._source = ColumnDataSource({category: [], **{s: [] for s in (*stacks, *extra)}})
        tools = "xpan,xwheel_zoom,reset,save"
        fig = figure(x_range=FactorRange(), height=height, title=title,
                     sizing_mode="stretch_width", toolbar_location="right", tools=tools)
        names = list(stacks)
        fig.vbar_stack(names, x=category, width=0.8, source=self._source,
                       color=list(stacks.values()), line_color=None,
                       legend_label=[(labels or {}).get(n, n) for n in names])
        fig.add_tools(HoverTool(tooltips=[(category, f"@{category}"), ("$name", "@$name{0,0}"),
                                          *((e, f"@{e}{{0,0}}") for e in extra)]))
        if on_tap is not None:
            fig.add_tools(TapTool())
            self._source.selected.on_change("indices", self._tapped)
        fig.yaxis.formatter = NumeralTickFormatter(format=y_format)
        fig.yaxis.axis_label = ylabel
        fig.y_range.start = 0
        fig.xgrid.grid_line_color = None
        fig.xaxis.major_label_orientation = label_angle
        if label_size:
            fig.xaxis.major_label_text_font_size = label_size
        fig.legend.location = "top_right"
        fig.add_layout(fig.legend[0], "right")  # beside the bars, never over them
        self._fig = fig
        self._pane = _shown_or_not(fig, height)
        self._empty = empty(empty_text)
        self._empty.visible = False
        self._says_empty = bool(empty_text)  # "": another pane of the view says why

    @property
    def categories(self) -> list[str]:
        """The categories drawn, left to right."""
        return list(self._source.data[self._category])

    def send(self, frame: pd.DataFrame) -> None:
        """Show ``frame``: one row per category, one column per stack (and extra)."""
        if same_frame(self._frame, frame):
            return
        self._frame = frame
        self._empty.visible = frame.empty and self._says_empty
        self._pane.visible = not frame.empty
        cats = [str(c) for c in frame[self._category]]
        with bokeh_changes():
            if list(self._fig.x_range.factors) != cats:
                self._fig.x_range.factors = cats
            self._source.data = {self._category: cats,
                                 **{s: frame[s].astype(float).tolist() for s in self._stacks},
                                 **{e: frame[e].tolist() for e in self._extra}}

    def tap(self, category: str) -> None:
        """What a click on the bar of ``category`` does (also from a test)."""
        if self._on_tap is not None and category in self.categories:
            self._on_tap(category)

    def _tapped(self, attr, old, new) -> None:
        if new:
            cats = self.categories
            hit = [cats[i] for i in new if 0 <= i < len(cats)]
            self._source.selected.indices = []  # a click opens; it does not grey the rest
            if hit:
                self.tap(hit[0])

    def __panel__(self):
        return pn.Column(self._empty, self._pane, sizing_mode="stretch_width")


class DurationBars(pn.viewable.Viewer):
    """Horizontal bars of durations, one per name, the first on top, drawn in the unit the
    longest reads best in (``ms`` for millisecond tests, ``s``, ``min``); built once and
    patched like :class:`StackedBars`. Long names are shortened from the left on the axis
    (their ends tell tests apart) and shown whole on hover; ``on_tap`` gets the name of a
    clicked bar. The chart has no title of its own: the view heads it, so no title can run
    into the toolbar."""

    def __init__(self, what: str, height: int, color: str = "#3b7dd8",
                 on_tap: Callable[[str], None] | None = None, label_chars: int = 60,
                 **params):
        super().__init__(**params)
        self._what, self._chars, self._on_tap = what, label_chars, on_tap
        self._frame: pd.DataFrame | None = None
        self._source = ColumnDataSource({"name": [], "value": [], "text": []})
        fig = figure(y_range=FactorRange(), height=height, sizing_mode="stretch_width",
                     toolbar_location="right", tools="save")
        fig.hbar(y="name", right="value", height=0.7, source=self._source, color=color,
                 line_color=None)
        fig.add_tools(HoverTool(tooltips=[("", "@name"), (what, "@text")]))
        if on_tap is not None:
            fig.add_tools(TapTool())
            self._source.selected.on_change("indices", self._tapped)
        fig.x_range.start = 0
        fig.xaxis.formatter = number_ticks()
        fig.ygrid.grid_line_color = None
        fig.yaxis.major_label_text_font_size = "8pt"
        self._fig = fig
        self._pane = _shown_or_not(fig, height)

    @property
    def names(self) -> list[str]:
        """The names drawn, top to bottom."""
        return list(reversed(self._source.data["name"]))

    @property
    def unit(self) -> str:
        """The unit of the value axis (its label)."""
        return str(self._fig.xaxis.axis_label or "")

    def send(self, names: pd.Series, seconds: pd.Series) -> None:
        """Show one bar per name (the first on top) of ``seconds`` each."""
        frame = pd.DataFrame({"name": names.astype(str).to_numpy(),
                              "seconds": seconds.astype(float).to_numpy()})
        if same_frame(self._frame, frame):
            return
        self._frame = frame
        self._pane.visible = not frame.empty
        frame = frame.iloc[::-1]  # Bokeh draws the first factor at the bottom
        values, unit = in_duration_unit(frame["seconds"])
        names = frame["name"].tolist()
        with bokeh_changes():
            self._fig.y_range.factors = names
            self._fig.yaxis.major_label_overrides = {
                n: "…" + n[-(self._chars - 1):] for n in names if len(n) > self._chars}
            self._fig.xaxis.axis_label = f"{self._what} ({unit})"
            self._source.data = {"name": names, "value": values.tolist(),
                                 "text": frame["seconds"].map(duration).tolist()}

    def _tapped(self, attr, old, new) -> None:
        if new and self._on_tap is not None:
            names = list(self._source.data["name"])
            hit = [names[i] for i in new if 0 <= i < len(names)]
            self._source.selected.indices = []
            if hit:
                self._on_tap(hit[0])

    def __panel__(self):
        return self._pane
