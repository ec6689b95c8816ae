"""Stacked bars per category drawn as HTML: no plot for the browser to build.

The Agents tab's tokens chart and the Runs tab's failures chart were Bokeh figures. In a
returning visit, building a figure's views (axes, tickers, legend, tools, canvas) was
most of what BokehJS did before the page could be used: without the chart, the Agents
page was usable in 1.18 s instead of 1.71 s and the Tests page in 1.71 s instead of
2.52 s (benchmarks/page_load.py, one run). A handful of bars needs none of that: here
they are boxes in a flex row, sized in percent, laid out once by the browser; a live
refresh replaces one string, and the same frame again sends nothing.

Every text shown (categories, legend, tooltips) goes through :func:`~.escape.escape`.
The browser side only forwards a click on a bar as a message; the server checks it
against the bars it drew, so a forged message can open only a category on the chart.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd
import panel as pn

from ..analysis.units import number
from .common import empty, same_frame
from .escape import escape
from .paged_table import ClickableHtml

#: Inside the component's own shadow root; colours follow the page's (the dark theme). A
#: grid: the axis title, the tick labels, the bars and the legend side by side, and the
#: category labels under the bars (so they line up with them whatever the page's width).
_STYLE = (
    "<style>.sb{font-size:12px;color:inherit}"
    ".sb-t{font-weight:600;font-size:13px;margin:0 0 6px 0}"
    ".sb-m{display:grid;grid-template-columns:auto 44px minmax(0,1fr) auto;column-gap:8px}"
    ".sb-yl{grid-row:1;grid-column:1;writing-mode:vertical-rl;transform:rotate(180deg);"
    "opacity:.75;text-align:center}"
    ".sb-y{grid-row:1;grid-column:2;position:relative}"
    ".sb-y span{position:absolute;right:0;transform:translateY(50%);opacity:.75;"
    "white-space:nowrap}"
    ".sb-p{grid-row:1;grid-column:3;position:relative;"
    "border-left:1px solid rgba(128,128,128,.55);border-bottom:1px solid rgba(128,128,128,.55)}"
    ".sb-g{position:absolute;left:0;right:0;border-top:1px solid rgba(128,128,128,.18)}"
    ".sb-bars{position:absolute;inset:0;display:flex;gap:2px;padding:0 2px}"
    ".sb-c{flex:1;min-width:0;display:flex;flex-direction:column-reverse}"
    ".sb-c.open{cursor:pointer}.sb-c:hover,.sb-c:focus{background:rgba(59,91,219,.08);"
    "outline:none}"
    # (a lone bar is not a wall: at most 56 px wide, centred)
    ".sb-s{width:80%;max-width:56px;margin:0 auto;flex:none}"
    ".sb-x{grid-row:2;grid-column:3;display:flex;gap:2px;padding:0 2px}"
    ".sb-x span{flex:1;min-width:0;white-space:nowrap;opacity:.8;position:relative}"
    ".sb-x.flat span{text-align:center;overflow:hidden;text-overflow:ellipsis;"
    "padding-top:3px}"
    ".sb-x.tilt i{font-style:normal;position:absolute;right:50%;top:4px;"
    "transform-origin:100% 0}"
    ".sb-l{grid-row:1/3;grid-column:4;display:flex;flex-direction:column;gap:4px}"
    ".sb-l span{display:flex;align-items:center;gap:5px;white-space:nowrap}"
    ".sb-l b{width:11px;height:11px;border-radius:2px;display:inline-block}</style>")


def nice_ticks(top: float, count: int = 4, whole: bool = False) -> list[float]:
    """Round values from 0 to at least ``top`` for an axis: steps of 1, 2, 2.5 or 5 times
    a power of ten (``[0, 500, 1000, 1500]``); ``whole``: counts, so every step is a whole
    number (one failed test is not drawn against 0.25, 0.5 and 0.75, nor ten against 2.5
    and 7.5)."""
    if not top > 0 or not math.isfinite(top):
        return [0.0, 1.0]
    raw = max(top / count, 1) if whole else top / count
    power = 10 ** math.floor(math.log10(raw))
    ladder = (1, 2, 5, 10) if whole and power == 1 else (1, 2, 2.5, 5, 10)
    step = next(m * power for m in ladder if m * power >= raw)
    n = math.ceil(top / step - 1e-9)
    return [i * step for i in range(n + 1)]


def short_number(x: float) -> str:
    """An axis label: ``950``, ``1.2k``, ``3.4M`` (Bokeh's ``0.0a``)."""
    a = abs(x)
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if a >= size:
            return f"{x / size:.1f}".removesuffix(".0") + unit
    return f"{x:.1f}".removesuffix(".0") if x != int(x) else f"{int(x)}"


class BarsMarkup(ClickableHtml):
    """The drawn chart: escaped HTML built by :class:`StackedBars`; a click on a bar is
    sent back as ``{"open": category}``."""

    def __init__(self, on_msg: Callable[[object], None], **params):
        super().__init__(**params)
        self._on_msg = on_msg

    def _handle_msg(self, msg: object) -> None:
        self._on_msg(msg)


class StackedBars(pn.viewable.Viewer):
    """Stacked bars per category; new data replaces one string (the same frame: nothing).

    ``extra`` columns are shown in a bar's tooltip; ``labels`` names the stacks in the
    legend (their column names otherwise); ``on_tap`` is called with the category of a
    clicked bar. ``y_format`` is ``"0.0a"`` (``1.2k``) or ``"0,0"`` (``1,200``);
    ``label_angle`` tilts the category labels (radians), for many long ones.
    """

    def __init__(self, category: str, stacks: dict[str, str], title: str, empty_text: str,
                 height: int, extra: tuple[str, ...] = (), ylabel: str = "",
                 y_format: str = "0.0a", label_angle: float = 0.0,
                 label_size: str | None = None, labels: dict[str, str] | None = None,
                 on_tap: Callable[[str], None] | None = None, **params):
        super().__init__(**params)
        self._category, self._stacks, self._extra = category, stacks, extra
        self._title, self._height, self._ylabel = title, height, ylabel
        self._format = short_number if y_format == "0.0a" else number
        self._angle, self._label_size = label_angle, label_size
        self._labels = {s: (labels or {}).get(s, s) for s in stacks}
        self._on_tap = on_tap
        self._frame: pd.DataFrame | None = None
        self._cats: list[str] = []
        self._bars = BarsMarkup(self._message, sizing_mode="stretch_width", height=height,
                           visible=False, margin=(5, 10))
        self._empty = empty(empty_text)
        self._empty.visible = False
        self._says_empty = bool(empty_text)  # "": another pane of the view says why

    @property
    def categories(self) -> list[str]:
        """The categories drawn, left to right."""
        return list(self._cats)

    @property
    def html(self) -> str:
        """The chart as sent to the browser."""
        return self._bars.html

    def send(self, frame: pd.DataFrame) -> None:
        """Show ``frame``: one row per category, one column per stack (and extra)."""
        if same_frame(self._frame, frame):
            return
        self._frame = frame
        self._empty.visible = frame.empty and self._says_empty
        self._bars.visible = not frame.empty
        self._cats = [str(c) for c in frame[self._category]]
        self._bars.html = self._draw(frame) if not frame.empty else ""

    def tap(self, category: str) -> None:
        """What a click on the bar of ``category`` does (also from a test)."""
        if self._on_tap is not None and category in self._cats:
            self._on_tap(category)

    def _message(self, msg: object) -> None:
        if isinstance(msg, dict) and isinstance(msg.get("open"), str):
            self.tap(msg["open"])

    def _draw(self, frame: pd.DataFrame) -> str:
        stacks = list(self._stacks)
        values = frame[stacks].apply(pd.to_numeric, errors="coerce").fillna(0).clip(lower=0)
        whole = bool((values.to_numpy() % 1 == 0).all())
        ticks = nice_ticks(float(values.sum(axis=1).max()), whole=whole)
        top = ticks[-1] or 1.0
        tilted = bool(self._angle)
        longest = max((len(c) for c in self._cats), default=0)
        size = self._label_size or "11px"
        font = float(size[:-2]) * (4 / 3 if size.endswith("pt") else 1)
        # Room below the bars for the labels: one line, or a tilted line's height (a
        # character is about half as wide as the font is high).
        below = (min(longest * font * 0.55 * math.sin(self._angle) + 14, self._height * 0.45)
                 if tilted else font + 8)
        plot = max(self._height - below - 28, 40)
        opens = self._on_tap is not None
        numbers = values.to_numpy()
        extras = [(e, frame[e].tolist()) for e in self._extra if e in frame.columns]
        cols = []
        for i, cat in enumerate(self._cats):
            parts = list(zip(stacks, numbers[i], strict=True))
            tip = [cat, *(f"{self._labels[s]}: {number(v)}" for s, v in parts),
                   *(f"{e}: {number(vs[i])}" for e, vs in extras)]
            segs = "".join(
                f'<div class="sb-s" style="height:{v / top * 100:.3f}%;'
                f'background:{escape(self._stacks[s])}"></div>' for s, v in parts if v > 0)
            attrs = (f' class="sb-c open" tabindex="0" data-open="{escape(cat)}"' if opens
                     else ' class="sb-c"')
            cols.append(f'<div{attrs} title="{escape(chr(10).join(tip))}">{segs}</div>')
        grid = "".join(f'<div class="sb-g" style="bottom:{t / top * 100:.3f}%"></div>'
                       for t in ticks[1:])
        yticks = "".join(f'<span style="bottom:{t / top * 100:.3f}%">'
                         f"{escape(self._format(t))}</span>" for t in ticks)
        deg = -math.degrees(self._angle)
        label = (f'<i style="transform:rotate({deg:.1f}deg)">{{}}</i>' if tilted else "{}")
        xlabels = "".join(f'<span title="{escape(c)}" style="font-size:{escape(size)}">'
                          + label.format(escape(c)) + "</span>" for c in self._cats)
        legend = "".join(f'<span><b style="background:{escape(self._stacks[s])}"></b>'
                         f"{escape(self._labels[s])}</span>" for s in stacks)
        return (
            f'{_STYLE}<div class="sb" role="figure" aria-label="{escape(self._title)}">'
            f'<div class="sb-t">{escape(self._title)}</div>'
            f'<div class="sb-m" style="grid-template-rows:{plot:.0f}px {below:.0f}px">'
            f'<div class="sb-yl">{escape(self._ylabel)}</div>'
            f'<div class="sb-y">{yticks}</div><div class="sb-p">{grid}'
            f'<div class="sb-bars">{"".join(cols)}</div></div>'
            f'<div class="sb-l">{legend}</div>'
            f'<div class="sb-x {"tilt" if tilted else "flat"}">{xlabels}</div></div></div>')

    def __panel__(self):
        return pn.Column(self._empty, self._bars, sizing_mode="stretch_width")

