"""The coverage map (a treemap of folders and files: area = statements, colour = coverage,
a sortable table beside it) and the file view (the source line by line, hit / miss /
partial, and the tests that ran the chosen line with their last outcome)."""

from __future__ import annotations

import pandas as pd
import panel as pn
import param
from bokeh.models import ColumnDataSource, HoverTool, LinearColorMapper, TapTool
from bokeh.palettes import RdYlGn11
from bokeh.plotting import figure

from ..coverage import tree
from ..models.projects import ProjectsModel
from .common import Kpis, columns, empty, table, watching
from .escape import escape
from .lazy import LazyView, deferred

WATCH = ("project", "report_id", "refreshed")
#: Red (0 %) through yellow to green (100 %).
PALETTE = tuple(reversed(RdYlGn11))
STATUS_STYLE = {"hit": ("#2b8a3e", "#d3f9d8"), "miss": ("#c92a2a", "#ffe3e3"),
                "partial": ("#e67700", "#fff3bf")}
MAP_W, MAP_H = 100.0, 62.0


def _pct(value) -> str:
    return "–" if value is None or pd.isna(value) else f"{float(value):.1f} %"


class CoverageMap(LazyView):
    """Click a folder (tile or row) to go into it, a file to open it in the file view."""

    model = param.ClassSelector(class_=ProjectsModel, doc="The projects model.")

    def __init__(self, **params):
        super().__init__(**params)
        self._kpis = Kpis()
        self._crumbs = pn.Row(sizing_mode="stretch_width", margin=(0, 0))
        self._source = ColumnDataSource({k: [] for k in (
            "x", "y", "dx", "dy", "right", "bottom", "tx", "ty", "name", "path", "kind",
            "files", "statements", "covered", "percent", "colour_value", "label")})
        fig = figure(height=520, sizing_mode="stretch_width", x_range=(0, MAP_W),
                     y_range=(MAP_H, 0), tools="tap,reset,save", toolbar_location="right",
                     match_aspect=False)
        fig.axis.visible = False
        fig.grid.visible = False
        fig.outline_line_color = None
        mapper = LinearColorMapper(palette=PALETTE, low=0, high=100, nan_color="#ced4da")
        fig.quad(left="x", right="right", top="y", bottom="bottom", source=self._source,
                 fill_color={"field": "colour_value", "transform": mapper},
                 line_color="white", line_width=2, hover_line_color="#212529",
                 selection_line_color="#212529", nonselection_fill_alpha=1.0)
        fig.text(x="tx", y="ty", text="label", source=self._source, text_font_size="11px",
                 text_baseline="top", text_color="#212529")
        fig.add_tools(HoverTool(tooltips=[("", "@path"), ("kind", "@kind"),
                                          ("files", "@files"), ("statements", "@statements"),
                                          ("covered", "@covered"), ("coverage", "@percent")]))
        fig.select_one(TapTool).behavior = "select"
        self._source.selected.on_change("indices", self._on_tap)
        self._fig = fig
        self._map = pn.pane.Bokeh(fig, sizing_mode="stretch_width", height=520)
        self._table = table(pd.DataFrame(), empty_text="No coverage report for this project "
                            "(observatory ingest coverage PATH --project P).",
                            page_size=20, widths={"kind": 70, "files": 70, "statements": 80,
                                                  "covered": 80, "missing": 80,
                                                  "percent": 80},
                            titles={"statements": "stmts", "covered": "run",
                                    "missing": "miss", "percent": "%"})
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
            self._table.value = pd.DataFrame(columns=["name", "kind"])
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
        self._table.value = columns(level, ["name", "kind", "files", "statements", "covered",
                                            "missing", "percent"])

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
        rects = tree.layout(level, MAP_W, MAP_H)
        if rects.empty:
            self._source.data = {k: [] for k in self._source.data}
            return
        # A label only where the tile has room for it (in map units: ~0.9 per character).
        fits = (rects["dx"] > 6) & (rects["dy"] > 2.5)
        labels = [f"{n}\n{_pct(p)}" if ok else ""
                  for n, p, ok in zip(rects["name"], rects["percent"], fits, strict=True)]
        self._source.selected.indices = []
        self._source.data = {
            "x": rects["x"].tolist(), "y": rects["y"].tolist(),
            "dx": rects["dx"].tolist(), "dy": rects["dy"].tolist(),
            "right": (rects["x"] + rects["dx"]).tolist(),
            "bottom": (rects["y"] + rects["dy"]).tolist(),
            "tx": (rects["x"] + 0.5).tolist(), "ty": (rects["y"] + 0.5).tolist(),
            "name": rects["name"].tolist(), "path": rects["path"].tolist(),
            "kind": rects["kind"].tolist(), "files": rects["files"].astype(int).tolist(),
            "statements": rects["statements"].astype(int).tolist(),
            "covered": rects["covered"].astype(int).tolist(),
            "percent": [_pct(p) for p in rects["percent"]],
            "colour_value": rects["percent"].astype(float).tolist(),
            "label": labels,
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
    colour, background = STATUS_STYLE.get(status, ("inherit", "transparent"))
    return (f'<span style="white-space:pre;font-family:monospace;background:{background};'
            f'display:block">{escape(code) or " "}</span>')


def _status_html(status: str) -> str:
    colour, background = STATUS_STYLE.get(status, ("#adb5bd", "transparent"))
    return (f'<span style="color:{colour};font-weight:600">{escape(status)}</span>'
            if status else "")


class FileView(LazyView):
    """The open file: every line with its status; select a line for the tests that ran it."""

    model = param.ClassSelector(class_=ProjectsModel, doc="The projects model.")

    def __init__(self, **params):
        super().__init__(**params)
        self._head = pn.pane.HTML(sizing_mode="stretch_width")
        self._lines = table(
            pd.DataFrame(), empty_text="Open a file from the coverage map.",
            page_size=40, formatters={"code": {"type": "html"}, "status": {"type": "html"}},
            widths={"line": 70, "status": 84, "tests": 76},
            stylesheets=[":host .tabulator {font-size: 12px}",
                         ":host .tabulator-cell {padding: 1px 6px !important}",
                         # the chosen line stays readable over its hit/miss colour
                         ":host .tabulator-selected span {background: transparent !important;"
                         " color: inherit !important}"])
        self._lines.param.watch(self._on_line, "selection")
        # HTML, not Markdown: a path in a code span could end the span (see .escape)
        self._tests_head = pn.pane.HTML("", margin=(10, 5, 0, 5))
        self._tests = table(pd.DataFrame(), empty_text="Select a line to see the tests "
                            "that ran it.", widths={"last_outcome": 130, "run_id": 150},
                            titles={"last_outcome": "last outcome"})
        self._load()
        self._load_tests()

    @param.depends(*watching(WATCH, "path"), watch=True)
    @deferred
    def _load(self) -> None:
        m = self.model
        row = m.file_row() if m.has_project else None
        self._lines.visible = row is not None
        if row is None:
            self._head.object = ("<i>Open a file from the coverage map: click its tile or its "
                                 "row.</i>")
            self._lines.value = pd.DataFrame(columns=["line", "status", "tests", "code"])
            return
        frame, where = m.file_view()
        self._head.object = (
            f"<h3 style='margin:4px 0'>{escape(row['path'])}</h3>"
            f"<div style='color:#667'>{_pct(row['percent'])} of {int(row['statements'])} "
            f"statements · {len(m.file_tests())} tests ran lines of it · "
            f"{escape(where)}</div>")
        shown = frame.copy()
        self._status = dict(zip(shown["line"], shown["status"], strict=True))
        shown["code"] = [_line_html(c, s) for c, s in zip(shown["code"], shown["status"],
                                                         strict=True)]
        shown["status"] = shown["status"].map(_status_html)
        self._lines.value = shown[["line", "status", "tests", "code"]]
        first = next((n for n, s in self._status.items() if s), None)
        self._lines.page = 1 if first is None else (first - 1) // self._lines.page_size + 1

    def _on_line(self, event) -> None:
        if event.new:
            self.model.line = int(self._lines.value.iloc[event.new[0]]["line"])

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
        self._tests_head.object = (f"<b>{len(tests)} test{'' if len(tests) == 1 else 's'} "
                                   f"ran line {escape(m.line)}</b> of "
                                   f"<code>{escape(m.path)}</code>")
        self._tests.value = tests

    def __panel__(self):
        return pn.Column(self._head, self._lines, self._tests_head, self._tests,
                         sizing_mode="stretch_width")
