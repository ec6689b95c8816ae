"""Run history (chart + paged table) and run detail (new vs known failures vs base)."""

from __future__ import annotations

import pandas as pd
import panel as pn
import param

from ..analysis.units import duration, number, timestamp
from ..models import TestAnalytics
from ..models.tests import FILTER_PARAMS as TEST_FILTERS
from .common import OUTCOME_COLORS, badge, columns, empty, pre, readable, table, watching
from .escape import escape
from .lazy import LazyView, deferred
from .paged_table import PagedTable
from .stacked_bars import StackedBars

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

#: The runs table's columns, most telling first: on a narrow page the last are hidden.
RUN_COLUMNS = ["started_at", "project", "branch", "build", "status", "tests", "passed",
               "failed", "errors", "skipped", "duration_s", "variant", "commit_sha", "run_id"]
#: What the chart stacks per run (passes dwarf everything else; a person scans a history
#: for the failures), in outcome colours.
_STACKS = {o: OUTCOME_COLORS[o] for o in ("failed", "error", "skipped")}
_NO_RUNS = ("No runs in this window. Ingest reports with `observatory ingest tests` or run "
            "`pytest --observatory`.")


class RunHistory(LazyView):
    """Pass/fail/skip per run; clicking a bar or a row opens the run.

    The chart is HTML (:class:`~.stacked_bars.StackedBars`), drawn from the same frame as
    the table in the same step: a live refresh replaces one string. It used to be a
    HoloViews plot built anew on every refresh, then a Bokeh figure, whose views were
    most of what the browser built before the page could be used."""

    model = param.ClassSelector(class_=TestAnalytics, doc="The test analytics model.")
    chart_runs = param.Integer(default=60, doc="How many recent runs the chart shows.")

    def __init__(self, **params):
        super().__init__(**params)
        # Rows as HTML, paged and sorted on the server (see :mod:`.paged_table`): with the
        # chart, a Tabulator was what the browser spent longest on before the page could
        # be used. Clicking a row opens its run; the open run's row is marked.
        self._table = PagedTable("run_id", empty_text=_NO_RUNS, on_open=self._open_run)
        self.model.param.watch(lambda e: self._table.mark(e.new), "run_id")
        self._table.value = pd.DataFrame(columns=RUN_COLUMNS)  # (its columns from the start)
        self._chart = StackedBars(
            "run", _STACKS, height=300, extra=("tests",), ylabel="tests not passing",
            y_format="0,0", label_angle=1.05, label_size="7pt", on_tap=self._on_tap,
            title="Failed, error and skipped tests per run (click a bar or a row to open "
                  "the run)",
            # The table below says why there are no runs; the chart says nothing then.
            empty_text="")
        self._frame = pd.DataFrame()
        self._bars = pd.DataFrame()
        self._load()

    @param.depends(*watching(TEST_FILTERS), "chart_runs", watch=True)
    @deferred
    def _load(self) -> None:
        df = self.model.runs(limit=TABLE_RUNS)  # held on the server; the browser gets a page
        self._frame = df
        self._table.value = self.model.derive("runs-table", lambda: readable(self._shown(df)))
        # (once per data version for every session: the labels' strftime was a tenth of
        # the tests page's build)
        self._bars = self.model.derive("runs-bars", lambda: self._per_run(
            df.head(self.chart_runs)), runs=self.chart_runs)
        self._chart.send(self._bars)

    @staticmethod
    def _shown(df: pd.DataFrame) -> pd.DataFrame:
        shown = columns(df, RUN_COLUMNS).copy()
        shown["commit_sha"] = shown["commit_sha"].astype(object).map(
            lambda c: c[:10] if isinstance(c, str) else None)
        return shown

    def _per_run(self, df: pd.DataFrame) -> pd.DataFrame:
        """One row per run, oldest first: its label and the counts the chart stacks."""
        if df.empty:
            return pd.DataFrame(columns=["run", "run_id", *_STACKS, "tests"])
        df = df.iloc[::-1]
        return pd.DataFrame({
            "run": self._labels(df).to_numpy(), "run_id": df["run_id"].to_numpy(),
            "failed": df["failed"].to_numpy(), "error": df["errors"].to_numpy(),
            "skipped": df["skipped"].to_numpy(), "tests": df["tests"].to_numpy()})

    def _open_run(self, run_id: str) -> None:
        self.model.run_id = run_id

    def _on_tap(self, label: str) -> None:
        hit = self._bars[self._bars["run"] == label]
        if not hit.empty:
            self.model.run_id = hit["run_id"].iloc[0]

    @staticmethod
    def _labels(df: pd.DataFrame) -> pd.Series:
        """One distinct bar label per run: time and build, plus the run id where runs
        would otherwise share a label (same minute, no build number, or matrix jobs)."""
        build = df["build"].astype(object).map(lambda b: f" #{b}" if isinstance(b, str)
                                               and b else "")
        label = df["started_at"].dt.strftime("%m-%d %H:%M").fillna("") + build
        clash = label.duplicated(keep=False)
        return label.where(~clash, label + " " + df["run_id"].astype(str).str.slice(0, 8))

    def __panel__(self):
        return pn.Column(self._chart, self._table, sizing_mode="stretch_width")


