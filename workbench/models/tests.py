"""Test-failure investigation: every question a dashboard or notebook asks of test results."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import param

from ..analysis import compare, culprits, durations, flaky
from .cache import Ago, FrameCache

#: Parameters that change what every test view shows (views re-query on each).
FILTER_PARAMS = ("project", "branch", "variant", "window", "refreshed")

WINDOWS = {"24 hours": 1, "7 days": 7, "30 days": 30, "90 days": 90, "all time": None}
ALL = "(all)"


def window_start(window: str, now: datetime | None) -> Ago | datetime | None:
    """Where the time ``window`` (a key of :data:`WINDOWS`) starts: relative to the data
    version's time (:class:`~.cache.Ago`, so that the server can ask the same question of
    the next version ahead), or to a fixed ``now``; None for all time."""
    days = WINDOWS[window]
    if not days:
        return None
    return Ago(timedelta(days=days)) if now is None else now - timedelta(days=days)


def set_choices(model: param.Parameterized, name: str, values: Iterable[Any]) -> None:
    """Offer ``values`` (after :data:`ALL`) for the filter ``name``; a choice no longer
    offered falls back to :data:`ALL`. The same choices are not set again: that would
    re-send a sidebar's options to the browser on every live refresh of every open page."""
    choices = [ALL, *values]
    if model.param[name].objects != choices:
        model.param[name].objects = choices
    if getattr(model, name) not in choices:
        setattr(model, name, ALL)


