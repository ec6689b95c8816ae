"""The projects page: every project with its health, one project (commits with their runs
and coverage, coverage over commits, the MCP servers it declares), its coverage map and
files, and what changed (two reports compared, patch coverage, coverage at risk)."""

from __future__ import annotations

import functools
import json
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import panel as pn
import param
from bokeh.models import ColumnDataSource, HoverTool, SingleIntervalTicker
from bokeh.plotting import figure

from ..analysis import units
from ..models.projects import ProjectsModel
from .common import Kpis, bokeh_changes, columns, empty, pre, table, title_width, watching
from .coverage_map import WATCH, CoverageMap, FileView, _pct
from .escape import escape
from .lazy import LazyView, deferred
from .lazy_tabs import LazyTabs, Later
from .paged_table import PagedTable
from .selection import SelectionQuality, SelectRunView
from .shell import DashboardShell

#: MCP listings and calls run here, never on the server's event loop.
_MCP_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mcp-client")

STATUS_COLORS = {"passed": "#2b8a3e", "failed": "#c92a2a", "running": "#1c7ed6"}
#: How the page's tables show their numbers (see ``analysis.units``): coverage in percent
#: with one decimal, its changes in points, the rest as counts.
NUMBER_KINDS = {
    **dict.fromkeys(("coverage", "percent", "base_percent", "head_percent"), "percentage"),
    "coverage_change": "points",
    **dict.fromkeys(("flaky", "broken", "agents_active", "mcp", "statements", "covered",
                     "lines", "newly_uncovered_lines", "runs", "failed", "tests"), "count"),
}
#: How a project's folder got its name (the store's ``named_by``), as the page says it.
NAMED_BY = {"given": "named by a person", "root": "named after its runs: they ran here",
            "remote": "named after its runs: the path of its remote",
            "commit": "named after its runs: they ran its checked-out commit",
            "folder": "named after its folder"}


def _spans(pairs_: list[list[int]]) -> str:
    """Line ranges as people read them: ``3, 7–9``."""
    return ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in pairs_)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


class ProjectsOverview(LazyView):
    """One row per project; selecting one opens it."""

    model = param.ClassSelector(class_=ProjectsModel, doc="The projects model.")
    opened = param.Event(doc="A project was chosen from the table (the page opens it).")
    COLS = ["project", "kind", "last_status", "tests", "failed", "flaky", "broken",
            "coverage", "coverage_change", "last_run_at", "run_commit", "agents_active",
            "mcp"]

    def __init__(self, **params):
        super().__init__(**params)
        # HTML rows paged on the server (views/paged_table.py), not a Tabulator: building
        # and laying one out was a fifth of the page's build and most of what a returning
        # visit waited for in the browser (docs/performance.md).
        self._table = PagedTable("project", page_size=25, on_open=self._open, empty_text=(
            "No projects yet: `observatory projects scan`, or ingest a test run or a "
            "coverage report with --project."))
        self._table.kinds = NUMBER_KINDS
        self.model.param.watch(lambda e: self._table.mark(e.new), "project")
        self._table.selected = self.model.project
        self._load()

    @param.depends("model.refreshed", watch=True)
    @deferred
    def _load(self) -> None:
        df = self.model.overview()
        if df.empty:
            self._table.value = pd.DataFrame(columns=self.COLS)
            return
        df["coverage_change"] = df["coverage"] - df["coverage_before"]
        df["run_commit"] = df["run_commit"].astype("string").str.slice(0, 10)
        df["last_status"] = [("failed" if f else "passed") if s == "complete" else s
                             for s, f in zip(df["last_status"], df["failed"].fillna(0),
                                             strict=True)]
        self._table.value = columns(df, self.COLS)

    def _open(self, project: str) -> None:
        self.model.project = project
        self.opened = True

    def __panel__(self):
        return pn.Column(pn.pane.Markdown(
            "Every project the workbench knows — found by `observatory projects scan`, or "
            "named by a test run, a coverage report or an agent. Click one to open it."),
            self._table, sizing_mode="stretch_width")


