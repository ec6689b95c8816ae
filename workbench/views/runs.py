"""Run history (chart + paged table) and run detail (new vs known failures vs base)."""

from __future__ import annotations

import holoviews as hv
import pandas as pd
import panel as pn
import param

from ..models import TestAnalytics
from ..models.tests import FILTER_PARAMS as TEST_FILTERS
from .common import OUTCOME_COLORS, badge, columns, empty, pre, table, watching
from .escape import escape
from .lazy import LazyView, deferred, drawn

_STATUS_COLORS = {
    "new failure": "#d64545",
    "still failing": "#b5651d",
    "fixed": "#2e9e5b",
    "new test": "#3b7dd8",
    "removed test": "#777",
    "not run yet": "#9aa3ad",
}


#: Runs the history table holds on the server (the browser is sent one page at a time).
TABLE_RUNS = 5000


class RunHistory(LazyView):
    """Pass/fail/skip per run; clicking a bar or a row opens the run."""

    model = param.ClassSelector(class_=TestAnalytics, doc="The test analytics model.")
    chart_runs = param.Integer(default=60, doc="How many recent runs the chart shows.")

    def __init__(self, **params):
        super().__init__(**params)
        self._table = table(pd.DataFrame(), empty_text=(
            "No runs in this window. Ingest reports with `observatory ingest tests` or run "
            "`pytest --observatory`."))
        self._table.param.watch(self._on_select, "selection")
        self._tap = hv.streams.Tap()
        self._tap.param.watch(self._on_tap, "x")
        self._frame = pd.DataFrame()
        self._load()

    @param.depends(*watching(TEST_FILTERS), watch=True)
    @deferred
    def _load(self) -> None:
        df = self.model.runs(limit=TABLE_RUNS)  # held on the server; the browser gets a page
        self._frame = df
        # Most telling first: on a narrow page the last columns are the ones hidden.
        cols = ["started_at", "project", "branch", "status", "tests", "passed", "failed",
                "errors", "skipped", "duration_s", "build", "variant", "commit_sha", "run_id"]
        shown = columns(df, cols).copy()
        shown["commit_sha"] = shown["commit_sha"].str.slice(0, 10)
        self._table.value = shown

    def _on_select(self, event) -> None:
        if event.new:
            self.model.run_id = self._table.value.iloc[event.new[0]]["run_id"]

    def _on_tap(self, event) -> None:
        if event.new is None or self._frame.empty:
            return
        labels = self._labels(self._frame.head(self.chart_runs))
        hit = labels[labels == event.new]
        if not hit.empty:
            self.model.run_id = self._frame.loc[hit.index[0], "run_id"]

    @staticmethod
    def _labels(df: pd.DataFrame) -> pd.Series:
        """One distinct bar label per run: time and build, plus the run id where runs
        would otherwise share a label (same minute, no build number, or matrix jobs)."""
        build = df["build"].fillna("").astype(str)
        label = df["started_at"].dt.strftime("%m-%d %H:%M") + build.where(
            build == "", " #" + build)
        clash = label.duplicated(keep=False)
        return label.where(~clash, label + " " + df["run_id"].astype(str).str.slice(0, 8))

    @param.depends("shown", *watching(TEST_FILTERS))
    @drawn
    def chart(self):
        df = self.model.runs(limit=TABLE_RUNS).head(self.chart_runs)  # the table's frame
        if df.empty:
            return empty("No runs in this window. Ingest reports with `observatory ingest tests`.")
        df = df.iloc[::-1].copy()
        df["run"] = self._labels(df)
        # Passes dwarf everything else; what a person scans history for is the failures.
        long = df.melt(
            id_vars=["run", "tests"],
            value_vars=["failed", "errors", "skipped"],
            var_name="outcome",
            value_name="count",
        )
        long["outcome"] = long["outcome"].replace({"errors": "error"})
        bars = hv.Bars(long, ["run", "outcome"], ["count", "tests"]).opts(
            stacked=True,
            responsive=True,
            height=280,
            xrotation=60,
            tools=["hover", "tap"],
            cmap=OUTCOME_COLORS,
            color="outcome",
            line_color=None,
            show_legend=True,
            legend_position="right",
            xlabel="",
            ylabel="tests not passing",
            fontsize={"xticks": 7},
            title="Failed, error and skipped tests per run (click a bar or a row to open the run)",
        )
        self._tap.source = bars
        return bars

    def __panel__(self):
        return pn.Column(pn.param.ParamMethod(self.chart, lazy=True), self._table,
                         sizing_mode="stretch_width")


