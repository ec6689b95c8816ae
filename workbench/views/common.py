"""Shared view pieces: paged tables, outcome colours, text panes that never render markup
(every value from data through :func:`~.escape.escape`)."""

from __future__ import annotations

import hashlib
import math
import numbers
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import panel as pn
import param
from panel.io.document import hold
from panel.reactive import ReactiveHTML

from ..analysis import units
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


@dataclass(frozen=True)
class Col:
    """How a column of a table is shown: a short header that fits, the header's tooltip
    (its full meaning), what its values are (:data:`~workbench.analysis.units.FORMATS`
    says how each kind reads; ``time`` is a timestamp, ``text`` is shown as it is) and,
    for a column of a natural size, its width in px (the others share what is left)."""

    title: str
    tip: str = ""
    kind: str = "text"
    width: int | None = None


#: Kinds shown as numbers: right-aligned, sorted by value (not by their text).
NUMERIC_KINDS = frozenset(units.FORMATS)
#: Widths (px) by kind: room for the longest value of the kind (``2 min 5 s``, ``12,345``).
_KIND_WIDTHS = {"count": 64, "number": 76, "duration_s": 86, "duration_ms": 86,
                "percent": 64, "money": 74, "ratio": 70, "time": 156}


def title_width(title: str) -> int:
    """Px a header needs for ``title`` in full, with its sort arrow and padding (13 px
    bold; measured in Chromium by tests/test_reads_like_a_number.py)."""
    return math.ceil(9.2 * len(title)) + 36


