"""A table of many rows that pages and sorts on the server, opens a row on a click, and
whose live refresh is one HTML string.

The Agents tab's sessions list was a Tabulator: with five dashboards open during OTLP
load, redrawing it (``setData``, then Tabulator measuring every row and column to fit the
page) was half of what each browser did per live refresh (~80 ms a page; 30 layouts a
refresh), and it kept the browsers behind the server (benchmarks/dashboards_vs_ingest.py).
This shows the same page of rows as escaped HTML (:func:`~.common.table_markup`): a refresh
replaces one string, and the browser lays it out once.

The browser side only forwards clicks (open a row, sort by a column, turn a page) as
messages; the server checks each against what it shows, so a forged message can open only
a row that is on the page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import param
from panel.custom import JSComponent

from .common import (
    EMPTY_TABLE,
    PAGE_SIZE,
    empty_html,
    header_cell,
    numeric_columns,
    readable,
    sort_keys,
    table_markup,
)
from .escape import escape

#: Rows that can be opened, the sorted column and the pager (inside the component's own
#: shadow root, so it touches nothing else; colours follow the page's, for the dark theme).
_STYLE = (
    # Many columns fit the page: titles wrap, long text is elided (its cell's title shows
    # it whole), and the padding is narrower than a summary table's.
    "<style>.obs-t{font-size:12.5px}.obs-t th{white-space:normal;vertical-align:bottom}"
    ".obs-t th,.obs-t td{padding:3px 6px}"
    ".obs-t td.t{max-width:150px;overflow:hidden;text-overflow:ellipsis}"
    ".obs-t tbody tr{cursor:pointer}.obs-t tbody tr:hover,.obs-t tbody tr:focus"
    "{background:rgba(59,91,219,.08);outline:none}.obs-t tr.sel{background:rgba(59,91,219,.16)}"
    ".obs-t th{cursor:pointer;user-select:none}.obs-t th:hover{text-decoration:underline}"
    ".obs-pg{display:flex;gap:6px;align-items:center;justify-content:flex-end;font-size:13px;"
    "margin:6px 0;color:inherit}.obs-pg button{font:inherit;padding:1px 9px;cursor:pointer;"
    "border:1px solid rgba(128,128,128,.45);border-radius:4px;background:transparent;"
    "color:inherit}.obs-pg button:disabled{opacity:.35;cursor:default}</style>")


#: The browser side of an HTML view that forwards clicks (and Enter or Space on a focused
#: element) on ``data-open``, ``data-sort`` and ``data-page`` elements as messages; the
#: server decides what each may do.
_CLICKS_ESM = """
    export function render({ model }) {
      const box = document.createElement("div")
      box.innerHTML = model.html
      model.on("html", () => { box.innerHTML = model.html })
      const act = (target) => {
        const hit = target.closest("[data-open],[data-sort],[data-page]")
        if (hit === null || hit.disabled) { return }
        const d = hit.dataset
        if (d.open !== undefined) { model.send_msg({open: d.open}) }
        else if (d.sort !== undefined) { model.send_msg({sort: d.sort}) }
        else { model.send_msg({page: Number(d.page)}) }
      }
      box.addEventListener("click", (e) => act(e.target))
      box.addEventListener("keydown", (e) => {  // rows and headers are focusable
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); act(e.target) }
      })
      return box
    }