class ProjectView(LazyView):
    """Health at a glance, where it is, its commits (with their runs and coverage), its
    coverage over time, and its MCP servers."""

    model = param.ClassSelector(class_=ProjectsModel, doc="The projects model.")
    principal = param.Parameter(doc="Who uses this page (MCP approvals and calls).")

    def __init__(self, **params):
        super().__init__(**params)
        self._kpis = Kpis()
        self._where = pn.pane.HTML(sizing_mode="stretch_width")
        self._commits = table(pd.DataFrame(), page_size=10, empty_text=(
            "No git history: the project has no scanned folder with a repository."),
            widths={"sha": 100, "author": 120, "time": 160, "runs": 70, "failed": 76,
                    "coverage": 104}, kinds=NUMBER_KINDS)
        self._trend = ColumnDataSource({"i": [], "percent": [], "commit": [], "at": []})
        fig = figure(height=220, sizing_mode="stretch_width",
                     tools="pan,wheel_zoom,reset,save", toolbar_location="right",
                     y_range=(0, 100))
        fig.line("i", "percent", source=self._trend, line_width=2, color="#2b8a3e")
        fig.scatter("i", "percent", source=self._trend, size=7, color="#2b8a3e")
        fig.add_tools(HoverTool(tooltips=[("commit", "@commit"), ("at", "@at"),
                                          ("coverage", "@percent{0.0} %")]))
        fig.xaxis.axis_label = "report (oldest → newest)"
        fig.xaxis.ticker = SingleIntervalTicker(interval=1)
        fig.yaxis.axis_label = "%"
        # The chart shows in a Column whose visibility is toggled, never the Bokeh pane's
        # own (that raised in themed pages and left the chart blank); without reports, the
        # reason takes its place instead of an empty frame.
        self._trend_box = pn.Column(pn.pane.Bokeh(fig, sizing_mode="stretch_width",
                                                  height=220), sizing_mode="stretch_width")
        self._no_trend = empty("No coverage reports for this project yet: store one with "
                               "`observatory ingest coverage FILE --project NAME`.")
        self._mcp = McpPanel(model=self.model, principal=self.principal)
        self._body = pn.Column("### Commits", self._commits, "### Coverage over reports",
                               self._no_trend, self._trend_box, self._mcp,
                               sizing_mode="stretch_width")
        self._identity = IdentityForm(model=self.model, principal=self.principal)
        self._load()

    @param.depends(*watching(WATCH), watch=True)
    @deferred
    def _load(self) -> None:
        m = self.model
        self._body.visible = m.has_project
        if not m.has_project:
            self._kpis.update([])
            self._where.object = "<i>Choose a project (sidebar, or the Projects tab).</i>"
            self._commits.value = pd.DataFrame(columns=["sha"])
            with bokeh_changes():
                self._trend.data = {"i": [], "percent": [], "commit": [], "at": []}
            self._mcp.load()
            return
        health, info = m.health(), m.info()
        last = health.get("last_run") or {}
        cov = health.get("coverage") or {}
        failed = (last.get("failed") or 0) + (last.get("errors") or 0)
        status = ("failed" if failed else "passed") if last.get("status") == "complete" \
            else (last.get("status") or "no runs")
        change = (info.get("coverage") or 0) - (info.get("coverage_before") or 0) \
            if info.get("coverage_before") is not None and not pd.isna(
                info.get("coverage_before")) else None
        self._kpis.update([
            ("last run", status, STATUS_COLORS.get(status, "#495057")),
            ("tests", last.get("tests", "–"), "#495057"),
            ("failed", failed if last else "–", "#c92a2a" if failed else "#495057"),
            ("flaky", health.get("flaky", 0), "#e08a1e"),
            ("broken", health.get("broken", 0), "#d64545"),
            ("coverage", _pct(cov.get("percent")), "#2b8a3e"),
            ("Δ coverage", units.points(change) or "–", "#495057"),
            ("agents", sum(health.get("agents", {}).values()), "#3b5bdb"),
        ])
        path = info.get("path")
        self._where.object = (
            f"<b>{escape(m.project)}</b> · "
            + (f"<code>{escape(path)}</code> · {escape(info.get('kind') or '')} · branch "
               f"<code>{escape(info.get('branch') or '–')}</code> · manifests: "
               f"{escape(info.get('manifests') or 'none')} · "
               f"<i>{escape(NAMED_BY.get(info.get('named_by'), ''))}</i>"
               if isinstance(path, str) else
               "<i>no folder known: scan it (<code>observatory projects scan FOLDER "
               f"--name {escape(m.project)}</code>) or link one below</i>"))
        self._identity.load(info)
        commits = m.commits()
        commits["sha"] = commits["sha"].str.slice(0, 10)
        self._commits.value = commits
        trend = m.trend()
        with bokeh_changes():
            self._trend.data = {"i": list(range(1, len(trend) + 1)),
                                "percent": trend["percent"].astype(float).tolist(),
                                "commit": trend["commit_sha"].astype("string").fillna("–")
                                .str.slice(0, 10).tolist(),
                                "at": trend["created_at"].astype(str).tolist()}
        self._no_trend.visible, self._trend_box.visible = trend.empty, not trend.empty
        self._mcp.load()

    def __panel__(self):
        return pn.Column(self._where, self._identity, self._kpis, self._body,
                         sizing_mode="stretch_width")


