"""Projects and their coverage: every question the projects page or a notebook asks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import param

from ..agent_tools import project_health
from ..coverage import diff, lines, risk, tree
from ..projects.scan import stored_list
from .cache import FrameCache

ALL = "(none)"
LATEST, BEFORE = "latest", "the one before"


class _Cached:
    """A store whose ``query`` goes through a model's frame cache, so that the analysis
    functions (which take any store) share frames with the model's own questions."""

    def __init__(self, model: ProjectsModel):
        self._model = model

    def query(self, name: str, **params: Any) -> pd.DataFrame:
        return self._model._cache.get(self._model.store, name, params)


class ProjectsModel(param.Parameterized):
    """The open project, its coverage report, the folder of the coverage map, the file and
    the line looked at — as parameters; answers as DataFrames and dicts."""

    store = param.Parameter(doc="Where the data comes from (Store or RemoteStore).")
    project = param.Selector(default=ALL, objects=[ALL], check_on_set=False,
                             doc="The project looked at.")
    # Words, not None or '', for "no particular report": Panel's Select shows those blank.
    report_id = param.Selector(default=LATEST, objects={LATEST: LATEST}, check_on_set=False,
                               doc="Its coverage report (or the latest).")
    base_report_id = param.Selector(default=BEFORE, objects={BEFORE: BEFORE},
                                    check_on_set=False,
                                    doc="The report compared against (or the one before).")
    folder = param.String(default="", doc="The coverage map's folder ('' for the top).")
    path = param.String(default=None, allow_None=True, doc="The file opened in the file view.")
    line = param.Integer(default=None, allow_None=True, doc="The line whose tests are shown.")
    refreshed = param.Integer(default=0, doc="Bumped by refresh() so views re-query.")

    def __init__(self, cache: FrameCache | None = None, **params: Any):
        """``cache``: frames shared with a served page's other sessions (its shell's
        :meth:`~workbench.views.shell.DashboardShell.frames`); a notebook passes none."""
        super().__init__(**params)
        self._cache = cache or FrameCache()
        self.reader = _Cached(self)
        # The cache on while the model sets itself up: the choices and the first project
        # both read the overview (every project's flaky and broken counts), which was a
        # third of the projects page's build when it was read twice. A served page's cache
        # is shared from the start, so that overview is made once per data version for
        # every session, not once per page load (it was a third of /projects' build,
        # py-spy). A notebook's is off again after (every call reads the store as it is).
        own = not self._cache.enabled
        self._cache.enabled = True
        try:
            self._refresh_choices()
            if "project" not in params and self.store is not None:
                # Opened with no project: the first one with coverage (else the first), so
                # that every tab shows something; the Projects tab lists the others.
                df = self.overview()
                if not df.empty:
                    with_cov = df[df["coverage_reports"] > 0]
                    self.project = (with_cov if not with_cov.empty else df)["project"].iat[0]
        finally:
            if own:
                self._cache.enabled = False
                self._cache.clear()

    # -- choices --------------------------------------------------------------------------
    @param.depends("store", watch=True)
    def _refresh_choices(self) -> None:
        if self.store is None:
            return
        names = self.overview()["project"].tolist()
        self.param.project.objects = [ALL, *names]
        if self.project not in self.param.project.objects:
            self.project = ALL
        self._refresh_reports()

    @param.depends("project", watch=True)
    def _refresh_reports(self) -> None:
        reports = self.reports() if self.has_project else pd.DataFrame(columns=["report_id"])
        ids = reports["report_id"].tolist()
        # Named by when, which commit and how much, newest first; None reads "latest".
        names = {f"{str(r.created_at)[:16]} · {str(r.commit_sha or '–')[:8]} · "
                 f"{'–' if pd.isna(r.percent) else f'{r.percent:.1f} %'}": r.report_id
                 for r in reports.itertuples()}
        self.param.report_id.objects = {LATEST: LATEST, **names}
        self.param.base_report_id.objects = {BEFORE: BEFORE, **names}
        if self.report_id not in ids:
            self.report_id = LATEST
        if self.base_report_id not in ids:
            self.base_report_id = BEFORE

    @param.depends("project", "report_id", watch=True)
    def _reset_position(self) -> None:
        self.folder, self.path, self.line = "", None, None

    def refresh(self, version: Any = None, at: datetime | None = None) -> None:
        """New data: forget cached frames and tell views to re-query."""
        self._cache.clear(version, at)
        self._refresh_choices()
        self.refreshed += 1

    @property
    def has_project(self) -> bool:
        return bool(self.project) and self.project != ALL

    # -- the overview ---------------------------------------------------------------------
    def overview(self) -> pd.DataFrame:
        """One row per project: where, last run, coverage and its change, agents, MCP
        servers declared; plus flaky and broken counts."""
        # Once per data version for every session of a served page (each project's labels
        # are a query and an analysis of its tests); a copy, as callers may add to it.
        return self._cache.derive(self.store, "overview", {}, self._overview).copy()

    def _overview(self) -> pd.DataFrame:
        df = self._cache.get(self.store, "project_overview", {}).copy()
        if df.empty:
            return df.assign(flaky=[], broken=[], mcp=[])
        counts = [self._labels(p) for p in df["project"]]
        df["flaky"] = [c.get("flaky", 0) + c.get("statistically flaky", 0) for c in counts]
        df["broken"] = [c.get("broken", 0) for c in counts]
        df["mcp"] = [len([s for s in stored_list(v) if "name" in s]) for v in df["mcp_servers"]]
        df["manifests"] = [", ".join(stored_list(v)) for v in df["manifests"]]
        return df

    def _labels(self, project: str) -> dict[str, int]:
        from ..analysis.flaky import label_tests

        stats = self._cache.get(self.store, "test_run_stats", {"project": project})
        labels = label_tests(stats)
        return labels["label"].value_counts().to_dict() if not labels.empty else {}

    # -- one project ----------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return project_health(self.reader, self.project) if self.has_project else {}

    def info(self) -> dict[str, Any]:
        """The project's overview row, as a dict ({} when unknown)."""
        df = self.overview()
        row = df[df["project"] == self.project]
        return {} if row.empty else row.iloc[0].to_dict()

    def commits(self, limit: int = 30) -> pd.DataFrame:
        """Recent commits of the project's repository, each with its test runs and coverage
        (a run or report links to a commit by its sha)."""
        from ..git import GitError, commits

        cols = ["sha", "author", "time", "subject", "runs", "failed", "coverage"]
        repo = lines.project_repo(self.reader, self.project) if self.has_project else None
        if repo is None:
            return pd.DataFrame(columns=cols)
        try:
            log = pd.DataFrame(commits(repo, limit=limit))
        except GitError:
            return pd.DataFrame(columns=cols)
        if log.empty:
            return pd.DataFrame(columns=cols)
        runs = self._cache.get(self.store, "runs", {"project": self.project, "limit": 2000})
        by_sha = runs.groupby("commit_sha").agg(runs=("run_id", "size"),
                                                failed=("failed", "sum"))
        cov = self.reports().drop_duplicates("commit_sha").set_index("commit_sha")["percent"]
        log["runs"] = log["sha"].map(by_sha["runs"]).fillna(0).astype(int)
        log["failed"] = log["sha"].map(by_sha["failed"]).fillna(0).astype(int)
        log["coverage"] = log["sha"].map(cov)
        log["time"] = pd.to_datetime(log["time"], utc=True).dt.tz_localize(None)
        return log[cols]

    def mcp_servers(self) -> list[dict[str, Any]]:
        return [s for s in stored_list(self.info().get("mcp_servers")) if "name" in s]

    # -- its identity (actions: an operator's, audited; projects/identity.py) -------------
    def _writable(self):
        if not hasattr(self.store, "write"):
            raise ValueError("changing a project needs the workbench's own store; from a "
                             "notebook on a server use its API (PUT /api/projects/NAME)")
        return self.store

    def rename(self, principal, name: str) -> dict[str, Any]:
        """Give the open project's folder another name (kept by rescans), and follow it."""
        from ..projects import identity

        row = identity.rename(self._writable(), principal, self.project, name)
        self._opened(row["name"])
        return row

    def link(self, principal, path: str) -> dict[str, Any]:
        """The open project's folder is ``path`` (a git repository of this machine)."""
        from ..projects import identity

        row = identity.link(self._writable(), principal, self.project, path)
        self._opened(row["name"])
        return row

    def set_python(self, principal, python: str | None) -> dict[str, Any]:
        """The interpreter the open project's test runs use (None or "": found again)."""
        from ..projects import identity

        row = identity.set_python(self._writable(), principal, self.project, python)
        self._opened(row["name"])
        return row

    def _opened(self, name: str) -> None:
        if not self._cache.enabled:  # a notebook reads again now; a served page's frames
            self.refresh()           # are the data version's: the change signal refreshes
        if name not in self.param.project.objects:  # (until that refresh lists it)
            self.param.project.objects = [*self.param.project.objects, name]
        self.project = name

    # -- coverage -------------------------------------------------------------------------
    def reports(self) -> pd.DataFrame:
        return self._cache.get(self.store, "coverage_reports",
                               {"project": self.project, "limit": 500})

    def trend(self) -> pd.DataFrame:
        return diff.trend(self.reader, self.project)

    def report(self) -> dict[str, Any] | None:
        """The report looked at: the chosen one, else the latest."""
        reports = self.reports()
        if reports.empty:
            return None
        if self.report_id != LATEST:
            reports = reports[reports["report_id"] == self.report_id]
        return reports.iloc[0].to_dict() if not reports.empty else None

    def files(self) -> pd.DataFrame:
        rep = self.report()
        if rep is None:
            return pd.DataFrame(columns=["path", "statements", "covered", "percent"])
        return self._cache.get(self.store, "coverage_files", {"report_id": rep["report_id"]})

    def level(self) -> pd.DataFrame:
        """The coverage map's current level (folders and files under ``folder``)."""
        rep = self.report()
        if rep is None:
            return tree.children(pd.DataFrame(columns=["path", "statements", "covered"]), "")
        totals = self._cache.get(self.store, "coverage_file_totals",
                                 {"report_id": rep["report_id"]})
        return tree.children(totals, self.folder)

    def file_row(self) -> dict[str, Any] | None:
        files = self.files()
        row = files[files["path"] == self.path] if self.path else files.iloc[0:0]
        return row.iloc[0].to_dict() if not row.empty else None

    def file_tests(self) -> pd.DataFrame:
        """The tests that ran lines of the open file, from the report looked at if it has
        per-test contexts, else the latest that does."""
        rep = self.report()
        if rep is None or not self.path:
            return pd.DataFrame(columns=["test_id", "path", "ranges"])
        params = {"project": self.project, "path": self.path}
        if rep.get("contexts"):
            params["report_id"] = rep["report_id"]
        rows = self._cache.get(self.store, "coverage_file_tests", params)
        exact = rows[rows["path"] == self.path]
        return exact if not exact.empty else rows

    def file_view(self) -> tuple[pd.DataFrame, str]:
        """The open file line by line, and where its source came from. ``tests`` (how many
        tests ran the line) is missing (<NA>), not 0, for a line that is not a statement,
        and for every line when no report has per-test contexts: nothing was counted."""
        row = self.file_row()
        if row is None:
            return pd.DataFrame(columns=["line", "status", "tests", "code"]), ""
        rep = self.report() or {}
        code, where = lines.source(self.reader, self.project, self.path, rep.get("commit_sha"))
        tests = self.file_tests()
        frame = lines.file_lines(row, tests, code)
        counted = (frame["status"] != "") & (not tests.empty)
        frame["tests"] = frame["tests"].astype("Int64").where(counted, pd.NA)
        return frame, where

    def line_tests(self) -> pd.DataFrame:
        if self.line is None:
            return pd.DataFrame(columns=["test", "last_outcome", "run_id"])
        outcomes = self._cache.get(self.store, "last_outcomes", {"project": self.project})
        return lines.line_tests(self.file_tests(), outcomes, self.line)

    def diff(self) -> dict[str, Any] | None:
        """The report looked at against ``base_report_id`` (default: the one before it)."""
        reports = self.reports()
        rep = self.report()
        if rep is None:
            return None
        base = self.base_report_id
        if base == BEFORE:
            older = reports[reports["created_at"] < rep["created_at"]]
            if older.empty:
                return None
            base = older.iloc[0]["report_id"]
        # The answer as a whole is kept per data version (it reads whole reports as
        # Arrow, which the frame cache does not hold), for every session on that data.
        head = rep["report_id"]
        return self._cache.derive(self.store, "coverage_diff", {"base": base, "head": head},
                                  lambda: diff.diff_reports(self.store, base, head))

    def at_risk(self) -> pd.DataFrame:
        rep = self.report()
        rid = rep["report_id"] if rep and rep.get("contexts") else None
        return risk.at_risk(self.reader, self.project, rid)