class RunDetail(LazyView):
    """One run against its base: counts, then its failures marked new or known."""

    model = param.ClassSelector(class_=TestAnalytics, doc="The test analytics model.")

    def __init__(self, **params):
        super().__init__(**params)
        self._failures = table(pd.DataFrame(), page_size=10, empty_text=(
            "No failures in this run (or no run opened: click one in Runs)."))
        self._failures.param.watch(self._on_select, "selection")
        self._changes = table(pd.DataFrame(), page_size=10, selectable=False, empty_text=(
            "Nothing changed against the base run."))
        self._trace = pn.Column(
            empty("Select a failure to see its traceback."), sizing_mode="stretch_width"
        )
        self._header = pn.Column(sizing_mode="stretch_width")
        self._base = pn.widgets.TextInput(
            label="Compare with run",
            placeholder="run id (empty: the branch's previous run)",
            width=330,
        )
        self._base.param.watch(self._on_base, "value")
        self._load()

    def _on_base(self, event) -> None:
        value = (event.new or "").strip() or None
        if value and self.model.run_info(value) is None:
            self._base.description = escape(f"no run {value!r}")  # (Markdown: HTML)
            return
        self.model.base_run_id = value

    @param.depends("model.run_id", "model.base_run_id", "model.refreshed", watch=True)
    @deferred
    def _load(self) -> None:
        info = self.model.run_info()
        self._trace[:] = [empty("Select a failure to see its traceback.")]
        if info is None:
            self._header[:] = [empty("Click a run in the history to open it here.")]
            self._failures.value = pd.DataFrame()
            self._changes.value = pd.DataFrame()
            return
        base = self.model.base_of(info["run_id"])
        fails = self.model.run_failures()
        changes = self.model.run_changes()
        counts = changes["status"].value_counts()
        title = (
            f"<h3 style='margin:4px 0'>Run {escape(info['run_id'])} · {escape(info['project'])} · "
            f"{escape(info.get('branch') or '-')} · build {escape(info.get('build') or '-')}</h3>"
        )
        meta = (
            f"commit <code>{escape((info.get('commit_sha') or '-')[:12])}</code> · variant "
            f"<code>{escape(info.get('variant') or '-')}</code> · "
            f"started {escape(str(info['started_at'])[:19])} · status "
            f"<b>{escape(info['status'])}</b> · "
            + (f"compared with run <code>{escape(base)}</code>" if base
               else "compared with no earlier run (every failure is new)")
        )
        badges = pn.FlexBox(
            badge("tests", info["tests"], "#445"),
            badge("failed", info["failed"], OUTCOME_COLORS["failed"]),
            badge("errors", info["errors"], OUTCOME_COLORS["error"]),
            badge("skipped", info["skipped"], OUTCOME_COLORS["skipped"]),
            *[badge(s, int(counts.get(s, 0)), c) for s, c in _STATUS_COLORS.items()
              if s != "not run yet" or info["status"] == "running"],
        )
        parts = [pn.pane.HTML(title + meta, sizing_mode="stretch_width"), badges]
        if info["status"] == "running":
            now = self.model.running_tests(info["run_id"])["test_id"].tolist()
            shown_now = ", ".join(escape(t) for t in now[:8]) + (" …" if len(now) > 8 else "")
            parts.append(pn.pane.HTML(
                f"<div>⏳ In progress: {int(info['tests'])} tests finished so far "
                f"({int(info['passed'])} passed, {int(info['failed'])} failed, "
                f"{int(info['errors'])} errors, {int(info['skipped'])} skipped); "
                f"{int(counts.get('not run yet', 0))} tests of the base run not reached yet. "
                + (f"Running now: {shown_now}. " if now else "")
                + "This page follows the run as results arrive.</div>",
                styles={"color": "#1c4e80"}))
        if info.get("warnings"):
            parts.append(
                pn.pane.HTML(
                    f"<div class='warn'>⚠ Report warnings: {escape(info['warnings'])}</div>",
                    styles={"color": "#8a5a00"},
                )
            )
        self._causes = self.model.culprits(info["run_id"]) if counts.get("new failure") \
            else {}
        if self._causes:
            agents = sorted({c[0]["agent_name"] for c in self._causes.values()})
            parts.append(pn.pane.HTML(
                f"<div>Likely cause of {len(self._causes)} new failure(s): agent "
                f"{', '.join(f'<b>{escape(a)}</b>' for a in agents)} edited what they point at "
                "(select a failure for the session, the tool call and its diff).</div>",
                styles={"color": "#8a2b2b"}))
        self._header[:] = parts
        self._failures.value = fails[
            ["status", "test_id", "outcome", "attempt", "error_type", "message"]
        ]
        self._fail_frame = fails
        self._changes.value = changes[["status", "test_id", "outcome", "base_outcome"]]

    def _on_select(self, event) -> None:
        if event.new:
            row = self._fail_frame.iloc[event.new[0]]
            self._trace[:] = [
                pn.pane.HTML(f"<b>{escape(row['test_id'])}</b> — attempt "
                             f"{escape(row['attempt'])}"),
                pre(row["details"] if isinstance(row["details"], str) else row["message"]),
                *self._cause_panes(row["test_id"]),
            ]

    def _cause_panes(self, test_id: str) -> list:
        """The sessions most likely to have broken ``test_id``, each with its evidence."""
        candidates = getattr(self, "_causes", {}).get(test_id) or []
        if not candidates:
            return []
        panes: list = [pn.pane.Markdown("#### Likely cause")]
        for rank, c in enumerate(candidates, 1):
            call = c["tool_call"]
            panes.append(pn.pane.HTML(
                f"<div><b>{rank}. {escape(c['agent_name'])}</b> "
                f"<span style='color:#667'>({escape(c['agent_id'])} · session "
                f"{escape(c.get('session_id') or '-')} · score {c['score']:g})</span><br>"
                f"{escape('; '.join(c['reasons']))} — <code>{escape(call['tool'])}</code> at "
                f"{escape(str(call['ts'])[:19])}</div>", sizing_mode="stretch_width"))
            if call.get("diff") and rank == 1:
                panes.append(pre(call["diff"], max_height=200))
        return panes

    def __panel__(self):
        return pn.Column(
            self._header,
            self._base,
            pn.pane.Markdown("#### Failures in this run"),
            self._failures,
            self._trace,
            pn.pane.Markdown("#### Changes against the base run"),
            self._changes,
            sizing_mode="stretch_width",
        )