class IdentityForm(pn.viewable.Viewer):
    """The open project's name, folder and test-run interpreter, for operators: rename it,
    link its folder, set its Python (each audited; projects/identity.py)."""

    model = param.ClassSelector(class_=ProjectsModel, doc="The projects model.")
    principal = param.Parameter(doc="Who renames and links.")

    def __init__(self, **params):
        super().__init__(**params)
        may = self.principal is not None and self.principal.may("scan")
        self.name_input = pn.widgets.TextInput(name="Name", width=220)
        self.folder_input = pn.widgets.TextInput(name="Folder (a git repository)", width=360,
                                                 placeholder="/absolute/path")
        self.python_input = pn.widgets.TextInput(
            name="Python for its test runs", width=300,
            placeholder="found: its .venv, venv, the active virtualenv")
        self.rename = pn.widgets.Button(name="Rename", button_type="primary",
                                        margin=(24, 5, 5, 5))
        self.link = pn.widgets.Button(name="Link folder", button_type="primary",
                                      margin=(24, 5, 5, 5))
        self.set_python = pn.widgets.Button(name="Set Python", button_type="primary",
                                            margin=(24, 5, 5, 5))
        self.rename.on_click(lambda e: self._act("rename", self.name_input.value))
        self.link.on_click(lambda e: self._act("link", self.folder_input.value))
        self.set_python.on_click(lambda e: self._act("set_python", self.python_input.value))
        # HTML, not Markdown: it shows names, paths and errors (see .escape)
        self._status = pn.pane.HTML("", sizing_mode="stretch_width")
        self._shown: tuple = ()
        self._shell = pn.pane.HTML("", margin=(0, 10))
        self._row = pn.Column(
            pn.FlexBox(pn.Row(self.name_input, self.rename),
                       pn.Row(self.folder_input, self.link),
                       pn.Row(self.python_input, self.set_python),
                       # (as wide as the page, so the three wrap instead of running off it)
                       sizing_mode="stretch_width"),
            self._shell, self._status, visible=may, sizing_mode="stretch_width")

    def load(self, info: dict) -> None:
        m = self.model
        self._row.visible = bool(self.principal is not None and self.principal.may("scan")
                                 and m.has_project)
        path, python = info.get("path"), info.get("python")
        shown = (m.project, path, python)
        if shown != self._shown:  # (a live refresh leaves what a person is typing alone)
            self._shown = shown
            self.name_input.value = m.project if m.has_project else ""
            self.folder_input.value = path if isinstance(path, str) else ""
            self.python_input.value = python if isinstance(python, str) else ""
        self.rename.disabled = self.set_python.disabled = not isinstance(path, str)
        shell = (isinstance(path, str) and self.principal is not None
                 and self.principal.may("console-shell"))
        self._shell.object = (
            f'<a href="./console?project={escape(m.project)}">Open a shell in its folder</a> '
            '<span style="font-size:12px;opacity:.7">(admins; recorded)</span>'
            if shell else "")

    def _act(self, action: str, value: str) -> None:
        from ..control.access import Forbidden
        from ..git import GitError

        before = self.model.project
        try:
            row = getattr(self.model, action)(self.principal, value.strip())
        except (KeyError, ValueError, Forbidden, GitError) as err:
            self._status.object = (f"<b style='color:#c92a2a'>{escape(action)}: "
                                   f"{escape(err.args[0] if err.args else err)}</b>")
            return
        said = {"rename": f"{escape(before)} is now <b>{escape(row['name'])}</b>; runs "
                          f"stored as {escape(before)} keep that name",
                "link": f"<b>{escape(row['name'])}</b> is <code>{escape(row['path'])}</code>",
                "set_python": f"<b>{escape(row['name'])}</b>'s test runs use "
                              f"<code>{escape(row.get('python') or 'the interpreter found')}"
                              "</code>"}[action]
        self._status.object = said + " (audited)."

    def __panel__(self):
        return self._row


