"""Shared view pieces: paged tables, outcome colours, text panes that never render markup
(every value from data through :func:`~.escape.escape`)."""

from __future__ import annotations

import hashlib
import numbers
import weakref

import numpy as np
import pandas as pd
import panel as pn
import param
from panel.reactive import ReactiveHTML

from .escape import escape

OUTCOME_COLORS = {
    "passed": "#2e9e5b",
    "failed": "#d64545",
    "error": "#e08a1e",
    "skipped": "#9aa3ad",
}
PAGE_SIZE = 15
#: Series colours (agents, services, metric groups): none of them an outcome colour, so a
#: red line never reads as "failed".
SERIES_COLORS = ("#4c78a8", "#72b7b2", "#b279a2", "#9d755d", "#54a24b", "#eeca3b",
                 "#ff9da6", "#79706e", "#83bcb6", "#bab0ac", "#f58518", "#439894")


def series_color(name: object) -> str:
    """The colour of a named series — an agent above all — the same in every chart, every
    session and every restart (a stable hash of the name, not the order of appearance).
    The one series of an ungrouped chart, ``(all)``, gets the first colour."""
    if name == "(all)":
        return SERIES_COLORS[0]
    digest = hashlib.blake2b(str(name).encode(), digest_size=2).digest()
    return SERIES_COLORS[int.from_bytes(digest, "big") % len(SERIES_COLORS)]


def watching(filters: tuple[str, ...], *extra: str) -> tuple[str, ...]:
    """``param.depends`` names for a view over ``model``: its model's filters plus ``extra``."""
    return tuple(f"model.{name}" for name in (*filters, *extra))


_COUNT, _NUM, _TIME, _ID = 72, 90, 146, 108
#: Widths (px) of the columns that have a natural size; the others (names, messages,
#: evidence) share what is left of the page, elided with the whole text on hover.
WIDTHS = {
    **dict.fromkeys(("tests", "passed", "failed", "errors", "skipped", "runs", "fails",
                     "flips", "attempt", "attempts", "spans", "sessions", "failures",
                     "points", "records", "commits", "pull_requests", "tool_calls",
                     "tool_failures", "api_errors", "model_calls", "final", "agents"), _COUNT),
    **dict.fromkeys(("duration_s", "duration_ms", "flip_rate", "cost_usd", "median_s",
                     "max_s", "total_s", "recent_median_s", "older_median_s", "increase",
                     "mean", "max_value", "lines_changed", "tool_failure_%", "input_tokens",
                     "output_tokens", "cache_read_tokens", "cache_creation_tokens",
                     "reasoning_tokens", "input", "output", "cache_read", "cache_creation",
                     "reasoning", "older_runs"), _NUM),
    **dict.fromkeys(("started_at", "started", "time", "first_seen", "last_seen", "last_run",
                     "bucket", "start_time"), _TIME),
    **dict.fromkeys(("run_id", "trace_id", "session_id", "span_id"), _ID),
    "commit_sha": 96, "status": 112, "outcome": 84, "base_outcome": 96, "label": 112,
    "build": 74, "variant": 104, "severity_text": 80, "status_code": 74, "strip": 236,
    "branch": 150, "project": 132, "agent": 118, "service": 118, "service_name": 118,
    "exception": 200, "error_type": 160, "event_name": 190, "model": 150, "models": 150,
}
#: Column headers as people read them.
TITLES = {
    "started_at": "started", "duration_s": "duration (s)", "duration_ms": "duration (ms)",
    "commit_sha": "commit", "run_id": "run", "test_id": "test", "flip_rate": "flip rate",
    "cost_usd": "cost $", "error_type": "exception", "base_outcome": "before",
    "severity_text": "severity", "service_name": "service", "event_name": "event",
    "session_id": "session", "trace_id": "trace", "first_seen": "first seen",
    "last_seen": "last seen", "median_s": "median (s)", "max_s": "max (s)",
    "total_s": "total (s)", "recent_median_s": "recent median (s)",
    "older_median_s": "older median (s)", "older_runs": "older runs",
    "input_tokens": "input", "output_tokens": "output", "cache_read_tokens": "cache read",
    "cache_creation_tokens": "cache write", "reasoning_tokens": "reasoning",
    "tool_calls": "tool calls", "tool_failures": "tool fails", "api_errors": "API errors",
    "model_calls": "model calls", "lines_changed": "lines", "pull_requests": "PRs",
    "tool_failure_%": "tool fail %", "status_code": "status", "affected_tests": "tests",
    "normalized": "message", "max_value": "max", "last_run": "last run",
    "cache_read": "cache read", "cache_creation": "cache write",
}

#: OTLP span status codes as people read them.
STATUS_CODES = {0: "unset", 1: "ok", 2: "error"}