class TestAnalytics(param.Parameterized):
    """Filters as parameters, answers as DataFrames.

    ``store`` is anything with ``query(name, **params) -> DataFrame``: the local
    :class:`~workbench.store.Store` or a :class:`~workbench.client.RemoteStore` that asks a
    running server.
    """

    __test__ = False  # not a pytest test class despite the name

    store = param.Parameter(doc="Where the data comes from (Store or RemoteStore).")
    project = param.Selector(
        default=ALL, objects=[ALL], check_on_set=False, doc="Project to look at."
    )
    branch = param.Selector(default=ALL, objects=[ALL], check_on_set=False, doc="Branch filter.")
    variant = param.Selector(
        default=ALL,
        objects=[ALL],
        check_on_set=False,
        doc="Run variant filter (OS, Python version, browser, ...).",
    )
    window = param.Selector(
        default="30 days", objects=list(WINDOWS), doc="Only runs started within this window."
    )
    run_id = param.String(default=None, allow_None=True, doc="The run opened in run detail.")
    base_run_id = param.String(
        default=None,
        allow_None=True,
        doc="Compare against this run instead of the branch's previous run.",
    )
    signature = param.String(
        default=None, allow_None=True, doc="The failure cluster opened for drill-down."
    )
    test_id = param.String(default=None, allow_None=True, doc="The test opened in test detail.")
    flaky_runs = param.Integer(
        default=30,
        bounds=(5, 100),
        doc="How many recent runs per test the flaky analysis looks at.",
    )
    now = param.Date(
        default=None, allow_None=True, doc="Clock for the time window (None: the current time)."
    )
    refreshed = param.Integer(default=0, doc="Bumped by refresh() so views re-query.")

    def __init__(self, cache: FrameCache | None = None, **params: Any):
        """``cache``: frames shared with a served page's other sessions from the start (its
        shell's ``frames``), so that the choices read here are read once per data version;
        a notebook passes none."""
        super().__init__(**params)
        self._cache = cache or FrameCache()
        self._refresh_choices()

    # -- choices --------------------------------------------------------------------------
    @param.depends("store", watch=True)
    def _refresh_choices(self) -> None:
        if self.store is None:
            return
        set_choices(self, "project", self._cache.get(self.store, "projects", {})["project"])
        self._refresh_project_choices()

    @param.depends("project", watch=True)
    def _refresh_project_choices(self) -> None:
        p = self._project()
        for name, query, col in (
            ("branch", "branches", "branch"),
            ("variant", "variants", "variant"),
        ):
            set_choices(self, name, self._cache.get(self.store, query, {"project": p})[col])

    def refresh(self, version: Any = None, at: datetime | None = None) -> None:
        """Re-read choices and tell views that new data may have arrived (a dashboard
        passes the data ``version`` it refreshes to and that version's time ``at``)."""
        self._cache.clear(version, at)
        self._refresh_choices()
        self.refreshed += 1

    # -- filters --------------------------------------------------------------------------
    def _project(self) -> str | None:
        return None if self.project == ALL else self.project

    def filters(self) -> dict[str, Any]:
        """The current filters as query parameters."""
        return {
            "project": self._project(),
            "branch": None if self.branch == ALL else self.branch,
            "variant": None if self.variant == ALL else self.variant,
            "since": window_start(self.window, self.now),
        }

    def _q(self, name: str, **extra: Any) -> pd.DataFrame:
        return self._cache.get(self.store, name, {**self.filters(), **extra})

    def derive(self, name: str, make: Callable[[], Any], **extra: Any) -> Any:
        """What a view ``make()``-s of this model's frames for the current filters (and
        ``extra``), built once per data version and shared by the open dashboards (see
        ``FrameCache.derive``): the rows of a table as shown, say."""
        return self._cache.derive(self.store, name, {**self.filters(), **extra}, make)

    # -- runs -----------------------------------------------------------------------------
    def runs(self, limit: int = 500, offset: int = 0) -> pd.DataFrame:
        """Runs in the window, newest first, with pass/fail/skip counts."""
        return self._q("runs", limit=limit, offset=offset)

    def run_info(self, run_id: str | None = None) -> dict[str, Any] | None:
        """Metadata and counts of one run (default: the selected run)."""
        run_id = run_id or self.run_id
        if not run_id:
            return None
        df = self.store.query("run", run_id=run_id)
        return None if df.empty else df.iloc[0].to_dict()

    def running_tests(self, run_id: str | None = None) -> pd.DataFrame:
        """Tests a live run has started and not finished (as its writer last reported)."""
        run_id = run_id or self.run_id
        if not run_id:
            return pd.DataFrame(columns=["test_id", "seen_at"])
        return self.store.query("running_tests", run_id=run_id)

    def base_of(self, run_id: str) -> str | None:
        """The run compared against: ``base_run_id`` or the branch's previous run."""
        if self.base_run_id:
            return self.base_run_id
        df = self.store.query("base_run", run_id=run_id)
        return None if df.empty else df["run_id"].iloc[0]

    def run_changes(self, run_id: str | None = None) -> pd.DataFrame:
        """New failures, still failing, fixed, new tests and removed tests vs the base."""
        run_id = run_id or self.run_id
        if not run_id:
            return compare.compare_runs(_empty_outcomes(), None)
        base = self.base_of(run_id)
        now = self.store.query("final_outcomes", run_id=run_id)
        before = self.store.query("final_outcomes", run_id=base) if base else None
        info = self.run_info(run_id)
        running = bool(info) and info.get("status") == "running"
        return compare.compare_runs(now, before, running=running)

    def culprits(self, run_id: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """Each new failure's likely causes: the agent sessions and tool calls that edited
        what it points at (see :mod:`workbench.analysis.culprits`), by test id."""
        run_id = run_id or self.run_id
        if not run_id:
            return {}
        found = culprits.culprits(self.store, run_id, base_id=self.base_run_id)
        return {f["test_id"]: f["candidates"] for f in found["failures"] if f["candidates"]}

    def run_failures(self, run_id: str | None = None) -> pd.DataFrame:
        """Failed attempts of a run, each marked new or known (failing before too)."""
        run_id = run_id or self.run_id
        if not run_id:
            return pd.DataFrame(columns=["test_id", "status", "outcome", "attempt", "message"])
        res = self.store.query("run_results", run_id=run_id)
        bad = res[res["outcome"].isin(["failed", "error"])].copy()
        changes = self.run_changes(run_id)[["test_id", "status"]]
        bad = bad.merge(changes, on="test_id", how="left")
        retried = res.groupby("test_id")["outcome"].agg(lambda s: "passed" in set(s))
        bad.loc[bad["test_id"].map(retried).fillna(False).astype(bool), "status"] = (
            "passed on retry"
        )
        bad["status"] = bad["status"].fillna("known")
        cols = [
            "status",
            "test_id",
            "outcome",
            "attempt",
            "error_type",
            "message",
            "details",
            "signature",
            "duration_s",
        ]
        return bad[cols].reset_index(drop=True)

    # -- clusters -------------------------------------------------------------------------
    def clusters(self, limit: int = 200) -> pd.DataFrame:
        """Failure clusters: failures sharing a normalised signature, biggest first."""
        return self._q("failure_clusters", limit=limit)

    def cluster_failures(self, signature: str | None = None, limit: int = 200) -> pd.DataFrame:
        """Every failure in one cluster, newest first, with its traceback."""
        signature = signature or self.signature
        if not signature:
            return pd.DataFrame(columns=["started_at", "run_id", "test_id", "message", "details"])
        return self._q("cluster_failures", signature=signature, limit=limit)

    # -- flaky ----------------------------------------------------------------------------
    def flaky_tests(self, labels: tuple[str, ...] = flaky.LABELS) -> pd.DataFrame:
        """Tests that failed in the window, labelled flaky / statistically flaky / broken."""
        stats = self._q("test_run_stats", window=self.flaky_runs)
        labelled = flaky.label_tests(stats)
        return labelled[labelled["label"].isin(labels)].reset_index(drop=True)

    # -- tests ----------------------------------------------------------------------------
    def test_history(self, test_id: str | None = None, limit: int = 500) -> pd.DataFrame:
        """Every attempt of one test across runs, newest first."""
        test_id = test_id or self.test_id
        if not test_id:
            return pd.DataFrame(columns=["started_at", "run_id", "outcome", "duration_s"])
        return self._q("test_history", test_id=test_id, limit=limit)

    def duration_trend(self, test_id: str | None = None) -> pd.DataFrame:
        """Final-attempt durations of one test in run order."""
        test_id = test_id or self.test_id
        if not test_id:
            return pd.DataFrame(columns=["started_at", "duration_s", "outcome", "run_id"])
        return self._q("duration_trend", test_id=test_id)

    def search_tests(self, text: str) -> list[str]:
        """Test ids containing ``text`` (case-insensitive), at most 50."""
        return self._q("search_tests", text=text)["test_id"].tolist()

    def slowest_tests(self, limit: int = 50) -> pd.DataFrame:
        """Tests by median duration of their final attempts."""
        return self._q("test_durations", limit=limit)

    def duration_regressions(self, recent: int = 5) -> pd.DataFrame:
        """Tests whose last ``recent`` runs are clearly slower than the ones before."""
        return durations.regressions(self._q("duration_medians", recent=recent))


def _empty_outcomes() -> pd.DataFrame:
    return pd.DataFrame({"test_id": pd.Series(dtype=str), "outcome": pd.Series(dtype=str)})
