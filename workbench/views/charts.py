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
from .common import bokeh_changes, same_frame


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


class DurationBars(pn.viewable.Viewer):
    """Horizontal bars of durations, one per name, the first on top, drawn in the unit the
    longest reads best in (``ms`` for millisecond tests, ``s``, ``min``); built once, a new
    frame is a patch of its data source. Long names are shortened from the left on the axis
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