def readable(df: pd.DataFrame | None) -> pd.DataFrame | None:
    """How every table shows values: times as ``YYYY-MM-DD HH:MM:SS`` text (never epoch
    milliseconds, whatever the frame's dtype was before), floats rounded, span status codes
    as words. The one place tables format numbers and times.

    A frame this made is returned as it is (a view may format its rows once and share
    them between open pages: see ``FrameCache.derive``)."""
    if df is None or df.empty or _formatted.get(id(df)) is df:
        return df
    out = df.copy(deep=False)
    for col in out.columns:
        series = out[col]
        if pd.api.types.is_datetime64_any_dtype(series):
            out[col] = series.dt.strftime("%Y-%m-%d %H:%M:%S").astype(object).where(
                series.notna(), None)
        elif pd.api.types.is_float_dtype(series):
            out[col] = series.round(4)
        elif col in ("status_code", "status") and pd.api.types.is_integer_dtype(series):
            out[col] = series.map(STATUS_CODES).fillna(series.astype(str))
        elif isinstance(series.dtype, pd.StringDtype):
            # As Python strings (None for missing): what Bokeh sends anyway, converted once
            # here rather than by every open page's table on every refresh.
            out[col] = series.astype(object).where(series.notna(), None)
    _formatted[id(out)] = out
    return out


#: The frames :func:`readable` made, while they live (by id: frames are not hashable).
_formatted: weakref.WeakValueDictionary[int, pd.DataFrame] = weakref.WeakValueDictionary()


def same_frame(old: object, new: object) -> bool:
    """Whether ``new`` holds what ``old`` held (same columns, same values): then a view has
    nothing to send (param, and so Panel, would count any new frame as a change)."""
    return (isinstance(old, pd.DataFrame) and isinstance(new, pd.DataFrame)
            and list(old.columns) == list(new.columns) and old.equals(new))


class _ReadableFrame(param.DataFrame):
    """A table's ``value`` that formats itself on the way in (see :func:`readable`).

    The same rows again change nothing: a live refresh that finds a table as it was sends
    nothing to the browser (param does not compare frames by itself).
    """

    def __set__(self, obj, val):
        val = readable(val)
        if same_frame(getattr(obj, self.name, None), val):
            return
        super().__set__(obj, val)


class Table(pn.widgets.Tabulator):
    """Tabulator whose values are always shown through :func:`readable`."""

    value = _ReadableFrame(default=None, doc="The rows shown (formatted on assignment).")


#: What an empty table says when its view gives no reason of its own.
EMPTY_TABLE = "Nothing here for these filters and this time window (try a wider window)."


def table(df: pd.DataFrame, empty_text: str = EMPTY_TABLE, **kw) -> pn.widgets.Tabulator:
    """A Tabulator that pages on the server: the browser only ever gets one page of rows.

    Every string column uses Tabulator's default ``plaintext`` formatter, which escapes
    HTML, so test names and messages from reports are shown, never interpreted.
    """
    opts = dict(
        pagination="remote",
        page_size=PAGE_SIZE,
        show_index=False,
        disabled=True,
        selectable=1,
        sizing_mode="stretch_width",
        # Every column fits in the page width (no key column scrolled off at 1440 px):
        # long text is elided (selecting a row shows it whole in the view's detail pane),
        # and when the page is too narrow for all columns the rightmost (least important:
        # ids, commits) are hidden first. No cell tooltips: Tabulator renders a cell
        # tooltip as HTML, which would run markup from ingested data (the XSS test).
        layout="fit_columns",
        configuration={"columnDefaults": {"headerTooltip": True},
                       "responsiveLayout": "hide",
                       # Every empty table says why it is empty (plain text, escaped).
                       "placeholder": escape(empty_text)},
        stylesheets=[":host .tabulator {font-size: 13px}"],
        theme="bootstrap5",
        widths=dict(WIDTHS),
        titles=dict(TITLES),
    )
    for key in ("widths", "titles"):  # a table's own sizes refine the shared ones
        opts[key].update(kw.pop(key, {}))
    opts.update(kw)
    return Table(readable(df), **opts)


#: Rows a :func:`html_table` shows; the rest are counted below it.
HTML_TABLE_ROWS = 100

#: How an :func:`html_table` looks (in the pane's own shadow root, so it touches nothing
#: else); colours follow the page's text, so it reads in the dark theme too.
_HTML_TABLE_STYLE = (
    "<style>.obs-t{border-collapse:collapse;font-size:13px;width:100%}"
    ".obs-t th,.obs-t td{padding:3px 10px;border-bottom:1px solid rgba(128,128,128,.25);"
    "white-space:nowrap;text-align:left}.obs-t th{font-weight:600}"
    ".obs-t .n{text-align:right;font-variant-numeric:tabular-nums}</style>")


