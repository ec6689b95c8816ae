"""The coverage map (a treemap of folders and files: area = statements, colour = coverage,
a sortable table beside it) and the file view (the source line by line, hit / miss /
partial, and the tests that ran the chosen line with their last outcome)."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pandas as pd
import panel as pn
import param
from bokeh.models import ColumnDataSource, CustomJS, HoverTool, LinearColorMapper, TapTool
from bokeh.palettes import RdYlGn11
from bokeh.plotting import figure
from panel.reactive import ReactiveHTML

from ..analysis import units
from ..coverage import tree
from ..models.projects import ProjectsModel
from .common import Kpis, bokeh_changes, columns, empty, table, watching
from .escape import escape
from .lazy import LazyView, deferred

WATCH = ("project", "report_id", "refreshed")
#: Red (0 %) through yellow to green (100 %).
PALETTE = tuple(reversed(RdYlGn11))
STATUS_STYLE = {"hit": ("#2b8a3e", "#d3f9d8"), "miss": ("#c92a2a", "#ffe3e3"),
                "partial": ("#e67700", "#fff3bf")}
MAP_W, MAP_H = 100.0, 62.0
#: The coverage map's table.
LEVEL_COLUMNS = ["name", "kind", "files", "statements", "covered", "missing", "percent"]
#: A tile without a coverage figure.
NAN_COLOUR = "#ced4da"
#: A tile's label: the darker or the lighter of these, whichever reads better on it.
DARK_TEXT, LIGHT_TEXT = "#111111", "#ffffff"
#: The labels' font (Bokeh's default family): the size the browser measures them in.
LABEL_FONT = "11px helvetica"


def _pct(value) -> str:
    """A coverage percentage (0–100) as the page shows it: ``68.5%``, ``–`` when none."""
    return units.percentage(value) or "–"


def fill_colour(percent: object) -> str:
    """The colour of a tile of ``percent`` coverage, as the treemap's colour mapper picks it
    (:data:`PALETTE` spread evenly over 0–100; :data:`NAN_COLOUR` for none)."""
    if percent is None or pd.isna(percent):
        return NAN_COLOUR
    i = int(float(percent) / 100 * len(PALETTE))
    return PALETTE[min(max(i, 0), len(PALETTE) - 1)]


def _luminance(colour: str) -> float:
    """WCAG relative luminance of ``#rrggbb``."""
    def channel(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def label_colour(background: str) -> str:
    """The text colour for a label on ``background``: dark or light, whichever has the
    higher contrast with it (white on dark green and dark red, black on yellow)."""
    return max((DARK_TEXT, LIGHT_TEXT), key=lambda text: contrast(text, background))


#: Fills each tile's label in the browser, where its size in pixels is known: the name and
#: the percentage when both fit, the name alone (elided with … when at least four
#: characters fit) when one line fits, nothing when not even that — so labels never run
#: over their tiles or each other. Runs when the data changes and when the map is resized.
_FIT_LABELS = """
const d = src.data, n = d.name.length;
const sx = fig.inner_width / map_w, sy = fig.inner_height / map_h;
if (!(sx > 0 && sy > 0)) return;
const ctx = (window.__obsLabelCtx ||= document.createElement('canvas').getContext('2d'));
ctx.font = font;
const width = (t) => ctx.measureText(t).width;
const pad = 8, line = 14, labels = new Array(n);
for (let i = 0; i < n; i++) {
  const room = d.dx[i] * sx - pad, rows = Math.floor((d.dy[i] * sy - 4) / line);
  const name = String(d.name[i]), pct = String(d.percent[i]);
  let label = '';
  if (rows >= 1 && room > 0) {
    if (width(name) <= room) {
      label = rows >= 2 && width(pct) <= room ? name + '\\n' + pct : name;
    } else {
      let cut = name.length - 1;
      while (cut >= 4 && width(name.slice(0, cut) + '…') > room) cut--;
      if (cut >= 4) label = name.slice(0, cut) + '…';
    }
  }
  labels[i] = label;
}
d.label = labels;
src.change.emit();
"""


class CoverageMap(LazyView):
    """Click a folder (tile or row) to go into it, a file to open it in the file view."""

    model = param.ClassSelector(class_=ProjectsModel, doc="The projects model.")

    def __init__(self, **params):
        super().__init__(**params)
        self._kpis = Kpis()
        self._crumbs = pn.Row(sizing_mode="stretch_width", margin=(0, 0))
        self._source = ColumnDataSource({k: [] for k in (
            "x", "y", "dx", "dy", "right", "bottom", "name", "path", "kind", "files",
            "statements", "covered", "percent", "colour_value", "text_colour", "label")})
        fig = figure(height=520, sizing_mode="stretch_width", x_range=(0, MAP_W),
                     y_range=(MAP_H, 0), tools="tap,reset,save", toolbar_location="right",
                     match_aspect=False)
        fig.axis.visible = False
        fig.grid.visible = False
        fig.outline_line_color = None
        mapper = LinearColorMapper(palette=PALETTE, low=0, high=100, nan_color=NAN_COLOUR)
        fig.quad(left="x", right="right", top="y", bottom="bottom", source=self._source,
                 fill_color={"field": "colour_value", "transform": mapper},
                 line_color="white", line_width=2, hover_line_color="#212529",
                 selection_line_color="#212529", nonselection_fill_alpha=1.0)
        fig.text(x="x", y="y", text="label", source=self._source, text_font_size="11px",
                 text_baseline="top", text_color="text_colour", x_offset=4, y_offset=3,
                 text_line_height=1.25)
        fit = CustomJS(args={"src": self._source, "fig": fig, "map_w": MAP_W, "map_h": MAP_H,
                             "font": LABEL_FONT}, code=_FIT_LABELS)
        self._source.js_on_change("data", fit)
        fig.js_on_change("inner_width", fit)
        fig.js_on_change("inner_height", fit)
        fig.add_tools(HoverTool(tooltips=[("", "@path"), ("kind", "@kind"),
                                          ("files", "@files"), ("statements", "@statements"),
                                          ("covered", "@covered"), ("coverage", "@percent")]))
        fig.select_one(TapTool).behavior = "select"
        self._source.selected.on_change("indices", self._on_tap)
        self._fig = fig
        self._map = pn.pane.Bokeh(fig, sizing_mode="stretch_width", height=520)
        self._table = table(pd.DataFrame(columns=LEVEL_COLUMNS), empty_text=(
                            "No coverage report for this project (observatory ingest "
                            "coverage PATH --project P)."),
                            page_size=20, widths={"kind": 70, "files": 70, "statements": 80,
                                                  "covered": 80, "missing": 80,
                                                  "percent": 80},
                            titles={"statements": "stmts", "covered": "run",
                                    "missing": "miss", "percent": "%"},
                            kinds={"percent": "percentage", "files": "count",
                                   "statements": "count", "covered": "count",
                                   "missing": "count"})
        self._table.param.watch(self._on_row, "selection")
        self._note = empty("")
        self._body = pn.Column(
            self._crumbs, pn.Row(pn.Column(self._map, sizing_mode="stretch_width"),
                                 pn.Column(self._table, width=560),
                                 sizing_mode="stretch_width"),
            sizing_mode="stretch_width")
        self._load()

    @param.depends(*watching(WATCH, "folder"), watch=True)
    @deferred
    def _load(self) -> None:
        m = self.model
        rep = m.report() if m.has_project else None
        self._note.visible = rep is None
        self._body.visible = rep is not None
        if rep is None:
            self._note.object = ("*Choose a project with a coverage report.*"
                                 if not m.has_project else
                                 f"*No coverage report for {escape(m.project)} yet: "
                                 "`observatory ingest coverage PATH --project NAME`.*")
            self._kpis.update([])
            self._table.value = pd.DataFrame(columns=LEVEL_COLUMNS)
            self._send(pd.DataFrame(columns=["statements"]))
            self._crumbs.objects = []
            return
        self._kpis.update([
            ("coverage", _pct(rep["percent"]), "#2b8a3e"),
            ("statements", f"{int(rep['statements']):,}", "#495057"),
            ("covered", f"{int(rep['covered']):,}", "#495057"),
            ("files", f"{int(rep['files']):,}", "#495057"),
            ("tests with contexts", f"{int(rep['contexts'] or 0):,}", "#3b5bdb"),
            ("commit", str(rep["commit_sha"] or "–")[:10], "#495057"),
        ])
        level = m.level()
        shown_folder = _folder_of(level, m.folder)
        self._crumbs.objects = self._breadcrumbs(shown_folder)
        self._send(level)
        self._table.value = columns(level, LEVEL_COLUMNS)

    def _breadcrumbs(self, folder: str) -> list:
        parts = [p for p in folder.split("/") if p]
        out = []
        for i in range(len(parts) + 1):
            target = "/".join(parts[:i])
            label = "(project root)" if i == 0 else parts[i - 1]
            button = pn.widgets.Button(name=label, button_type="light", margin=(2, 2),
                                       disabled=(i == len(parts)))
            button.on_click(lambda e, t=target: setattr(self.model, "folder", t))
            out.append(button)
        return out

    def _send(self, level: pd.DataFrame) -> None:
        with bokeh_changes():
            self._draw(tree.layout(level, MAP_W, MAP_H))

    def _draw(self, rects: pd.DataFrame) -> None:
        if rects.empty:
            self._source.data = {k: [] for k in self._source.data}
            return
        self._source.selected.indices = []
        self._source.data = {
            "x": rects["x"].tolist(), "y": rects["y"].tolist(),
            "dx": rects["dx"].tolist(), "dy": rects["dy"].tolist(),
            "right": (rects["x"] + rects["dx"]).tolist(),
            "bottom": (rects["y"] + rects["dy"]).tolist(),
            "name": rects["name"].tolist(), "path": rects["path"].tolist(),
            "kind": rects["kind"].tolist(), "files": rects["files"].astype(int).tolist(),
            "statements": rects["statements"].astype(int).tolist(),
            "covered": rects["covered"].astype(int).tolist(),
            "percent": [_pct(p) for p in rects["percent"]],
            "colour_value": rects["percent"].astype(float).tolist(),
            "text_colour": [label_colour(fill_colour(p)) for p in rects["percent"]],
            "label": [""] * len(rects),  # (filled in the browser: _FIT_LABELS)
        }

    def _open(self, kind: str, path: str) -> None:
        if kind == "folder":
            self.model.folder = path
        elif kind == "file":
            self.model.path = path

    def _on_tap(self, attr, old, new) -> None:
        if new:
            data = self._source.data
            i = new[0]
            if i < len(data["kind"]):
                self._open(data["kind"][i], data["path"][i])

    def _on_row(self, event) -> None:
        if event.new:
            row = self._table.value.iloc[event.new[0]]
            level = self.model.level()
            match = level[level["name"] == row["name"]]
            if not match.empty:
                self._open(match["kind"].iat[0], match["path"].iat[0])

    def __panel__(self):
        return pn.Column(self._kpis, self._note, self._body, sizing_mode="stretch_width")


def _folder_of(level: pd.DataFrame, folder: str) -> str:
    """The folder a level shows (``children`` may have skipped single-child folders)."""
    if level.empty:
        return folder
    path, name = level["path"].iat[0], level["name"].iat[0]
    return path[: len(path) - len(name)].rstrip("/")


def _line_html(code: str, status: str) -> str:
    """A line of code on its hit / miss / partial colour: those are light in either theme,
    so the code on them is dark in either theme (the page's own text colour otherwise)."""
    _, background = STATUS_STYLE.get(status, ("inherit", "transparent"))
    text = DARK_TEXT if status in STATUS_STYLE else "inherit"
    return (f'<span style="white-space:pre;font-family:monospace;background:{background};'
            f'color:{text};display:block">{escape(code) or " "}</span>')


def _status_html(status: str) -> str:
    colour, background = STATUS_STYLE.get(status, ("#adb5bd", "transparent"))
    return (f'<span style="color:{colour};font-weight:600">{escape(status)}</span>'
            if status else "")


class RevealLine(ReactiveHTML):
    """Nothing to see: brings the lines table's marked row to the middle of the screen once
    the browser has drawn it. ``target`` is ``"LINE:N"`` (N makes a repeated request a
    change); the row is looked for across the page's shadow roots for up to 3 s."""

    target = param.String(default="", doc="The line to show, and a request counter.")

    _template = '<div id="reveal" style="display:none"></div>'
    _scripts = {"target": """
      const want = String(data.target).split(':')[0];
      const sel = '.tabulator-row.tabulator-selected .tabulator-cell[tabulator-field="line"]';
      const find = (root) => {
        for (const el of root.querySelectorAll('*')) {
          if (!el.shadowRoot) continue;
          const cell = el.shadowRoot.querySelector(sel);
          if (cell && cell.textContent.trim() === want) return cell;
          const deeper = find(el.shadowRoot);
          if (deeper) return deeper;
        }
        return null;
      };
      let tries = 0;
      const go = () => {
        const cell = find(document);
        if (cell) cell.closest('.tabulator-row').scrollIntoView({block: 'center'});
        else if (tries++ < 30) setTimeout(go, 100);
      };
      if (want) go();"""}


class FileView(LazyView):
    """The open file: every line with its status; select a line for the tests that ran it,
    or go to one — by its number, or from the page's address: ``?project=P&file=PATH#L12``
    opens the file at line 12 (the tests of a line link to it so)."""

    model = param.ClassSelector(class_=ProjectsModel, doc="The projects model.")

    def __init__(self, **params):
        super().__init__(**params)
        self._head = pn.pane.HTML(sizing_mode="stretch_width")
        self.goto = pn.widgets.IntInput(name="Go to line", value=None, start=1, width=130,
                                        placeholder="line")
        self.goto.param.watch(self._on_goto, "value")
        self._goto_note = pn.pane.HTML("", margin=(30, 5, 0, 5))
        self._lines = table(
            pd.DataFrame(columns=LINE_COLUMNS), empty_text="Open a file from the coverage map.",
            page_size=LINES_PAGE, formatters={"code": {"type": "html"},
                                              "status": {"type": "html"}},
            widths={"line": 70, "status": 84, "tests": 76}, kinds={"tests": "count"},
            stylesheets=[":host .tabulator {font-size: 12px}",
                         ":host .tabulator-cell {padding: 1px 6px !important}",
                         # the chosen line stays readable over its hit/miss colour
                         ":host .tabulator-selected span {background: transparent !important;"
                         " color: inherit !important}"])
        self._lines.param.watch(self._on_line, "selection")
        # HTML, not Markdown: a path in a code span could end the span (see .escape)
        self._tests_head = pn.pane.HTML("", margin=(10, 5, 0, 5))
        self._tests = table(pd.DataFrame(columns=["test", "last_outcome", "run_id"]),
                            empty_text="Select a line to see the tests that ran it.",
                            widths={"last_outcome": 130, "run_id": 150},
                            titles={"last_outcome": "last outcome"})
        self._numbers: list[int] = []
        self._reveal = RevealLine(width=0, height=0, margin=0)
        self._load()
        self._load_tests()
        doc = pn.state.curdoc
        if doc is not None and doc.session_context is not None:
            pn.state.onload(self._from_address)

    # -- the page's address: ?project=P&file=PATH#L12 -----------------------------------
    def _from_address(self) -> None:
        """Open what the address names (once the page is there: the tab follows), and the
        line of its fragment, now and whenever the fragment changes."""
        args = pn.state.session_args or {}

        def arg(name: str) -> str | None:
            values = args.get(name) or []
            return values[0].decode("utf-8", "replace") if values else None

        project, path = arg("project"), arg("file")
        m = self.model
        if project and project in m.param.project.objects:
            m.project = project
        if path and m.has_project:
            m.path = path
        location = pn.state.location
        if location is not None:
            location.param.watch(lambda e: self._go(line_of_fragment(e.new)), "hash")
            self._go(line_of_fragment(location.hash))

    def link(self, line: int | None = None) -> str:
        """The address of the open file (at ``line``), relative to this page."""
        m = self.model
        query = {"project": m.project, "file": m.path or ""}
        theme = (pn.state.session_args or {}).get("theme")
        if theme:
            query["theme"] = theme[0].decode("utf-8", "replace")
        return "?" + urlencode(query) + (f"#L{line}" if line else "")

    # -- the file -----------------------------------------------------------------------
    @param.depends(*watching(WATCH, "path"), watch=True)
    @deferred
    def _load(self) -> None:
        m = self.model
        row = m.file_row() if m.has_project else None
        self._lines.visible = self.goto.visible = row is not None
        self._goto_note.object = ""
        if row is None:
            self._head.object = ("<i>Open a file from the coverage map: click its tile or its "
                                 "row.</i>")
            self._numbers = []
            self._lines.value = pd.DataFrame(columns=LINE_COLUMNS)
            return
        frame, where = m.file_view()
        self._head.object = (
            f"<h3 style='margin:4px 0'>{escape(row['path'])}</h3>"
            f"<div style='color:#667'>{escape(_pct(row['percent']))} of "
            f"{units.number(int(row['statements']))} statements · "
            f"{units.number(len(m.file_tests()))} tests ran lines of it · "
            f"{escape(where)}</div>")
        shown = frame.copy()
        self._numbers = shown["line"].tolist()
        self.goto.end = max(self._numbers, default=1)
        shown["code"] = [_line_html(c, s) for c, s in zip(shown["code"], shown["status"],
                                                         strict=True)]
        shown["status"] = shown["status"].map(_status_html)
        self._lines.value = shown[LINE_COLUMNS]
        if m.line is not None:
            self._show_line()
        else:
            first = next((n for n, s in zip(frame["line"], frame["status"], strict=True)
                          if s), None)
            self._lines.page = 1 if first is None else self._page_of(first)

    def _page_of(self, line: int) -> int:
        return self._numbers.index(line) // self._lines.page_size + 1

    # -- a line -------------------------------------------------------------------------
    def _go(self, line: int | None) -> None:
        """Go to ``line`` of the open file (the Go-to input, the address's fragment)."""
        if line is None or not self._numbers:
            return
        if line not in self._numbers:
            self._goto_note.object = (f"<span style='color:#c92a2a'>no line {escape(line)}: "
                                      f"the file has {len(self._numbers):,} lines</span>")
            return
        self._goto_note.object = ""
        self.model.line = line
        # (asked for by number, so maybe off screen: a clicked line is on screen already)
        self._reveal.target = f"{line}:{int(self._reveal.target.split(':')[-1] or 0) + 1}"

    def _on_goto(self, event) -> None:
        self._go(event.new)

    def _on_line(self, event) -> None:
        if event.new:
            self.model.line = int(self._lines.value.iloc[event.new[0]]["line"])

    @param.depends("model.line", watch=True)
    @deferred
    def _show_line(self) -> None:
        """Page the lines to the chosen one and mark it (its row selected)."""
        line = self.model.line
        if line is None or line not in self._numbers:
            return
        i = self._numbers.index(line)
        self._lines.page = self._page_of(line)
        if list(self._lines.selection) != [i]:
            self._lines.selection = [i]
        if self.goto.value != line:
            self.goto.value = line

    @param.depends(*watching(WATCH, "path", "line"), watch=True)
    @deferred
    def _load_tests(self) -> None:
        m = self.model
        self._tests.visible = m.line is not None and bool(m.path)
        if m.line is None or not m.path:
            self._tests_head.object = ""
            self._tests.value = pd.DataFrame(columns=["test", "last_outcome", "run_id"])
            return
        tests = m.line_tests()
        self._tests.visible = not tests.empty  # (the line above says "0 tests ran line N")
        self._tests_head.object = (f"<b>{len(tests)} test{'' if len(tests) == 1 else 's'} "
                                   f"ran line {escape(m.line)}</b> of "
                                   f"<code>{escape(m.path)}</code> · "
                                   f"<a href=\"{escape(self.link(m.line))}\">link to this "
                                   "line</a>")
        self._tests.value = tests

    def __panel__(self):
        return pn.Column(self._head, pn.Row(self.goto, self._goto_note), self._lines,
                         self._tests_head, self._tests, self._reveal,
                         sizing_mode="stretch_width")


#: The file view's columns, and its lines per page.
LINE_COLUMNS = ["line", "status", "tests", "code"]
LINES_PAGE = 40


def line_of_fragment(fragment: str | None) -> int | None:
    """The line an address's fragment names: ``#L12`` (or ``#12``, ``#L12-L20``: the first
    line) → 12; None for any other fragment."""
    match = re.fullmatch(r"#?L?(\d{1,9})(?:-L?\d+)?", (fragment or "").strip())
    return int(match.group(1)) if match else None