_T = "time"
#: Every column the views show, by its name in the frames: the one list of headers,
#: tooltips, kinds and widths (a view may refine them for its own table).
COLUMNS: dict[str, Col] = {
    # times
    "started_at": Col("started", "When it started", _T),
    "started": Col("started", "When it started", _T),
    "time": Col("time", "When it was recorded", _T),
    "ts": Col("time", "When it happened", _T),
    "bucket": Col("time", "Start of the time bucket", _T),
    "first_seen": Col("first seen", "The first time it was seen", _T),
    "last_seen": Col("last seen", "The latest time it was seen", _T),
    "last_run": Col("last run", "When it last ran", _T),
    "start_time": Col("started", "When it started", _T),
    "fired_at": Col("fired", "When the alert fired", _T),
    "created_at": Col("created", "When it was created", _T),
    # the control page's tasks, alerts and rules (names shown, ids in the cells' tooltips)
    "agent_id": Col("agent", "The agent's id", width=118),
    "rule_id": Col("rule", "The rule's id", width=130),
    "rule_name": Col("rule", "The alert rule", width=150),
    "severity": Col("level", "Severity: info, warning or critical", width=84),
    "priority": Col("priority", "Higher runs first", "count"),
    "acked_by": Col("acked by", "Who acknowledged it", width=110),
    "resolved_by": Col("resolved by", "Who resolved it: a person, or the workbench when "
                       "its agent's run ended", width=150),
    # ids and short labels
    "run_id": Col("run", "Run id", width=160),  # (16 hex digits, or live- and 12)
    "trace_id": Col("trace", "Trace id", width=108),
    "session_id": Col("session", "Session id", width=108),
    "span_id": Col("span", "Span id", width=108),
    "commit_sha": Col("commit", "The commit tested (its first 10 characters)", width=96),
    "build": Col("build", "CI build number", width=74),
    "variant": Col("variant", "Run variant: OS, Python version, browser and the like",
                   width=104),
    "branch": Col("branch", "Git branch", width=150),
    "project": Col("project", "Project", width=132),
    "status": Col("status", "Status", width=96),
    "outcome": Col("outcome", "Outcome of the attempt", width=84),
    "base_outcome": Col("before", "Outcome in the base run", width=84),
    "label": Col("label", "flaky: proven (passed and failed on one commit, or on a retry); "
                 "statistically flaky: flips often; broken: failed its last runs in a row; "
                 "failing: too little history to say more", width=150),
    "final": Col("final", "Whether this attempt decided the outcome (the last try)",
                 width=62),
    "strip": Col("history", "Outcome in each of its recent runs, oldest first", width=226),
    "agent": Col("agent", "Agent", width=118),
    "agent_name": Col("agent", "Agent", width=118),
    "service": Col("service", "Service (resource service.name)", width=118),
    "service_name": Col("service", "Service (resource service.name)", width=118),
    "severity_text": Col("level", "Severity", width=80),
    "status_code": Col("status", "Span status: ok, error or unset", width=74),
    "exception": Col("exception", "Exception type", width=200),
    "error_type": Col("exception", "Exception type", width=160),
    "event_name": Col("event", "Event name", width=190),
    "model": Col("model", "Model", width=150),
    "models": Col("models", "Models used", width=150),
    "tool_name": Col("tool", "Tool"),
    "grp": Col("series", "Series: the value of the attribute grouped by"),
    # text that gets the width
    "test_id": Col("test", "The test: class or file :: name, parameters included"),
    "normalized": Col("message", "The failure message, with numbers, ids and paths made "
                      "generic"),
    "message": Col("message", "The failure message"),
    "suspect": Col("suspect", "The deepest frame outside the tests: where to look first"),
    "evidence": Col("evidence", "Why it has its label"),
    "affected_tests": Col("tests", "Tests affected"),
    "root": Col("root", "The first span of the trace"),
    # the projects overview (its numbers' kinds are the page's own: views/projects.py)
    "kind": Col("kind", "What the project is, from its manifests (python, node, ...)",
                width=80),
    "last_status": Col("last run", "How its latest test run ended", width=96),
    "last_run_at": Col("run at", "When its latest test run started", _T),
    "run_commit": Col("commit", "The commit its latest test run tested (first 10 "
                      "characters)", width=104),
    "flaky": Col("flaky", "Tests proven or statistically flaky", width=72),
    "broken": Col("broken", "Tests that failed their last runs in a row", width=88),
    "coverage": Col("coverage", "Share of the statements its tests ran (latest report)",
                    width=104),
    "coverage_change": Col("Δ coverage", "Change in coverage from the report before, in "
                           "percentage points", width=120),
    "agents_active": Col("agents", "Agents working on it now", width=82),
    "mcp": Col("MCP", "MCP servers the project declares", width=70),
    # counts
    "tests": Col("tests", "Tests", "count"),
    "passed": Col("pass", "Tests that passed", "count"),
    "failed": Col("fail", "Tests that failed", "count"),
    "errors": Col("error", "Tests that broke outside an assertion (errors)", "count"),
    "skipped": Col("skip", "Tests skipped", "count"),
    "runs": Col("runs", "Runs", "count"),
    "fails": Col("fails", "Runs in which it failed", "count"),
    "flips": Col("flips", "Times it changed between pass and fail from one run to the next",
                 "count"),
    "failures": Col("fails", "Failures with this signature", "count"),
    "attempt": Col("try", "Attempt: 1 is the first try, 2 and up are retries", "count"),
    "attempts": Col("tries", "Attempts, retries included", "count"),
    "older_runs": Col("older", "How many older runs the before median is taken from",
                      "count"),
    "spans": Col("spans", "Spans in the trace", "count"),
    "events": Col("events", "Span events", "count"),
    "sessions": Col("sessions", "Sessions", "count"),
    "records": Col("records", "Records", "count"),
    "points": Col("points", "Data points in the bucket", "count"),
    "commits": Col("commits", "Commits made", "count"),
    "pull_requests": Col("PRs", "Pull requests opened", "count"),
    "lines_changed": Col("lines", "Lines of code added or removed", "count"),
    "tool_calls": Col("tool calls", "Tool calls", "count"),
    "tool_failures": Col("tool fails", "Tool calls that failed", "count"),
    "api_errors": Col("API errors", "Model API requests that failed", "count"),
    "model_calls": Col("model calls", "Model API requests", "count"),
    "agents": Col("agents", "Agents", "count"),
    "input_tokens": Col("input", "Input tokens", "count"),
    "output_tokens": Col("output", "Output tokens", "count"),
    "cache_read_tokens": Col("cache read", "Input tokens read from the prompt cache", "count"),
    "cache_creation_tokens": Col("cache write", "Input tokens written to the prompt cache",
                                 "count"),
    "reasoning_tokens": Col("reasoning", "Reasoning tokens", "count"),
    "input": Col("input", "Input tokens", "count"),
    "output": Col("output", "Output tokens", "count"),
    "cache_read": Col("cache read", "Input tokens read from the prompt cache", "count"),
    "cache_creation": Col("cache write", "Input tokens written to the prompt cache", "count"),
    "reasoning": Col("reasoning", "Reasoning tokens", "count"),
    # durations, shares, money
    "duration_s": Col("took", "How long it took", "duration_s"),
    "median_s": Col("median", "Median duration of its final attempts", "duration_s"),
    "max_s": Col("max", "Its longest final attempt", "duration_s"),
    "total_s": Col("total", "Time spent on it across the runs of the window", "duration_s"),
    "recent_median_s": Col("recent", "Median duration over its last 5 runs", "duration_s"),
    "older_median_s": Col("before", "Median duration over the runs before those",
                          "duration_s"),
    "duration_ms": Col("took", "How long it took", "duration_ms"),
    "offset_ms": Col("at", "When it started, after the start of the trace", "duration_ms"),
    "flip_rate": Col("flip rate", "Share of consecutive runs in which it changed between "
                     "pass and fail", "percent"),
    "tool_failure_rate": Col("fail rate", "Share of tool calls that failed", "percent"),
    "cost_usd": Col("cost", "Cost in US dollars", "money"),
    "ratio": Col("slower", "Recent median divided by the older one", "ratio"),
    # metrics
    "increase": Col("increase", "How much the counter grew in the bucket", "number"),
    "rate_per_s": Col("per second", "Rate per second", "number"),
    **{f"per_{u}": Col(f"per {u}", f"Rate per {u}", "number")
       for u, _ in units.RATE_UNITS},
    "mean": Col("mean", "Mean of the readings in the bucket", "number"),
    "max_value": Col("max", "Largest reading in the bucket", "number"),
    "p50": Col("p50", "Median (50th percentile)", "number"),
    "p95": Col("p95", "95th percentile", "number"),
    "p99": Col("p99", "99th percentile", "number"),
}