def html_table(df: pd.DataFrame | None, empty_text: str = EMPTY_TABLE) -> str:
    """A few rows (one per agent, say) as a plain HTML table, every value escaped, headers
    as :data:`TITLES` and numbers right-aligned with thousands separators.

    For small summaries that a live refresh updates on every open page: a Tabulator costs
    ~10 ms of the server per update and page, and more of the browser's layout, however
    few its rows; this is one string, built once per data version and sent as text alone
    (:class:`LiveHTML`). :class:`~workbench.views.paged_table.PagedTable` pages, sorts and
    opens rows of the same markup."""
    df = readable(df)
    if df is None or df.empty:
        return empty_html(empty_text)
    more = (f'<p style="color:#667;margin:4px 0">and {len(df) - HTML_TABLE_ROWS:,} more '
            "rows (a filter or a shorter window shows them)</p>"
            if len(df) > HTML_TABLE_ROWS else "")
    return table_markup(df.head(HTML_TABLE_ROWS), numeric_columns(df)) + more


def empty_html(text: str) -> str:
    """What an empty HTML table shows instead: why it is empty."""
    return f'<p style="color:#667;margin:4px 0"><em>{escape(text)}</em></p>'


def numeric_columns(df: pd.DataFrame) -> list[bool]:
    """Per column, whether it is shown as a number (right-aligned): a numeric dtype, or
    objects that are all numbers (a count that is missing for some rows)."""
    def numbers(series: pd.Series) -> bool:
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            return True
        if series.dtype != object:
            return False
        values = series.dropna()
        return not values.empty and all(_is_number(v) for v in values)
    return [numbers(df[c]) for c in df.columns]


def _is_number(value: object) -> bool:
    """A number to show as one (numpy's too: a nullable integer column yields them)."""
    return isinstance(value, numbers.Number) and not isinstance(value, bool | np.bool_)


def html_cell(value: object, right: bool, tag: str = "td") -> str:
    """One escaped cell: numbers with thousands separators, missing values empty; long text
    is marked (class ``t``, for a table that elides it) and carries itself as its title."""
    if value is None or value is pd.NA or value is pd.NaT or (
            isinstance(value, float) and pd.isna(value)):
        text = ""
    elif _is_number(value):
        text = f"{value:,}"
    else:
        text = str(value)
    kind = " class=n" if right else ""
    if not right and tag == "td" and len(text) > 20:
        kind = f' class=t title="{escape(text)}"'
    return f"<{tag}{kind}>{escape(text)}</{tag}>"