"""


class ClickableHtml(JSComponent):
    """Escaped HTML built on the server, whose clicks come back as messages (``{open}``,
    ``{sort}``, ``{page}``): a subclass's ``_handle_msg`` decides what each may do. The
    paged table and the stacked bars (:mod:`.stacked_bars`) are both this."""

    html = param.String(default="", doc="What is shown: escaped HTML built on the server.")

    _esm = _CLICKS_ESM


class PagedTable(ClickableHtml):
    """Rows of a frame, a page at a time, as HTML; clicking a row calls ``on_open`` with its
    ``key`` value, clicking a header sorts by that column (again: the other way), and the
    pager turns pages. Assign ``value`` to show new rows (the page and sort are kept)."""

    def __init__(self, key: str, empty_text: str = EMPTY_TABLE,
                 on_open: Callable[[Any], None] | None = None, page_size: int = PAGE_SIZE,
                 **params):
        params.setdefault("sizing_mode", "stretch_width")
        super().__init__(**params)
        self._key, self._empty, self._on_open, self._size = key, empty_text, on_open, page_size
        #: Column kinds of this table's own (see ``common.readable``), set before ``value``.
        self.kinds: dict[str, str] = {}
        self._given = pd.DataFrame()  # the rows as given; shown as ``readable`` made them
        self._frame = pd.DataFrame()
        self._page = 0
        self._sort: tuple[str, bool] | None = None  # (column, ascending); None: as given
        self._shown: pd.DataFrame = pd.DataFrame()  # the rows on the page now
        self.selected: Any = None

    @property
    def value(self) -> pd.DataFrame:
        """Every row as given, in the order given (not only the page shown)."""
        return self._given

    @value.setter
    def value(self, frame: pd.DataFrame | None) -> None:
        self._given = frame if frame is not None else pd.DataFrame()
        self._frame = readable(self._given, self.kinds)
        self._render()

    @property
    def page(self) -> int:
        return self._page

    def mark(self, key: Any) -> None:
        """Mark the row of ``key`` as the open one (None: none)."""
        if key != self.selected:
            self.selected = key
            self._render()

    def _pages(self) -> int:
        """How many pages the rows fill (at least one, for the empty text)."""
        return max(1, -(-len(self._frame) // self._size))

    def _ordered(self) -> pd.DataFrame:
        df = self._frame
        if self._sort is None or self._sort[0] not in df.columns:
            return df
        column, ascending = self._sort
        # By value (a duration by its seconds, not its text); stable, missing values last
        # either way: equal rows keep the order given.
        keys = sort_keys(df)
        by = keys[column] if keys is not None and column in keys.columns else df[column]
        order = by.sort_values(ascending=ascending, kind="stable", na_position="last").index
        return df.loc[order]

    def _render(self) -> None:
        df = self._ordered()
        if df.empty:
            self._page, self._shown = 0, df
            self.html = empty_html(self._empty)  # an equal string sends nothing
            return
        pages = self._pages()
        self._page = min(self._page, pages - 1)
        start = self._page * self._size
        self._shown = rows = df.iloc[start:start + self._size]
        numeric = numeric_columns(df)
        head = "".join(self._header(c, right) for c, right in zip(
            df.columns, numeric, strict=True))
        keys = rows[self._key].tolist() if self._key in rows.columns else [None] * len(rows)
        marks = [
            f' tabindex="0" data-open="{escape(str(k))}"'
            + (' class="sel"' if k is not None and k == self.selected else "")
            for k in keys]
        # After the table's own style: this one refines it.
        self.html = (table_markup(rows, numeric, head, marks, ' role="grid"') + _STYLE
                     + self._pager(start, len(rows), len(df), pages))

    def _header(self, column: str, right: bool) -> str:
        arrow = ""
        if self._sort and self._sort[0] == column:
            arrow = " ▲" if self._sort[1] else " ▼"
        # The short title, its full meaning as the tooltip (escaped in header_cell).
        return header_cell(column, right, f' tabindex="0" data-sort="{escape(column)}"',
                           " (click to sort)", arrow)

    def _pager(self, start: int, shown: int, total: int, pages: int) -> str:
        if pages == 1:
            return ""
        p = self._page

        def button(label: str, to: int, tip: str) -> str:
            off = " disabled" if to == p or not 0 <= to < pages else ""
            return (f'<button type="button" data-page="{to}" title="{tip}" aria-label="{tip}"'
                    f"{off}>{label}</button>")

        return (f'<div class="obs-pg">{button("«", 0, "First page")}'
                f'{button("‹", p - 1, "Previous page")}'
                f"<span>rows {start + 1:,}–{start + shown:,} of {total:,}</span>"
                f'{button("›", p + 1, "Next page")}{button("»", pages - 1, "Last page")}</div>')

    def _handle_msg(self, msg: Any) -> None:
        """A click in a browser: anything not about what is shown is ignored."""
        if not isinstance(msg, dict):
            return
        if "open" in msg:
            self._open(msg["open"])
        elif isinstance(msg.get("sort"), str) and msg["sort"] in self._frame.columns:
            column = msg["sort"]
            ascending = not (self._sort == (column, True))  # first click: ascending
            self._sort, self._page = (column, ascending), 0
            self._render()
        elif "page" in msg and isinstance(msg["page"], int | float):
            page = msg["page"]
            if page == page and 0 <= page < self._pages():
                self._page = int(page)
                self._render()

    def _open(self, wanted: Any) -> None:
        if self._key not in self._shown.columns:
            return
        for key in self._shown[self._key].tolist():
            if key is not None and str(key) == wanted:
                self.mark(key)
                if self._on_open is not None:
                    self._on_open(key)
                return