def _width(col: Col) -> int | None:
    base = col.width or _KIND_WIDTHS.get(col.kind)
    return None if base is None else max(base, title_width(col.title))


#: Widths (px) of the columns that have a natural size; the others (names, messages,
#: evidence) share what is left of the page, elided (a selected row shows them whole).
WIDTHS = {name: w for name, col in COLUMNS.items() if (w := _width(col)) is not None}
#: Column headers as people read them: short words that fit; the tooltip says the rest.
TITLES = {name: col.title for name, col in COLUMNS.items()}


def header(column: str) -> tuple[str, str]:
    """``(title, tooltip)`` of a column (its own name, and no tooltip, when unknown)."""
    col = COLUMNS.get(column)
    return (col.title, col.tip) if col else (column, "")


def kind_of(column: str, kinds: dict[str, str] | None = None) -> str:
    """What a column holds (``count``, ``duration_s``, ``percent``, ``time``, ...):
    ``kinds`` (a table's own) first, then :data:`COLUMNS`; ``""`` when unknown."""
    if kinds and column in kinds:
        return kinds[column]
    col = COLUMNS.get(column)
    return col.kind if col else ""


#: OTLP span status codes as people read them.
STATUS_CODES = {0: "unset", 1: "ok", 2: "error"}


def _cells(series: pd.Series, fmt) -> pd.Series:
    """``fmt`` of each value as Python strings, None for a missing one (shown empty)."""
    out = []
    for v in series.to_numpy(dtype=object, na_value=None):
        text = None if v is None or (isinstance(v, float) and v != v) else fmt(v)
        out.append(text if text != "" else None)
    return pd.Series(out, index=series.index, dtype=object)


