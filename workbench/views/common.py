"""Shared view pieces: paged tables, outcome colours, text panes that never render markup."""

from __future__ import annotations

import html

import pandas as pd
import panel as pn

OUTCOME_COLORS = {
    "passed": "#2e9e5b",
    "failed": "#d64545",
    "error": "#e08a1e",
    "skipped": "#9aa3ad",
}
PAGE_SIZE = 15


def watching(filters: tuple[str, ...], *extra: str) -> tuple[str, ...]:
    """``param.depends`` names for a view over ``model``: its model's filters plus ``extra``."""
    return tuple(f"model.{name}" for name in (*filters, *extra))


def table(df: pd.DataFrame, **kw) -> pn.widgets.Tabulator:
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
        layout="fit_data_table",
        theme="bootstrap5",
    )
    opts.update(kw)
    return pn.widgets.Tabulator(df, **opts)


def columns(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """``df[cols]``, or an empty frame with those columns (a table keeps its header)."""
    return df[cols] if not df.empty else pd.DataFrame(columns=cols)


def rounded(df: pd.DataFrame, decimals: int = 3) -> pd.DataFrame:
    """Round the numeric columns only (pandas warns when asked to round timestamps)."""
    return df.round({c: decimals for c in df.select_dtypes("number").columns})


def strip_html(outcomes) -> str:
    """A pass/fail strip as coloured squares (the values are our own outcome enum)."""
    cells = "".join(
        f'<span title="{html.escape(str(o))}" style="display:inline-block;width:7px;height:14px;'
        f'margin-right:1px;background:{OUTCOME_COLORS.get(str(o), "#555")}"></span>'
        for o in list(outcomes if outcomes is not None else [])
    )
    return f'<span style="white-space:nowrap">{cells}</span>'


def pre(text: object, height: int | None = 260) -> pn.pane.HTML:
    """Preformatted text (a traceback), escaped."""
    body = html.escape(
        "" if text is None or (isinstance(text, float) and pd.isna(text)) else str(text)
    )
    return pn.pane.HTML(
        f'<pre style="white-space:pre-wrap;font-size:12px;margin:0">{body or "(no details)"}</pre>',
        sizing_mode="stretch_width",
        height=height,
        styles={
            "overflow": "auto",
            "background": "#f6f8fa",
            "border-radius": "4px",
            "padding": "6px",
        },
    )


def h(value: object) -> str:
    """Escape a value from ingested data for an HTML pane."""
    return html.escape("" if value is None else str(value))


def badge(label: str, value: object, color: str) -> pn.pane.HTML:
    return pn.pane.HTML(
        f'<div style="padding:6px 12px;border-radius:6px;background:{color};color:white;'
        f'font-weight:600;text-align:center">{html.escape(str(value))}<br>'
        f'<span style="font-weight:400;font-size:12px">{html.escape(label)}</span></div>',
        width=104,
        margin=(4, 4),
    )


def empty(message: str) -> pn.pane.Markdown:
    return pn.pane.Markdown(f"*{message}*", styles={"color": "#667"})


def nav(current: str) -> pn.pane.HTML:
    """Links between the served dashboards (relative, so they work behind any prefix)."""
    links = " ".join(
        f'<a href="./{name}" style="color:white;margin-right:14px;'
        f'{"font-weight:700;text-decoration:underline" if name == current else "opacity:.85"}">'
        f"{label}</a>"
        for name, label in (("tests", "Tests"), ("agents", "Agents"))
    )
    return pn.pane.HTML(f'<div style="font-size:15px;margin-top:6px">{links}</div>')