_FAILURE_COLUMNS = ["status", "test_id", "outcome", "attempt", "error_type", "message"]
_CHANGE_COLUMNS = ["status", "test_id", "outcome", "base_outcome"]


def _given(value: object) -> bool:
    """Whether a run field has a value worth showing (not missing, not empty)."""
    return isinstance(value, str) and value.strip() != ""


def _when(value: object) -> str:
    """A time from a JSON-ish record (a datetime or its ISO text) as whole fields."""
    if isinstance(value, str):
        return value.replace("T", " ")[:19]
    return timestamp(value)


def _mark_known_flaky(model: TestAnalytics, fails: pd.DataFrame) -> pd.DataFrame:
    """``fails`` with the status of each known-flaky test saying so (``new failure · known
    flaky``): proven flaky — it passed and failed on one commit, or on a retry — as the
    Flaky tests tab labels it and as test selection counts it (its failures weigh less)."""
    if fails.empty:
        return fails
    flaky = set(model.flaky_tests(labels=("flaky",))["test_id"])
    if not flaky:
        return fails
    marked = fails.copy()
    marked["status"] = [f"{s} · known flaky" if t in flaky else s
                        for s, t in zip(marked["status"], marked["test_id"], strict=True)]
    return marked


class RunDetail(LazyView):
    """One run against its base: counts, then its failures marked new or known."""

    model = param.ClassSelector(class_=TestAnalytics, doc="The test analytics model.")

    def __init__(self, **params):
        super().__init__(**params)
        self._failures = table(
            pd.DataFrame(columns=_FAILURE_COLUMNS),
            "No failures in this run (or no run opened: click one in Runs).", boxed=True,
            page_size=10,
                               widths={"status": 196}, grow={"test_id": 3, "message": 2})
        self._failures_box = self._failures.box
        self._failures.param.watch(self._on_select, "selection")
        self._changes = table(
            pd.DataFrame(columns=_CHANGE_COLUMNS), "Nothing changed against the base run.",
            boxed=True, page_size=10,
                              selectable=False, widths={"status": 124},
                              tips={"outcome": "Its outcome in this run"})
        self._changes_box = self._changes.box
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
            self._failures.value = pd.DataFrame(columns=_FAILURE_COLUMNS)
            self._changes.value = pd.DataFrame(columns=_CHANGE_COLUMNS)
            return
        base = self.model.base_of(info["run_id"])
        fails = _mark_known_flaky(self.model, self.model.run_failures())
        changes = self.model.run_changes()
        counts = changes["status"].value_counts()
        # What the run has, and nothing for what it does not (no "build -").
        branch, build = info.get("branch"), info.get("build")
        commit, variant = info.get("commit_sha"), info.get("variant")
        took = duration(info.get("duration_s"))
        title = " · ".join(
            [f"Run {escape(info['run_id'])}", escape(info["project"])]
            + ([escape(branch)] if _given(branch) else [])
            + ([f"build {escape(build)}"] if _given(build) else []))
        meta = " · ".join(
            ([f"commit <code>{escape(commit[:12])}</code>"] if _given(commit) else [])
            + ([f"variant <code>{escape(variant)}</code>"] if _given(variant) else [])
            + [f"started {escape(timestamp(info['started_at']))}"]
            + ([f"took {escape(took)}"] if took else [])
            + [f"status <b>{escape(info['status'])}</b>",
               f"compared with run <code>{escape(base)}</code>" if base
               else "compared with no earlier run (every failure is new)"])
        title = f"<h3 style='margin:4px 0'>{title}</h3>"
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
        self._failures.value = fails[_FAILURE_COLUMNS]
        self._fail_frame = fails
        self._changes.value = changes[_CHANGE_COLUMNS]

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
            session = c.get("session_id")
            about = " · ".join([escape(c["agent_id"])]
                               + ([f"session {escape(session)}"] if _given(session) else [])
                               + [f"score {escape(number(c['score']))}"])
            panes.append(pn.pane.HTML(
                f"<div><b>{rank}. {escape(c['agent_name'])}</b> "
                f"<span style='color:#667'>({about})</span><br>"
                f"{escape('; '.join(c['reasons']))} — <code>{escape(call['tool'])}</code> at "
                f"{escape(_when(call['ts']))}</div>", sizing_mode="stretch_width"))
            if call.get("diff") and rank == 1:
                panes.append(pre(call["diff"], max_height=200))
        return panes

    def __panel__(self):
        return pn.Column(
            self._header,
            self._base,
            pn.pane.Markdown("#### Failures in this run"),
            self._failures_box,
            self._trace,
            pn.pane.Markdown("#### Changes against the base run"),
            self._changes_box,
            sizing_mode="stretch_width",
        )