def readable(df: pd.DataFrame | None, kinds: dict[str, str] | None = None
             ) -> pd.DataFrame | None:
    """How every table shows values, as text made by one formatting layer
    (:mod:`workbench.analysis.units`): durations with their unit, shares as percentages,
    money in dollars, other numbers rounded with thousands separators (never scientific
    notation), times as ``YYYY-MM-DD HH:MM:SS``, span status codes as words, yes/no.
    ``kinds`` (column → kind) refines :data:`COLUMNS` for one table.

    Which columns were numbers is kept (``attrs["numeric"]``: right-aligned), and so are
    their values (:func:`sort_keys`): a column sorts by value, never by its text. A frame
    this made is returned as it is (a view may format its rows once and share them
    between open pages: see ``FrameCache.derive``)."""
    if df is None or _formatted.get(id(df)) is df:
        return df
    out = df.reset_index(drop=True)
    keys: dict[str, pd.Series] = {}
    numeric: list[str] = []
    for col in out.columns:
        series = out[col]
        kind = kind_of(str(col), kinds)
        fmt = units.FORMATS.get(kind)
        if pd.api.types.is_datetime64_any_dtype(series):
            out[col] = series.dt.strftime("%Y-%m-%d %H:%M:%S").astype(object).where(
                series.notna(), None)
            keys[col] = series
        elif col in ("status_code", "status") and pd.api.types.is_integer_dtype(series):
            out[col] = series.map(STATUS_CODES).fillna(series.astype(str)).astype(object)
        elif pd.api.types.is_bool_dtype(series):
            out[col] = _cells(series, lambda v: "yes" if v else "no")
        elif pd.api.types.is_numeric_dtype(series) or (
                fmt is not None and series.dtype == object and _all_numbers(series)):
            out[col] = _cells(series, fmt or units.number)
            keys[col] = pd.to_numeric(series, errors="coerce")
            numeric.append(col)
        elif series.dtype == object and kind == "" and _all_numbers(series):
            out[col] = _cells(series, units.number)  # a count missing for some rows
            keys[col] = pd.to_numeric(series, errors="coerce")
            numeric.append(col)
        elif isinstance(series.dtype, pd.StringDtype):
            # As Python strings (None for missing): what Bokeh sends anyway, converted once
            # here rather than by every open page's table on every refresh.
            out[col] = series.astype(object).where(series.notna(), None)
    out.attrs["numeric"] = tuple(numeric)
    _formatted[id(out)] = out
    if keys:
        _keys[id(out)] = pd.DataFrame(keys, index=out.index)
        weakref.finalize(out, _keys.pop, id(out), None)
    return out


def _all_numbers(series: pd.Series) -> bool:
    values = series.dropna()
    return not values.empty and all(_is_number(v) for v in values)


def sort_keys(df: pd.DataFrame | None) -> pd.DataFrame | None:
    """The values behind a :func:`readable` frame's formatted columns (numbers, times), by
    its rows: what sorting by such a column orders by. None for any other frame."""
    if df is None or _formatted.get(id(df)) is not df:
        return None
    return _keys.get(id(df))


#: The frames :func:`readable` made, while they live (by id: frames are not hashable),
#: and the values behind their formatted columns.
_formatted: weakref.WeakValueDictionary[int, pd.DataFrame] = weakref.WeakValueDictionary()
_keys: dict[int, pd.DataFrame] = {}


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
        val = readable(val, getattr(obj, "kinds", None))
        if same_frame(getattr(obj, self.name, None), val):
            return
        obj._sort_keys = sort_keys(val)
        reason = getattr(obj, "_reason", None)
        none = val is None or val.empty
        # The empty text and the rows come from this one frame. A table is shown before
        # its rows arrive: a Tabulator sent rows while hidden drew none of them, and kept
        # drawing none once shown again (the agent's tasks after switching agents).
        if reason is not None and not none:
            reason.visible, obj.visible = False, True
        super().__set__(obj, val)
        if reason is not None and none:
            reason.visible, obj.visible = True, False


