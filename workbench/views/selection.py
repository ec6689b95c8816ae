"""The projects page's test selection: rank a project's tests for a change and run them
(results stream in, with a progress bar and a cancel button), and the selector's quality
replayed over the project's own history against the baselines."""

from __future__ import annotations

import json

import pandas as pd
import panel as pn
import param
from bokeh.models import ColumnDataSource, HoverTool, Legend, NumeralTickFormatter
from bokeh.plotting import figure

from ..analysis import units
from ..coverage.lines import project_repo
from ..git import GitError
from ..models.projects import ProjectsModel
from ..selection.evaluate import replay
from ..selection.select import is_pytest_id, select_tests
from .common import bokeh_changes, empty, table, watching
from .coverage_map import WATCH
from .escape import escape
from .lazy import LazyView, deferred

ORDER_COLORS = {"selector": "#2b8a3e", "random": "#868e96", "slowest-last": "#1c7ed6",
                "last-failed-first": "#e67700"}
#: The replay's measures (each a share: shown as a percentage), with their headers.
QUALITY = {"apfd": "APFD", "tests_10": "10% tests", "tests_25": "25% tests",
           "tests_50": "50% tests", "time_10": "10% time", "time_25": "25% time",
           "time_50": "50% time"}
QUALITY_TIPS = {"apfd": "Average percentage of faults detected: 100% when every failing "
                        "test comes first, 50% for a random order",
                **{f"{k}_{c}": f"Share of the failing tests caught within the first {c}% "
                               f"of the {'tests' if k == 'tests' else 'run time'}"
                   for k in ("tests", "time") for c in (10, 25, 50)}}
RUN_COLS = ["id", "state", "selected", "results", "failures", "requested_by", "created_at",
            "message"]