class McpPanel(pn.viewable.Viewer):
    """The MCP servers the project declares. An operator approves one (it is code from the
    project) before its tools are listed or called; every approval and call is audited."""

    model = param.ClassSelector(class_=ProjectsModel, doc="The projects model.")
    principal = param.Parameter(doc="Who approves and calls.")

    def __init__(self, **params):
        super().__init__(**params)
        self._table = table(pd.DataFrame(), page_size=8, empty_text=(
            "The project declares no MCP servers (.mcp.json, .codex/config.toml, "
            ".gemini/settings.json)."), widths={"approved": title_width("approved"),
                                                "transport": title_width("transport"),
                                                "file": 170})
        self._table.param.watch(lambda e: self._chosen(), "selection")
        may = self.principal is not None and self.principal.may("mcp")
        self.approve = pn.widgets.Button(name="Approve server", button_type="warning",
                                         disabled=True, visible=may)
        self.connect = pn.widgets.Button(name="List tools", button_type="primary",
                                         disabled=True, visible=may)
        self.tool = pn.widgets.Select(name="Tool", options=[], width=220, visible=may)
        self.arguments = pn.widgets.TextAreaInput(name="Arguments (JSON)", value="{}",
                                                  height=80, width=360, visible=may)
        self.call = pn.widgets.Button(name="Call tool", button_type="primary", disabled=True,
                                      visible=may, margin=(24, 5, 5, 5))
        self.tool.param.watch(self._template, "value")
        self.approve.on_click(lambda e: self._act("approve"))
        self.connect.on_click(lambda e: self._act("tools"))
        self.call.on_click(lambda e: self._act("call"))
        # HTML, not Markdown: it shows server and tool names and errors (see .escape)
        self._status = pn.pane.HTML("", sizing_mode="stretch_width")
        self._result = pn.Column(sizing_mode="stretch_width")
        self._servers: list[dict] = []
        self._tools: dict[str, dict] = {}

    def _template(self, event) -> None:
        """The chosen tool's arguments as a JSON object to fill in (required ones)."""
        schema = self._tools.get(event.new, {}).get("input_schema") or {}
        props = schema.get("properties") or {}
        names = schema.get("required") or list(props)
        example = {"integer": 0, "number": 0, "boolean": False, "array": [], "object": {}}
        self.arguments.value = json.dumps(
            {n: example.get((props.get(n) or {}).get("type"), "") for n in names})

    def _folder(self):
        from ..coverage.lines import project_repo

        return project_repo(self.model.reader, self.model.project)

    def load(self) -> None:
        from ..projects import mcp_client

        folder = self._folder() if self.model.has_project else None
        self._servers = mcp_client.listing(self.model.store, folder) if folder else []
        frame = pd.DataFrame(self._servers, columns=["name", "approved", "transport", "file",
                                                     "command", "args", "url", "env"])
        for col in ("args", "env"):
            frame[col] = frame[col].map(lambda v: " ".join(map(str, v)) if v else "")
        self._table.value = frame
        self._chosen()

    def _server(self) -> dict | None:
        sel = self._table.selection
        return self._servers[sel[0]] if sel and sel[0] < len(self._servers) else None

    def _chosen(self) -> None:
        server = self._server()
        self.approve.disabled = server is None or server["approved"]
        self.connect.disabled = server is None or not server["approved"]
        self.call.disabled = self.connect.disabled or not self.tool.options

    def _act(self, action: str) -> None:
        from ..projects import mcp_client

        server, folder = self._server(), self._folder()
        if server is None or folder is None:
            return
        store, who = self.model.store, self.principal
        self._status.object = f"<i>{escape(action)} {escape(server['name'])}…</i>"

        def work():
            if action == "approve":
                return mcp_client.approve(store, folder, server["name"], who)
            if action == "tools":
                return mcp_client.tools(store, folder, server["name"], who)
            args = json.loads(self.arguments.value or "{}")
            return mcp_client.call(store, folder, server["name"], self.tool.value, args, who)

        future = _MCP_POOL.submit(work)
        doc = pn.state.curdoc

        def done(fut):
            def show():
                self._show(action, server, fut)
            if doc is not None and doc.session_context is not None:
                doc.add_next_tick_callback(show)
            else:
                show()

        future.add_done_callback(done)

    def _show(self, action: str, server: dict, fut) -> None:
        err = fut.exception()
        name = escape(server["name"])
        if err is not None:
            self._status.object = f"<b>{escape(action)} {name} failed:</b> {escape(err)}"
            return
        result = fut.result()
        if action == "approve":
            self._status.object = (f"Approved <b>{name}</b> (fingerprint "
                                   f"<code>{escape(result)}</code>); audited.")
            selection = list(self._table.selection)
            self.load()
            self._table.selection = selection
        elif action == "tools":
            self._tools = {t["name"]: t for t in result}
            self.tool.options = list(self._tools)
            self._status.object = f"<b>{name}</b> has {len(result)} tools."
            self._result.objects = [table(pd.DataFrame(
                [(t["name"], t["description"]) for t in result],
                columns=["tool", "description"]), page_size=10)]
        else:
            state = "returned an error" if result["is_error"] else "answered"
            self._status.object = f"<code>{escape(result['tool'])}</code> {state} (audited)."
            self._result.objects = [pre(result["text"] or json.dumps(result["structured"]))]
        self._chosen()

    def __panel__(self):
        return pn.Column(
            "### MCP servers the project declares",
            pn.pane.Markdown("A project's MCP server is code from that project: an operator "
                             "approves it (as declared now) before it is started; each call "
                             "is in the audit log.", styles={"color": "#667"}),
            self._table, pn.Row(self.approve, self.connect),
            pn.Row(self.tool, self.arguments, self.call), self._status, self._result,
            sizing_mode="stretch_width")