def table_markup(rows: pd.DataFrame, numeric: list[bool], head: str | None = None,
                 row_attrs: list[str] | None = None, table_attrs: str = "") -> str:
    """The ``<table>`` of :func:`html_table`: ``head`` replaces the header row's cells and
    ``row_attrs`` adds attributes to each ``<tr>`` (both already escaped)."""
    if head is None:
        head = "".join(html_cell(TITLES.get(c, c), right, "th") for c, right in zip(
            rows.columns, numeric, strict=True))
    attrs = row_attrs or [""] * len(rows)
    body = "".join(
        f"<tr{extra}>" + "".join(html_cell(v, right) for v, right in zip(
            row, numeric, strict=True)) + "</tr>"
        for row, extra in zip(rows.itertuples(index=False, name=None), attrs, strict=True))
    return (f'{_HTML_TABLE_STYLE}<div style="overflow-x:auto"><table class="obs-t"'
            f"{table_attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def columns(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """``df[cols]``, or an empty frame with those columns (a table keeps its header)."""
    return df[cols] if set(cols) <= set(df.columns) else pd.DataFrame(columns=cols)


def rounded(df: pd.DataFrame, decimals: int = 3) -> pd.DataFrame:
    """Round the numeric columns only (pandas warns when asked to round timestamps)."""
    return df.round({c: decimals for c in df.select_dtypes("number").columns})


def strip_html(outcomes) -> str:
    """A pass/fail strip as coloured squares (the values are our own outcome enum)."""
    cells = "".join(
        f'<span title="{escape(o)}" style="display:inline-block;width:7px;height:14px;'
        f'margin-right:1px;background:{OUTCOME_COLORS.get(str(o), "#555")}"></span>'
        for o in list(outcomes if outcomes is not None else [])
    )
    return f'<span style="white-space:nowrap">{cells}</span>'


def pre(text: object, max_height: int = 480) -> pn.pane.HTML:
    """Preformatted text (a traceback), escaped. The box is as tall as its text, up to
    ``max_height`` px, and scrolls beyond that: a two-line message gets a two-line box."""
    body = escape(text)
    return pn.pane.HTML(
        f'<pre style="white-space:pre-wrap;font-size:12px;margin:0;max-height:{max_height}px;'
        f'overflow:auto">{body or "(no details)"}</pre>',
        sizing_mode="stretch_width",
        styles={
            "background": "var(--panel-surface-color, #f6f8fa)",
            "border-radius": "4px",
            "padding": "6px",
        },
    )


def _card(label: str, value: object, color: str) -> str:
    return (
        f'<div style="padding:6px 12px;border-radius:6px;background:{color};color:white;'
        f'font-weight:600;text-align:center;white-space:nowrap;min-width:80px">'
        f'{escape(value)}<br>'
        f'<span style="font-weight:400;font-size:12px">{escape(label)}</span></div>'
    )


def badge(label: str, value: object, color: str) -> pn.pane.HTML:
    return pn.pane.HTML(
        _card(label, value, color),
        min_width=104,  # grows with its text: a KPI card never wraps
        margin=(4, 4),
    )


class _TextOnly:
    """For a pane whose new content is sent as its text alone.

    Panel's HTML and Markdown panes send every property of the model when their object
    changes, its stylesheets (models) among them; Bokeh then re-indexes every model of the
    document — ~50 ms per update on a dashboard page, for each open session on each live
    refresh (benchmarks/dashboards_vs_ingest.py). The other properties follow their own
    parameters and need not be sent again.
    """

    def _update(self, ref: str, model) -> None:
        text = self._get_properties(model.document).get("text")
        if text is not None and model.text != text:
            model.text = text


class LiveHTML(_TextOnly, pn.pane.HTML):
    """An HTML pane a live refresh updates cheaply (see :class:`_TextOnly`)."""


class LiveMarkdown(_TextOnly, pn.pane.Markdown):
    """A Markdown pane a live refresh updates cheaply (see :class:`_TextOnly`)."""


class Kpis(pn.viewable.Viewer):
    """A row of KPI cards in one pane, updated in place: a refresh that changes nothing
    sends nothing, one that changes a number sends one small patch (not a new row of card
    models, which makes every open browser lay the page out anew)."""

    def __init__(self, **params):
        super().__init__(**params)
        self._pane = LiveHTML("", sizing_mode="stretch_width", margin=(4, 0))

    def update(self, cards: list[tuple[str, object, str]]) -> None:
        """``cards``: ``(label, value, colour)`` in order."""
        self._pane.object = (  # an equal string is no change
            '<div style="display:flex;flex-wrap:wrap;gap:8px">'
            + "".join(_card(*card) for card in cards) + "</div>")

    def __panel__(self):
        return self._pane


def empty(message: object) -> pn.pane.Markdown:
    """Why there is nothing to show, in grey italics: ``message`` is escaped (Markdown
    shows the text as it was; a code span of the view's own words stays a code span)."""
    return pn.pane.Markdown(f"*{escape(message)}*", styles={"color": "#667"})


class FollowBrowserTheme(ReactiveHTML):
    """Nothing to see: on a page opened without ``?theme=``, a browser that prefers dark
    reloads it with ``?theme=dark`` (Panel chooses the theme on the server, from the URL,
    so the browser's preference has to reach it there). An explicit ``?theme=`` — the
    header's switch — always wins."""

    _template = '<div id="follow" style="display:none"></div>'
    _scripts = {"render": """
      const q = new URLSearchParams(window.location.search);
      if (!q.has('theme') && window.matchMedia('(prefers-color-scheme: dark)').matches) {
        q.set('theme', 'dark');
        window.location.replace(window.location.pathname + '?' + q + window.location.hash);
      }"""}


def nav(current: str) -> pn.pane.HTML:
    """Links between the served dashboards (relative, so they work behind any prefix), and
    the switch between the light and the dark theme (Panel reads ``?theme=``). A theme
    chosen with the switch stays chosen from page to page; otherwise each page follows the
    browser (:class:`FollowBrowserTheme`)."""
    dark = pn.config.theme == "dark"
    args = pn.state.session_args or {}
    chosen = f"?theme={'dark' if dark else 'default'}" if args.get("theme") else ""
    links = " ".join(
        f'<a href="./{name}{chosen}" style="color:white;'
        f'margin-right:14px;'
        f'{"font-weight:700;text-decoration:underline" if name == current else "opacity:.85"}">'
        f"{label}</a>"
        for name, label in (("tests", "Tests"), ("agents", "Agents"), ("projects", "Projects"),
                             ("control", "Control"))
    )
    switch = (f'<a href="./{current}?theme={"default" if dark else "dark"}" '
              f'style="color:white;opacity:.85;margin-left:18px" title="switch theme">'
              f'{"☀ light" if dark else "☾ dark"}</a>')
    return pn.pane.HTML(f'<div style="font-size:15px;margin-top:6px">{links}{switch}</div>')