class Table(pn.widgets.Tabulator):
    """Tabulator whose values are always shown through :func:`readable`, and sorted by
    what they are (a duration by its seconds, not by its text)."""

    value = _ReadableFrame(default=None, doc="The rows shown (formatted on assignment).")

    def __init__(self, value=None, kinds: dict[str, str] | None = None,
                 reason: str | None = None, **params):
        self.kinds = kinds or {}
        self._sort_keys: pd.DataFrame | None = None
        self._reason = empty(reason) if reason is not None else None
        super().__init__(value, **params)
        self.box = self
        if self._reason is not None:
            self.box = pn.Column(self._reason, self, sizing_mode="stretch_width")
            none = self.value is None or self.value.empty
            self._reason.visible, self.visible = none, not none

    def _sort_df(self, df: pd.DataFrame) -> pd.DataFrame:
        """The rows in the order of the header a person clicked (the server sorts: pages
        are remote): by the values behind formatted columns (a duration by its seconds,
        not its text), text regardless of case as Tabulator does; stable, missing last."""
        keys = self._sort_keys
        by, names, ascending = pd.DataFrame(index=df.index), [], []
        for i, sorter in enumerate(self.sorters or []):
            field = self._renamed_cols.get(sorter.get("field"), sorter.get("field"))
            if field not in df.columns:
                continue
            if keys is not None and field in keys.columns:
                column = keys[field].reindex(df.index)
            else:
                column = df[field].map(lambda v: v.lower() if isinstance(v, str) else v)
            by[f"k{i}"] = column
            names.append(f"k{i}")
            ascending.append(sorter.get("dir") != "desc")
        if not names:
            return df
        order = by.sort_values(names, ascending=ascending, kind="mergesort",
                               na_position="last").index
        return df.loc[order]


#: What an empty table says when its view gives no reason of its own.
EMPTY_TABLE = "Nothing here for these filters and this time window (try a wider window)."