class ChangesView(LazyView):
    """Two reports compared (files that dropped, lines newly uncovered), patch coverage of
    a git range, and coverage at risk."""

    model = param.ClassSelector(class_=ProjectsModel, doc="The projects model.")

    def __init__(self, **params):
        super().__init__(**params)
        self._summary = pn.pane.HTML(sizing_mode="stretch_width")
        self._diff = table(pd.DataFrame(), page_size=12, empty_text=(
            "Nothing changed between the two reports (or only one report exists)."),
            widths={"path": 340, "change": 100, "base_percent": 110, "head_percent": 100,
                    "newly_uncovered_lines": 150},
            titles={"base_percent": "before", "head_percent": "after",
                    "newly_uncovered_lines": "newly uncovered", "newly_uncovered": "lines"},
            kinds=NUMBER_KINDS)
        self.base = pn.widgets.TextInput(name="Patch: base revision", value="HEAD~1",
                                         width=200)
        self.head = pn.widgets.TextInput(name="head (empty: working tree)", value="HEAD",
                                         width=200)
        go = pn.widgets.Button(name="Patch coverage", button_type="primary",
                               margin=(24, 5, 5, 5))
        go.on_click(lambda e: self._patch())
        self._patch_form = pn.Row(self.base, self.head, go)
        self._patch_out = pn.Column(sizing_mode="stretch_width")
        self._risk = table(pd.DataFrame(), page_size=10, empty_text=(
            "No line is run only by flaky or broken tests (or no report has per-test "
            "contexts)."), widths={"path": 340, "lines": 80, "ranges": 260},
            kinds=NUMBER_KINDS)
        self._load()

    @param.depends(*watching(WATCH, "base_report_id"), watch=True)
    @deferred
    def _load(self) -> None:
        m = self.model
        result = m.diff() if m.has_project else None
        if result is None:
            self._summary.object = "<i>Comparing needs two coverage reports of the project.</i>"
            self._diff.value = pd.DataFrame(columns=["path"])
        else:
            b, a = result["base"], result["head"]
            delta = result["delta"]
            self._summary.object = (
                f"<b>{_pct(a['percent'])}</b> at {escape(str(a['commit'] or '–')[:10])} against "
                f"{_pct(b['percent'])} at {escape(str(b['commit'] or '–')[:10])}: "
                f"<b style='color:{'#c92a2a' if (delta or 0) < 0 else '#2b8a3e'}'>"
                f"{escape(units.points(delta) or '–')}</b>, "
                f"{_count(result['newly_uncovered_lines'], 'line')} newly uncovered.")
            frame = pd.DataFrame(result["files"])
            if not frame.empty:
                frame["newly_uncovered"] = frame["newly_uncovered"].map(_spans)
            self._diff.value = columns(frame, ["path", "change", "base_percent",
                                               "head_percent", "newly_uncovered_lines",
                                               "newly_uncovered"])
        risk = m.at_risk() if m.has_project else pd.DataFrame()
        if not risk.empty:
            risk = risk.assign(
                ranges=risk["ranges"].map(_spans),
                tests=risk["tests"].map(", ".join))
        self._risk.value = columns(risk, ["path", "lines", "ranges", "tests"])

    def _patch(self) -> None:
        from ..coverage.patch import patch_coverage
        from ..git import GitError

        m = self.model
        folder = None
        if m.has_project:
            from ..coverage.lines import project_repo

            folder = project_repo(m.reader, m.project)
        if folder is None:
            self._patch_out.objects = [empty("Patch coverage needs the project's folder "
                                             "(observatory projects scan).")]
            return
        try:
            result = patch_coverage(m.store, m.project, str(folder), self.base.value.strip(),
                                    self.head.value.strip() or None)
        except (GitError, KeyError) as err:
            self._patch_out.objects = [empty(str(err).strip("'\""))]
            return
        frame = pd.DataFrame(result["files"], columns=["path", "statements", "covered",
                                                       "percent", "missing"])
        frame["missing"] = frame["missing"].map(_spans)
        self._patch_out.objects = [
            pn.pane.HTML(f"Patch <code>{escape(result['base'])}..{escape(result['head'])}</code>: "
                         f"<b>{_pct(result['percent'])}</b> of {result['statements']} changed "
                         f"statements covered."),
            table(frame, page_size=10, empty_text="The change touches no measured statement.",
                  kinds=NUMBER_KINDS)]

    def __panel__(self):
        return pn.Column(
            pn.Row(pn.widgets.Select.from_param(self.model.param.base_report_id,
                                                name="Compare against report (default: "
                                                "the one before)", width=360)),
            self._summary, self._diff,
            "### Patch coverage of a git range", self._patch_form, self._patch_out,
            "### Coverage at risk",
            pn.pane.Markdown("Lines that only flaky or broken tests run: counted as covered, "
                             "but nothing trustworthy checks them.", styles={"color": "#667"}),
            self._risk, sizing_mode="stretch_width")