class SelectRunView(LazyView):
    """Rank, run, watch, cancel."""

    model = param.ClassSelector(class_=ProjectsModel, doc="The projects model.")
    principal = param.Parameter(doc="Who starts and cancels runs.")
    chosen_run = param.String(default=None, allow_None=True, doc="The run whose results "
                              "are shown.")

    def __init__(self, **params):
        super().__init__(**params)
        self.base = pn.widgets.TextInput(name="Change: base revision", value="HEAD~1",
                                         width=180)
        self.head = pn.widgets.TextInput(name="head (empty: working tree)", value="HEAD",
                                         width=180)
        self.top = pn.widgets.IntInput(name="Top N (0: all)", value=0, start=0, width=120)
        self.budget = pn.widgets.FloatInput(name="Budget s (0: none)", value=0.0, start=0,
                                            width=140)
        self._rank_button = pn.widgets.Button(name="Rank tests", button_type="primary",
                                              margin=(24, 5, 5, 5))
        self._rank_button.on_click(lambda e: self._rank())
        may = self.principal is not None and self.principal.may("test-run")
        self.run_selected = pn.widgets.Button(name="Run the selected tests",
                                              button_type="success", disabled=True,
                                              visible=may)
        self.run_all = pn.widgets.Button(name="Run the whole suite", button_type="light",
                                         visible=may)
        self.run_selected.on_click(lambda e: self._start(selected=True))
        self.run_all.on_click(lambda e: self._start(selected=False))
        # HTML, not Markdown: they show revisions, errors and run messages (see .escape)
        self._summary = pn.pane.HTML("", sizing_mode="stretch_width")
        columns = ["rank", "test", "score", "probability", "duration_s", "reasons"]
        self._ranking = table(pd.DataFrame(columns=columns), page_size=12, empty_text=(
            "Rank the project's tests for a change (the change needs the project's git "
            "folder; without one, history alone)."),
            widths={"rank": 70, "score": 90, "probability": 100, "duration_s": 110},
            titles={"probability": "P(fail)"}, kinds={"probability": "percent",
                                                      "score": "number"})
        self._ranked: list[dict] = []
        self._runs = table(pd.DataFrame(columns=RUN_COLS), page_size=8, empty_text=(
            "No test run started from the workbench yet."),
            widths={"id": 130, "state": 90, "selected": 80, "results": 80, "failures": 80,
                    "requested_by": 130, "created_at": 160},
            titles={"requested_by": "by", "created_at": "queued", "selected": "tests",
                    "results": "done", "failures": "failed"},
            tips={"selected": "How many tests were asked for (all: the whole suite)",
                  "results": "Results stored so far"})
        self._runs.param.watch(self._on_run, "selection")
        self.cancel = pn.widgets.Button(name="Cancel run", button_type="danger",
                                        disabled=True, visible=may, width=120)
        self.cancel.on_click(lambda e: self._cancel())
        self._progress = pn.indicators.Progress(value=0, max=1, width=420, visible=False,
                                                bar_color="success")
        self._progress_text = pn.pane.HTML("", margin=(0, 10), sizing_mode="stretch_width")
        self._results = table(pd.DataFrame(), page_size=12, empty_text=(
            "No results (yet): a chosen run's results appear here as they arrive."),
            widths={"outcome": 100, "duration_s": 110})
        self._frame = pd.DataFrame(columns=RUN_COLS)
        self._poll = None
        self._load()

    # -- ranking ------------------------------------------------------------------------
    def _rank(self) -> None:
        m = self.model
        if not m.has_project:
            self._summary.object = "<i>Choose a project first.</i>"
            return
        repo = project_repo(m.reader, m.project)
        base = self.base.value.strip() or None
        try:
            result = select_tests(m.store, m.project, repo, base if repo else None,
                                  self.head.value.strip() or None,
                                  self.budget.value or None, self.top.value or None)
        except GitError as err:
            self._summary.object = f"<b>Cannot read the change:</b> {escape(err)}"
            return
        self._ranked = result["ranking"]
        n = len(result["changed_files"])
        change = (f"{n} changed file{'' if n == 1 else 's'} in "
                  f"<code>{escape(result['base'])}..{escape(result['head'])}</code>"
                  if result["base"] else "no git folder for this project: history alone")
        self._summary.object = (f"<b>{escape(result['selected'])} of "
                                f"{escape(result['tests'])} tests</b> "
                                f"(about {units.duration(result['expected_s'])}) · "
                                f"{change} · "
                                "★ = always first")
        frame = pd.DataFrame(self._ranked, columns=["test", "score", "probability",
                                                    "duration_s", "first", "reasons"])
        frame.insert(0, "rank", [f"{i}{' ★' if f else ''}" for i, f in
                                 enumerate(frame["first"], 1)])
        frame["reasons"] = frame["reasons"].map("; ".join)
        self._ranking.value = frame.drop(columns=["first"])

        runnable = sum(is_pytest_id(r["test"]) for r in self._ranked)
        self.run_selected.disabled = not runnable
        self.run_selected.name = f"Run these {runnable} tests"
        if runnable < len(self._ranked):
            self._summary.object += (f" · {len(self._ranked) - runnable} of them are other "
                                     "runners' tests, which a pytest run leaves out")

    # -- runs ---------------------------------------------------------------------------
    def _start(self, selected: bool) -> None:
        from ..server.state import get_test_runs

        m = self.model
        folder = project_repo(m.reader, m.project) if m.has_project else None
        if folder is None:
            self._summary.object = ("<i>Running tests needs the project's folder "
                                    "(<code>observatory projects scan</code>).</i>")
            return

        tests = [r["test"] for r in self._ranked if is_pytest_id(r["test"])] if selected else []
        try:
            row = get_test_runs().submit(self.principal, m.project, folder, tests)
        except (PermissionError, ValueError) as err:
            self._summary.object = f"<b>Not started:</b> {escape(err)}"
            return
        self.chosen_run = row["id"]
        self._load()

    def _cancel(self) -> None:
        from ..server.state import get_test_runs

        if self.chosen_run:
            try:
                get_test_runs().cancel(self.principal, self.chosen_run)
            except (PermissionError, KeyError) as err:
                self._summary.object = f"<b>Not cancelled:</b> {escape(err)}"
            self._load()

    def _on_run(self, event) -> None:
        if event.new:
            self.chosen_run = str(self._runs.value.iloc[event.new[0]]["id"])

    @param.depends(*watching(WATCH), "chosen_run", watch=True)
    @deferred
    def _load(self) -> None:
        m = self.model
        runs = (m.store.query("test_runs", project=m.project, limit=50)
                if m.has_project else pd.DataFrame())
        if runs.empty:
            self._frame = pd.DataFrame(columns=RUN_COLS)
        else:
            runs = runs.copy()
            runs["selected"] = [len(json.loads(t)) if isinstance(t, str) else 0
                                for t in runs["tests"]]
            self._frame = runs
        shown = self._frame[RUN_COLS] if not self._frame.empty else self._frame
        if not shown.empty:  # none named is the whole suite: "all", not "0"
            shown = shown.assign(selected=[n or "all" for n in shown["selected"]])
        self._runs.value = shown
        self._show_run()
        self._watch_active()

    def _show_run(self) -> None:
        row = self._frame[self._frame["id"] == self.chosen_run] if self.chosen_run and \
            not self._frame.empty else self._frame.iloc[0:0]
        if row.empty:
            self._progress.visible = False
            self._progress_text.object = ""
            self.cancel.disabled = True
            self._results.value = pd.DataFrame(columns=["test", "outcome", "duration_s"])
            return
        r = row.iloc[0]
        done, total = int(r["results"] or 0), int(r["selected"] or 0)
        active = r["state"] in ("queued", "running")
        self.cancel.disabled = not active
        self._progress.visible = True
        self._progress.max = max(total, done, 1)
        self._progress.value = done if total or not active else -1  # -1: under way
        self._progress_text.object = (
            f"<b>{escape(r['id'])}</b> {escape(r['state'])}: {done}"
            + (f" of {total}" if total else "") + f" results, {int(r['failures'] or 0)} "
            "failed" + (f" · {escape(r['message'])}" if isinstance(r["message"], str) else ""))
        self._results.value = self._results_of(r["run_id"])

    def _results_of(self, run_id: object) -> pd.DataFrame:
        """The results of a test run's stored run (none before pytest started storing)."""
        if not isinstance(run_id, str):
            return pd.DataFrame(columns=["test", "outcome", "duration_s", "message"])
        res = self.model.store.query("run_results", run_id=run_id)
        res = res[res["final"]] if "final" in res else res
        out = res.rename(columns={"test_id": "test"})
        cols = [c for c in ("test", "outcome", "duration_s", "message") if c in out]
        return out[cols]

    def _watch_active(self) -> None:
        """While a run is queued or running, look again each second (its state changes
        come from another process)."""
        active = not self._frame.empty and self._frame["state"].isin(
            ("queued", "running")).any()
        doc = pn.state.curdoc
        if active and self._poll is None and doc is not None and doc.session_context:
            self._poll = pn.state.add_periodic_callback(self._load, period=1000)
        elif not active and self._poll is not None:
            self._poll.stop()
            self._poll = None

    def __panel__(self):
        return pn.Column(
            pn.Row(self.base, self.head, self.top, self.budget, self._rank_button),
            self._summary, self._ranking,
            pn.Row(self.run_selected, self.run_all),
            "### Test runs started here", self._runs,
            # the run's line under its bar, as wide as the page: a long message (the
            # interpreter, the log's path) wraps instead of pushing Cancel off the page
            pn.Row(self.cancel, self._progress), self._progress_text,
            self._results, sizing_mode="stretch_width")