def table(df: pd.DataFrame, empty_text: str = EMPTY_TABLE, *, boxed: bool = False,
          tips: dict[str, str] | None = None, kinds: dict[str, str] | None = None,
          grow: dict[str, int] | None = None, min_widths: dict[str, int] | None = None,
          **kw) -> Table:
    """A Tabulator that pages on the server: the browser only ever gets one page of rows.

    ``boxed``: the view shows ``table.box``, where ``empty_text`` takes the table's place
    while it has no rows — decided on the server from the frame the rows come from.
    (Tabulator's own placeholder is the browser's guess: on a fresh server it said "no
    failures in this window" beside a pager of two pages.)

    Headers, tooltips, widths and alignment come from :data:`COLUMNS` (``tips`` and
    ``kinds`` refine them for this table; ``widths`` and ``titles`` too); ``grow`` gives
    the columns without a width their shares of what is left (the test name gets more
    than the message), ``min_widths`` their least. Pass ``df`` with the columns the table
    will show (an empty frame of them is fine): a Tabulator whose columns change is built
    anew in the browser, and rows sent meanwhile were lost.

    Every string column uses Tabulator's default ``plaintext`` formatter, which escapes
    HTML, so test names and messages from reports are shown, never interpreted.
    """
    kinds = kinds or {}
    tooltips = {name: col.tip for name, col in COLUMNS.items() if col.tip}
    tooltips.update(tips or {})
    numeric = [c for c in (*COLUMNS, *kinds) if kind_of(c, kinds) in NUMERIC_KINDS]
    per_column = [{"field": c, **({"widthGrow": g} if g else {}),
                   **({"minWidth": (min_widths or {})[c]} if c in (min_widths or {}) else {})}
                  for c in dict.fromkeys([*(grow or {}), *(min_widths or {})])
                  for g in [(grow or {}).get(c)]]
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
        # Header tooltips are ours, escaped all the same.
        layout="fit_columns",
        configuration={"columnDefaults": {"headerTooltip": True},
                       "responsiveLayout": "hide",
                       # Every empty table says why it is empty (plain text, escaped):
                       # in its box, or else as Tabulator's placeholder.
                       "placeholder": "" if boxed else escape(empty_text),
                       **({"columns": per_column} if per_column else {})},
        # Tabulator's 1 px filler column at the right end showed its sort arrow as a stray
        # "(" beside the last header.
        stylesheets=[":host .tabulator {font-size: 13px}",
                     ":host .tabulator .tabulator-col.empty {visibility: hidden}"],
        theme="bootstrap5",
        widths=dict(WIDTHS),
        titles=dict(TITLES),
        header_tooltips={c: escape(t) for c, t in tooltips.items()},
        text_align=dict.fromkeys(numeric, "right"),
        header_align=dict.fromkeys(numeric, "right"),
    )
    for key in ("widths", "titles"):  # a table's own sizes refine the shared ones
        opts[key].update(kw.pop(key, {}))
    for name, title in opts["titles"].items():  # a header never needs more than its width
        if name in opts["widths"] and isinstance(opts["widths"][name], int):
            opts["widths"][name] = max(opts["widths"][name], title_width(title))
    opts.update(kw)
    return Table(readable(df, kinds), kinds=kinds, reason=empty_text if boxed else None,
                 **opts)


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
    """A few rows (one per agent, say) as a plain HTML table, every value escaped and
    formatted (:func:`readable`), headers as :data:`COLUMNS` says (their full meaning on
    hover) and numbers right-aligned.

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
    """Per column, whether it is shown as a number (right-aligned): one that
    :func:`readable` formatted from numbers, a numeric dtype, or objects that are all
    numbers (a count that is missing for some rows)."""
    if "numeric" in df.attrs:
        return [c in df.attrs["numeric"] for c in df.columns]

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
        text = units.number(value)
    else:
        text = str(value)
    kind = " class=n" if right else ""
    if not right and tag == "td" and len(text) > 20:
        kind = f' class=t title="{escape(text)}"'
    return f"<{tag}{kind}>{escape(text)}</{tag}>"


def header_cell(column: str, right: bool, attrs: str = "", tip_suffix: str = "",
                mark: str = "") -> str:
    """A ``<th>`` of :data:`COLUMNS`' short title, its full meaning as the tooltip (both
    escaped); ``attrs`` (escaped already) are added, ``mark`` (a sort arrow) follows."""
    title, tip = header(column)
    tip = (tip + tip_suffix) if tip else (f"{title}{tip_suffix}" if tip_suffix else "")
    tooltip = f' title="{escape(tip)}"' if tip else ""
    return f'<th{" class=n" if right else ""}{tooltip}{attrs}>{escape(title)}{mark}</th>'


def table_markup(rows: pd.DataFrame, numeric: list[bool], head: str | None = None,
                 row_attrs: list[str] | None = None, table_attrs: str = "") -> str:
    """The ``<table>`` of :func:`html_table`: ``head`` replaces the header row's cells and
    ``row_attrs`` adds attributes to each ``<tr>`` (both already escaped)."""
    if head is None:
        head = "".join(header_cell(c, right) for c, right in zip(
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
        f'<span title="{escape(o)}" style="display:inline-block;width:6px;height:14px;'
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


@contextmanager
def bokeh_changes() -> Iterator[None]:
    """Around a change of plain Bokeh models (a chart's data source, its ranges, its
    labels): it goes to the browser in order with Panel's own changes.

    Bokeh sends such a change when the callback that made it ends; Panel writes its own
    changes to the socket as they happen, or queues them behind a write in progress and
    polls until the socket is free. A tab's view sent when the tab opened (lazy_tabs),
    queued that way, was overtaken by a change to a chart inside it, and BokehJS refused
    the data of a model it had not been sent ("reference p1259 isn't known"). Under
    Panel's ``hold`` the change takes Panel's way, behind whatever Panel has queued.
    """
    with hold():
        yield


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


#: Bootstrap's "light" buttons (the sidebars' window selectors, a breadcrumb, a secondary
#: action) are near-white in the dark theme too. These follow the page's theme: Bootstrap's
#: own variables for its surfaces, text and borders, which the dark theme sets dark.
THEMED_BUTTONS = """
.bk-btn-light {
  --bs-btn-color: var(--bs-emphasis-color);
  --bs-btn-bg: var(--bs-tertiary-bg);
  --bs-btn-border-color: var(--bs-border-color);
  --bs-btn-hover-color: var(--bs-emphasis-color);
  --bs-btn-hover-bg: var(--bs-secondary-bg);
  --bs-btn-hover-border-color: var(--bs-border-color);
  --bs-btn-active-color: var(--bs-emphasis-color);
  --bs-btn-active-bg: rgba(var(--bs-emphasis-color-rgb), 0.22);
  --bs-btn-active-border-color: var(--bs-border-color);
  --bs-btn-disabled-color: var(--bs-emphasis-color);
  --bs-btn-disabled-bg: var(--bs-tertiary-bg);
  --bs-btn-disabled-border-color: var(--bs-border-color);
}
.bk-btn.bk-btn-light[disabled], .bk-btn.bk-btn-light[disabled]:hover {
  color: var(--bs-btn-disabled-color);
  background-color: var(--bs-btn-disabled-bg);
  border-color: var(--bs-btn-disabled-border-color);
}"""


#: The same for a table's pager (Tabulator's Bootstrap theme draws it light grey with
#: white page buttons whatever the page's theme); the current page stays the accent colour.
THEMED_PAGER = """
:host .tabulator .tabulator-footer {
  background-color: var(--bs-tertiary-bg);
  border-top-color: var(--bs-border-color);
  color: var(--bs-body-color);
}
:host .tabulator .tabulator-footer .tabulator-page,
:host .tabulator .tabulator-footer .tabulator-page:disabled,
:host .tabulator .tabulator-footer .tabulator-page[data-page=last] {
  background: var(--bs-body-bg);
  border-color: var(--bs-border-color);
  color: var(--bs-emphasis-color);
}
:host .tabulator .tabulator-footer .tabulator-page.active {
  background: var(--bs-primary);
  border-color: var(--bs-primary);
  color: #fff;
}"""


class ThemedDesign(pn.theme.Bootstrap):
    """Panel's Bootstrap design, with buttons and tables' pagers that follow the page's
    theme (:data:`THEMED_BUTTONS`, :data:`THEMED_PAGER`); every served dashboard's template
    uses it (``.shell``)."""

    modifiers = {
        **{cls: {"stylesheets": [pn.theme.Inherit, THEMED_BUTTONS]} for cls in (
            pn.widgets.Button, pn.widgets.Toggle, pn.widgets.MenuButton,
            pn.widgets.RadioButtonGroup, pn.widgets.CheckButtonGroup)},
        pn.widgets.Tabulator: {"stylesheets": [pn.theme.Inherit, THEMED_PAGER]},
    }


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
                             ("control", "Control"), ("workflows", "Workflows"),
                             ("console", "Console"), ("storage", "Storage"))
    )
    switch = (f'<a href="./{current}?theme={"default" if dark else "dark"}" '
              f'style="color:white;opacity:.85;margin-left:18px" title="switch theme">'
              f'{"☀ light" if dark else "☾ dark"}</a>')
    return pn.pane.HTML(f'<div style="font-size:15px;margin-top:6px">{links}{switch}</div>')


def role_page(title: str, current: str, body: object, role: str,
              color: str) -> pn.template.BaseTemplate:
    """A page of one view with the nav, the caller's role and the theme switch in its
    header (the Workflows and Console pages)."""
    shown = pn.pane.HTML(f'<span style="color:white;opacity:.85;font-size:13px">role: '
                         f'{escape(role)}</span>', margin=(10, 0, 0, 20))
    return pn.template.BootstrapTemplate(
        title=f"Happy Observatory · {title}", main=[body],
        header=[nav(current), shown, FollowBrowserTheme(width=0, height=0, margin=0)],
        header_background=color, theme=pn.config.theme, design=ThemedDesign)