class ProjectsDashboard(DashboardShell):
    """The projects page; choosing a project opens it, a file opens the file view."""

    model = param.ClassSelector(class_=ProjectsModel, doc="The projects model.")
    principal = param.Parameter(doc="Who uses the page.")

    page, title, color = "projects", "Happy Observatory · Projects", "#0b7285"
    topic = "tests"
    live_note = "New runs and coverage reports appear by themselves while this page is open."
    tabs = ("Projects", "Project", "Coverage map", "File", "Changes", "Select & run",
            "Selection quality")

    def __init__(self, **params):
        super().__init__(**params)
        m = self.model
        views = (ProjectsOverview, ProjectView, CoverageMap, FileView, ChangesView,
                 SelectRunView, SelectionQuality)
        # Each view is made when its tab first opens (lazy_tabs.Later); the file view at
        # once when the page's address names a project or file (?project=P&file=PATH#L12):
        # it opens them while the page loads, and its lines table then lost the line it
        # had to page to and mark. Only then: making and sending it on every visit was an
        # eighth of the page's build (py-spy).
        args = pn.state.session_args or {}
        eager = [self.tabs.index("File")] if {"project", "file"} & set(args) else []
        self._lazy = LazyTabs(self.tabs, [Later(functools.partial(self._make, view))
                                          for view in views],
                              eager=eager, sizing_mode="stretch_width")
        self._tabs = self._lazy.tabs
        self._lazy.view(0).param.watch(lambda e: self.goto("Project"), "opened")
        m.param.watch(lambda e: self.goto("File") if e.new else None, "path")

    def _make(self, view: type, shown: bool):
        if view in (ProjectView, SelectRunView):  # (they act, so they need who acts)
            return view(model=self.model, shown=shown, principal=self.principal)
        return super()._make(view, shown)

    def filter_widgets(self) -> list:
        m = self.model
        return [
            pn.widgets.Select.from_param(m.param.project, name="Project", width=230),
            pn.widgets.Select.from_param(m.param.report_id, name="Coverage report "
                                         "(default: latest)", width=230),
        ]