class SelectionQuality(LazyView):
    """The replay: APFD and catch rates of the selector and the baselines, and the curve."""

    model = param.ClassSelector(class_=ProjectsModel, doc="The projects model.")

    def __init__(self, **params):
        super().__init__(**params)
        self._note = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._table = table(pd.DataFrame(columns=["order", *QUALITY]), page_size=6,
                            empty_text="No run with failures after another run to replay.",
                            widths={"order": 150, **dict.fromkeys(QUALITY, 110)},
                            titles=QUALITY, tips=QUALITY_TIPS,
                            kinds=dict.fromkeys(QUALITY, "percent"))
        self._source = {name: ColumnDataSource({"x": [], "y": []}) for name in ORDER_COLORS}
        fig = figure(height=300, sizing_mode="stretch_width", x_range=(0, 100),
                     y_range=(0, 1.02), title="Share of failing tests caught",
                     tools="reset,save", toolbar_location="right")
        items = []
        for name, colour in ORDER_COLORS.items():
            r = fig.line("x", "y", source=self._source[name], color=colour, line_width=2.5
                         if name == "selector" else 1.5)
            items.append((name, [r]))
        fig.add_layout(Legend(items=items, location="bottom_right"))
        fig.add_tools(HoverTool(tooltips=[("tests run", "@x{0}%"), ("caught", "@y{0%}")]))
        fig.xaxis.axis_label = "% of the run's tests, in each order"
        fig.yaxis.formatter = NumeralTickFormatter(format="0%")
        self._chart = pn.pane.Bokeh(fig, sizing_mode="stretch_width", height=300)
        self._load()

    @param.depends(*watching(WATCH), watch=True)
    @deferred
    def _load(self) -> None:
        m = self.model
        if not m.has_project:
            self._note.object = "*Choose a project.*"
            self._table.value = pd.DataFrame(columns=["order", *QUALITY])
            return
        result = replay(m.reader, m.project, project_repo(m.reader, m.project))
        self._note.object = (
            f"Each of the **{result['evaluated']}** runs with failures (of {result['runs']}) "
            "is ranked with only what was known before it"
            + (f" — the runs before, the git change ({result['changes_read']} read), the "
               "coverage of that time" if result["with_git"] else
               " — the runs before (no git change could be read for these runs: history "
               "alone)")
            + ". **APFD** is 100% when every failure comes first, 50% for a random order; "
            "the other columns are the share of the failing tests caught within the first "
            "10, 25 or 50% of the tests, or of the run time.")
        rows = [{"order": name, **{k: o.get(k) for k in QUALITY}}
                for name, o in result["orders"].items() if o]
        self._table.value = pd.DataFrame(rows, columns=["order", *QUALITY])
        with bokeh_changes():
            for name, src in self._source.items():
                curve = result["orders"].get(name, {}).get("curve") or []
                src.data = {"x": [x * 100 for x in result["curve_x"]][: len(curve)],
                            "y": curve}

    def __panel__(self):
        return pn.Column(self._note, self._table, self._chart, empty(
            "Baselines: random (mean of 20 shuffles), slowest-last (shortest known duration "
            "first), last-failed-first. `observatory select --evaluate` prints the same."),
            sizing_mode="stretch_width")
