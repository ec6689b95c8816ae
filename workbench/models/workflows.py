"""Workflows as a param model, shared by the Workflows page and notebooks.

``source`` is a :class:`~workbench.workflows.local.LocalWorkflows` (inside the serve
process) or a :class:`~workbench.control.devkit.DevKit` (a running workbench over HTTP):
the same methods, the role checked on the server either way. No layout here.
"""

from __future__ import annotations

import copy
from typing import Any

import pandas as pd
import param

#: A step's state on the canvas when the run has not reached it (yet, or at all).
NOT_REACHED = {"open": "waiting", "ended": "skipped"}
RUN_COLUMNS = ["id", "state", "version", "started_by", "created_at", "ended_at", "cost_usd",
               "message"]


class WorkflowsModel(param.Parameterized):
    source = param.Parameter(doc="LocalWorkflows or DevKit")
    workflow = param.String(default="", doc="the workflow shown (its id)")
    run = param.String(default="", doc="the run shown on the canvas (its id)")
    version = param.Integer(default=0, doc="moves with every change pushed by the runs")
    undo_depth = param.Integer(default=0, doc="how many edits Undo can take back")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._undo: list[dict[str, Any]] = []

    @property
    def role(self) -> str:
        principal = getattr(self.source, "principal", None)
        return principal.role if principal is not None else "unknown"

    def may(self, action: str) -> bool:
        """For showing buttons only: the server checks again whatever is shown."""
        principal = getattr(self.source, "principal", None)
        return principal is None or principal.may(action)

    # -- definitions --------------------------------------------------------------------
    def workflows(self) -> list[dict[str, Any]]:
        return self.source.workflows()

    def templates(self) -> list[dict[str, Any]]:
        return self.source.workflow_templates()

    def definition(self, version: int | None = None) -> dict[str, Any] | None:
        if not self.workflow:
            return None
        try:
            return self.source.workflow(self.workflow, version)
        except KeyError:
            return None

    def versions(self) -> list[dict[str, Any]]:
        return self.source.workflow_versions(self.workflow) if self.workflow else []

    def diff(self, a: int, b: int) -> dict[str, Any]:
        return self.source.workflow_diff(self.workflow, a, b)

    def save(self, spec: dict[str, Any], as_new: bool = False) -> dict[str, Any]:
        """Save ``spec``: a new version of the workflow shown, or (``as_new``, or none
        shown) a new workflow, which becomes the one shown."""
        saved = self.source.save_workflow(spec, None if as_new or not self.workflow
                                          else self.workflow)
        self.workflow = saved["id"]
        return saved

    # -- undo ---------------------------------------------------------------------------
    def remember(self, spec: dict[str, Any]) -> None:
        """Keep ``spec`` (the canvas before an edit) for Undo; at most 100."""
        self._undo.append(copy.deepcopy(spec))
        del self._undo[:-100]
        self.undo_depth = len(self._undo)

    def undo(self) -> dict[str, Any] | None:
        """The canvas before the last edit, or None."""
        spec = self._undo.pop() if self._undo else None
        self.undo_depth = len(self._undo)
        return spec

    def forget(self) -> None:
        self._undo.clear()
        self.undo_depth = 0

    # -- runs ---------------------------------------------------------------------------
    def start(self, inputs: dict[str, Any]) -> dict[str, Any]:
        run = self.source.run_workflow(self.workflow, inputs)
        self.run = run["id"]
        return run

    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        return self.source.workflow_runs(self.workflow, limit) if self.workflow else []

    def runs_frame(self, limit: int = 50) -> pd.DataFrame:
        rows = self.runs(limit)
        df = pd.DataFrame(rows, columns=RUN_COLUMNS) if rows else pd.DataFrame(
            columns=RUN_COLUMNS)
        return df[RUN_COLUMNS]

    def run_detail(self) -> dict[str, Any] | None:
        if not self.run:
            return None
        try:
            return self.source.workflow_run(self.run)
        except KeyError:
            return None

    def act(self, action: str) -> dict[str, Any]:
        """cancel or resume the run shown."""
        return self.source.workflow_run_action(self.run, action)

    @staticmethod
    def node_states(detail: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
        """Each step's latest visit (``state``, ``outcome``, ``cost_usd`` over every
        visit, ``visits``, the task/test run/approval/agent/session it made, its last
        output); a step the run has not reached is ``waiting`` (the run goes on) or
        ``skipped`` (it ended)."""
        if not detail:
            return {}
        open_ = detail["state"] in ("running", "waiting")
        out: dict[str, dict[str, Any]] = {}
        for step in detail["steps"]:
            seen = out.get(step["node"])
            cost = (seen["cost_usd"] if seen else 0.0) + float(step.get("cost_usd") or 0.0)
            if seen is None or step["visit"] >= seen["visit"]:
                out[step["node"]] = {**step, "visits": step["visit"], "cost_usd": cost}
            else:
                seen["cost_usd"] = cost
        for node in detail["spec"]["nodes"]:
            out.setdefault(node["id"], {"node": node["id"], "visit": 0, "visits": 0,
                                        "cost_usd": 0.0, "state": NOT_REACHED[
                                            "open" if open_ else "ended"]})
        return out

    @staticmethod
    def timeline(detail: dict[str, Any] | None) -> pd.DataFrame:
        """Every visit of every step with its start and end (an open one ends now): the
        run's history, parallel branches side by side."""
        cols = ["node", "label", "visit", "kind", "state", "start", "end"]
        if not detail or not detail["steps"]:
            return pd.DataFrame(columns=cols)
        labels = {n["id"]: n["label"] for n in detail["spec"]["nodes"]}
        df = pd.DataFrame(detail["steps"])
        df = df[df["started_at"].notna()].copy()
        if df.empty:
            return pd.DataFrame(columns=cols)
        now = pd.Timestamp.utcnow().tz_localize(None)
        df["start"] = pd.to_datetime(df["started_at"])
        df["end"] = pd.to_datetime(df["ended_at"]).fillna(now) if "ended_at" in df else now
        df["label"] = df["node"].map(labels).fillna(df["node"])
        return df.sort_values(["start", "visit"])[cols].reset_index(drop=True)
